//! End to end through the agent, run in-process against the real control plane and PostgreSQL: a
//! Katalog with a `database:` block (a generated password Secret, a role that uses it, a
//! database the role owns, a CONNECT grant), a CR, the admin Secret; the CR becomes Ready with
//! one row per external resource; changing the generated Secret rotates the role's password at
//! once (the Secret is the CR's child, so its change triggers a reconcile, and the agent's
//! freshness cache counts the CR's Secrets; the resync stays at its 5-minute default); a CR whose admin Secret is missing shows an Error row naming it while the other CR converges,
//! and converges itself once the Secret exists; deleting the CR drops what it made.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{connect, Server};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::ByteString;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::Client;
use orkestra_agent::{Config, Toggle};
use orkestra_provider::{ProviderRuntime, RateLimit};
use orkestra_provider_database::DatabaseProvider;
use orkestra_testsupport::{strip_finalizers, unique_name, wait_for};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(120);
const RUN_LABEL: &str = "orkestra.test/run";

async fn create(api: &Api<DynamicObject>, obj: &Value) {
    let o: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
    match api.create(&PostParams::default(), &o).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating {}: {e}", obj["metadata"]["name"]),
    }
}

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

async fn install_crd(client: &Client, crd: &Value) {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ar(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
    );
    create(&api, crd).await;
    let name = crd["metadata"]["name"].as_str().expect("name").to_string();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    wait_for(&format!("CRD {name} established"), TIMEOUT, || async {
        crds.get_opt(&name).await.ok().flatten().is_some_and(|c| {
            c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
        })
    })
    .await
    .expect("CRD established");
}

fn katalog(id: &str, group: &str) -> Value {
    json!({
        "apiVersion": "orkestra.orkspace.io/v1",
        "kind": "Katalog",
        "metadata": {"name": format!("appdb-{id}"), "labels": {RUN_LABEL: id}},
        "spec": {
            "providers": [{"name": "database", "required": true}],
            "crds": [{
                "name": "appdb",
                "apiTypes": {"group": group, "version": "v1", "kind": "AppDb", "plural": "appdbs"},
                "operatorBox": {
                    "reconciler": {"default": true},
                    "onCreate": {
                        "secrets": [{
                            "id": "pw",
                            "name": "{{ .metadata.name }}-pw",
                            "generate": {"password": {"length": 24}}
                        }],
                        "database": [
                            {"id": "role", "user": {
                                "driver": "postgres",
                                "name": "{{ .spec.role }}",
                                "passwordSecret": {"name": "{{ .resources.pw.metadata.name }}", "key": "password"},
                                "connection": {"secretName": "{{ .spec.adminSecret }}"}
                            }},
                            {"id": "db", "database": {
                                "driver": "postgres",
                                "name": "{{ .spec.database }}",
                                "owner": "{{ .resources.role.outputs.name }}",
                                "connection": {"secretName": "{{ .spec.adminSecret }}"}
                            }},
                            {"grant": {
                                "driver": "postgres",
                                "name": "{{ .metadata.name }}-connect",
                                "role": "{{ .resources.role.outputs.name }}",
                                "database": "{{ .resources.db.outputs.name }}",
                                "privileges": ["CONNECT"],
                                "connection": {"secretName": "{{ .spec.adminSecret }}"}
                            }}
                        ]
                    }
                }
            }]
        }
    })
}

fn crd(group: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("appdbs.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": "AppDb", "plural": "appdbs", "singular": "appdb", "listKind": "AppDbList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "role": {"type": "string"},
                        "database": {"type": "string"},
                        "adminSecret": {"type": "string"}
                    }},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }]
        }
    })
}

fn secret(ns: &str, name: &str, data: &[(&str, String)]) -> Secret {
    let mut s = Secret::default();
    s.metadata.namespace = Some(ns.into());
    s.metadata.name = Some(name.into());
    s.data = Some(
        data.iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect(),
    );
    s
}

fn ready(v: &Value) -> Option<(String, String)> {
    let c = v
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        c["status"].as_str().unwrap_or_default().to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    ))
}

async fn wait_cr(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let result = wait_for(what, TIMEOUT, || async {
        let o = api.get_opt(name).await.ok().flatten()?;
        let v = serde_json::to_value(o).ok()?;
        check(&v).then_some(v)
    })
    .await;
    match result {
        Ok(v) => v,
        Err(e) => {
            let now = api.get_opt(name).await.ok().flatten();
            panic!(
                "{e}; the CR now: {}",
                serde_json::to_string_pretty(&now).unwrap_or_default()
            )
        }
    }
}

