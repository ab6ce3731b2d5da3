//! `kubectl orkestra plan -f KATALOG (--cr CR_FILE | KIND/NAME) [-o text|json] [--detailed-exitcode]`:
//! what applying would change, computed without writing anything.
//!
//! The CR's graph is walked with the engine's own [`orkestra_engine::walk`], the agent's walk,
//! over what exists (composition.md, rule 4): each node that renders is looked at (a child's live
//! object, a resource's observe) and the graph is walked again with what was seen, until nothing
//! new is. A node that still waits for a value is shown as it renders so far, each unknown value
//! printed as `(known after apply: db.outputs.endpoint)`, without a dry run.
//!
//! Kubernetes children whose inputs are known: the body the agent writes
//! ([`orkestra_engine::apply::body`]) compared with the live object through a server-side dry
//! run (`dryRun=All`: the API server runs admission, defaulting and validation and returns the
//! result without persisting it), with the agent's field manager. External resources: each
//! provider's read-only `observe` and its pure `diff`, the same diff the agent applies. Rows of
//! the CR's `status.external` no rendered resource matches are shown as orphaned (the agent
//! leaves their resources in place). A Secret's values and sensitive provider fields are never
//! shown (`(sensitive)`).
//!
//! The verb is split by what its parts do:
//! - this module: the arguments and the wiring, one CR at a time: read, decide, print;
//! - [`observe`]: reading (the CRs, children's live objects and dry runs, providers' observes,
//!   the graph walk over what exists); nothing is written;
//! - [`decide`]: pure functions turning what was rendered and observed into [`Change`]s (diffs,
//!   masking, orphaned rows, create intents), unit-tested without a cluster;
//! - [`print`]: the plan as text and as JSON.

mod decide;
mod observe;
mod print;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use orkestra_engine::{Child, External, Katalog, Waiting};
use orkestra_provider::{Action, Provider};
use serde_json::Value;

pub use decide::{Change, CrPlan};
pub use print::{to_json, to_text};

use crate::kube_client::{connect, runtime, Kube, KubeArgs};
use crate::output::{color_stdout, out};
use observe::Planner;

/// Arguments of `plan`.
#[derive(clap::Args)]
pub struct Args {
    /// The Katalog file, or oci://HOST/REPO[:TAG|@DIGEST] to plan a registry's version.
    #[arg(short = 'f', long = "filename", value_name = "KATALOG|oci://REF")]
    katalog: String,
    /// CR files to plan for (several documents per file are fine).
    #[arg(long = "cr", value_name = "CR_FILE", conflicts_with = "target")]
    crs: Vec<PathBuf>,
    /// A CR in the cluster: KIND/NAME (in -n NAMESPACE).
    #[arg(value_name = "KIND/NAME", required_unless_present = "crs")]
    target: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    #[command(flatten)]
    registry: crate::oci::RegistryArgs,
    #[command(flatten)]
    kube: KubeArgs,
}

/// Run `plan`: the exit code (see [`Args`]'s `--detailed-exitcode`).
pub fn run(a: Args) -> anyhow::Result<i32> {
    runtime()?.block_on(run_async(a))
}

async fn run_async(a: Args) -> anyhow::Result<i32> {
    let sourced = crate::katalog_source::read(&a.katalog, &a.registry).await?;
    let linted = sourced.linted;
    let katalog = &linted.katalog;
    let kube = connect(&a.kube).await?;
    // Which version runs, and which one this plan is for (a Katalog from a registry).
    let running = crate::katalog_source::cluster_origin(&kube, &katalog.name).await?;
    let crs = if a.crs.is_empty() {
        let target = a.target.as_deref().unwrap_or_default();
        vec![observe::live_cr(&kube, katalog, target).await?]
    } else {
        let mut v = Vec::new();
        for p in &a.crs {
            v.extend(observe::file_crs(&kube, katalog, p).await?);
        }
        v
    };
    let providers = crate::registry::providers();
    let mut plans = Vec::new();
    for cr in crs {
        plans.push(plan_cr(&kube, katalog, &cr, &providers).await?);
    }
    let text = if a.output == "json" {
        let mut data = to_json(&plans);
        data["katalog"] = serde_json::json!({
            "name": katalog.name,
            "running": running,
            "planned": sourced.origin,
        });
        format!("{}\n", serde_json::to_string_pretty(&data)?)
    } else {
        let mut text = String::new();
        if running.is_some() || sourced.origin.is_some() {
            let show = |o: &Option<crate::katalog_object::Origin>| {
                o.as_ref()
                    .map_or_else(|| "a file".to_string(), ToString::to_string)
            };
            text.push_str(&format!(
                "katalog {}: the cluster runs {}; planning {}\n\n",
                katalog.name,
                show(&running),
                show(&sourced.origin)
            ));
        }
        text.push_str(&to_text(&plans, color_stdout()));
        text
    };
    out(&text)?;
    let changed = plans
        .iter()
        .flat_map(|p| &p.changes)
        .any(|c| c.action != Action::Noop);
    Ok(if a.detailed_exitcode && changed { 2 } else { 0 })
}

