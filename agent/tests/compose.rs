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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, DeleteParams, ListParams};
use orkestra_provider::schema::ProviderSchema;
use orkestra_provider::{
    Action, Declaration, Observation, Outcome, Plan, Provider, ProviderContext, ProviderError,
    ProviderRuntime, RateLimit,
};
use orkestra_testsupport::cluster;
use orkestra_testsupport::{free_port, http_get, strip_finalizers};
use serde_json::{json, Value};

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
    /// Read-only observations made (a resync that observes counts here).
    observes: AtomicUsize,
    /// Mutating steps asked of AWS: an apply whose plan does something, or a delete.
    mutations: AtomicUsize,
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
        self.observes.fetch_add(1, Ordering::SeqCst);
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
        if plan.action != Action::Noop {
            self.mutations.fetch_add(1, Ordering::SeqCst);
        }
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
        self.mutations.fetch_add(1, Ordering::SeqCst);
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

/// One test's systems: the app-with-database fixture installed under a unique group, the gated
/// provider, and the APIs the test looks through.
struct Stack {
    client: kube::Client,
    ns: orkestra_testsupport::TestNamespace,
    f: Fixture,
    gated: Arc<Gated>,
    crs: Api<kube::api::DynamicObject>,
    deployments: Api<Deployment>,
    secrets: Api<Secret>,
}

impl Stack {
    /// `tune` may change the fixture's Katalog before it is created.
    async fn new(name: &str, tune: impl FnOnce(&mut Value)) -> Self {
        let env = cluster().await;
        require_node(env);
        let client = env.client().await;
        let ns = env.namespace(name).await.unwrap();
        install_katalog_crd(&client).await;
        let mut f = Fixture::load(
            "app-with-database",
            "apps.example.io",
            "app-with-database",
            "cr-large-db.yaml",
        );
        tune(&mut f.katalog);
        install_crd(&client, &f.crd).await;
        create(&client, &f.katalog).await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
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
            observes: AtomicUsize::new(0),
            mutations: AtomicUsize::new(0),
        });
        Self {
            crs: cr_api(&client, &f, ns.name()),
            secrets: Api::namespaced(client.clone(), ns.name()),
            deployments,
            client,
            ns,
            f,
            gated,
        }
    }

    /// An agent for this test's Katalog and namespace, with the gated provider.
    fn start(&self, metrics_addr: Option<String>) -> Agent {
        let mut rt = ProviderRuntime::new();
        rt.register(self.gated.clone(), RateLimit::default())
            .expect("one provider per name");
        let mut config = config(&self.f.id, self.ns.name());
        if let Some(a) = metrics_addr {
            config.metrics_addr = a;
        }
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(orkestra_agent::run_with(
            config,
            self.client.clone(),
            rt,
            shutdown.clone(),
        ));
        Agent { shutdown, task }
    }

    /// The fixture's CR `billing` with the node's web image and one replica.
    async fn create_cr(&self) {
        let mut cr = self.f.cr_in(self.ns.name(), "billing");
        cr["spec"]["image"] = json!(WEB_IMAGE);
        cr["spec"]["replicas"] = json!(1);
        create(&self.client, &cr).await;
    }
}

