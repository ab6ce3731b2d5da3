//! Smoke tests: each proves that one part of the test systems is the real thing, by exercising
//! behaviour a fake would not have (Established conditions, the status subresource, owner
//! garbage collection, RBAC denial, moto's S3 and RDS, a PostgreSQL query, registry auth and an
//! ORAS round trip, FerretDB refusing an unauthenticated command).

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

/// Standard base64 (for a Basic `Authorization` header; the crate has no base64 dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The status code of `GET path` on `addr` with HTTP Basic credentials.
async fn http_get_basic(addr: &str, path: &str, user: &str, password: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = base64(format!("{user}:{password}").as_bytes());
    s.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    buf.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {buf:?}"))
}

#[test]
fn base64_encodes_like_the_standard() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"orkestra:pw"), "b3JrZXN0cmE6cHc=");
}

/// Runs `oras ARGS --plain-http --registry-config CONFIG` in `cwd` with the credentials on stdin
/// (`-u USER --password-stdin`, when given): (success, stdout, stderr).
fn oras(
    registry: &orkestra_testsupport::RegistryEnv,
    cwd: &std::path::Path,
    args: &[&str],
    credentials: bool,
) -> (bool, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut cmd = registry.oras();
    cmd.current_dir(cwd)
        .args(args)
        .arg("--plain-http")
        .arg("--registry-config")
        .arg(cwd.join("registry-config.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if credentials {
        cmd.args(["-u", &registry.username, "--password-stdin"]);
    }
    let mut child = cmd.spawn().expect("running oras");
    let mut stdin = child.stdin.take().unwrap();
    if credentials {
        stdin.write_all(registry.password.as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn registry_requires_credentials_and_oras_round_trips_an_artifact() {
    let registry = cluster().await.registry();
    let host = registry.host.as_str();

    // htpasswd auth: no credentials or a wrong password is 401, the test user's credentials 200.
    let (code, _) = orkestra_testsupport::http_get(host, "/v2/")
        .await
        .expect("the registry answers");
    assert_eq!(code, 401, "GET /v2/ without credentials");
    assert_eq!(
        http_get_basic(host, "/v2/", &registry.username, &registry.password).await,
        200,
        "GET /v2/ with the test user's credentials"
    );
    assert_eq!(
        http_get_basic(host, "/v2/", &registry.username, "wrong").await,
        401,
        "GET /v2/ with a wrong password"
    );

    let work = tempfile::tempdir().unwrap();
    let version = registry.oras().arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.status.success() && text.contains("1.3.6"),
        "oras version: {text}{}",
        String::from_utf8_lossy(&version.stderr)
    );

    let content = format!("hello from {}\n", unique_name("smoke"));
    std::fs::write(work.path().join("hello.txt"), &content).unwrap();
    let reference = format!("{host}/smoke/{}:v1", unique_name("artifact"));

    let (ok, out, err) = oras(
        registry,
        work.path(),
        &["push", &reference, "hello.txt:text/plain"],
        false,
    );
    assert!(!ok, "push without credentials must fail: {out}{err}");

    let (ok, out, err) = oras(
        registry,
        work.path(),
        &["push", &reference, "hello.txt:text/plain"],
        true,
    );
    assert!(ok, "oras push: {out}{err}");

    let pulled = work.path().join("pulled");
    let (ok, out, err) = oras(
        registry,
        work.path(),
        &["pull", &reference, "-o", pulled.to_str().unwrap()],
        true,
    );
    assert!(ok, "oras pull: {out}{err}");
    assert_eq!(
        std::fs::read_to_string(pulled.join("hello.txt")).unwrap(),
        content
    );

    // The blob is where REGISTRY_STORAGE says, under the digest of its content.
    let (ok, manifest, err) = oras(
        registry,
        work.path(),
        &["manifest", "fetch", &reference],
        true,
    );
    assert!(ok, "oras manifest fetch: {manifest}{err}");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(registry.blob_path(digest)).unwrap(),
        content
    );
}

/// One OP_MSG (MongoDB wire protocol) with the document `{COMMAND: 1, $db: "admin"}`; the reply.
async fn mongo_command(stream: &mut tokio::net::TcpStream, command: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend_from_slice(command.as_bytes());
    doc.push(0);
    doc.extend_from_slice(&1_i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6_i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0);
    let doc_len = (doc.len() + 4) as i32;
    let mut body = Vec::new();
    body.extend_from_slice(&0_u32.to_le_bytes()); // flagBits
    body.push(0); // section kind 0: the body document
    body.extend_from_slice(&doc_len.to_le_bytes());
    body.extend_from_slice(&doc);
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&1_i32.to_le_bytes()); // requestID
    msg.extend_from_slice(&0_i32.to_le_bytes()); // responseTo
    msg.extend_from_slice(&2013_i32.to_le_bytes()); // OP_MSG
    msg.extend_from_slice(&body);
    stream.write_all(&msg).await.unwrap();
    let mut len = [0_u8; 4];
    stream.read_exact(&mut len).await.unwrap();
    let mut reply = vec![0_u8; i32::from_le_bytes(len) as usize - 4];
    stream.read_exact(&mut reply).await.unwrap();
    reply
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn ferretdb_speaks_the_wire_protocol_and_requires_authentication() {
    let url = cluster().await.mongodb_url();
    let rest = url.strip_prefix("mongodb://").expect("a mongodb:// URL");
    let host_port = rest
        .rsplit_once('@')
        .map_or(rest, |(_, h)| h)
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host_port)
        .await
        .unwrap_or_else(|e| panic!("connecting to FerretDB at {host_port}: {e}"));

    // BSON `ok: 1.0` and `ok: 0.0` (a double).
    let ok_1 = [1, b'o', b'k', 0, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F];
    let ok_0 = [1, b'o', b'k', 0, 0, 0, 0, 0, 0, 0, 0, 0];
    // ping needs no authentication ...
    let reply = mongo_command(&mut stream, "ping").await;
    assert!(contains(&reply, &ok_1), "ping: {reply:?}");
    // ... listDatabases does: the server runs with users (SCRAM), not open to anyone.
    let reply = mongo_command(&mut stream, "listDatabases").await;
    assert!(
        contains(&reply, &ok_0) && contains(&reply, b"requires authentication"),
        "listDatabases without authentication: {}",
        String::from_utf8_lossy(&reply)
    );
}
