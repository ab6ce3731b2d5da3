//! Deleting a CR under the finalizer: onDelete jobs run to completion, then the entry's graph is
//! deleted in reverse edge order (composition.md, rule 8): a node goes only after everything that
//! reads it is gone — providers delete external resources, children that read another node and
//! cluster-scoped children (owner references cannot reach them from a namespaced owner) are
//! deleted explicitly, each step an event — then the finalizer goes. A step that fails or has not finished keeps the
//! finalizer and says why on the CR. A CR whose Katalog no longer renders is cleaned up from what
//! its status recorded (`status.external` rows), so it can always be deleted without losing track
//! of a resource.

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::runtime::controller::Action;
use serde_json::Value;

use crate::children::{api_for, FIELD_MANAGER};
use crate::controller::EntryCtx;
use crate::error::{is_status, Error, KubeContext};
use crate::external;
use crate::finalizer;
use crate::reconcile::{fail, key, render_error};
use crate::status::{self, Body, Ready};

/// Check again on an unfinished onDelete job this often.
const JOB_POLL: Duration = Duration::from_secs(3);
/// Check again on external resources still being deleted this often (unless they ask otherwise).
const EXTERNAL_POLL: Duration = Duration::from_secs(10);

/// Where one onDelete object stands.
enum JobState {
    Done,
    Running(String),
    Failed(String),
}

/// The CR's graph as deletion sees it: rendered with placeholders for what is not known, where
/// every external resource the status recorded (matched by provider, kind and name) counts as
/// observed with its recorded outputs. A grant that reads a role's and a database's names from
/// their outputs is thus deleted with those names, not without them. Each pass can name nodes
/// whose names read outputs found by the pass before, so there are at most as many passes as
/// external nodes.
fn walk_recorded(
    ctx: &EntryCtx,
    cr: &Value,
) -> Result<orkestra_engine::Desired, orkestra_engine::RenderError> {
    let rows = orkestra_provider::journal::rows_of(cr);
    let mut observed = orkestra_engine::Observed::new();
    let mut passes = 0;
    loop {
        let desired = orkestra_engine::walk(
            &ctx.katalog,
            &ctx.entry,
            cr,
            &ctx.agent.provider_schemas,
            &observed,
            orkestra_engine::Unknown::Placeholder,
        )?;
        passes += 1;
        let before = observed.len();
        for item in &desired.external {
            if observed.contains_key(&item.source) {
                continue;
            }
            let Some(row) = rows.iter().find(|r| {
                r.provider == item.provider && r.kind == item.kind && r.name == item.name
            }) else {
                continue;
            };
            observed.insert(
                item.source.clone(),
                orkestra_engine::Seen::external(
                    &row.name,
                    row.id.as_deref(),
                    &format!("{:?}", row.state),
                    &row.outputs,
                    row.state == orkestra_provider::State::Ready,
                ),
            );
        }
        if observed.len() == before || passes > ctx.entry.external.len() {
            return Ok(desired);
        }
    }
}

