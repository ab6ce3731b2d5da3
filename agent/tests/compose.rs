//! Composition against the real control plane, its node and moto: `katalogs/app-with-database`
//! (a generated password Secret → an RDS instance → a connection Secret → a Deployment whose env
//! carries the instance's endpoint).
//!
//! moto makes an RDS instance `available` the moment it is created, so it cannot hold the state
//! this test is about (`creating`). The aws provider is therefore wrapped ([`Gated`], a mock of
//! the instance's *state* only, on purpose): while the gate is closed, an instance moto holds is
//! reported as `creating` without outputs; every call still goes to moto. The same wrapper can
//! report a replaced instance's new endpoint, and it looks at the API server at the moment the
//! agent calls DeleteDBInstance, so the deletion order is observed, not inferred.
//!
//! Needs the node: the CR is Ready only once its Deployment is available.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use orkestra_provider::schema::ProviderSchema;
use orkestra_provider::{
    Declaration, Observation, Outcome, Plan, Provider, ProviderContext, ProviderError,
    ProviderRuntime, RateLimit,
};
use orkestra_testsupport::cluster;
use serde_json::json;

/// The aws provider with the RDS instance's state under the test's control (see the module docs).
struct Gated {
    inner: orkestra_provider_aws::AwsProvider,
    /// Report instances as `creating`, without outputs.
    creating: AtomicBool,
    /// Report this endpoint instead of moto's (a replaced instance).
    endpoint: Mutex<Option<String>>,
    /// For each DeleteDBInstance: the Deployments that still existed when it was called.
    deletes: Mutex<Vec<Vec<String>>>,
    deployments: Api<Deployment>,
}

impl Gated {
    fn shape(&self, decl: &Declaration, obs: &mut Observation) {
        if decl.kind != "rds" || !obs.exists {
            return;
        }
        if self.creating.load(Ordering::SeqCst) {
            obs.status = Some("creating".into());
            obs.busy = true;
            obs.outputs.clear();
        } else if let Some(e) = self.endpoint.lock().unwrap().clone() {
            obs.outputs.insert("endpoint".into(), json!(e));
        }
    }
}

#[async_trait::async_trait]
impl Provider for Gated {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn schema(&self) -> ProviderSchema {
        self.inner.schema()
    }
    async fn observe(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
    ) -> Result<Observation, ProviderError> {
        let mut obs = self.inner.observe(ctx, decl).await?;
        self.shape(decl, &mut obs);
        Ok(obs)
    }
    fn diff(&self, decl: &Declaration, obs: &Observation) -> Plan {
        self.inner.diff(decl, obs)
    }
    async fn apply(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Outcome, ProviderError> {
        let mut out = self.inner.apply(ctx, decl, obs, plan).await?;
        if decl.kind == "rds" && self.creating.load(Ordering::SeqCst) {
            out.state = orkestra_provider::State::Creating;
            out.outputs.clear();
        }
        Ok(out)
    }
    async fn delete(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
    ) -> Result<Outcome, ProviderError> {
        if decl.kind == "rds" && obs.exists {
            let live: Vec<String> = self
                .deployments
                .list(&ListParams::default())
                .await
                .map(|l| {
                    l.items
                        .into_iter()
                        .filter_map(|d| d.metadata.name)
                        .collect()
                })
                .unwrap_or_else(|e| vec![format!("(could not list: {e})")]);
            self.deletes.lock().unwrap().push(live);
        }
        self.inner.delete(ctx, decl, obs).await
    }
}

fn env_value(d: &Deployment, name: &str) -> Option<String> {
    d.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .clone()
}

fn secret_text(s: &Secret, key: &str) -> String {
    let b = &s.data.as_ref().expect("data")[key];
    String::from_utf8(b.0.clone()).expect("utf-8")
}

#[tokio::test]
async fn outputs_flow_in_graph_order_and_deletion_runs_in_reverse() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-compose").await.unwrap();
    install_katalog_crd(&client).await;
    let f = Fixture::load(
        "app-with-database",
        "apps.example.io",
        "app-with-database",
        "cr-large-db.yaml",
    );
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let gated = Arc::new(Gated {
        inner: orkestra_provider_aws::AwsProvider::with_clients(
            env.s3_client().await,
            env.rds_client().await,
            &env.aws.region,
        ),
        creating: AtomicBool::new(true),
        endpoint: Mutex::new(None),
        deletes: Mutex::new(Vec::new()),
        deployments: deployments.clone(),
    });
    let runtime = || {
        let mut rt = ProviderRuntime::new();
        rt.register(gated.clone(), RateLimit::default());
        rt
    };
    let start = |rt: ProviderRuntime| {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(orkestra_agent::run_with(
            config(&f.id, ns.name()),
            client.clone(),
            rt,
            shutdown.clone(),
        ));
        Agent { shutdown, task }
    };
    let agent = start(runtime());

    let mut cr = f.cr_in(ns.name(), "billing");
    cr["spec"]["image"] = json!(WEB_IMAGE);
    cr["spec"]["replicas"] = json!(1);
    create(&client, &cr).await;
    let crs = cr_api(&client, &f, ns.name());

