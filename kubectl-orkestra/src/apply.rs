//! `kubectl orkestra apply -f KATALOG|oci://REF [--wait] [--timeout D]`: install or update a Katalog.
//!
//! The Katalog comes from a file or straight from a registry ([`crate::katalog_source`]); from
//! a registry, the reference and the digest it resolved to are recorded on the Katalog object
//! (`status` and `plan` show them), and `--verify-digest` refuses a tag that moved. Lint first (refuse with the diagnostics on error); create each entry's CRD when it does not
//! exist; server-side apply the per-Katalog RBAC for the agent and the Katalog object itself;
//! with `--wait`, show a spinner per CRD entry until the agent reports its controller running.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use orkestra_engine::Katalog;

use crate::katalog_object::{self as ko, GroupResource};
use crate::kube_client::{connect, explain, is_not_found, runtime, Kube, KubeArgs};
use crate::progress::Progress;

/// Arguments of `apply`.
#[derive(clap::Args)]
pub struct Args {
    /// The Katalog file, or oci://HOST/REPO[:TAG|@DIGEST] to apply straight from a registry.
    #[arg(short = 'f', long = "filename", value_name = "KATALOG|oci://REF")]
    katalog: String,
    /// With oci://: refuse unless the reference resolves to this digest, or (without a value)
    /// to the digest the cluster recorded when it was last applied from the same reference.
    #[arg(long, value_name = "DIGEST", num_args = 0..=1, default_missing_value = "")]
    verify_digest: Option<String>,
    #[command(flatten)]
    registry: crate::oci::RegistryArgs,
    /// Wait until the agent reports every CRD entry's controller running.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits (e.g. 90s, 5m).
    #[arg(long, value_name = "D", default_value = "2m", value_parser = parse_timeout)]
    timeout: Duration,
    /// Namespace of the agent the generated RBAC is bound to.
    #[arg(long, value_name = "NS", default_value = ko::AGENT_NAMESPACE)]
    agent_namespace: String,
    #[command(flatten)]
    kube: KubeArgs,
}

/// Parse `90s`, `5m`, `1h30m` or plain seconds.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    orkestra_engine::load::parse_duration(&serde_json::Value::String(s.to_string()))
        .ok_or_else(|| format!("{s:?} is not a duration from 1s to 720h, like 90s, 5m or 1h30m"))
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    runtime()?.block_on(run_async(a))
}

async fn run_async(a: Args) -> anyhow::Result<i32> {
    if a.verify_digest.is_some() && !crate::oci::is_oci(&a.katalog) {
        bail!("--verify-digest needs -f oci://…");
    }
    let sourced = crate::katalog_source::read(&a.katalog, &a.registry).await?;
    let linted = sourced.linted;
    let kube = connect(&a.kube).await?;
    let katalog = &linted.katalog;
    if let (Some(origin), Some(expected)) = (&sourced.origin, &a.verify_digest) {
        let recorded = crate::katalog_source::cluster_origin(&kube, &katalog.name).await?;
        crate::katalog_source::verify_digest(origin, Some(expected), recorded.as_ref())?;
    }
    ensure_katalog_crd(&kube).await?;
    for entry in &katalog.entries {
        let crd_holds_deny = ensure_crd(&kube, entry, &katalog.name).await?;
        crate::admission::ensure_policies(&kube, entry, &katalog.name, crd_holds_deny).await?;
    }
    apply_rbac(&kube, katalog, &a.agent_namespace).await?;
    // crdFile entries are stored with the apiTypes read from the file: the agent has no files.
    let mut object = ko::to_object(&orkestra_engine::load::with_api_types(
        &linted.document,
        katalog,
    ));
    if let Some(origin) = &sourced.origin {
        ko::set_origin(&mut object, origin);
    }
    let api: Api<DynamicObject> = Api::all_with(kube.client.clone(), &ko::api_resource());
    let params = PatchParams::apply(ko::FIELD_MANAGER).force();
    api.patch(&katalog.name, &params, &Patch::Apply(&object))
        .await
        .map_err(|e| explain(e, &format!("apply katalog {}", katalog.name), &kube.server))?;
    match &sourced.origin {
        Some(origin) => eprintln!(
            "katalog.{}/{} applied from {origin}",
            ko::GROUP,
            katalog.name
        ),
        None => eprintln!("katalog.{}/{} applied", ko::GROUP, katalog.name),
    }
    if a.wait {
        wait_running(&kube, katalog, a.timeout).await?;
    }
    Ok(0)
}