/// Run the deletion steps of a CR being deleted.
pub async fn run(
    ctx: &EntryCtx,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    who: &str,
) -> Result<Action, Error> {
    if !finalizer::has(obj) {
        return Ok(Action::await_change());
    }
    ctx.fresh.forget(&key(obj));
    let cr = serde_json::to_value(obj).map_err(|e| Error::Invalid {
        what: who.to_string(),
        message: e.to_string(),
    })?;
    // A walk with placeholders, fed what the status recorded of each external resource, names
    // every node it can and gives each the outputs it read when it was made.
    let desired = match walk_recorded(ctx, &cr) {
        Ok(d) => d,
        // Without a rendering, what the CR's status recorded is all there is to clean up.
        Err(e) => return from_status(ctx, api, obj, &cr, who, render_error(who, e)).await,
    };

    // 1. onDelete jobs, one after the other.
    for job in &desired.on_delete {
        let resolved = ctx.agent.apis.resolve(&job.api_version, &job.kind).await?;
        let jobs = api_for(
            &ctx.agent.client,
            &resolved,
            job.namespace
                .as_deref()
                .or(obj.metadata.namespace.as_deref()),
        );
        let what = format!("onDelete {} {}", job.kind, job.name);
        let live = match jobs
            .get_opt(&job.name)
            .await
            .ctx(|| format!("reading {what}"))?
        {
            Some(l) => l,
            None => {
                let o: DynamicObject =
                    serde_json::from_value(job.object.clone()).map_err(|e| Error::Invalid {
                        what: what.clone(),
                        message: e.to_string(),
                    })?;
                let pp = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                match jobs.create(&pp, &o).await {
                    Ok(c) => {
                        ctx.agent
                            .events
                            .normal(
                                obj,
                                &ctx.api,
                                "Deleting",
                                "RunOnDelete",
                                format!("started {what}"),
                            )
                            .await;
                        c
                    }
                    Err(e) if is_status(&e, 409) => jobs
                        .get(&job.name)
                        .await
                        .ctx(|| format!("reading {what}"))?,
                    Err(source) => {
                        return fail(
                            ctx,
                            api,
                            obj,
                            &cr,
                            Error::Kube {
                                context: format!("creating {what}"),
                                source,
                            },
                        )
                        .await
                    }
                }
            }
        };
        match job_state(
            &job.kind,
            &serde_json::to_value(&live).unwrap_or(Value::Null),
        ) {
            JobState::Done => {}
            JobState::Running(m) => {
                deleting(ctx, api, &cr, format!("waiting for {what}: {m}")).await?;
                return Ok(Action::requeue(JOB_POLL));
            }
            JobState::Failed(m) => {
                let e = Error::Step { cr: who.to_string(), message: format!("{what} failed: {m}; the finalizer stays until it succeeds (delete the Job to retry)") };
                return fail(ctx, api, obj, &cr, e).await;
            }
        }
    }

    // 2. Every node in reverse graph order: a node goes only after everything that reads it is
    //    gone (the Deployment before the database it reads). External resources are deleted by
    //    their providers; children that read another node, and cluster-scoped children, are
    //    deleted explicitly and must be gone before the walk goes on; the other namespaced
    //    children go by garbage collection once the finalizer is released, as always.
    let graph = &ctx.entry.graph;
    for n in graph.deletion_order() {
        let node = &graph.nodes[n];
        if let Some(ext) = desired.external.iter().find(|x| x.source == node.source) {
            if ext.name.contains("(known after apply") {
                // Never rendered, so never created by name: nothing to delete.
                continue;
            }
            let report = external::delete(
                &ctx.agent,
                &cr,
                &ctx.katalog.name,
                std::slice::from_ref(ext),
                format!("{}@delete", key(obj)),
                ctx.cancel.child_token(),
            )
            .await;
            if let Some(action) = external_progress(ctx, api, obj, &cr, report).await? {
                return Ok(action);
            }
            continue;
        }
        let Some(child) = desired.children.iter().find(|c| c.source == node.source) else {
            continue;
        };
        if child.name.contains("(known after apply") {
            continue;
        }
        let resolved = ctx
            .agent
            .apis
            .resolve(&child.api_version, &child.kind)
            .await?;
        if resolved.namespaced && node.deps.is_empty() {
            continue;
        }
        let capi = api_for(
            &ctx.agent.client,
            &resolved,
            child
                .namespace
                .as_deref()
                .or(obj.metadata.namespace.as_deref()),
        );
        let before: Vec<&str> = node
            .deps
            .iter()
            .map(|d| graph.nodes[d.on].label.as_str())
            .collect();
        let what = format!("{} {}", child.kind, child.name);
        match capi.delete(&child.name, &DeleteParams::background()).await {
            Ok(_) => {
                let message = if before.is_empty() {
                    format!("deleted {what}")
                } else {
                    format!("deleted {what} before {}", before.join(", "))
                };
                ctx.agent
                    .events
                    .normal(obj, &ctx.api, "Deleting", "DeleteChild", message)
                    .await
            }
            Err(e) if is_status(&e, 404) => {}
            Err(source) => {
                let e = Error::Kube {
                    context: format!("deleting {what}"),
                    source,
                };
                return fail(ctx, api, obj, &cr, e).await;
            }
        }
        // Still there (a finalizer of its own): what it reads waits until it is gone.
        if capi
            .get_opt(&child.name)
            .await
            .ctx(|| format!("reading {what}"))?
            .is_some()
        {
            deleting(ctx, api, &cr, format!("waiting for {what} to be gone")).await?;
            return Ok(Action::requeue(JOB_POLL));
        }
    }

    // 4. The finalizer goes.
    finish(ctx, api, obj, who).await
}

