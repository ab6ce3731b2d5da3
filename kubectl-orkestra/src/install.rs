//! `kubectl orkestra install` / `uninstall`: the agent from the manifests in deploy/, embedded
//! in the binary so the plugin installs exactly the agent it was released with.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope as DiscoveredScope;
use serde_json::Value;

use crate::katalog_object as ko;
use crate::kinds;
use crate::kube_client::{connect, explain, is_not_found, runtime, Kube, KubeArgs};
use crate::progress::{interactive_terminal, Progress};

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
/// The agent's Deployment (and ServiceAccount) name.
const AGENT: &str = "orkestra-agent";

/// Arguments of `install`.
#[derive(clap::Args)]
pub struct InstallArgs {
    /// The agent image (default: the one in deploy/deployment.yaml).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// Do not wait for the agent to become ready.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for the agent (e.g. 90s, 5m).
    #[arg(long, value_name = "D", default_value = "3m", value_parser = crate::apply::parse_timeout)]
    timeout: Duration,
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

/// The embedded manifests, for `namespace` and `image`.
pub fn manifests(namespace: &str, image: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (name, text) in MANIFESTS {
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let v: Value =
                serde::Deserialize::deserialize(doc).with_context(|| format!("embedded {name}"))?;
            if v.is_null() {
                continue;
            }
            out.push(retarget(v, namespace, image));
        }
    }
    Ok(out)
}

/// Move an object into `namespace` (its own namespace, the Namespace itself, binding subjects)
/// and set the agent container's image.
fn retarget(mut v: Value, namespace: &str, image: Option<&str>) -> Value {
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
    if let Some(subjects) = v.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects {
            if s.get("kind").and_then(Value::as_str) == Some("ServiceAccount") {
                s["namespace"] = namespace.into();
            }
        }
    }
    if let (Some(image), "Deployment") = (image, kind.as_str()) {
        if let Some(containers) = v
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        {
            for c in containers {
                c["image"] = image.into();
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
    let objects = manifests(&namespace, a.image.as_deref())?;
    if a.dry_run {
        for o in &objects {
            crate::output::out(&format!("---\n{}", serde_yaml_ng::to_string(o)?))?;
        }
        return Ok(0);
    }
    let kube = connect(&a.kube).await?;
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
    if a.no_wait {
        return Ok(0);
    }
    wait_ready(&kube, &namespace, a.timeout).await?;
    Ok(0)
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

/// Wait until every replica of the agent is ready, showing why not (pods pending, crashing).
async fn wait_ready(kube: &Kube, namespace: &str, timeout: Duration) -> anyhow::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(kube.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(kube.client.clone(), namespace);
    let progress = Progress::new();
    let bar = progress.spinner(&format!("deployment {namespace}/{AGENT}"));
    let deadline = Instant::now() + timeout;
    loop {
        let d = deployments.get(AGENT).await.map_err(|e| {
            explain(
                e,
                &format!("get deployment {namespace}/{AGENT}"),
                &kube.server,
            )
        })?;
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let ready = d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready >= want {
            bar.done(&format!("{ready}/{want} ready"));
            return Ok(());
        }
        let why = pod_problems(&pods).await;
        bar.message(&format!(
            "{ready}/{want} ready{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ));
        if Instant::now() > deadline {
            bar.fail("not ready");
            bail!(
                "the agent (deployment {namespace}/{AGENT}) is not ready after {}s: {ready}/{want} replicas ready{}; see kubectl -n {namespace} describe pods",
                timeout.as_secs(),
                if why.is_empty() { String::new() } else { format!(" ({why})") }
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A short reason from the agent's pods, e.g. `2 pods Pending, not scheduled`.
async fn pod_problems(pods: &Api<Pod>) -> String {
    let Ok(list) = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=orkestra-agent"))
        .await
    else {
        return String::new();
    };
    if list.items.is_empty() {
        return "no pods yet".to_string();
    }
    let mut reasons: Vec<String> = Vec::new();
    for p in &list.items {
        let status = p.status.clone().unwrap_or_default();
        let waiting = status
            .container_statuses
            .unwrap_or_default()
            .iter()
            .filter_map(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.clone())
            })
            .next();
        let unscheduled = p.spec.as_ref().and_then(|s| s.node_name.clone()).is_none();
        let r = match (waiting, unscheduled) {
            (Some(w), _) => w,
            (None, true) => "Pending, not scheduled".to_string(),
            (None, false) => status.phase.unwrap_or_else(|| "Unknown".into()),
        };
        reasons.push(r);
    }
    reasons.sort();
    reasons.dedup();
    format!("{} pod(s): {}", list.items.len(), reasons.join(", "))
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
    let mut objects = manifests(&namespace, None)?;
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

    #[test]
    fn manifests_move_to_the_namespace_and_take_the_image() {
        let objs = manifests("ork-x", Some("example.com/agent:dev")).unwrap();
        let ns = objs.iter().find(|o| o["kind"] == "Namespace").unwrap();
        assert_eq!(ns["metadata"]["name"], "ork-x");
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(d["metadata"]["namespace"], "ork-x");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "example.com/agent:dev"
        );
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
}
