//! Smoke tests: each proves that one part of the test systems is the real thing, by exercising
//! behaviour a fake would not have (Established conditions, the status subresource, owner
//! garbage collection, RBAC denial, moto's S3 and RDS, a PostgreSQL query).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::Api;
use orkestra_testsupport::{cluster, moto, unique_name, wait_for};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

/// `Ok(None)` for a 404, so waits can say "gone".
async fn get_opt<K>(api: &Api<K>, name: &str) -> Option<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.expect("GET failed")
}

#[tokio::test]
async fn crd_is_established_and_cr_status_subresource_is_separate() {
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("smoke-crd").await.unwrap();

    // A CRD of its own per run, so reruns against one ORKESTRA_TEST_ENV do not collide.
    let suffix = unique_name("w").replace('-', "");
    let (group, plural, kind) = (
        "smoke.orkestra.test",
        format!("widgets{suffix}"),
        format!("Widget{suffix}"),
    );
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.{group}") },
        "spec": {
            "group": group,
            "names": { "plural": plural, "singular": suffix, "kind": kind, "listKind": format!("{kind}List") },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": { "type": "object", "properties": { "size": { "type": "integer" } } },
                        "status": { "type": "object", "properties": { "phase": { "type": "string" } } }
                    }
                }}
            }]
        }
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_name = crd.metadata.name.clone().unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();

    wait_for(
        &format!("CRD {crd_name} to be Established"),
        TIMEOUT,
        || async {
            get_opt(&crds, &crd_name)
                .await
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        },
    )
    .await
    .unwrap();

    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", &kind), &plural);
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &resource);
    let mut widget = DynamicObject::new("w1", &resource);
    widget.data = json!({ "spec": { "size": 3 } });
    // Discovery of a just-established CRD can lag by a moment: retry the create until it lands.
    wait_for(
        "the first custom resource to be accepted",
        TIMEOUT,
        || async {
            widgets
                .create(&PostParams::default(), &widget)
                .await
                .is_ok()
        },
    )
    .await
    .unwrap();

    let patched = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Ready" } })),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["phase"], "Ready");

    // With a status subresource the main resource ignores status changes: a real API server
    // keeps "Ready"; a naive fake would overwrite it.
    let after_main = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "size": 4 }, "status": { "phase": "Hacked" } })),
        )
        .await
        .unwrap();
    assert_eq!(after_main.data["spec"]["size"], 4);
    assert_eq!(after_main.data["status"]["phase"], "Ready");

    ns.cleanup().await.unwrap();
    crds.delete(&crd_name, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn owned_configmap_is_garbage_collected_after_its_owner() {
    let env = cluster().await;
    let ns = env.namespace("smoke-gc").await.unwrap();
    let cms: Api<ConfigMap> = ns.api();

    let owner: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "owner" } })).unwrap();
    let owner = cms.create(&PostParams::default(), &owner).await.unwrap();
    let child: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": "child",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": owner.metadata.uid.clone().unwrap()
            }]
        },
        "data": { "k": "v" }
    }))
    .unwrap();
    cms.create(&PostParams::default(), &child).await.unwrap();

    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    wait_for(
        "the garbage collector to delete the owned ConfigMap",
        TIMEOUT,
        || async { get_opt(&cms, "child").await.is_none() },
    )
    .await
    .unwrap();

    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn deleted_namespace_is_finalized_by_the_namespace_controller() {
    let env = cluster().await;
    let ns = env.namespace("smoke-ns").await.unwrap();
    let name = ns.name().to_owned();
    let cms: Api<ConfigMap> = ns.api();
    let cm: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "content" } })).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    ns.cleanup().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(env.client().await);
    wait_for(
        &format!("namespace {name} to be finalized and gone"),
        Duration::from_secs(120),
        || async { get_opt(&namespaces, &name).await.is_none() },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn kubectl_reaches_the_private_cluster() {
    let env = cluster().await;
    let ns = env.namespace("smoke-kubectl").await.unwrap();
    let out = env
        .kubectl()
        .args([
            "get",
            "namespace",
            ns.name(),
            "-o",
            "jsonpath={.status.phase}",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Active");
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn rbac_denies_a_service_account_without_a_role() {
    let env = cluster().await;
    let ns = env.namespace("smoke-rbac").await.unwrap();
    let sas: Api<ServiceAccount> = ns.api();
    let sa: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": "nobody" } })).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();

    // Kubernetes >= 1.24 makes no token secrets: the client uses a TokenRequest token.
    let sa_client = env
        .service_account_client(ns.name(), "nobody")
        .await
        .unwrap();

    // Authenticated (the version endpoint is open to every authenticated user) ...
    sa_client.apiserver_version().await.unwrap();
    // ... but not authorized to read ConfigMaps.
    let as_sa: Api<ConfigMap> = Api::namespaced(sa_client.clone(), ns.name());
    match as_sa.list(&Default::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => {
            panic!("expected 403 Forbidden for a service account without a role, got {other:?}")
        }
    }

    // A Role and RoleBinding then let it in, which shows the denial came from RBAC.
    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "read-configmaps" },
        "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"] }]
    }))
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "nobody-reads-configmaps" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps" },
        "subjects": [{ "kind": "ServiceAccount", "name": "nobody", "namespace": ns.name() }]
    }))
    .unwrap();
    ns.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    wait_for(
        "the RoleBinding to let the service account list ConfigMaps",
        TIMEOUT,
        || async { as_sa.list(&Default::default()).await.is_ok() },
    )
    .await
    .unwrap();

    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn s3_bucket_is_created_and_listed_on_moto() {
    let s3 = moto().await.s3_client().await;
    let bucket = unique_name("smoke-bucket");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("hello.txt")
        .body(b"hello".to_vec().into())
        .send()
        .await
        .unwrap();

    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(
        buckets
            .buckets()
            .iter()
            .any(|b| b.name() == Some(bucket.as_str())),
        "{bucket} not in {buckets:?}"
    );
    let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<_> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["hello.txt"]);
}

#[tokio::test]
async fn rds_instance_is_created_and_described_on_moto() {
    let rds = cluster().await.rds_client().await;
    let id = unique_name("smoke-db");
    rds.create_db_instance()
        .db_instance_identifier(&id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("orkestra")
        .master_user_password("not-a-real-secret")
        .send()
        .await
        .unwrap();

    let described = rds
        .describe_db_instances()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    let instance = described
        .db_instances()
        .first()
        .expect("one instance described");
    assert_eq!(instance.db_instance_identifier(), Some(id.as_str()));
    assert_eq!(instance.engine(), Some("postgres"));
    assert_eq!(instance.allocated_storage(), Some(20));
    // moto answers "available" at once (testing.md): the "creating" path needs a mock sequence.
    assert_eq!(instance.db_instance_status(), Some("available"));

    rds.delete_db_instance()
        .db_instance_identifier(&id)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_answers_a_query() {
    let pg = cluster().await.postgres().await.unwrap();
    let table = unique_name("smoke").replace('-', "_");
    pg.batch_execute(&format!(
        "CREATE TABLE {table} (id int primary key, name text)"
    ))
    .await
    .unwrap();
    pg.execute(
        &format!("INSERT INTO {table} VALUES ($1, $2)"),
        &[&7_i32, &"seven"],
    )
    .await
    .unwrap();
    let row = pg
        .query_one(&format!("SELECT name, current_setting('server_version_num')::int FROM {table} WHERE id = $1"), &[&7_i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "seven");
    assert!(row.get::<_, i32>(1) >= 130000, "PostgreSQL 13 or newer");
    pg.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
