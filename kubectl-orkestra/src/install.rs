//! `kubectl orkestra install` / `uninstall`: the agent from the manifests in deploy/, embedded
//! in the binary so the plugin installs exactly the agent it was released with.
//!
//! `install` applies them (server-side, one field manager, so a flag left out on a later install
//! takes its setting out of the Deployment again) and then, unless `--no-wait`, follows the
//! rollout until every agent Pod is Ready (its readiness probe is the agent's `/readyz`: the
//! Katalogs are listed and the controllers started) and one of them holds the leader Lease.
//! A Pod that cannot start is reported by name with the kubelet's reason; a crashing agent with
//! the tail of its previous log.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope as DiscoveredScope;
use serde_json::{json, Value};

use crate::katalog_object as ko;
use crate::kinds;
use crate::kube_client::{connect, explain, is_not_found, runtime, Kube, KubeArgs};
use crate::progress::{interactive_stderr, interactive_terminal, Progress};

/// The agent's manifests, in the order they are applied.
const MANIFESTS: &[(&str, &str)] = &[
    (
        "deploy/namespace.yaml",
        include_str!("../../deploy/namespace.yaml"),
    ),
    (
        "deploy/crds/katalog.yaml",
        include_str!("../../deploy/crds/katalog.yaml"),
    ),
    ("deploy/rbac.yaml", include_str!("../../deploy/rbac.yaml")),
    (
        "deploy/deployment.yaml",
        include_str!("../../deploy/deployment.yaml"),
    ),
];
/// Field manager of what install writes.
const FIELD_MANAGER: &str = "kubectl-orkestra-install";
/// The agent's Deployment (and ServiceAccount, and leader Lease) name.
const AGENT: &str = "orkestra-agent";
/// The label every agent object and Pod carries.
const AGENT_LABEL: &str = "app.kubernetes.io/name=orkestra-agent";
/// Keys of the `--aws-credentials-secret` Secret that become the agent's environment.
const AWS_SECRET_KEYS: &[(&str, bool)] = &[
    ("AWS_ACCESS_KEY_ID", true),
    ("AWS_SECRET_ACCESS_KEY", true),
    ("AWS_SESSION_TOKEN", false),
];
/// How long every agent Pod of the rollout must have been stuck (image pull failing, crash
/// looping, configuration missing) before `install` stops waiting and reports why. The kubelet
/// retries a failed pull after 10 s and a crash after 10 s, so a passing hiccup clears within this.
const STUCK_FOR: Duration = Duration::from_secs(20);
/// Lines of a crashing container's previous log shown with the error.
const LOG_TAIL_LINES: i64 = 10;

/// Arguments of `install`.
#[derive(clap::Args)]
#[command(after_help = "\
Waiting is the default: install follows the rollout until every agent Pod is Ready (the \
agent's /readyz: Katalogs listed, controllers started) and one of them holds the leader Lease. \
It stops early, naming the Pod and the kubelet's reason, when every new agent Pod has been stuck \
for 20s (ErrImagePull, ImagePullBackOff, CrashLoopBackOff with the log tail, \
CreateContainerConfigError) or at once for InvalidImageName; the objects stay applied and the \
kubelet keeps retrying. --no-wait returns once everything is applied.

The agent's namespace is -n/--namespace (default orkestra-system). Installs in other namespaces \
name their cluster-wide RBAC orkestra-agent-NS, so several agents (each with its own \
--katalog-selector / --watch-namespace) can share a cluster.

Examples:
  kubectl orkestra install --image registry.example.com/orkestra-agent:0.1.0
  kubectl create namespace orkestra-system
  kubectl -n orkestra-system create secret generic aws-credentials \\
      --from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=...
  kubectl orkestra install --aws-region eu-west-1 --aws-credentials-secret aws-credentials
  kubectl orkestra install --aws-endpoint-url http://10.0.0.5:5000 --aws-credentials-secret aws")]
pub struct InstallArgs {
    /// The agent image (default: the one in deploy/deployment.yaml). Pulled only when not on the
    /// node already (imagePullPolicy IfNotPresent).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// Wait until the agent is ready (the default; see below).
    #[arg(long, overrides_with = "no_wait")]
    wait: bool,
    /// Return once everything is applied, without waiting for the agent.
    #[arg(long, overrides_with = "wait")]
    no_wait: bool,
    /// How long to wait for the agent (e.g. 90s, 5m).
    #[arg(long, value_name = "D", default_value = "3m", value_parser = crate::apply::parse_timeout)]
    timeout: Duration,
    /// Send the agent's AWS calls to URL (AWS_ENDPOINT_URL: an S3-compatible store, an emulator
    /// such as moto); S3 then uses path-style requests. It must be reachable from the agent's Pod.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    aws_endpoint_url: Option<String>,
    /// The agent's default AWS region (AWS_REGION), for declarations that name none.
    #[arg(long, value_name = "REGION", value_parser = parse_region)]
    aws_region: Option<String>,
    /// A Secret in the agent's namespace whose keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    /// (optional) AWS_SESSION_TOKEN become the agent's AWS credentials. Referenced, never copied:
    /// its values appear in no manifest and no output. Without it the SDK's default chain applies.
    #[arg(long, value_name = "NAME", value_parser = parse_dns_name)]
    aws_credentials_secret: Option<String>,
    /// The agent acts only on CRs in these namespaces (repeatable or comma-separated; default all).
    #[arg(long = "watch-namespace", value_name = "NS", value_delimiter = ',', value_parser = parse_dns_name)]
    watch_namespaces: Vec<String>,
    /// The agent runs only the Katalogs matching this label selector (default all).
    #[arg(long, value_name = "SELECTOR")]
    katalog_selector: Option<String>,
    /// Print the manifests that would be applied instead of applying them.
    #[arg(long)]
    dry_run: bool,
    /// The agent's namespace is -n/--namespace (default orkestra-system).
    #[command(flatten)]
    kube: KubeArgs,
}

/// Arguments of `uninstall`.
#[derive(clap::Args)]
pub struct UninstallArgs {
    /// Uninstall even though CRs still hold external resources (they are left behind, and the
    /// CRs' finalizers will wait for an agent that is gone).
    #[arg(long)]
    force: bool,
    /// Also delete the Katalog CRD, and with it every Katalog object.
    #[arg(long)]
    crds: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    yes: bool,
    /// The agent's namespace is -n/--namespace (default orkestra-system).
    #[command(flatten)]
    kube: KubeArgs,
}

fn parse_endpoint(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !s.contains(char::is_whitespace) => {
            Ok(s.to_string())
        }
        _ => Err(format!(
            "{s:?} is not an endpoint URL like http://HOST:PORT or https://HOST"
        )),
    }
}