async fn ensure_katalog_crd(kube: &Kube) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(kube.client.clone());
    match crds.get_opt(ko::CRD_NAME).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => bail!(
            "the Katalog CRD ({}) is not installed in the cluster at {}; install the agent first: kubectl orkestra install",
            ko::CRD_NAME,
            kube.server
        ),
        Err(e) => Err(explain(e, &format!("get customresourcedefinition {}", ko::CRD_NAME), &kube.server)),
    }
}

/// Create the entry's CRD unless it exists (an existing CRD is the user's, never overwritten),
/// then wait briefly until it is Established so CRs can be created right after. Whether the
/// CRD now carries the entry's `deny` validation rules (one orkestra generated from apiTypes);
/// otherwise policies enforce them.
async fn ensure_crd(
    kube: &Kube,
    entry: &orkestra_engine::CrdEntry,
    katalog: &str,
) -> anyhow::Result<bool> {
    let generated_here = entry.crd_file.is_none();
    let name = entry.api.crd_name();
    let crds: Api<CustomResourceDefinition> = Api::all(kube.client.clone());
    let what = format!("customresourcedefinition {name}");
    if let Some(existing) = crds
        .get_opt(&name)
        .await
        .map_err(|e| explain(e, &format!("get {what}"), &kube.server))?
    {
        // A CRD this Katalog generated earlier follows the Katalog (a new schema, columns);
        // any other CRD is the user's and is left as it is.
        let ours = existing.metadata.labels.as_ref().is_some_and(|l| {
            l.get("app.kubernetes.io/managed-by").map(String::as_str) == Some("orkestra")
                && l.get("orkestra.orkspace.io/katalog")
                    == Some(&orkestra_engine::objects::label_value(katalog))
        });
        if ours {
            let generated = orkestra_engine::crd::generate(entry, katalog);
            let applied = crds
                .patch(
                    &name,
                    &PatchParams::apply(ko::FIELD_MANAGER).force(),
                    &Patch::Apply(&generated),
                )
                .await
                .map_err(|e| explain(e, &format!("update {what}"), &kube.server))?;
            let changed = applied.metadata.resource_version != existing.metadata.resource_version;
            eprintln!(
                "customresourcedefinition.apiextensions.k8s.io/{name} {}",
                if changed { "configured" } else { "unchanged" }
            );
            return Ok(generated_here);
        }
        let served = existing
            .spec
            .versions
            .iter()
            .any(|v| v.name == entry.api.version && v.served);
        if !served {
            bail!(
                "{what} exists but does not serve version {}; add that version to the CRD or change apiTypes.version",
                entry.api.version
            );
        }
        eprintln!(
            "customresourcedefinition.apiextensions.k8s.io/{name} unchanged (exists, not generated by this Katalog)"
        );
        return Ok(false);
    }
    // Created by server-side apply, so later applies of the same Katalog own the same fields
    // and change nothing when nothing changed.
    let crd = orkestra_engine::crd::generate(entry, katalog);
    serde_json::from_value::<CustomResourceDefinition>(crd.clone())
        .with_context(|| format!("the generated {what} is not a valid CRD"))?;
    crds.patch(
        &name,
        &PatchParams::apply(ko::FIELD_MANAGER),
        &Patch::Apply(&crd),
    )
    .await
    .map_err(|e| explain(e, &format!("create {what}"), &kube.server))?;
    eprintln!("customresourcedefinition.apiextensions.k8s.io/{name} created");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = crds
            .get(&name)
            .await
            .map_err(|e| explain(e, &format!("get {what}"), &kube.server))?;
        let established = c
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(generated_here);
        }
        if Instant::now() > deadline {
            bail!("{what} was created but is not Established after 30s; see `kubectl describe crd {name}`");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Resolve the `custom` kinds through discovery (the plural is the server's to say).
async fn custom_resources(kube: &Kube, katalog: &Katalog) -> Vec<GroupResource> {
    let mut out = Vec::new();
    for (api_version, kind) in ko::custom_kinds(katalog) {
        let (group, version) = api_version
            .split_once('/')
            .unwrap_or(("", api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &kind);
        match kube::discovery::pinned_kind(&kube.client, &gvk).await {
            Ok((ar, _)) => out.push(GroupResource { group: ar.group, resource: ar.plural }),
            Err(e) => eprintln!(
                "warning: {api_version} {kind} (a custom block) is not served by the cluster ({}); the agent gets no rights on it",
                crate::kube_client::explain(e, "discovery", &kube.server)
            ),
        }
    }
    out
}

async fn apply_rbac(kube: &Kube, katalog: &Katalog, agent_namespace: &str) -> anyhow::Result<()> {
    let custom = custom_resources(kube, katalog).await;
    let params = PatchParams::apply(ko::FIELD_MANAGER).force();
    let name = ko::rbac_name(&katalog.name);
    let roles: Api<ClusterRole> = Api::all(kube.client.clone());
    roles
        .patch(
            &name,
            &params,
            &Patch::Apply(&ko::cluster_role(katalog, &custom)),
        )
        .await
        .map_err(|e| explain(e, &format!("apply clusterrole {name}"), &kube.server))?;
    let bindings: Api<ClusterRoleBinding> = Api::all(kube.client.clone());
    bindings
        .patch(
            &name,
            &params,
            &Patch::Apply(&ko::cluster_role_binding(&katalog.name, agent_namespace)),
        )
        .await
        .map_err(|e| explain(e, &format!("apply clusterrolebinding {name}"), &kube.server))?;
    eprintln!(
        "clusterrole.rbac.authorization.k8s.io/{name} applied (bound to {agent_namespace}/{})",
        ko::AGENT_SERVICE_ACCOUNT
    );
    Ok(())
}

/// Poll the Katalog's status until the agent accepts it and runs every entry's controller.
async fn wait_running(kube: &Kube, katalog: &Katalog, timeout: Duration) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(kube.client.clone(), &ko::api_resource());
    let progress = Progress::new();
    let bars: Vec<_> = katalog
        .entries
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                progress.spinner(&format!("{} ({})", e.api.crd_name(), e.name)),
            )
        })
        .collect();
    let deadline = Instant::now() + timeout;
    loop {
        let obj = match api.get(&katalog.name).await {
            Ok(o) => serde_json::to_value(&o)?,
            Err(e) if is_not_found(&e) => {
                bail!("katalog {} disappeared while waiting", katalog.name)
            }
            Err(e) => {
                return Err(explain(
                    e,
                    &format!("get katalog {}", katalog.name),
                    &kube.server,
                ))
            }
        };
        let state = ko::katalog_state(&obj);
        if state.accepted == Some(false) {
            for (_, b) in &bars {
                b.fail("refused");
            }
            let reason = if state.message.is_empty() {
                "no reason given".to_string()
            } else {
                state.message
            };
            bail!("the agent refused katalog {}: {reason}", katalog.name);
        }
        if let Some(e) = state.entries.iter().find(|e| e.failed) {
            for (_, b) in &bars {
                b.fail("not running");
            }
            bail!(
                "the agent cannot run entry {} of katalog {}: {}",
                e.name,
                katalog.name,
                e.message
            );
        }
        let mut all = true;
        for (name, bar) in &bars {
            match state.entries.iter().find(|e| &e.name == name) {
                Some(e) if e.running => bar.done("running"),
                Some(e) if !e.message.is_empty() => {
                    all = false;
                    bar.message(&e.message);
                }
                _ => {
                    all = false;
                    bar.message(if state.accepted.is_none() {
                        "waiting for the agent"
                    } else {
                        "starting"
                    });
                }
            }
        }
        if all && state.accepted == Some(true) {
            eprintln!(
                "katalog {}: {} controller(s) running",
                katalog.name,
                bars.len()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            let pending: Vec<String> = bars
                .iter()
                .filter(|(n, _)| !state.entries.iter().any(|e| &e.name == n && e.running))
                .map(|(n, _)| {
                    let why = state
                        .entries
                        .iter()
                        .find(|e| &e.name == n)
                        .map(|e| e.message.clone())
                        .unwrap_or_default();
                    if why.is_empty() {
                        n.clone()
                    } else {
                        format!("{n}: {why}")
                    }
                })
                .collect();
            for (_, b) in &bars {
                b.fail("timed out");
            }
            return Err(anyhow!(
                "timed out after {}s waiting for the agent to run katalog {} ({}); is the agent running? (kubectl orkestra install)",
                timeout.as_secs(),
                katalog.name,
                if pending.is_empty() { "not accepted yet".to_string() } else { format!("not running: {}", pending.join("; ")) }
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