/// Remove the finalizer (the last step).
async fn finish(
    ctx: &EntryCtx,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    who: &str,
) -> Result<Action, Error> {
    if finalizer::remove(api, obj).await?.is_none() {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    ctx.agent
        .metrics
        .external_rows(&ctx.crd, &key(obj), Vec::new());
    tracing::info!(cr = %who, "cleanup finished, finalizer removed");
    Ok(Action::await_change())
}

/// Cleanup of a CR whose Katalog does not render (its spec no longer fits, or the Katalog
/// changed): the external resources its status records are deleted from their rows (per each
/// row's recorded deletion policy), then the finalizer goes. onDelete jobs and cluster-scoped
/// children cannot be known without a rendering; a Warning event says so. Namespaced children
/// go by garbage collection as always.
async fn from_status(
    ctx: &EntryCtx,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    cr: &Value,
    who: &str,
    render_error: Error,
) -> Result<Action, Error> {
    let report = external::delete_recorded(
        &ctx.agent,
        cr,
        &ctx.katalog.name,
        format!("{}@delete", key(obj)),
        ctx.cancel.child_token(),
    )
    .await;
    let recorded = report.rows.len();
    if let Some(action) = external_progress(ctx, api, obj, cr, report).await? {
        return Ok(action);
    }
    ctx.agent
        .events
        .warning(
            obj,
            &ctx.api,
            "CleanupFromStatus",
            "Delete",
            format!(
                "the Katalog does not render for this CR ({render_error}); cleaned up the {recorded} external resources its status recorded; onDelete jobs and cluster-scoped children could not be known and were not run or deleted"
            ),
        )
        .await;
    finish(ctx, api, obj, who).await
}

/// Report a provider-delete pass: Warning events for errors; while anything is not finished,
/// the pending rows go on the status and the returned action comes back later.
async fn external_progress(
    ctx: &EntryCtx,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    cr: &Value,
    report: external::ExternalReport,
) -> Result<Option<Action>, Error> {
    for e in &report.errors {
        ctx.agent
            .events
            .warning(
                obj,
                &ctx.api,
                "ExternalDeleteError",
                "DeleteExternal",
                e.clone(),
            )
            .await;
    }
    if !report.delete_finished() {
        let message = format!(
            "deleting external resources: {}",
            report.describe(|r| !r.state.delete_finished())
        );
        let status = status::build(
            cr,
            &Ready::no("Deleting", message),
            Body {
                external: Body::rows(&report.rows),
                ..Body::from_live(cr)
            },
        );
        status::write(api, cr, status, &ctx.written).await?;
        return Ok(Some(Action::requeue(
            report
                .requeue_after
                .unwrap_or(EXTERNAL_POLL)
                .min(EXTERNAL_POLL),
        )));
    }
    if !report.rows.is_empty() {
        ctx.agent
            .events
            .normal(
                obj,
                &ctx.api,
                "Deleting",
                "DeleteExternal",
                format!(
                    "{} external resources deleted or released",
                    report.rows.len()
                ),
            )
            .await;
    }
    Ok(None)
}

async fn deleting(
    ctx: &EntryCtx,
    api: &Api<DynamicObject>,
    cr: &Value,
    message: String,
) -> Result<(), Error> {
    let status = status::build(cr, &Ready::no("Deleting", message), Body::from_live(cr));
    status::write(api, cr, status, &ctx.written).await
}

/// A Job is done when it succeeded, failed when its Failed condition is True; any other kind of
/// onDelete object is done once it exists.
fn job_state(kind: &str, live: &Value) -> JobState {
    if kind != "Job" {
        return JobState::Done;
    }
    let conditions = live
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let holds = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t && c["status"] == "True")
    };
    if live
        .pointer("/status/succeeded")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        > 0
        || holds("Complete").is_some()
    {
        return JobState::Done;
    }
    if let Some(c) = holds("Failed") {
        return JobState::Failed(
            c.get("message")
                .and_then(Value::as_str)
                .unwrap_or("the Job failed")
                .to_string(),
        );
    }
    JobState::Running(format!(
        "{} active",
        live.pointer("/status/active")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_states() {
        assert!(matches!(
            job_state("Job", &json!({"status": {"succeeded": 1}})),
            JobState::Done
        ));
        assert!(matches!(
            job_state("Job", &json!({"status": {"active": 1}})),
            JobState::Running(_)
        ));
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}});
        assert!(
            matches!(job_state("Job", &failed), JobState::Failed(m) if m == "BackoffLimitExceeded")
        );
        assert!(matches!(job_state("ConfigMap", &json!({})), JobState::Done));
    }
}