fn parse_region(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an AWS region like eu-west-1"))
    }
}

fn parse_dns_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.']);
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a Kubernetes name (lower-case letters, digits, '-', '.')"
        ))
    }
}

/// How the agent's Deployment is set up beyond deploy/deployment.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentSettings {
    /// The agent image.
    pub image: Option<String>,
    /// AWS_ENDPOINT_URL.
    pub aws_endpoint_url: Option<String>,
    /// AWS_REGION.
    pub aws_region: Option<String>,
    /// The Secret the AWS credentials are read from.
    pub aws_credentials_secret: Option<String>,
    /// ORKESTRA_NAMESPACES.
    pub watch_namespaces: Vec<String>,
    /// ORKESTRA_KATALOG_SELECTOR.
    pub katalog_selector: Option<String>,
}

impl AgentSettings {
    fn of(a: &InstallArgs) -> Self {
        Self {
            image: a.image.clone(),
            aws_endpoint_url: a.aws_endpoint_url.clone(),
            aws_region: a.aws_region.clone(),
            aws_credentials_secret: a.aws_credentials_secret.clone(),
            watch_namespaces: a.watch_namespaces.clone(),
            katalog_selector: a.katalog_selector.clone().filter(|s| !s.is_empty()),
        }
    }

    /// The environment entries these settings add to the agent container. Credentials are
    /// `secretKeyRef`s: the Deployment names the Secret, never holds its values.
    pub fn env(&self) -> Vec<Value> {
        let mut env = Vec::new();
        if let Some(url) = &self.aws_endpoint_url {
            env.push(json!({"name": "AWS_ENDPOINT_URL", "value": url}));
        }
        if let Some(region) = &self.aws_region {
            env.push(json!({"name": "AWS_REGION", "value": region}));
        }
        if let Some(secret) = &self.aws_credentials_secret {
            for (key, required) in AWS_SECRET_KEYS {
                let mut r = json!({"name": secret, "key": key});
                if !required {
                    r["optional"] = true.into();
                }
                env.push(json!({"name": key, "valueFrom": {"secretKeyRef": r}}));
            }
        }
        if !self.watch_namespaces.is_empty() {
            env.push(
                json!({"name": "ORKESTRA_NAMESPACES", "value": self.watch_namespaces.join(",")}),
            );
        }
        if let Some(sel) = &self.katalog_selector {
            env.push(json!({"name": "ORKESTRA_KATALOG_SELECTOR", "value": sel}));
        }
        env
    }
}

/// The embedded manifests, for `namespace` and `settings`.
pub fn manifests(namespace: &str, settings: &AgentSettings) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (name, text) in MANIFESTS {
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let v: Value =
                serde::Deserialize::deserialize(doc).with_context(|| format!("embedded {name}"))?;
            if v.is_null() {
                continue;
            }
            out.push(retarget(v, namespace, settings));
        }
    }
    Ok(out)
}

/// The name of the agent's cluster-scoped RBAC objects for an install in `namespace`:
/// `orkestra-agent` in orkestra-system, `orkestra-agent-NS` elsewhere, so that installs in two
/// namespaces do not take the one ClusterRoleBinding from each other.
pub fn cluster_rbac_name(namespace: &str) -> String {
    if namespace == ko::AGENT_NAMESPACE {
        AGENT.to_string()
    } else {
        format!("{AGENT}-{namespace}")
    }
}