fn rows(cr: &Value) -> Vec<Value> {
    cr.pointer("/status/external")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

async fn password_of(secrets: &Api<Secret>, name: &str) -> String {
    let s = secrets.get(name).await.expect("the generated Secret");
    let bytes = s
        .data
        .unwrap_or_default()
        .remove("password")
        .expect("a password key")
        .0;
    String::from_utf8(bytes).expect("UTF-8")
}

#[tokio::test]
async fn a_cr_gets_its_role_database_and_grant_rotates_and_cleans_up() {
    let env = orkestra_testsupport::cluster().await;
    let server = Server::parse(&env.database_url);
    let client = env.client().await;
    let ns = env.namespace("db-agent").await.unwrap();
    let id = unique_name("t").replace('-', "");
    let group = format!("{id}.db.example.io");

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/crds/katalog.yaml"
    ))
    .expect("deploy/crds/katalog.yaml");
    let katalog_crd: Value = serde_yaml_ng::from_str(&text).expect("CRD YAML");
    install_crd(&client, &katalog_crd).await;
    install_crd(&client, &crd(&group)).await;
    let katalogs: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &orkestra_agent::supervisor::katalog_resource(),
    );
    create(&katalogs, &katalog(&id, &group)).await;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let admin = secret(
        ns.name(),
        "pg-admin",
        &[
            ("host", server.host.clone()),
            ("port", server.port.to_string()),
            ("username", server.user.clone()),
            ("password", server.password.clone()),
            ("sslmode", "disable".into()),
        ],
    );
    secrets
        .create(&PostParams::default(), &admin)
        .await
        .unwrap();

    let mut providers = ProviderRuntime::new();
    providers
        .register(Arc::new(DatabaseProvider::new()), RateLimit::default())
        .expect("one provider per name");
    let shutdown = CancellationToken::new();
    let config = Config {
        namespaces: vec![ns.name().to_string()],
        katalog_selector: Some(format!("{RUN_LABEL}={id}")),
        leader_election: Toggle::Off,
        ..Config::local()
    };
    let agent = tokio::spawn(orkestra_agent::run_with(
        config,
        client.clone(),
        providers,
        shutdown.clone(),
    ));

    let crs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns.name(),
        &ar(&group, "v1", "AppDb", "appdbs"),
    );
    let role = format!("{id}_app");
    let database = format!("{id}_db");
    let cr = |name: &str, role: &str, database: &str, admin: &str| {
        json!({"apiVersion": format!("{group}/v1"), "kind": "AppDb",
               "metadata": {"name": name, "namespace": ns.name()},
               "spec": {"role": role, "database": database, "adminSecret": admin}})
    };
    create(&crs, &cr("shop", &role, &database, "pg-admin")).await;
    // A second CR whose admin Secret does not exist.
    let (role2, database2) = (format!("{id}_two"), format!("{id}_two_db"));
    create(&crs, &cr("broken", &role2, &database2, "missing-admin")).await;

    let shop = wait_cr(&crs, "shop", "shop Ready", |v| {
        ready(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let r = rows(&shop);
    let kinds: Vec<(&str, &str, &str)> = r
        .iter()
        .map(|r| {
            (
                r["provider"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("database", "user", "Ready"),
            ("database", "database", "Ready"),
            ("database", "grant", "Ready")
        ],
        "{r:?}"
    );
    assert_eq!(r[0]["name"], json!(role));
    assert_eq!(r[1]["outputs"]["owner"], json!(role));
    let password = password_of(&secrets, "shop-pw").await;
    let status_text = serde_json::to_string(&shop["status"]).unwrap();
    assert!(
        !status_text.contains(&password),
        "the password is in status: {status_text}"
    );
    connect(&server, &role, &password, &database)
        .await
        .expect("the role logs into its database");

    // The broken CR: an Error row naming the Secret, Ready=False, while shop converged.
    let broken = wait_cr(&crs, "broken", "broken shows its error", |v| {
        rows(v).iter().any(|r| r["state"] == "Error")
    })
    .await;
    let msg = rows(&broken)[0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains(&format!("Secret {}/missing-admin: not found", ns.name())),
        "{msg}"
    );
    assert_eq!(ready(&broken).map(|r| r.0).as_deref(), Some("False"));

    // Rotation: a new value in the generated Secret becomes the role's password.
    let rotated = "Rotated-by-the-test-1";
    secrets
        .patch(
            "shop-pw",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": rotated}})),
        )
        .await
        .unwrap();
    let result = wait_for("the rotated password to work", TIMEOUT, || async {
        connect(&server, &role, rotated, &database).await.is_ok()
    })
    .await;
    if let Err(e) = result {
        let now = crs.get_opt("shop").await.ok().flatten();
        panic!(
            "{e}; the CR now: {}",
            serde_json::to_string_pretty(&now).unwrap_or_default()
        );
    }
    assert!(
        connect(&server, &role, &password, &database).await.is_err(),
        "the old password still works"
    );

    // The missing Secret appears: the broken CR converges on a later retry.
    let mut fixed = admin.clone();
    fixed.metadata.name = Some("missing-admin".into());
    secrets
        .create(&PostParams::default(), &fixed)
        .await
        .unwrap();
    wait_cr(&crs, "broken", "broken Ready once its Secret exists", |v| {
        ready(v).is_some_and(|r| r.0 == "True")
    })
    .await;

    // Deleting the CRs drops what they made, in reverse order.
    for name in ["shop", "broken"] {
        crs.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in ["shop", "broken"] {
        let result = wait_for(&format!("{name} gone"), TIMEOUT, || async {
            crs.get_opt(name).await.ok().flatten().is_none()
        })
        .await;
        if let Err(e) = result {
            let now = crs.get_opt(name).await.ok().flatten();
            panic!(
                "{e}; the CR now: {}",
                serde_json::to_string_pretty(&now).unwrap_or_default()
            );
        }
    }
    let pg = connect(&server, &server.user, &server.password, "postgres")
        .await
        .unwrap();
    for (r, d) in [(&role, &database), (&role2, &database2)] {
        let n: i64 = pg
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[r])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "role {r} dropped");
        let n: i64 = pg
            .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[d])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "database {d} dropped");
    }

    shutdown.cancel();
    let stopped = tokio::time::timeout(TIMEOUT, agent).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "agent did not stop cleanly: {stopped:?}"
    );
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}