/// The plan of one CR: its graph walked over what exists, then each rendered node and each
/// orphaned row planned.
async fn plan_cr(
    kube: &Kube,
    katalog: &Katalog,
    cr: &Value,
    providers: &[Arc<dyn Provider>],
) -> anyhow::Result<CrPlan> {
    let api_version = cr
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = cr
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = cr
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = cr
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let entry = katalog.entry_for(api_version, &kind).ok_or_else(|| {
        anyhow!(
            "{api_version} {kind} is not handled by Katalog {}",
            katalog.name
        )
    })?;
    let who = format!(
        "{kind} {}{name}",
        namespace
            .as_deref()
            .map(|n| format!("{n}/"))
            .unwrap_or_default()
    );
    let mut planner = Planner::new(kube, katalog, entry, cr, providers, namespace.clone());
    let desired = planner
        .walk_what_exists()
        .await
        .map_err(|e| anyhow!("{who}: {e:#}"))?;
    let mut changes = Vec::new();
    for child in &desired.children {
        changes.push(
            plan_child(&mut planner, child, desired.waiting_for(&child.source))
                .await
                .map_err(|e| anyhow!("{who}: {e:#}"))?,
        );
    }
    for ext in &desired.external {
        changes.push(
            plan_external(&mut planner, ext, desired.waiting_for(&ext.source))
                .await
                .map_err(|e| anyhow!("{who}: {e:#}"))?,
        );
    }
    changes.extend(orphaned_rows(&planner, &desired.external).await);
    Ok(CrPlan {
        kind,
        namespace,
        name,
        changes,
    })
}

/// The change to one child. A waiting child is shown as it renders so far, without a dry
/// run (its placeholders would not validate); any other is dry-run with the body the agent
/// writes ([`orkestra_engine::apply::body`]) and the agent's field manager.
async fn plan_child(
    planner: &mut Planner<'_>,
    child: &Child,
    waiting: Option<&Waiting>,
) -> anyhow::Result<Change> {
    let look = planner.child_look(child).await?;
    let (mut change, body) = decide::child_change(
        child,
        look.namespace.as_deref(),
        look.placement(),
        look.live.as_ref(),
        look.copied.as_ref(),
        waiting,
    )?;
    match waiting {
        Some(w) => decide::plan_waiting_child(&mut change, child, &body, look.live.as_ref(), w),
        None => {
            let answer = planner.dry_run_child(child, &body, &look).await?;
            decide::dry_run_change(
                &mut change,
                &body,
                look.namespace.as_deref(),
                look.live.as_ref(),
                answer,
            );
        }
    }
    decide::mask_secret_values(&mut change);
    Ok(change)
}

/// The change to one external resource: its provider's diff over its observe.
async fn plan_external(
    planner: &mut Planner<'_>,
    ext: &External,
    waiting: Option<&Waiting>,
) -> anyhow::Result<Change> {
    // Its kind's schema, owned: the look below borrows the planner.
    let schema = planner.kind_schema(ext);
    let look = planner.external_look(ext, waiting.is_some()).await?;
    Ok(decide::external_change(ext, waiting, look, schema.as_ref()))
}

/// The CR's `status.external` rows that no rendered resource matches, each planned as a no-op
/// marked orphaned ([`decide::orphaned_change`]), after looking whether its resource still
/// exists.
async fn orphaned_rows(planner: &Planner<'_>, rendered: &[External]) -> Vec<Change> {
    let mut out = Vec::new();
    for row in decide::orphaned(rendered, &planner.owner, &planner.rows) {
        let exists = planner.row_resource_exists(&row).await;
        out.push(decide::orphaned_change(&row, exists));
    }
    out
}