/// Move an object into `namespace` (its own namespace, the Namespace itself, binding subjects,
/// the names of the cluster-wide RBAC) and configure the agent container.
fn retarget(mut v: Value, namespace: &str, settings: &AgentSettings) -> Value {
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind == "Namespace" {
        v["metadata"]["name"] = namespace.into();
    } else if v.pointer("/metadata/namespace").is_some() {
        v["metadata"]["namespace"] = namespace.into();
    }
    if matches!(kind.as_str(), "ClusterRole" | "ClusterRoleBinding")
        && v.pointer("/metadata/name").and_then(Value::as_str) == Some(AGENT)
    {
        v["metadata"]["name"] = cluster_rbac_name(namespace).into();
    }
    if kind == "ClusterRoleBinding"
        && v.pointer("/roleRef/kind").and_then(Value::as_str) == Some("ClusterRole")
        && v.pointer("/roleRef/name").and_then(Value::as_str) == Some(AGENT)
    {
        v["roleRef"]["name"] = cluster_rbac_name(namespace).into();
    }
    if let Some(subjects) = v.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects {
            if s.get("kind").and_then(Value::as_str) == Some("ServiceAccount") {
                s["namespace"] = namespace.into();
            }
        }
    }
    if kind == "Deployment" {
        let extra = settings.env();
        if let Some(containers) = v
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        {
            for c in containers {
                if let Some(image) = &settings.image {
                    c["image"] = image.as_str().into();
                }
                if !extra.is_empty() {
                    let env = c
                        .as_object_mut()
                        .map(|o| o.entry("env").or_insert_with(|| json!([])));
                    if let Some(list) = env.and_then(Value::as_array_mut) {
                        // A setting replaces an entry of the same name in the manifest.
                        list.retain(|e| !extra.iter().any(|x| x["name"] == e["name"]));
                        list.extend(extra.iter().cloned());
                    }
                }
            }
        }
    }
    v
}

fn agent_namespace(k: &KubeArgs) -> String {
    k.namespace
        .clone()
        .unwrap_or_else(|| ko::AGENT_NAMESPACE.to_string())
}

fn describe(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match v.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{} {ns}/{name}", kind.to_ascii_lowercase()),
        None => format!("{} {name}", kind.to_ascii_lowercase()),
    }
}

/// The dynamic API for an object, by discovery.
async fn api_for(kube: &Kube, v: &Value) -> anyhow::Result<Api<DynamicObject>> {
    let api_version = v
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (ar, caps) =
        kube::discovery::pinned_kind(&kube.client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .map_err(|e| explain(e, &format!("discover {api_version} {kind}"), &kube.server))?;
    Ok(
        match (
            caps.scope,
            v.pointer("/metadata/namespace").and_then(Value::as_str),
        ) {
            (DiscoveredScope::Namespaced, Some(ns)) => {
                Api::namespaced_with(kube.client.clone(), ns, &ar)
            }
            _ => Api::all_with(kube.client.clone(), &ar),
        },
    )
}

pub fn install(a: InstallArgs) -> anyhow::Result<i32> {
    runtime()?.block_on(install_async(a))
}

async fn install_async(a: InstallArgs) -> anyhow::Result<i32> {
    let namespace = agent_namespace(&a.kube);
    let settings = AgentSettings::of(&a);
    let objects = manifests(&namespace, &settings)?;
    if a.dry_run {
        for o in &objects {
            crate::output::out(&format!("---\n{}", serde_yaml_ng::to_string(o)?))?;
        }
        return Ok(0);
    }
    let kube = connect(&a.kube).await?;
    if let Some(secret) = &settings.aws_credentials_secret {
        check_credentials_secret(&kube, &namespace, secret).await?;
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for o in &objects {
        let api = api_for(&kube, o).await?;
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(o))
            .await
            .map_err(|e| explain(e, &format!("apply {}", describe(o)), &kube.server))?;
        eprintln!("{} applied", describe(o));
        // CRs of a CRD can only be listed once it is Established.
        if o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
            wait_established(&kube, name).await?;
        }
    }
    // --wait and --no-wait override each other (the last one given wins); waiting is the default.
    if a.no_wait && !a.wait {
        return Ok(0);
    }
    wait_ready(&kube, &namespace, a.timeout).await?;
    Ok(0)
}

/// The credentials Secret must exist with its required keys before the agent is rolled out:
/// otherwise every Pod would stop at CreateContainerConfigError. Only key names are read out.
async fn check_credentials_secret(kube: &Kube, namespace: &str, name: &str) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(kube.client.clone(), namespace);
    let create = format!(
        "create it first: kubectl create namespace {namespace}; kubectl -n {namespace} create secret generic {name} --from-literal=AWS_ACCESS_KEY_ID=… --from-literal=AWS_SECRET_ACCESS_KEY=…"
    );
    let secret = match secrets.get(name).await {
        Ok(s) => s,
        Err(e) if is_not_found(&e) => {
            bail!("secret {namespace}/{name} (--aws-credentials-secret) not found; {create}")
        }
        Err(e) => {
            return Err(explain(
                e,
                &format!("get secret {namespace}/{name}"),
                &kube.server,
            ))
        }
    };
    let mut keys: Vec<String> = secret
        .data
        .unwrap_or_default()
        .into_keys()
        .chain(secret.string_data.unwrap_or_default().into_keys())
        .collect();
    keys.sort();
    keys.dedup();
    let missing: Vec<&str> = AWS_SECRET_KEYS
        .iter()
        .filter(|(k, required)| *required && !keys.iter().any(|have| have == k))
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        bail!(
            "secret {namespace}/{name} (--aws-credentials-secret) has no key {} (its keys: {})",
            missing.join(", "),
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        );
    }
    Ok(())
}

