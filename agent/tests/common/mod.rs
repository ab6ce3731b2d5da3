//! Helpers shared by the agent's tests: fixtures made unique per test, an in-process agent,
//! waits on the real API server.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::Client;
use orkestra_agent::{Config, Toggle};
use orkestra_provider::{ProviderRuntime, RateLimit};
use orkestra_testsupport::{unique_name, wait_for, TestEnv};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous: the machine is shared with other builds.
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// The web-server image loaded into the test node (listens on 8080, 200 on any path). No
/// registry can be reached from the node, so a CR whose Deployment should become available uses it.
pub const WEB_IMAGE: &str = "ghcr.io/orkspace/orkestra-web:0.1.0";
/// The busybox image loaded into the test node (`/bin/sh`, `echo`, `sleep`), for Jobs.
pub const SHELL_IMAGE: &str = "ghcr.io/orkspace/orkestra-shell:0.1.0";

/// The name of the node that runs the test cluster's Pods. A test whose CRs are Ready only once
/// their Deployments are available (or whose Jobs must run) calls this first, so that without a
/// node it fails at once, naming what is missing, instead of timing out later (never skips).
pub fn require_node(env: &TestEnv) -> String {
    match env.vars.get("ORKESTRA_NODE").filter(|n| !n.is_empty()) {
        Some(n) => n.clone(),
        None => panic!(
            "{}/env has no ORKESTRA_NODE: this test needs the node (kubelet + containerd with \
             {WEB_IMAGE} and {SHELL_IMAGE} loaded) because a CR is Ready only once its \
             Deployments are available; start the systems with tests/cluster/up.sh including the node",
            env.dir.display()
        ),
    }
}

/// Label a test puts on its Katalogs; its agent selects only those.
pub const RUN_LABEL: &str = "orkestra.test/run";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agent/ is in the repo")
        .to_path_buf()
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A fixture directory under katalogs/, with its API group, Katalog name and plural made unique
/// so tests sharing one API server never share a CRD or a Katalog.
pub struct Fixture {
    pub id: String,
    pub group: String,
    pub katalog: Value,
    pub crd: Value,
    pub cr: Value,
    pub katalog_name: String,
}

impl Fixture {
    /// `dir` (e.g. `website`), whose files use group `group` and Katalog `katalog_name`.
    pub fn load(dir: &str, group: &str, katalog_name: &str, cr_file: &str) -> Self {
        let id = unique_name("t").replace('-', "");
        let new_group = format!("{id}.{group}");
        let read = |f: &str| {
            let text = std::fs::read_to_string(repo().join("katalogs").join(dir).join(f))
                .expect("fixture");
            let text = text
                .replace(group, &new_group)
                .replace(katalog_name, &format!("{katalog_name}-{id}"));
            serde_yaml_ng::from_str::<Value>(&text).expect("fixture YAML")
        };
        let mut katalog = read("katalog.yaml");
        katalog["metadata"]["labels"] = serde_json::json!({ RUN_LABEL: id });
        Self {
            katalog,
            crd: read("crd.yaml"),
            cr: read(cr_file),
            katalog_name: format!("{katalog_name}-{id}"),
            group: new_group,
            id,
        }
    }

    /// The CR put in namespace `ns` under `name`.
    pub fn cr_in(&self, ns: &str, name: &str) -> Value {
        let mut cr = self.cr.clone();
        cr["metadata"] = serde_json::json!({"name": name, "namespace": ns});
        cr
    }
}

/// Create an object from JSON (any kind), by discovery. AlreadyExists is fine.
pub async fn create(client: &Client, obj: &Value) -> DynamicObject {
    let (api, name) = api_for(client, obj).await;
    let o: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
    match api.create(&PostParams::default(), &o).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 409 => api.get(&name).await.expect("get existing"),
        Err(e) => panic!("creating {name}: {e}"),
    }
}

