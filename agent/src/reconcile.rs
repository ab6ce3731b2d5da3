//! One reconcile of one CR: finalizer, render, children, providers, status — or, when the CR is
//! being deleted, the cleanup steps.
//!
//! The CR is `Ready=True` only when every external resource is ready and every child is ready by
//! the engine's rules ([`orkestra_engine::readiness`]: a Deployment available for its
//! generation, a Job complete, ...). A not-ready child makes it `Ready=False`, reason `Waiting`,
//! naming the child and what it lacks. The controller watches the children's kinds, so a child's
//! status change (a Deployment becoming available) wakes the CR; children of kinds it does not
//! watch are looked at again after [`UNWATCHED_REQUEUE`]. The status is written only when it
//! changes, so a CR waiting on an unchanging child costs no writes.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Action;
use serde_json::Value;

use crate::children::Synced;
use crate::cleanup;
use crate::controller::EntryCtx;
use crate::error::Error;
use crate::finalizer;
use crate::status::{self, Body, Ready};
use crate::walk;

/// Requeue soon when the object changed under us (a finalizer patch lost a race).
const RACE_REQUEUE: Duration = Duration::from_millis(200);
/// Requeue while an external resource is still on its way (creating, updating).
const PROGRESS_REQUEUE: Duration = Duration::from_secs(10);
/// Requeue while a child of a kind without a watch is not ready yet.
const UNWATCHED_REQUEUE: Duration = Duration::from_secs(5);
/// The `Ready=False` reason while children are not ready yet (composition.md's word for a CR
/// that waits on one of its nodes).
pub const WAITING: &str = "Waiting";