async fn wait_established(kube: &Kube, name: &str) -> anyhow::Result<()> {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(kube.client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = crds
            .get(name)
            .await
            .map_err(|e| explain(e, &format!("get crd {name}"), &kube.server))?;
        if c.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("crd {name} is not Established after 30s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where a Deployment's rollout stands, as `kubectl rollout status` judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    /// Replicas wanted.
    pub want: i32,
    /// Pods of the current template.
    pub updated: i32,
    /// Available Pods (Ready, here with minReadySeconds 0).
    pub available: i32,
    /// All Pods, old templates included.
    pub total: i32,
    /// Whether the controller has seen the latest spec.
    pub observed: bool,
}

impl Rollout {
    /// Read from a Deployment.
    pub fn of(d: &Deployment) -> Self {
        let status = d.status.clone().unwrap_or_default();
        Self {
            want: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            total: status.replicas.unwrap_or(0),
            observed: status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0),
        }
    }

    /// Every wanted Pod runs the current template and is available; no old Pod is left.
    pub fn complete(&self) -> bool {
        self.observed
            && self.updated >= self.want
            && self.total <= self.updated
            && self.available >= self.want
    }
}

/// Why one agent Pod is not Ready, as the kubelet says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// `ImagePullBackOff`, `CrashLoopBackOff`, `Pending, not scheduled`, …
    pub reason: String,
    /// The container it is about (empty for Pod-level reasons).
    pub container: String,
    /// The container's image.
    pub image: String,
    /// The kubelet's or scheduler's message, on one line.
    pub message: String,
    /// Container restarts.
    pub restarts: i32,
    /// How the last run ended (`exit 1 (Error)`), when it did.
    pub last_exit: Option<String>,
    /// Crashing: its previous log says why.
    pub crashing: bool,
    /// Not clearing by itself soon (install stops waiting after [`STUCK_FOR`]).
    pub stuck: bool,
    /// Never clearing without a change to the spec (install stops waiting at once).
    pub permanent: bool,
}

/// One agent Pod: its name, whether it is Ready, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    /// The Pod's name.
    pub name: String,
    /// Its Ready condition is True.
    pub ready: bool,
    /// Why it is not Ready yet (None: starting normally).
    pub problem: Option<PodProblem>,
}

/// Waiting reasons that do not clear within seconds by themselves.
const STUCK_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];
/// Waiting reasons that never clear without a new spec.
const PERMANENT_REASONS: &[&str] = &["InvalidImageName", "ErrImageNeverPull"];

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 400 {
        format!("{}…", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}

fn container_problem(c: &ContainerStatus) -> Option<PodProblem> {
    if c.ready {
        return None;
    }
    let last_exit = c
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| match &t.reason {
            Some(r) => format!("exit {} ({r})", t.exit_code),
            None => format!("exit {}", t.exit_code),
        });
    let base = |reason: String, message: String| PodProblem {
        stuck: STUCK_REASONS.contains(&reason.as_str()),
        permanent: PERMANENT_REASONS.contains(&reason.as_str()),
        crashing: reason == "CrashLoopBackOff" || (c.restart_count > 0 && last_exit.is_some()),
        reason,
        container: c.name.clone(),
        image: c.image.clone(),
        message: one_line(&message),
        restarts: c.restart_count,
        last_exit: last_exit.clone(),
    };
    let state = c.state.clone().unwrap_or_default();
    if let Some(w) = state.waiting {
        let reason = w.reason.unwrap_or_else(|| "Waiting".into());
        if matches!(reason.as_str(), "ContainerCreating" | "PodInitializing") {
            return None;
        }
        return Some(base(reason, w.message.unwrap_or_default()));
    }
    if let Some(t) = state.terminated {
        let mut p = base(
            t.reason.unwrap_or_else(|| "Terminated".into()),
            t.message.unwrap_or_default(),
        );
        p.crashing = true;
        // Between two restarts of a crash loop: as stuck as CrashLoopBackOff.
        p.stuck = c.restart_count > 0;
        return Some(p);
    }
    if c.restart_count >= 2 && last_exit.is_some() {
        // Running again after crashes, not yet Ready: most likely the next crash.
        let mut p = base("Restarting".into(), String::new());
        p.stuck = true;
        return Some(p);
    }
    None
}

/// The state of one agent Pod, from the Pod object alone.
pub fn pod_state(p: &Pod) -> PodState {
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let conditions = status.conditions.clone().unwrap_or_default();
    let ready = conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if ready {
        return PodState {
            name,
            ready,
            problem: None,
        };
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    let problem = containers.filter_map(container_problem).next().or_else(|| {
        let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled");
        let pod_level = |reason: String, message: String| PodProblem {
            reason,
            container: String::new(),
            image: String::new(),
            message: one_line(&message),
            restarts: 0,
            last_exit: None,
            crashing: false,
            stuck: false,
            permanent: false,
        };
        match scheduled {
            Some(c) if c.status == "False" => Some(pod_level(
                c.reason.clone().unwrap_or_else(|| "Unschedulable".into()),
                c.message.clone().unwrap_or_default(),
            )),
            None if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() => {
                Some(pod_level(
                    "Pending, not scheduled".into(),
                    "no scheduler has placed it".into(),
                ))
            }
            _ => None,
        }
    });
    PodState {
        name,
        ready,
        problem,
    }
}

/// `pod NS/NAME: REASON (container C, image I, …): MESSAGE`.
pub fn describe_problem(namespace: &str, pod: &str, p: &PodProblem) -> String {
    let mut facts = Vec::new();
    if !p.container.is_empty() {
        facts.push(format!("container {}", p.container));
    }
    if !p.image.is_empty() {
        facts.push(format!("image {}", p.image));
    }
    if p.restarts > 0 {
        facts.push(format!("{} restart(s)", p.restarts));
    }
    if let Some(e) = &p.last_exit {
        facts.push(format!("last run ended {e}"));
    }
    let facts = if facts.is_empty() {
        String::new()
    } else {
        format!(" ({})", facts.join(", "))
    };
    let message = if p.message.is_empty() {
        String::new()
    } else {
        format!(": {}", p.message)
    };
    format!("pod {namespace}/{pod}: {}{facts}{message}", p.reason)
}

/// The agent Pods' trouble in one line: the first troubled Pod in full, the others by reason.
pub fn summarize(namespace: &str, pods: &[PodState]) -> String {
    let troubled: Vec<(&str, &PodProblem)> = pods
        .iter()
        .filter_map(|p| p.problem.as_ref().map(|q| (p.name.as_str(), q)))
        .collect();
    let Some((first, problem)) = troubled.first() else {
        return String::new();
    };
    let mut s = describe_problem(namespace, first, problem);
    if troubled.len() > 1 {
        let others: Vec<String> = troubled[1..]
            .iter()
            .map(|(n, q)| format!("{n} ({})", q.reason))
            .collect();
        s.push_str(&format!("; also pod(s) {}", others.join(", ")));
    }
    s
}

/// The pod-template-hash of the Deployment's current ReplicaSet, to tell its Pods from the
/// Pods of an earlier install still running.
async fn current_template_hash(kube: &Kube, namespace: &str, d: &Deployment) -> Option<String> {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    let revision = d.metadata.annotations.as_ref()?.get(REVISION)?.clone();
    let uid = d.metadata.uid.clone()?;
    let sets: Api<ReplicaSet> = Api::namespaced(kube.client.clone(), namespace);
    let list = sets
        .list(&ListParams::default().labels(AGENT_LABEL))
        .await
        .ok()?;
    list.items
        .into_iter()
        .find(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
                && rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REVISION))
                    == Some(&revision)
        })
        .and_then(|rs| rs.metadata.labels?.get("pod-template-hash").cloned())
}