    // While the instance is creating, what reads its endpoint waits, saying so exactly.
    let waiting = "deployments[web] waits for aws.rds db (Creating): outputs.endpoint";
    let v = wait_cr(
        &crs,
        "billing",
        &format!("Ready=False Waiting: {waiting}"),
        |v| {
            ready_of(v)
                .is_some_and(|(s, r, m)| s == "False" && r == "Waiting" && m.contains(waiting))
        },
    )
    .await;
    let rows = v["status"]["external"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["state"], "Creating");
    assert!(
        deployments.get_opt("billing").await.unwrap().is_none(),
        "the Deployment must not exist while its endpoint is unknown"
    );
    assert!(secrets.get_opt("billing-db-conn").await.unwrap().is_none());
    let password = secret_text(
        &secrets.get("billing-db-password").await.unwrap(),
        "password",
    );
    assert_eq!(password.chars().count(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));

    // Available: the endpoint flows into the connection Secret and the Deployment.
    gated.creating.store(false, Ordering::SeqCst);
    wait_cr(&crs, "billing", "Ready=True", |v| {
        ready_of(v).is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    let db = env
        .rds_client()
        .await
        .describe_db_instances()
        .db_instance_identifier(format!("billing-{}-db", ns.name()))
        .send()
        .await
        .expect("moto holds the instance");
    let endpoint = db.db_instances()[0]
        .endpoint()
        .and_then(|e| e.address())
        .expect("moto gives an endpoint")
        .to_string();
    let d = deployments.get("billing").await.unwrap();
    assert_eq!(env_value(&d, "PGHOST").as_deref(), Some(endpoint.as_str()));
    assert_eq!(env_value(&d, "PGPORT").as_deref(), Some("5432"));
    let conn = secrets.get("billing-db-conn").await.unwrap();
    assert_eq!(
        secret_text(&conn, "url"),
        format!("postgres://app:{password}@{endpoint}:5432/app")
    );

    // The generated password survives an agent restart and a Katalog edit.
    agent.stop().await;
    let agent = start(runtime());
    let mut edited = f.katalog.clone();
    // The file's `metadata.version` is not an ObjectMeta field: apply refuses what create dropped.
    edited["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("version");
    let conn_entry = &mut edited["spec"]["crds"][0]["operatorBox"]["onReconcile"]["secrets"][0];
    conn_entry["stringData"]["user"] = json!("app");
    apply(&client, &edited).await;
    wait_for_secret_key(&secrets, "billing-db-conn", "user").await;
    assert_eq!(
        secret_text(
            &secrets.get("billing-db-password").await.unwrap(),
            "password"
        ),
        password,
        "a generated key is made once"
    );

    // A replaced instance: the enforced Deployment follows the new endpoint.
    *gated.endpoint.lock().unwrap() = Some("replaced.db.example".into());
    // A pass moments ago stands in for a new one (agent/src/freshness.rs): poke after it.
    tokio::time::sleep(orkestra_agent::freshness::WINDOW + std::time::Duration::from_secs(1)).await;
    crs.patch(
        "billing",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"test/poke": "1"}}})),
    )
    .await
    .unwrap();
    wait_until(
        "the Deployment's PGHOST follows the new endpoint",
        || async {
            let d = deployments.get("billing").await.ok()?;
            (env_value(&d, "PGHOST").as_deref() == Some("replaced.db.example")).then_some(())
        },
    )
    .await;

    // The password is nowhere but in the Secrets.
    let cr_now = serde_json::to_string(&crs.get("billing").await.unwrap()).unwrap();
    assert!(!cr_now.contains(&password), "the password is in the CR");
    let events: Api<Event> = Api::namespaced(client.clone(), ns.name());
    let all = serde_json::to_string(&events.list(&ListParams::default()).await.unwrap()).unwrap();
    assert!(!all.contains(&password), "the password is in an event");
    assert!(
        all.contains("billing-db-password created with generated password"),
        "the generation is an event (key name only)"
    );

    // Deletion in reverse edge order: the Deployment is gone before DeleteDBInstance.
    crs.delete("billing", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&crs, "billing", "the CR's cleanup").await;
    let deletes = gated.deletes.lock().unwrap().clone();
    assert_eq!(deletes.len(), 1, "one DeleteDBInstance: {deletes:?}");
    assert!(
        !deletes[0].contains(&"billing".to_string()),
        "the Deployment still existed when the instance was deleted: {deletes:?}"
    );
    let all = serde_json::to_string(&events.list(&ListParams::default()).await.unwrap()).unwrap();
    assert!(
        all.contains("deleted Deployment billing before aws.rds db"),
        "each deletion step is an event"
    );
    agent.stop().await;
}

async fn wait_for_secret_key(secrets: &Api<Secret>, name: &str, key: &str) {
    wait_until(&format!("Secret {name} gets key {key}"), || async {
        let s = secrets.get(name).await.ok()?;
        s.data.as_ref()?.contains_key(key).then_some(())
    })
    .await;
}

async fn wait_until<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    orkestra_testsupport::wait_for(what, TIMEOUT, f)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
