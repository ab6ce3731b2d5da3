//! One reconcile's walk of a CR's graph (composition.md): render what can be rendered, write it,
//! look at what the writes returned, and render again.
//!
//! A wave renders the graph with everything observed so far ([`orkestra_engine::walk`]), syncs
//! the children and reconciles the external resources that became renderable in this wave, and
//! records what each returned as [`Seen`]: a child's live object and readiness, a resource's row.
//! The next wave renders with that, so a Deployment that reads an RDS endpoint is created in the
//! same reconcile as the instance once the instance is available. The walk stops when a wave
//! renders nothing new; it takes at most one wave per node. A node that still waits is neither
//! created nor changed: what exists stays, and the walk reports it ([`Walked::desired`]`.waiting`).
//! A graph without edges is one wave, exactly the reconcile the agent did before composition.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject};
use orkestra_engine::render::{child_readiness, external_ready};
use orkestra_engine::{Desired, External, Observed, Seen, Unknown};
use orkestra_provider::{State, StatusRow};
use serde_json::Value;

use crate::children::{self, Change, Synced};
use crate::controller::EntryCtx;
use crate::error::Error;
use crate::external::{self, ExternalReport};
use crate::reconcile::{key, render_error};

/// What a walk did.
#[derive(Debug, Default)]
pub struct Walked {
    /// The last wave's rendering: every node rendered, and the ones still waiting.
    pub desired: Desired,
    /// Every child synced, in the order written.
    pub synced: Vec<Synced>,
    /// Every external resource's row, in the order reconciled.
    pub external: ExternalReport,
    /// Sources of the external rows, beside `external.rows`.
    pub external_sources: Vec<String>,
    /// What was seen of each node.
    pub observed: Observed,
    /// The CR carries the finalizer now (it had it, or the walk added it).
    pub finalized: bool,
}

/// What kind of reconcile a walk is part of.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// Correlates the logs of one reconcile (and reaches the providers).
    pub request_id: String,
    /// A drift check observes every external resource instead of reusing the last pass.
    pub drift_check: bool,
}