/// Every log line of this test binary, at debug for orkestra's crates, so a test can look for a
/// secret value in what the agent logged.
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,orkestra_agent=debug,orkestra_provider=debug,orkestra_provider_aws=debug,orkestra_engine=debug",
            ))
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn outputs_flow_in_graph_order_and_deletion_runs_in_reverse() {
    let logs = capture_logs();
    let env = cluster().await;
    // An onCreate ConfigMap that reads the endpoint: created once, reported when it drifts.
    let st = Stack::new("agent-compose", |k| {
        k["spec"]["crds"][0]["operatorBox"]["reconciler"] = json!({"resync": "8s"});
        k["spec"]["crds"][0]["operatorBox"]["onCreate"]["configMaps"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "{{ .metadata.name }}-endpoint",
                "data": {"host": "{{ .resources.db.outputs.endpoint }}"}}));
    })
    .await;
    let (client, ns, f, gated) = (&st.client, &st.ns, &st.f, &st.gated);
    let (deployments, secrets, crs) = (&st.deployments, &st.secrets, &st.crs);
    let metrics = format!("127.0.0.1:{}", free_port());
    let agent = st.start(Some(metrics.clone()));
    st.create_cr().await;

    // While the instance is creating, what reads its endpoint waits, saying so exactly.
    let waiting = "deployments[web] waits for aws.rds db (Creating): outputs.endpoint";
    let v = wait_cr(
        crs,
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
    // A row per waiting declaration says the same.
    let waits = v["status"]["waiting"].as_array().expect("waiting rows");
    assert!(
        waits.contains(
            &json!({"node": "deployments[web]", "waitsFor": "aws.rds db",
            "state": "Creating", "value": "outputs.endpoint"})
        ),
        "{waits:?}"
    );
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
    let v = wait_cr(crs, "billing", "Ready=True", |v| {
        ready_of(v).is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    assert!(
        v["status"].get("waiting").is_none(),
        "nothing waits once Ready"
    );
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
    let agent = st.start(Some(metrics.clone()));
    let mut edited = f.katalog.clone();
    // The file's `metadata.version` is not an ObjectMeta field: apply refuses what create dropped.
    edited["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("version");
    let conn_entry = &mut edited["spec"]["crds"][0]["operatorBox"]["onReconcile"]["secrets"][0];
    conn_entry["stringData"]["user"] = json!("app");
    apply(client, &edited).await;
    wait_for_secret_key(secrets, "billing-db-conn", "user").await;
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
    // Nothing in the CR changed, so only a drift check observes the instance again
    // (agent/src/freshness.rs): the entry's resync is 8 s here, so one comes within 9 s.
    wait_until(
        "the Deployment's PGHOST follows the new endpoint",
        || async {
            let d = deployments.get("billing").await.ok()?;
            (env_value(&d, "PGHOST").as_deref() == Some("replaced.db.example")).then_some(())
        },
    )
    .await;
    // The onCreate ConfigMap keeps the endpoint it was made with, and the CR says it drifted.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), ns.name());
    let cm = cms.get("billing-endpoint").await.unwrap();
    assert_eq!(
        cm.data.unwrap()["host"],
        endpoint,
        "an onCreate child is never rewritten"
    );
    wait_cr(
        crs,
        "billing",
        "Ready=True reporting the drifted ConfigMap",
        |v| {
            ready_of(v).is_some_and(|(s, _, m)| {
                s == "True"
                    && m.contains(
                        "drifted from what they read (onCreate, not rewritten): ConfigMap",
                    )
                    && m.contains("billing-endpoint")
            })
        },
    )
    .await;

    // The password is nowhere but in the Secrets.
    let cr_now = serde_json::to_string(&crs.get("billing").await.unwrap()).unwrap();
    assert!(!cr_now.contains(&password), "the password is in the CR");
    let events: Api<Event> = Api::namespaced(client.clone(), ns.name());
    let (code, scraped) = http_get(&metrics, "/metrics").await.expect("metrics");
    assert_eq!(code, 200);
    assert!(scraped.contains("orkestra"), "{scraped}");
    assert!(
        !scraped.contains(&password),
        "the password is in the metrics"
    );
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
    wait_gone(crs, "billing", "the CR's cleanup").await;
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
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logged.contains("created child"),
        "the logs were captured: {logged}"
    );
    assert!(!logged.contains(&password), "the password is in the logs");
    strip_finalizers(crs).await;
    let _ = env;
    st.ns.cleanup().await.unwrap();
}

/// Once converged, a composed CR costs nothing per resync: the entry resyncs every 6 s (each
/// resync is a drift check, which observes rather than reusing the last pass), the agent observes (the provider's read count grows) and writes nothing — the CR, its Secrets and
/// ConfigMap keep their resourceVersion, the Deployment its generation and the agent's managed
/// fields, and no mutating step reaches AWS.
#[tokio::test]
async fn a_converged_composed_cr_costs_no_writes_per_resync() {
    capture_logs();
    let st = Stack::new("agent-compose-steady", |k| {
        k["spec"]["crds"][0]["operatorBox"]["reconciler"] = json!({"resync": "6s"});
    })
    .await;
    st.gated.creating.store(false, Ordering::SeqCst);
    let agent = st.start(None);
    st.create_cr().await;
    wait_cr(&st.crs, "billing", "Ready=True", |v| {
        ready_of(v).is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    // Let the reconcile the last status write triggers pass.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let snapshot = || async {
        let cr = st.crs.get("billing").await.unwrap();
        let mut versions = vec![cr.metadata.resource_version.clone()];
        for s in ["billing-db-password", "billing-db-conn"] {
            versions.push(st.secrets.get(s).await.unwrap().metadata.resource_version);
        }
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(st.client.clone(), st.ns.name());
        versions.push(
            cms.get("billing-cache")
                .await
                .unwrap()
                .metadata
                .resource_version,
        );
        let d = st.deployments.get("billing").await.unwrap();
        let agent_fields: Vec<String> = d
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.manager.as_deref() == Some(orkestra_engine::apply::FIELD_MANAGER))
            .map(|m| format!("{:?}", m.time))
            .collect();
        (versions, d.metadata.generation, agent_fields)
    };
    let before = snapshot().await;
    let (observes, mutations) = (
        st.gated.observes.load(Ordering::SeqCst),
        st.gated.mutations.load(Ordering::SeqCst),
    );
    tokio::time::sleep(std::time::Duration::from_secs(20)).await;
    let after = snapshot().await;
    let observed = st.gated.observes.load(Ordering::SeqCst) - observes;
    assert!(
        observed >= 2,
        "no two resyncs observed the instance in 20 s ({observed})"
    );
    assert_eq!(
        st.gated.mutations.load(Ordering::SeqCst) - mutations,
        0,
        "mutating AWS steps at steady state"
    );
    assert_eq!(before, after, "Kubernetes writes at steady state");
    println!(
        "steady state over 20 s, resync 6 s: {observed} observations, 0 mutating AWS steps, 0 Kubernetes writes"
    );
    agent.stop().await;
    strip_finalizers(&st.crs).await;
    st.ns.cleanup().await.unwrap();
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
