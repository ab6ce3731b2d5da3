//! A CR's external resources, through the provider runtime: declarations from the rendered
//! items, one status row per resource.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use orkestra_engine::External;
use orkestra_provider::{
    Declaration, KubeReader, Owner, ProviderContext, ProviderError, RunReport, State, StatusRow,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::context::AgentContext;
use crate::journal::StatusJournal;

/// What the provider runtime reported for one CR.
#[derive(Debug, Default)]
pub struct ExternalReport {
    /// One row per rendered external item, in Katalog order.
    pub rows: Vec<StatusRow>,
    /// Errors behind Error rows, for events (messages only, never secret values).
    pub errors: Vec<String>,
    /// Come back after this long, if a resource asked.
    pub requeue_after: Option<Duration>,
}

impl ExternalReport {
    /// Every resource is Ready.
    pub fn all_ready(&self) -> bool {
        self.rows.iter().all(|r| r.state == State::Ready)
    }
    /// Deleting may finish: every resource deleted, orphaned or someone else's.
    pub fn delete_finished(&self) -> bool {
        self.rows.iter().all(|r| r.state.delete_finished())
    }

    /// `aws s3 NAME: State message; ...` for the rows `keep` selects (for the Ready condition).
    pub fn describe(&self, keep: impl Fn(&StatusRow) -> bool) -> String {
        self.rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| {
                format!(
                    "{} {} {}: {:?} {}",
                    r.provider, r.kind, r.name, r.state, r.message
                )
                .trim_end()
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Turn rendered items into declarations; items that cannot become one get an Error row.
///
/// For a delete, the walk renders with every output unknown (what it reads may be gone already),
/// so fields holding a `(known after apply: …)` placeholder are left out: deleting needs the
/// resource's identity, ownership and policies, not what it was composed from, and a
/// placeholder must not fail a field's rule (an ARN, a host name) and hold the CR's deletion.
/// When a required field was among them, the CR's status row of the resource stands in (as for
/// a CR whose Katalog no longer renders).
fn declarations(
    ctx: &AgentContext,
    cr: &Value,
    items: &[External],
    owner: &Owner,
    deleting: bool,
) -> (Vec<Declaration>, Vec<(usize, StatusRow, String)>) {
    let recorded = if deleting {
        orkestra_provider::journal::rows_of(cr)
    } else {
        Vec::new()
    };
    let mut decls = Vec::new();
    let mut failed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut fields = item.fields.clone();
        if deleting {
            fields.retain(|_, v| !orkestra_engine::render::has_placeholder(v));
        }
        let problem = match ctx
            .provider_schemas
            .iter()
            .find(|s| s.name == item.provider)
        {
            None => format!("provider {} is not registered in this agent", item.provider),
            Some(schema) => match schema.kind(&item.kind) {
                None => format!("provider {} has no kind {}", item.provider, item.kind),
                Some(kind) => {
                    match Declaration::from_rendered(&item.provider, kind, &fields, owner.clone()) {
                        Ok(d) => {
                            decls.push(d);
                            continue;
                        }
                        Err(e) => match recorded.iter().find(|r| {
                            r.provider == item.provider
                                && r.kind == item.kind
                                && r.name == item.name
                        }) {
                            Some(row) => {
                                decls.push(Declaration::from_row_with(
                                    row,
                                    kind,
                                    &fields,
                                    owner.clone(),
                                ));
                                continue;
                            }
                            None => e.short_message(),
                        },
                    }
                }
            },
        };
        let row = error_row(item, &problem);
        failed.push((
            i,
            row,
            format!("{} {} {}: {problem}", item.provider, item.kind, item.name),
        ));
    }
    (decls, failed)
}

fn error_row(item: &External, message: &str) -> StatusRow {
    StatusRow {
        provider: item.provider.clone(),
        kind: item.kind.clone(),
        name: item.name.clone(),
        id: None,
        state: State::Error,
        message: message.to_string(),
        last_sync_time: orkestra_provider::status::now_rfc3339(),
        outputs: Default::default(),
        intent: None,
        deletion_policy: None,
    }
}

fn context(
    ctx: &AgentContext,
    cr: &Value,
    request_id: String,
    cancel: CancellationToken,
) -> ProviderContext {
    // The reader is bound to the CR's namespace: a provider cannot read another one's Secrets.
    let namespace = cr
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kube = KubeReader::new(ctx.client.clone(), namespace);
    ProviderContext::new(request_id, cr.clone(), kube).with_cancel(cancel)
}

/// The journal of one reconcile of `cr`: every wave of the walk records its create intents
/// through the same one, so a later wave's intent write keeps an earlier wave's rows.
pub fn journal(
    api: &Api<DynamicObject>,
    cr: &Value,
    meta: &kube::api::ObjectMeta,
    written: &Arc<crate::status::LastWritten>,
) -> Arc<StatusJournal> {
    Arc::new(StatusJournal::new(
        api.clone(),
        Arc::new(cr.clone()),
        meta,
        written.clone(),
    ))
}

/// Bring every external resource of `items` to its declared state; creates are recorded on the
/// CR's status (through `journal`) before they are made.
pub async fn reconcile(
    ctx: &AgentContext,
    journal: &Arc<StatusJournal>,
    cr: &Value,
    katalog: &str,
    items: &[External],
    request_id: String,
    cancel: CancellationToken,
) -> ExternalReport {
    let pctx = context(ctx, cr, request_id, cancel).with_journal(journal.clone());
    run(ctx, &pctx, katalog, items, false).await
}

/// Delete (or orphan) every external resource of `cr`.
pub async fn delete(
    ctx: &AgentContext,
    cr: &Value,
    katalog: &str,
    items: &[External],
    request_id: String,
    cancel: CancellationToken,
) -> ExternalReport {
    let pctx = context(ctx, cr, request_id, cancel);
    run(ctx, &pctx, katalog, items, true).await
}

/// Delete (or orphan, per each row's recorded policy) the external resources `cr`'s status
/// records, for a CR whose Katalog no longer renders: every row becomes a declaration of its
/// name only, so provider defaults stand in for the fields that cannot be rendered (region
/// discovery, the agent's own credentials). Rows of resources already gone, left alone or
/// someone else's are skipped; ownership is still checked before anything is deleted.
pub async fn delete_recorded(
    ctx: &AgentContext,
    cr: &Value,
    katalog: &str,
    request_id: String,
    cancel: CancellationToken,
) -> ExternalReport {
    let owner = Owner::of_cr(cr, katalog);
    let mut decls = Vec::new();
    let mut out = ExternalReport::default();
    for row in orkestra_provider::journal::rows_of(cr) {
        if matches!(
            row.state,
            State::Deleted | State::Orphaned | State::Conflict
        ) {
            continue;
        }
        let kind = ctx
            .provider_schemas
            .iter()
            .find(|s| s.name == row.provider)
            .and_then(|s| s.kind(&row.kind));
        match kind {
            Some(kind) => decls.push(Declaration::from_row(&row, kind, owner.clone())),
            None => {
                let problem = format!(
                    "provider {} kind {} is not registered in this agent: cannot delete {}",
                    row.provider, row.kind, row.name
                );
                out.errors.push(problem.clone());
                out.rows.push(StatusRow {
                    state: State::Error,
                    message: problem,
                    last_sync_time: orkestra_provider::status::now_rfc3339(),
                    ..row
                });
            }
        }
    }
    if decls.is_empty() {
        return out;
    }
    let pctx = context(ctx, cr, request_id, cancel);
    let report = ctx.providers.delete_all(&pctx, &decls).await;
    out.errors
        .extend(report.errors.iter().map(ProviderError::short_message));
    out.rows.extend(report.rows);
    out.requeue_after = report.requeue_after;
    out
}

async fn run(
    ctx: &AgentContext,
    pctx: &ProviderContext,
    katalog: &str,
    items: &[External],
    deleting: bool,
) -> ExternalReport {
    if items.is_empty() {
        return ExternalReport::default();
    }
    let owner = Owner::of_cr(&pctx.cr, katalog);
    let (decls, failed) = declarations(ctx, &pctx.cr, items, &owner, deleting);
    let report: RunReport = if decls.is_empty() {
        RunReport::default()
    } else if deleting {
        ctx.providers.delete_all(pctx, &decls).await
    } else {
        ctx.providers.reconcile(pctx, &decls).await
    };
    // Put the rows back in Katalog order, the failed items where they were.
    let mut rows = report.rows.into_iter();
    let mut out = ExternalReport {
        errors: report
            .errors
            .iter()
            .map(ProviderError::short_message)
            .collect(),
        requeue_after: report.requeue_after,
        ..ExternalReport::default()
    };
    let mut failed = failed.into_iter().peekable();
    for i in 0..items.len() {
        if failed.peek().is_some_and(|(j, _, _)| *j == i) {
            let (_, row, err) = failed.next().expect("peeked");
            out.rows.push(row);
            out.errors.push(err);
        } else if let Some(r) = rows.next() {
            out.rows.push(r);
        }
    }
    out
}