/// `Kind namespace/name` of a CR, for messages.
pub fn label(obj: &DynamicObject, kind: &str) -> String {
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    match obj.metadata.namespace.as_deref() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// The CR's own API (namespaced when it is).
pub fn cr_api(ctx: &EntryCtx, obj: &DynamicObject) -> Api<DynamicObject> {
    match (&obj.metadata.namespace, ctx.namespaced) {
        (Some(ns), true) => Api::namespaced_with(ctx.agent.client.clone(), ns, &ctx.api),
        _ => Api::all_with(ctx.agent.client.clone(), &ctx.api),
    }
}

/// A render failure as the agent's error, naming the CR and the Katalog field.
pub fn render_error(who: &str, e: orkestra_engine::RenderError) -> Error {
    Error::Render {
        cr: who.to_string(),
        field: e.field,
        message: e.message,
    }
}

/// Whether the entry's finalizer may wait for its first create intent: it makes external
/// resources (an intent is likely) and has no onDelete step (which must run even for a CR deleted
/// right after it was made).
fn joins_first_intent(ctx: &EntryCtx) -> bool {
    !ctx.entry.external.is_empty()
        && !ctx
            .entry
            .kube
            .iter()
            .any(|k| k.hook == orkestra_engine::katalog::HookKind::OnDelete)
}

/// Reconcile one CR. A `drift_check` (released by the drift schedule) observes every external
/// resource; another reconcile may reuse the last full pass (see `freshness`).
pub async fn reconcile(
    obj: Arc<DynamicObject>,
    ctx: Arc<EntryCtx>,
    drift_check: bool,
) -> Result<Action, Error> {
    let who = label(&obj, &ctx.entry.api.kind);
    let api = cr_api(&ctx, &obj);
    if obj.metadata.deletion_timestamp.is_some() {
        return cleanup::run(&ctx, &api, &obj, &who).await;
    }
    if let Some(why) = ctx
        .entry
        .refuses_namespace(obj.metadata.namespace.as_deref())
    {
        // Refused before anything is written for it (no finalizer, no child); the CR says why
        // and waits for a change (a new Katalog restarts the controller).
        let cr = serde_json::to_value(&*obj).map_err(|e| Error::Invalid {
            what: who.clone(),
            message: e.to_string(),
        })?;
        let ready = Ready::no("NamespaceNotAllowed", why);
        let status = status::build(&cr, &ready, Body::from_live(&cr));
        status::write(&api, &cr, status, &ctx.written).await?;
        return Ok(Action::await_change());
    }
    // The finalizer comes first unless the entry makes external resources: then it joins the
    // first create intent (see `journal`), or comes as soon as a child needs it, or after the
    // walk (below).
    let obj = if finalizer::has(&obj) || joins_first_intent(&ctx) {
        obj
    } else {
        match finalizer::add(&api, &obj).await? {
            Some(o) => Arc::new(o),
            None => return Ok(Action::requeue(RACE_REQUEUE)),
        }
    };
    let cr = serde_json::to_value(&*obj).map_err(|e| Error::Invalid {
        what: who.clone(),
        message: e.to_string(),
    })?;
    // Other CRs the entry's templates read (`.cross`), read before anything renders.
    let cr = match crate::cross::read(&ctx, &cr, &who).await {
        Ok(Some(with)) => with,
        Ok(None) => cr,
        Err(e) => return fail(&ctx, &api, &obj, &cr, e).await,
    };

    let cycle = walk::Cycle {
        request_id: request_id(&obj),
        drift_check,
    };
    let walked = match walk::run(&ctx, &api, &obj, &cr, &who, &cycle).await {
        Ok(w) => w,
        Err(e) => return fail(&ctx, &api, &obj, &cr, e).await,
    };
    if !walked.finalized && finalizer::add(&api, &obj).await?.is_none() {
        return Ok(Action::requeue(RACE_REQUEUE));
    }
    let mut report = walked.external;
    for e in &report.errors {
        ctx.agent
            .events
            .warning(&obj, &ctx.api, "ExternalError", "SyncExternal", e.clone())
            .await;
    }
    // A waiting external node keeps the row it had (what exists stays), saying what it waits for.
    let waiting = &walked.desired.waiting;
    if waiting.iter().any(|w| is_external(&ctx, &w.source)) {
        let previous = orkestra_provider::journal::rows_of(&cr);
        let placeholders = orkestra_engine::walk(
            &ctx.katalog,
            &ctx.entry,
            &cr,
            &ctx.agent.provider_schemas,
            &walked.observed,
            orkestra_engine::Unknown::Placeholder,
        )
        .ok();
        for w in waiting.iter().filter(|w| is_external(&ctx, &w.source)) {
            let Some(item) = ctx.entry.external.iter().find(|x| x.source == w.source) else {
                continue;
            };
            let rendered = placeholders
                .as_ref()
                .and_then(|d| d.external.iter().find(|x| x.source == w.source))
                .filter(|x| !x.name.contains("(known after apply"));
            let prev = rendered.and_then(|x| {
                previous
                    .iter()
                    .find(|r| r.provider == x.provider && r.kind == x.kind && r.name == x.name)
            });
            report.rows.push(walk::waiting_row(
                prev,
                rendered,
                &item.provider,
                &item.kind,
                &w.node,
                &w.message(),
            ));
        }
    }
    ctx.agent.metrics.external_rows(
        &ctx.crd,
        &key(&obj),
        report
            .rows
            .iter()
            .map(|r| (r.provider.clone(), r.kind.clone(), format!("{:?}", r.state)))
            .collect(),
    );

    let synced = &walked.synced;
    // What status fields read of the children (copies of every live child): only when there
    // are status fields to read it.
    let live = if ctx.entry.status.is_empty() {
        Value::Null
    } else {
        children_by_block(synced)
    };
    let not_ready: Vec<&Synced> = synced.iter().filter(|s| !s.ready.is_ready()).collect();
    let messages: Vec<String> = waiting
        .iter()
        .map(|w| w.message())
        .chain(
            not_ready
                .iter()
                .filter_map(|s| s.ready.message().map(str::to_string)),
        )
        .collect();
    let waits = orkestra_engine::readiness::summary(&messages);
    let externals_ready = report
        .rows
        .iter()
        .all(|r| r.state == orkestra_provider::State::Ready);
    let mut ready = match (externals_ready, waits) {
        (true, None) => Ready::yes(
            "Reconciled",
            format!(
                "{} children ready, {} external resources ready{}",
                synced.len(),
                report.rows.len(),
                drift_note(synced)
            ),
        ),
        // Children not ready yet or nodes waiting for them: a status change of a watched kind
        // wakes the CR.
        (true, Some(w)) => Ready::no(WAITING, w),
        (false, w) => {
            let external = report.describe(|r| {
                r.state != orkestra_provider::State::Ready && !r.message.contains(" waits for ")
            });
            // Nodes waiting for a value: the CR waits (composition.md, rule 3), their messages
            // first; otherwise an external resource is what is not ready.
            let reason = if waiting.is_empty() {
                "ExternalNotReady"
            } else {
                WAITING
            };
            match (external.is_empty(), w) {
                (true, Some(w)) => Ready::no(reason, w),
                (_, Some(w)) if reason == WAITING => Ready::no(reason, format!("{w}; {external}")),
                (_, Some(w)) => Ready::no(reason, format!("{external}; {w}")),
                (_, None) => Ready::no(reason, external),
            }
        }
    };
    let fields = match orkestra_engine::render_status(
        &ctx.katalog,
        &ctx.entry,
        &cr,
        &live,
        &walked.observed,
    ) {
        Ok(f) => f,
        Err(e) => {
            ready = Ready::no("StatusFieldFailed", format!("{}: {}", e.field, e.message));
            Body::from_live(&cr).fields
        }
    };
    // What normalize/mutation set before rendering (field names only), for the user to see.
    let mut fields = fields;
    if !walked.desired.mutated.is_empty() {
        fields.insert("mutated".into(), serde_json::json!(walked.desired.mutated));
    }
    let body = Body {
        fields,
        external: Body::rows(&report.rows),
        waiting: waiting
            .iter()
            .map(|w| orkestra_provider::WaitingRow {
                node: w.node.clone(),
                waits_for: w.on.clone(),
                state: w.on_state.clone(),
                value: w.value.clone(),
            })
            .collect(),
    };
    // A young CR that waits only on its children: its first status can be the Ready one.
    let only_children = !ready.ready && ready.reason == WAITING && waiting.is_empty();
    if let Some(left) = only_children
        .then(|| status::first_status_hold(&cr, chrono::Utc::now()))
        .flatten()
    {
        return Ok(Action::requeue(left));
    }
    status::write(&api, &cr, status::build(&cr, &ready, body), &ctx.written).await?;

    let mut next = ctx.entry.reconciler.resync;
    if let Some(d) = report.requeue_after {
        next = next.min(d);
    }
    if report.rows.iter().any(|r| r.state.in_progress()) {
        next = next.min(PROGRESS_REQUEUE);
    }
    // A node waiting on an external resource is looked at again with it.
    if !waiting.is_empty() {
        next = next.min(walk::WAITING_REQUEUE);
    }
    // A not-ready child of a kind the controller does not watch (a `custom` object) would only
    // be looked at again on resync: look sooner.
    if not_ready
        .iter()
        .any(|s| !watched(&ctx.entry, s.live.get("apiVersion"), &s.kind))
    {
        next = next.min(UNWATCHED_REQUEUE);
    }
    Ok(Action::requeue(next))
}

/// Record a failed cycle on the CR (Ready=False naming the cause, a Warning event), keeping the
/// status it had otherwise, and hand the error to the controller's backoff.
pub async fn fail(
    ctx: &EntryCtx,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    cr: &Value,
    e: Error,
) -> Result<Action, Error> {
    let ready = Ready::no(e.reason(), message_of(&e));
    let status = status::build(cr, &ready, Body::from_live(cr));
    if let Err(w) = status::write(api, cr, status, &ctx.written).await {
        tracing::warn!(error = %w, "could not record the failure on the CR's status");
    }
    ctx.agent
        .events
        .warning(obj, &ctx.api, e.reason(), "Reconcile", message_of(&e))
        .await;
    Err(e)
}

/// The message for status and events: the error without the CR's own name in front.
fn message_of(e: &Error) -> String {
    match e {
        Error::Render { field, message, .. } => format!("{field}: {message}"),
        Error::Step { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `; drifted (onCreate, not rewritten): Secret ns/x` for create-only children that no longer
/// match what they read (composition.md, rule 7), or nothing.
fn drift_note(synced: &[Synced]) -> String {
    let drifted: Vec<String> = synced
        .iter()
        .filter(|s| s.drifted)
        .map(|s| format!("{} {}", s.kind, s.name))
        .collect();
    if drifted.is_empty() {
        return String::new();
    }
    format!(
        "; drifted from what they read (onCreate, not rewritten): {}",
        drifted.join(", ")
    )
}

/// Whether the node written at `source` is an external resource.
fn is_external(ctx: &EntryCtx, source: &str) -> bool {
    ctx.entry.external.iter().any(|x| x.source == source)
}

/// `namespace/name` of a CR.
pub fn key(obj: &DynamicObject) -> String {
    format!(
        "{}/{}",
        obj.metadata.namespace.as_deref().unwrap_or_default(),
        obj.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Correlates the logs of one reconcile.
fn request_id(obj: &DynamicObject) -> String {
    format!(
        "{}@{}",
        key(obj),
        obj.metadata.resource_version.as_deref().unwrap_or_default()
    )
}

/// `{"deployments": {"web": <live Deployment>}, ...}` for status templates (`.children`).
fn children_by_block(synced: &[Synced]) -> Value {
    orkestra_engine::render::children_value(synced.iter().map(|s| (s.block.as_str(), &s.live)))
}

/// Whether the entry's controller watches children of `kind` (its Kubernetes blocks other than
/// `custom`, see `controller::child_kinds`), so that their status changes wake the CR.
fn watched(entry: &orkestra_engine::CrdEntry, api_version: Option<&Value>, kind: &str) -> bool {
    let api_version = api_version.and_then(Value::as_str);
    entry.kube.iter().any(|k| {
        k.block
            .type_meta()
            .is_some_and(|(av, k)| k == kind && api_version.is_none_or(|a| a == av))
    })
}