/// The agent Pods of the current template (all agent Pods when it cannot be told), not being
/// deleted.
async fn current_pods(kube: &Kube, namespace: &str, d: &Deployment) -> anyhow::Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(kube.client.clone(), namespace);
    let hash = current_template_hash(kube, namespace, d).await;
    let list = pods
        .list(&ListParams::default().labels(AGENT_LABEL))
        .await
        .map_err(|e| explain(e, &format!("list pods in {namespace}"), &kube.server))?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            hash.as_ref().is_none_or(|h| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("pod-template-hash"))
                    == Some(h)
            })
        })
        .collect())
}

/// The holder of the agent's leader Lease; `Ok(None)` while nobody holds it, `Err` when the
/// Lease cannot be read by this user (then leadership is not waited for).
async fn lease_holder(kube: &Kube, namespace: &str) -> Result<Option<String>, kube::Error> {
    let leases: Api<Lease> = Api::namespaced(kube.client.clone(), namespace);
    Ok(leases
        .get_opt(AGENT)
        .await?
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// The last lines of a crashing container's previous run (its current run when there is none),
/// each indented under a heading; empty when the log cannot be read.
async fn log_tail(kube: &Kube, namespace: &str, pod: &str, container: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(kube.client.clone(), namespace);
    let mut params = LogParams {
        container: Some(container.to_string()),
        previous: true,
        tail_lines: Some(LOG_TAIL_LINES),
        ..LogParams::default()
    };
    let (text, which) = match pods.logs(pod, &params).await {
        Ok(t) if !t.trim().is_empty() => (t, "previous run"),
        _ => {
            params.previous = false;
            match pods.logs(pod, &params).await {
                Ok(t) if !t.trim().is_empty() => (t, "current run"),
                _ => return String::new(),
            }
        }
    };
    let mut out = format!(
        "log of pod {namespace}/{pod} container {container} ({which}, last {LOG_TAIL_LINES} lines):\n"
    );
    for line in text.lines() {
        out.push_str("  | ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What ended the wait without success.
enum Failure {
    /// The deadline passed.
    Timeout,
    /// Every new Pod is stuck (for [`STUCK_FOR`], or permanently).
    Stuck,
}

/// Wait until the agent's rollout is complete (every Pod Ready: the agent's /readyz) and a
/// current Pod holds the leader Lease; show progress; stop early when every new Pod is stuck.
async fn wait_ready(kube: &Kube, namespace: &str, timeout: Duration) -> anyhow::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(kube.client.clone(), namespace);
    let progress = Progress::new();
    let label = format!("deployment {namespace}/{AGENT}");
    let bar = progress.spinner(&label);
    let plain = !interactive_stderr();
    let started = Instant::now();
    let deadline = started + timeout;
    let mut last_message = String::new();
    let mut stuck_since: Option<Instant> = None;
    let mut lease_readable = true;
    let failure = loop {
        let d = deployments.get(AGENT).await.map_err(|e| {
            explain(
                e,
                &format!("get deployment {namespace}/{AGENT}"),
                &kube.server,
            )
        })?;
        let rollout = Rollout::of(&d);
        let pods = current_pods(kube, namespace, &d).await?;
        let states: Vec<PodState> = pods.iter().map(pod_state).collect();
        let counts = format!(
            "{}/{} ready",
            rollout.available.min(rollout.want),
            rollout.want
        );
        let message = if rollout.complete() {
            let holder = if lease_readable {
                match lease_holder(kube, namespace).await {
                    Ok(h) => h,
                    Err(e) => {
                        eprintln!(
                            "note: cannot read Lease {namespace}/{AGENT} ({}); not waiting for a leader",
                            one_line(&e.to_string())
                        );
                        lease_readable = false;
                        None
                    }
                }
            } else {
                None
            };
            let ready_names: Vec<&str> = states
                .iter()
                .filter(|s| s.ready)
                .map(|s| s.name.as_str())
                .collect();
            match holder {
                Some(h) if ready_names.contains(&h.as_str()) => {
                    bar.done(&format!(
                        "{counts}, leader {h} ({:.1}s)",
                        started.elapsed().as_secs_f64()
                    ));
                    return Ok(());
                }
                _ if !lease_readable => {
                    bar.done(&format!(
                        "{counts} ({:.1}s)",
                        started.elapsed().as_secs_f64()
                    ));
                    return Ok(());
                }
                Some(h) => format!("{counts}, Lease held by {h}, not a current agent Pod yet"),
                None => format!("{counts}, waiting for a leader"),
            }
        } else if states.is_empty() {
            format!("{counts}: no pods of the current template yet")
        } else {
            let why = summarize(namespace, &states);
            if why.is_empty() {
                format!("{counts}: {} pod(s) starting", states.len())
            } else {
                format!("{counts}: {why}")
            }
        };
        bar.message(&message);
        if plain && message != last_message {
            eprintln!("{label}: {message}");
        }
        last_message = message;

        let all_stuck = !states.is_empty()
            && states
                .iter()
                .all(|s| s.problem.as_ref().is_some_and(|p| p.stuck));
        let all_permanent = all_stuck
            && states
                .iter()
                .all(|s| s.problem.as_ref().is_some_and(|p| p.permanent));
        stuck_since = if all_stuck {
            stuck_since.or(Some(Instant::now()))
        } else {
            None
        };
        if all_permanent || stuck_since.is_some_and(|t| t.elapsed() >= STUCK_FOR) {
            break (Failure::Stuck, rollout, states);
        }
        if Instant::now() >= deadline {
            break (Failure::Timeout, rollout, states);
        }
        tokio::time::sleep(
            Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    };
    let (failure, rollout, states) = failure;
    bar.fail("not ready");
    // A crashing agent says why in its log: show its tail above the error line.
    if let Some((pod, p)) = states
        .iter()
        .find_map(|s| s.problem.as_ref().filter(|p| p.crashing).map(|p| (s, p)))
    {
        let tail = log_tail(kube, namespace, &pod.name, &p.container).await;
        eprint!("{tail}");
    }
    let why = summarize(namespace, &states);
    let counts = format!(
        "{}/{} replicas ready",
        rollout.available.min(rollout.want),
        rollout.want
    );
    match failure {
        Failure::Stuck => Err(anyhow!(
            "the agent (deployment {namespace}/{AGENT}) cannot become ready: {counts}; {why}; the kubelet keeps retrying (fix it and run install again, or see kubectl -n {namespace} describe pods)"
        )),
        Failure::Timeout => Err(anyhow!(
            "the agent (deployment {namespace}/{AGENT}) is not ready after {}s: {counts}{}; see kubectl -n {namespace} describe pods",
            timeout.as_secs(),
            if why.is_empty() {
                if rollout.complete() {
                    format!(" (no current agent Pod holds Lease {namespace}/{AGENT})")
                } else {
                    String::new()
                }
            } else {
                format!(" ({why})")
            }
        )),
    }
}

pub fn uninstall(a: UninstallArgs) -> anyhow::Result<i32> {
    runtime()?.block_on(uninstall_async(a))
}

/// CRs that still hold external resources, as `Kind ns/name (aws.s3 bucket, …)`.
async fn holders(kube: &Kube) -> anyhow::Result<Vec<String>> {
    let installed = match kinds::installed(kube).await {
        Ok(k) => k,
        // No Katalog CRD: nothing can hold anything.
        Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for kind in &installed {
        let Ok((ar, _)) = kinds::served(kube, kind).await else {
            continue;
        };
        let api: Api<DynamicObject> = Api::all_with(kube.client.clone(), &ar);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| explain(e, &format!("list {}", kind.api.plural), &kube.server))?;
        for cr in list.items {
            let v = serde_json::to_value(&cr)?;
            let rows: Vec<String> = v
                .pointer("/status/external")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| {
                    !matches!(
                        r.get("state").and_then(Value::as_str),
                        Some("Deleted" | "Orphaned" | "Conflict")
                    )
                })
                .map(|r| {
                    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
                    format!("{}.{} {}", s("provider"), s("kind"), s("name"))
                })
                .collect();
            if !rows.is_empty() {
                let ns = cr
                    .metadata
                    .namespace
                    .clone()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default();
                out.push(format!(
                    "{} {ns}{} ({})",
                    kind.api.kind,
                    cr.metadata.name.clone().unwrap_or_default(),
                    rows.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

async fn uninstall_async(a: UninstallArgs) -> anyhow::Result<i32> {
    let namespace = agent_namespace(&a.kube);
    let kube = connect(&a.kube).await?;
    let held = holders(&kube).await?;
    if !held.is_empty() && !a.force {
        bail!(
            "{} CR(s) still hold external resources: {}; delete those CRs first (the agent cleans up), or pass --force to leave the resources behind",
            held.len(),
            held.join("; ")
        );
    }
    if !a.yes {
        if !interactive_terminal() {
            bail!("uninstall needs --yes when not on a terminal (no prompts here)");
        }
        let ok = dialoguer::Confirm::new()
            .with_prompt(format!(
                "Uninstall orkestra-agent from namespace {namespace}?"
            ))
            .default(false)
            .interact()
            .map_err(|e| anyhow!("prompt failed: {e}"))?;
        if !ok {
            eprintln!("nothing uninstalled");
            return Ok(1);
        }
    }
    if !held.is_empty() {
        eprintln!(
            "warning: leaving external resources of {} CR(s) behind (--force)",
            held.len()
        );
    }
    let mut objects = manifests(&namespace, &AgentSettings::default())?;
    // Delete in reverse order of install: the Deployment first, the namespace last.
    objects.reverse();
    for o in &objects {
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind == "CustomResourceDefinition" && !a.crds {
            eprintln!(
                "{} kept (pass --crds to delete it and every Katalog)",
                describe(o)
            );
            continue;
        }
        let api = api_for(&kube, o).await?;
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => eprintln!("{} deleted", describe(o)),
            Err(e) if is_not_found(&e) => eprintln!("{} not found", describe(o)),
            Err(e) => return Err(explain(e, &format!("delete {}", describe(o)), &kube.server)),
        }
    }
    if !a.crds {
        return Ok(0);
    }
    // With the Katalogs gone, the per-Katalog RBAC apply generated goes too.
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(kube.client.clone());
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> =
        Api::all(kube.client.clone());
    let lp = ListParams::default().labels("app.kubernetes.io/managed-by=orkestra");
    for b in bindings
        .list(&lp)
        .await
        .map_err(|e| explain(e, "list clusterrolebindings", &kube.server))?
        .items
    {
        let name = b.metadata.name.unwrap_or_default();
        if name.starts_with("orkestra-katalog-") {
            bindings
                .delete(&name, &DeleteParams::default())
                .await
                .map_err(|e| {
                    explain(
                        e,
                        &format!("delete clusterrolebinding {name}"),
                        &kube.server,
                    )
                })?;
            eprintln!("clusterrolebinding {name} deleted");
        }
    }
    for r in roles
        .list(&lp)
        .await
        .map_err(|e| explain(e, "list clusterroles", &kube.server))?
        .items
    {
        let name = r.metadata.name.unwrap_or_default();
        if name.starts_with("orkestra-katalog-") {
            roles
                .delete(&name, &DeleteParams::default())
                .await
                .map_err(|e| explain(e, &format!("delete clusterrole {name}"), &kube.server))?;
            eprintln!("clusterrole {name} deleted");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn settings() -> AgentSettings {
        AgentSettings {
            image: Some("example.com/agent:dev".into()),
            ..AgentSettings::default()
        }
    }

    fn agent_container(objs: &[Value]) -> Value {
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        d["spec"]["template"]["spec"]["containers"][0].clone()
    }

    #[test]
    fn manifests_move_to_the_namespace_and_take_the_image() {
        let objs = manifests("ork-x", &settings()).unwrap();
        let ns = objs.iter().find(|o| o["kind"] == "Namespace").unwrap();
        assert_eq!(ns["metadata"]["name"], "ork-x");
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(d["metadata"]["namespace"], "ork-x");
        assert_eq!(agent_container(&objs)["image"], "example.com/agent:dev");
        for b in objs
            .iter()
            .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
        {
            assert_eq!(b["subjects"][0]["namespace"], "ork-x", "{b}");
        }
        assert!(
            objs.iter()
                .all(|o| o["metadata"]["namespace"].is_null()
                    || o["metadata"]["namespace"] == "ork-x")
        );
        assert!(objs.iter().any(|o| o["kind"] == "CustomResourceDefinition"));
    }

    #[test]
    fn cluster_rbac_is_named_per_namespace_except_the_default_one() {
        for (ns, name) in [
            ("orkestra-system", "orkestra-agent"),
            ("ork-x", "orkestra-agent-ork-x"),
        ] {
            let objs = manifests(ns, &AgentSettings::default()).unwrap();
            let role = objs.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
            assert_eq!(role["metadata"]["name"], name);
            let b = objs
                .iter()
                .find(|o| o["kind"] == "ClusterRoleBinding")
                .unwrap();
            assert_eq!(b["metadata"]["name"], name);
            assert_eq!(b["roleRef"]["name"], name);
            // The namespaced Role keeps its name.
            let r = objs.iter().find(|o| o["kind"] == "Role").unwrap();
            assert_eq!(r["metadata"]["name"], "orkestra-agent-leader-election");
        }
    }

    #[test]
    fn the_deployment_keeps_leader_election_probes_and_pull_policy() {
        let c = agent_container(&manifests("orkestra-system", &AgentSettings::default()).unwrap());
        assert!(
            c["args"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "--leader-election=on"),
            "{c}"
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        let names: Vec<&str> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["POD_NAME", "POD_NAMESPACE", "RUST_LOG"]);
    }

    #[test]
    fn aws_settings_become_env_and_credentials_stay_references() {
        let s = AgentSettings {
            aws_endpoint_url: Some("http://10.1.0.1:5000".into()),
            aws_region: Some("eu-west-1".into()),
            aws_credentials_secret: Some("aws".into()),
            watch_namespaces: vec!["a".into(), "b".into()],
            katalog_selector: Some("team=x".into()),
            ..settings()
        };
        let c = agent_container(&manifests("ork-x", &s).unwrap());
        let env = c["env"].as_array().unwrap();
        let get = |n: &str| env.iter().find(|e| e["name"] == n).cloned();
        assert_eq!(
            get("AWS_ENDPOINT_URL").unwrap()["value"],
            "http://10.1.0.1:5000"
        );
        assert_eq!(get("AWS_REGION").unwrap()["value"], "eu-west-1");
        assert_eq!(get("ORKESTRA_NAMESPACES").unwrap()["value"], "a,b");
        assert_eq!(get("ORKESTRA_KATALOG_SELECTOR").unwrap()["value"], "team=x");
        for (key, required) in AWS_SECRET_KEYS {
            let e = get(key).unwrap();
            assert!(e.get("value").is_none(), "{e}");
            assert_eq!(
                e["valueFrom"]["secretKeyRef"],
                if *required {
                    json!({"name": "aws", "key": key})
                } else {
                    json!({"name": "aws", "key": key, "optional": true})
                }
            );
        }
        // The manifest's own entries stay, once each.
        assert_eq!(env.iter().filter(|e| e["name"] == "POD_NAME").count(), 1);
        assert!(get("RUST_LOG").is_some());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        install: InstallArgs,
    }

    #[test]
    fn wait_is_the_default_and_the_last_of_wait_and_no_wait_wins() {
        let parse = |args: &[&str]| {
            let mut all = vec!["install"];
            all.extend(args);
            Cli::try_parse_from(all).map(|c| c.install)
        };
        assert!(!parse(&[]).unwrap().no_wait);
        assert!(!parse(&["--wait"]).unwrap().no_wait);
        assert!(parse(&["--no-wait"]).unwrap().no_wait);
        assert!(!parse(&["--no-wait", "--wait"]).unwrap().no_wait);
        assert!(parse(&["--wait", "--no-wait"]).unwrap().no_wait);
        let a = parse(&[
            "--aws-endpoint-url",
            "http://172.17.0.1:5000",
            "--watch-namespace",
            "a,b",
            "--watch-namespace",
            "c",
        ])
        .unwrap();
        assert_eq!(
            a.aws_endpoint_url.as_deref(),
            Some("http://172.17.0.1:5000")
        );
        assert_eq!(a.watch_namespaces, ["a", "b", "c"]);
        for bad in [
            ["--aws-endpoint-url", "172.17.0.1:5000"],
            ["--aws-region", "EU West"],
            ["--aws-credentials-secret", "My_Secret"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "orkestra-agent-abc", "namespace": "ork"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "agent", "image": "x"}]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn an_image_pull_failure_names_the_reason_and_the_image() {
        let p = pod(json!({
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{
                "name": "agent", "image": "ghcr.io/orkspace/does-not-exist:0", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                    "message": "Back-off pulling image \"ghcr.io/orkspace/does-not-exist:0\":\nErrImagePull: not found"}}
            }]
        }));
        let s = pod_state(&p);
        assert!(!s.ready);
        let problem = s.problem.clone().unwrap();
        assert!(problem.stuck && !problem.permanent && !problem.crashing);
        let line = summarize("ork", &[s]);
        assert_eq!(
            line,
            "pod ork/orkestra-agent-abc: ImagePullBackOff (container agent, image ghcr.io/orkspace/does-not-exist:0): Back-off pulling image \"ghcr.io/orkspace/does-not-exist:0\": ErrImagePull: not found"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_crash_loop_is_crashing_with_its_last_exit() {
        let p = pod(json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{
                "name": "agent", "image": "a:1", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=agent"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}
            }]
        }));
        let problem = pod_state(&p).problem.unwrap();
        assert!(problem.crashing && problem.stuck);
        assert_eq!(
            describe_problem("ork", "p", &problem),
            "pod ork/p: CrashLoopBackOff (container agent, image a:1, 3 restart(s), last run ended exit 1 (Error)): back-off 40s restarting failed container=agent"
        );
        // Between two crashes the container shows as terminated: still stuck.
        let p = pod(json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{
                "name": "agent", "image": "a:1", "imageID": "", "ready": false, "restartCount": 2,
                "state": {"terminated": {"exitCode": 1, "reason": "Error"}}
            }]
        }));
        let problem = pod_state(&p).problem.unwrap();
        assert!(problem.crashing && problem.stuck, "{problem:?}");
    }

    #[test]
    fn starting_ready_and_unscheduled_pods_are_not_stuck() {
        let creating = pod(json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "agent", "image": "a:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]
        }));
        assert_eq!(pod_state(&creating).problem, None);
        let running = pod(json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "agent", "image": "a:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"running": {}}}]
        }));
        assert_eq!(pod_state(&running).problem, None);
        let ready = pod(json!({"conditions": [{"type": "Ready", "status": "True"}]}));
        assert!(pod_state(&ready).ready);
        let unschedulable = pod(
            json!({"conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient cpu."}]}),
        );
        let p = pod_state(&unschedulable).problem.unwrap();
        assert_eq!(p.reason, "Unschedulable");
        assert!(!p.stuck);
        let mut no_node = pod(json!({"phase": "Pending"}));
        no_node.spec.as_mut().unwrap().node_name = None;
        assert_eq!(
            pod_state(&no_node).problem.unwrap().reason,
            "Pending, not scheduled"
        );
        let invalid = pod(json!({
            "containerStatuses": [{"name": "agent", "image": "UPPER:case", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "InvalidImageName"}}}]
        }));
        assert!(pod_state(&invalid).problem.unwrap().permanent);
    }

    #[test]
    fn a_rollout_is_complete_only_without_old_pods_and_once_observed() {
        let d = |generation: i64, status: Value| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "orkestra-agent", "generation": generation},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": status,
            }))
            .unwrap()
        };
        let done = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2});
        assert!(Rollout::of(&d(2, done.clone())).complete());
        assert!(!Rollout::of(&d(3, done)).complete(), "a spec not yet seen");
        let old_left = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3});
        assert!(!Rollout::of(&d(2, old_left)).complete());
        let old_ready = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2});
        assert!(!Rollout::of(&d(2, old_ready)).complete());
    }
}