/// Server-side apply an object (any kind) as the test.
pub async fn apply(client: &Client, obj: &Value) {
    let (api, name) = api_for(client, obj).await;
    api.patch(
        &name,
        &PatchParams::apply("orkestra-test").force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

pub async fn api_for(client: &Client, obj: &Value) -> (Api<DynamicObject>, String) {
    let av = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let (g, v) = av.split_once('/').unwrap_or(("", av));
    let (ar, caps) = kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(g, v, kind))
        .await
        .unwrap_or_else(|e| panic!("discovering {kind}: {e}"));
    let name = obj["metadata"]["name"].as_str().expect("name").to_string();
    let api = match obj["metadata"]["namespace"].as_str() {
        Some(ns) if caps.scope == kube::discovery::Scope::Namespaced => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    };
    (api, name)
}

/// Install a CRD and wait until it is served.
pub async fn install_crd(client: &Client, crd: &Value) {
    create(client, crd).await;
    let name = crd["metadata"]["name"]
        .as_str()
        .expect("CRD name")
        .to_string();
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

/// The Katalog CRD from deploy/.
pub async fn install_katalog_crd(client: &Client) {
    let text = std::fs::read_to_string(repo().join("deploy/crds/katalog.yaml"))
        .expect("deploy/crds/katalog.yaml");
    let crd: Value = serde_yaml_ng::from_str(&text).expect("CRD YAML");
    install_crd(client, &crd).await;
}

pub fn katalog_api(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &orkestra_agent::supervisor::katalog_resource(),
    )
}

/// The API of the fixture's CR kind in `ns`.
pub fn cr_api(client: &Client, f: &Fixture, ns: &str) -> Api<DynamicObject> {
    let av = f.cr["apiVersion"].as_str().expect("apiVersion");
    let kind = f.cr["kind"].as_str().expect("kind");
    let (g, v) = av.split_once('/').expect("group/version");
    let plural = f.crd["spec"]["names"]["plural"].as_str().expect("plural");
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), plural);
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// An agent running in this test's runtime; stops when [`Agent::stop`] is called.
pub struct Agent {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), orkestra_agent::Error>>,
}

impl Agent {
    pub async fn stop(self) {
        self.shutdown.cancel();
        match tokio::time::timeout(TIMEOUT, self.task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("agent did not stop cleanly: {other:?}"),
        }
    }
}

/// The agent's configuration for a test: only this test's Katalogs and namespace.
pub fn config(run_id: &str, namespace: &str) -> Config {
    Config {
        namespaces: vec![namespace.to_string()],
        katalog_selector: Some(format!("{RUN_LABEL}={run_id}")),
        leader_election: Toggle::Off,
        ..Config::local()
    }
}

/// The aws provider aimed at the test environment's moto.
pub async fn providers(env: &TestEnv) -> ProviderRuntime {
    let aws = orkestra_provider_aws::AwsProvider::with_clients(
        env.s3_client().await,
        env.rds_client().await,
        &env.aws.region,
    );
    let mut rt = ProviderRuntime::new();
    rt.register(Arc::new(aws), RateLimit::default())
        .expect("one provider per name");
    rt
}

pub async fn start_agent(env: &TestEnv, client: Client, config: Config) -> Agent {
    let shutdown = CancellationToken::new();
    let providers = providers(env).await;
    let task = tokio::spawn(orkestra_agent::run_with(
        config,
        client,
        providers,
        shutdown.clone(),
    ));
    Agent { shutdown, task }
}

/// The `Ready` condition of an object, as (status, reason, message).
pub fn ready_of(obj: &Value) -> Option<(String, String, String)> {
    let c = obj
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    let s = |k: &str| {
        c.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some((s("status"), s("reason"), s("message")))
}

/// Wait until the CR `name` satisfies `check`; returns it.
pub async fn wait_cr(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let api = api.clone();
    let result = wait_for(what, TIMEOUT, || {
        let api = api.clone();
        let check = &check;
        async move {
            let o = api.get_opt(name).await.ok().flatten()?;
            let v = serde_json::to_value(o).ok()?;
            check(&v).then_some(v)
        }
    })
    .await;
    match result {
        Ok(v) => v,
        Err(e) => {
            let now = api
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|o| serde_json::to_value(o).unwrap_or_default());
            panic!(
                "{e}; the CR now: {}",
                serde_json::to_string_pretty(&now).unwrap_or_default()
            )
        }
    }
}

/// Wait until the CR `name` no longer exists (its finalizer released), naming `what` on timeout.
pub async fn wait_gone(api: &Api<DynamicObject>, name: &str, what: &str) {
    wait_for(what, TIMEOUT, || async {
        api.get_opt(name)
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}