/// Walk the graph of `cr` (see the module docs). A render error or a failed child write stops
/// the walk; what earlier waves wrote stays written.
pub async fn run(
    ctx: &EntryCtx,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    cr: &Value,
    who: &str,
    cycle: &Cycle,
) -> Result<Walked, Error> {
    let mut out = Walked::default();
    let mut done: HashSet<String> = HashSet::new();
    let journal = external::journal(api, cr, &obj.metadata, &ctx.written);
    let ready = |child: &orkestra_engine::Child, live: &Value| {
        child_readiness(&ctx.katalog, &ctx.entry, &child.source, &child.kind, live)
    };
    let cr_key = key(obj);
    for wave in 0..=ctx.entry.graph.nodes.len() {
        let desired = orkestra_engine::walk(
            &ctx.katalog,
            &ctx.entry,
            cr,
            &ctx.agent.provider_schemas,
            &out.observed,
            Unknown::Wait,
        )
        .map_err(|e| render_error(who, e))?;
        let children: Vec<&orkestra_engine::Child> = desired
            .children
            .iter()
            .filter(|c| !done.contains(&c.source))
            .collect();
        let items: Vec<External> = desired
            .external
            .iter()
            .filter(|x| !done.contains(&x.source))
            .cloned()
            .collect();
        let progressed = !children.is_empty() || !items.is_empty();
        if !progressed {
            out.desired = desired;
            break;
        }
        if !journal.finalized().await
            && needs_finalizer_first(ctx, obj, &children).await?
            && !journal.finalize().await?
        {
            return Err(Error::Step {
                cr: who.to_string(),
                message: "the CR changed while its finalizer was being added; trying again".into(),
            });
        }
        // Nothing is written for a CR whose templates fail, so no child is ever half-rendered.
        let synced = children::sync(
            &ctx.agent,
            obj.metadata.namespace.as_deref(),
            &children,
            &ready,
        )
        .await?;
        for s in &synced {
            announce(ctx, obj, who, s).await;
            out.observed
                .insert(s.source.clone(), Seen::child(&s.live, &s.ready));
            done.insert(s.source.clone());
        }
        out.synced.extend(synced);
        if !items.is_empty() {
            let inputs =
                crate::freshness::inputs(out.synced.iter().map(|s| (s.kind.as_str(), &s.live)));
            let report =
                reconcile_wave(ctx, &journal, cr, &items, (&cr_key, wave, inputs), cycle).await;
            for (item, row) in items.iter().zip(&report.rows) {
                // The state's name as the row spells it (`Creating`).
                let seen = Seen::external(
                    &row.name,
                    row.id.as_deref(),
                    &format!("{:?}", row.state),
                    &row.outputs,
                    false,
                );
                let ready = external_ready(
                    &ctx.katalog,
                    &ctx.entry,
                    &item.source,
                    &seen,
                    row.state == State::Ready,
                );
                out.observed
                    .insert(item.source.clone(), Seen { ready, ..seen });
                done.insert(item.source.clone());
                out.external_sources.push(item.source.clone());
            }
            out.external.rows.extend(report.rows);
            out.external.errors.extend(report.errors);
            out.external.requeue_after = match (out.external.requeue_after, report.requeue_after) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        out.desired = desired;
    }
    out.finalized = journal.finalized().await;
    Ok(out)
}

/// Whether `children` include one that must not exist before the CR's finalizer: one owner
/// references cannot remove (cluster-scoped, or in another namespace) or one deletion removes
/// in graph order (it reads another node). The others are the garbage collector's if the CR goes
/// before its finalizer is added.
async fn needs_finalizer_first(
    ctx: &EntryCtx,
    obj: &DynamicObject,
    children: &[&orkestra_engine::Child],
) -> Result<bool, Error> {
    for child in children {
        if child.reads_others {
            return Ok(true);
        }
        // A cluster-scoped CR owns whatever it makes; a namespaced one only what is in its
        // own namespace.
        let Some(own) = obj.metadata.namespace.as_deref() else {
            continue;
        };
        if child.namespace.as_deref().is_some_and(|ns| ns != own) {
            return Ok(true);
        }
        let resolved = ctx
            .agent
            .apis
            .resolve(&child.api_version, &child.kind)
            .await?;
        if !resolved.namespaced {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reconcile one wave's external resources or, outside a drift check, reuse the last full pass
/// over the same declarations and inputs (see `freshness`; the key is the CR's, the wave's
/// number and the fingerprint of the Secrets and ConfigMaps synced so far).
async fn reconcile_wave(
    ctx: &EntryCtx,
    journal: &Arc<crate::journal::StatusJournal>,
    cr: &Value,
    items: &[External],
    (cr_key, wave, inputs): (&str, usize, u64),
    cycle: &Cycle,
) -> ExternalReport {
    let fresh_key = crate::freshness::Freshness::wave_key(cr_key, wave);
    let reused = if cycle.drift_check {
        None
    } else {
        ctx.fresh.reuse(&fresh_key, items, inputs, Instant::now())
    };
    if let Some(rows) = reused {
        return ExternalReport {
            rows,
            ..Default::default()
        };
    }
    let report = external::reconcile(
        &ctx.agent,
        journal,
        cr,
        &ctx.katalog.name,
        items,
        cycle.request_id.clone(),
        ctx.cancel.child_token(),
    )
    .await;
    ctx.fresh
        .record(&fresh_key, items, inputs, &report.rows, Instant::now());
    report
}

/// Log and record an event for a child that was created or corrected.
async fn announce(ctx: &EntryCtx, obj: &DynamicObject, who: &str, s: &Synced) {
    if s.change == Change::Unchanged {
        return;
    }
    let (reason, verb) = if s.change == Change::Created {
        ("Created", "created")
    } else {
        ("Updated", "corrected")
    };
    tracing::info!(cr = %who, child = %format!("{} {}", s.kind, s.name), "{verb} child");
    let mut message = format!("{} {} {verb}", s.kind, s.name);
    if !s.generated.is_empty() {
        // Key names only: the values never leave the Secret.
        message.push_str(&format!(" with generated {}", s.generated.join(", ")));
    }
    ctx.agent
        .events
        .normal_about(obj, &ctx.api, reason, "SyncChild", message, &s.live)
        .await;
}

/// The status row of an external node that waits: the row it had (its resource stays as it is),
/// or a Pending row, each saying what it waits for.
pub fn waiting_row(
    previous: Option<&StatusRow>,
    ext: Option<&External>,
    provider: &str,
    kind: &str,
    label: &str,
    message: &str,
) -> StatusRow {
    match previous {
        Some(p) => StatusRow {
            message: message.to_string(),
            last_sync_time: orkestra_provider::status::now_rfc3339(),
            ..p.clone()
        },
        None => StatusRow {
            provider: provider.to_string(),
            kind: kind.to_string(),
            name: ext
                .map(|e| e.name.clone())
                .unwrap_or_else(|| label.to_string()),
            id: None,
            state: State::Pending,
            message: message.to_string(),
            last_sync_time: orkestra_provider::status::now_rfc3339(),
            outputs: Default::default(),
            intent: None,
            deletion_policy: None,
        },
    }
}

/// How long to come back while nodes wait: soon enough to notice a provider's progress.
pub const WAITING_REQUEUE: Duration = Duration::from_secs(10);
