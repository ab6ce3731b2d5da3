//! The runtime around providers: ordering, rate limiting, retries with backoff, status rows.
//!
//! Providers stay small (observe, diff, apply, delete); everything that must behave the same for
//! every provider lives here. The runtime never writes to Kubernetes either: it returns a
//! [`RunReport`] whose rows the agent patches into `status.external` and whose errors become events.

mod metrics;
mod rate_limit;
mod retry;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

pub use metrics::{NoMetrics, Operation, RuntimeMetrics};
pub use rate_limit::{RateLimit, TokenBucket};
pub use retry::RetryPolicy;

use crate::context::ProviderContext;
use crate::declaration::Declaration;
use crate::error::{Cause, ProviderError};
use crate::journal::{self, Intent};
use crate::observation::Observation;
use crate::outcome::{Outcome, State};
use crate::ownership::Ownership;
use crate::plan::Plan;
use crate::provider::Provider;
use crate::status::StatusRow;

/// Delay before coming back to a resource whose last attempt failed with a retryable error.
const ERROR_REQUEUE: Duration = Duration::from_secs(30);

struct Registered {
    provider: Arc<dyn Provider>,
    limiter: Arc<TokenBucket>,
    /// The provider takes the limiter's tokens per external call itself.
    meters_calls: bool,
}

/// Runs declarations through their providers.
pub struct ProviderRuntime {
    providers: BTreeMap<String, Registered>,
    retry: RetryPolicy,
    metrics: Arc<dyn RuntimeMetrics>,
}

impl Default for ProviderRuntime {
    fn default() -> Self {
        Self::new()
    }
}

/// What one run over a CR's declarations produced.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// One row per declaration, in declaration order.
    pub rows: Vec<StatusRow>,
    /// The errors behind Error rows (for Warning events), with their resource named.
    pub errors: Vec<ProviderError>,
    /// Come back after this long (smallest of the resources' requests), if any asked.
    pub requeue_after: Option<Duration>,
    /// Mutating external calls made in the run.
    pub mutations: u32,
}

impl RunReport {
    /// Every resource is Ready.
    pub fn all_ready(&self) -> bool {
        self.rows.iter().all(|r| r.state == State::Ready)
    }

    /// Every resource is deleted, orphaned or left alone as someone else's: the finalizer may go.
    pub fn delete_finished(&self) -> bool {
        self.rows.iter().all(|r| r.state.delete_finished())
    }

    fn push(&mut self, row: StatusRow, requeue: Option<Duration>, mutations: u32) {
        self.rows.push(row);
        self.mutations += mutations;
        if let Some(d) = requeue {
            self.requeue_after = Some(self.requeue_after.map_or(d, |cur| cur.min(d)));
        }
    }

    fn push_error(&mut self, decl: &Declaration, e: ProviderError, intent: Option<Intent>) {
        let e = decl.err(e);
        let requeue = e.retryable().then_some(ERROR_REQUEUE);
        let mut row =
            StatusRow::from_outcome(decl, &Outcome::new(State::Error).message(e.short_message()));
        row.intent = intent;
        self.push(row, requeue, 0);
        self.errors.push(e);
    }

    fn push_result(
        &mut self,
        decl: &Declaration,
        result: Result<Outcome, ProviderError>,
        intent: Option<Intent>,
    ) {
        match result {
            Ok(outcome) => {
                let mut row = StatusRow::from_outcome(decl, &outcome);
                row.intent = intent;
                self.push(row, outcome.requeue_after, outcome.mutations);
            }
            Err(e) => self.push_error(decl, e, intent),
        }
    }
}

impl ProviderRuntime {
    /// A runtime with no providers, the default retry policy and no metrics.
    pub fn new() -> Self {
        Self {
            providers: BTreeMap::new(),
            retry: RetryPolicy::default(),
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Register `provider` under its name with its own rate limit (explicit, compile-time
    /// registration: the agent lists its providers). A name already registered is an error and
    /// the runtime is left as it was: one block, one provider.
    pub fn register(
        &mut self,
        provider: Arc<dyn Provider>,
        limit: RateLimit,
    ) -> Result<&mut Self, ProviderError> {
        if self.providers.contains_key(provider.name()) {
            return Err(ProviderError::new(Cause::DuplicateProvider {
                name: provider.name().to_string(),
            }));
        }
        self.insert(provider, limit);
        Ok(self)
    }

    /// Register `provider`, whose name is known to be free.
    pub(crate) fn insert(&mut self, provider: Arc<dyn Provider>, limit: RateLimit) {
        let limiter = Arc::new(TokenBucket::new(limit));
        let meters_calls = provider.meter_calls(limiter.clone());
        self.providers.insert(
            provider.name().to_string(),
            Registered {
                provider,
                limiter,
                meters_calls,
            },
        );
    }

    /// Use `retry` for retryable errors.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Send measurements to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn RuntimeMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The provider registered under `name`.
    pub fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(name).map(|r| r.provider.clone())
    }

    /// Names of the registered providers.
    pub fn provider_names(&self) -> Vec<&str> {
        self.providers.keys().map(String::as_str).collect()
    }

    /// Observe and diff each declaration without changing anything (what `plan` prints).
    pub async fn plan(
        &self,
        ctx: &ProviderContext,
        decls: &[Declaration],
    ) -> Vec<Result<(Observation, Plan), ProviderError>> {
        let mut out = Vec::with_capacity(decls.len());
        for decl in decls {
            let result = async {
                let reg = self.registered(decl)?;
                let obs = self.observe(ctx, reg, decl).await?;
                let plan = reg.provider.diff(decl, &obs);
                Ok((obs, plan))
            }
            .instrument(ctx.span.clone())
            .await
            .map_err(|e| decl.err(e));
            out.push(result);
        }
        out
    }

    /// Bring every declaration to its declared state, one after the other in declared order.
    /// A failing resource does not stop the others: its error is collected in its row.
    ///
    /// A create is first recorded in the context's journal, and a resource found without owner
    /// tags whose row (in `ctx.cr`'s status) records that intent is claimed as this CR's own
    /// interrupted create (see [`crate::journal`]).
    pub async fn reconcile(&self, ctx: &ProviderContext, decls: &[Declaration]) -> RunReport {
        let previous = journal::rows_of(&ctx.cr);
        let mut report = RunReport::default();
        for decl in decls {
            let span = tracing::info_span!(parent: &ctx.span, "external", provider = %decl.provider, kind = %decl.kind, name = %decl.name);
            let mut intent = recorded_intent(&previous, decl);
            let result = self
                .reconcile_one(ctx, decl, &mut intent)
                .instrument(span)
                .await;
            report.push_result(decl, result, intent);
        }
        report
    }

    /// [`Self::reconcile`], plus a row for every resource in `previous` (the CR's last
    /// `status.external`) that is no longer declared, typically because its name changed. Such a
    /// resource is never deleted silently: its row stays, Orphaned, saying that a name change
    /// needs a replacement orkestra does not make by itself.
    pub async fn reconcile_tracking(
        &self,
        ctx: &ProviderContext,
        decls: &[Declaration],
        previous: &[StatusRow],
    ) -> RunReport {
        let mut report = self.reconcile(ctx, decls).await;
        for row in stale_rows(decls, previous) {
            // Keep the row while the resource still exists (or cannot be looked at).
            if self.still_exists(ctx, &row).await != Some(false) {
                report.rows.push(row);
            }
        }
        report
    }

    /// Delete (or orphan) every declaration, in reverse declared order, collecting errors per
    /// resource. Call again while [`RunReport::delete_finished`] is false.
    pub async fn delete_all(&self, ctx: &ProviderContext, decls: &[Declaration]) -> RunReport {
        let previous = journal::rows_of(&ctx.cr);
        let mut report = RunReport::default();
        for decl in decls.iter().rev() {
            let span = tracing::info_span!(parent: &ctx.span, "external_delete", provider = %decl.provider, kind = %decl.kind, name = %decl.name);
            let intent = recorded_intent(&previous, decl);
            let result = self.delete_one(ctx, decl, intent).instrument(span).await;
            report.push_result(decl, result, intent);
        }
        report.rows.reverse();
        report
    }

    /// Whether the resource of a stale row still exists (None: cannot tell).
    async fn still_exists(&self, ctx: &ProviderContext, row: &StatusRow) -> Option<bool> {
        let reg = self.providers.get(&row.provider)?;
        let schema = reg.provider.schema();
        let kind = schema.kind(&row.kind)?;
        let decl = Declaration {
            deletion_policy: crate::DeletionPolicy::Orphan,
            management_policy: crate::ManagementPolicy::Observe,
            ..Declaration::from_row(row, kind, crate::Owner::default())
        };
        self.observe(ctx, reg, &decl).await.ok().map(|o| o.exists)
    }

    /// Observe, diff, apply. A retryable failure of apply is retried after a fresh observe and
    /// diff, since the failed attempt may have changed something (a bucket created, not tagged).
    ///
    /// `intent` is the row's recorded intent, kept up to date: set when a create is recorded,
    /// cleared once the resource is seen with owner tags or as someone else's, or once the
    /// create returned (see [`settled_by_apply`]).
    async fn reconcile_one(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        intent: &mut Option<Intent>,
    ) -> Result<Outcome, ProviderError> {
        let reg = self.registered(decl)?;
        let mut attempt = 1;
        loop {
            let mut obs = self.observe(ctx, reg, decl).await?;
            settle_intent(&mut obs, intent);
            let plan = reg.provider.diff(decl, &obs);
            tracing::debug!(plan = %plan.summary(), "planned");
            if plan.action == crate::plan::Action::Create
                && plan.blocked.is_none()
                && intent.is_none()
            {
                if let Some(journal) = &ctx.journal {
                    let row = StatusRow {
                        intent: Some(Intent::Create),
                        ..StatusRow::from_outcome(
                            decl,
                            &Outcome::new(State::Creating)
                                .message("creating (intent recorded before the create call)"),
                        )
                    };
                    journal.record(&row).await.map_err(|e| decl.err(e))?;
                    *intent = Some(Intent::Create);
                }
            }
            let result = self
                .once(ctx, reg, decl, Operation::Apply, || {
                    reg.provider.apply(ctx, decl, &obs, &plan)
                })
                .await;
            match result {
                Err(e) if e.retryable() && attempt < self.retry.max_attempts => {
                    self.backoff(ctx, decl, Operation::Apply, attempt, &e)
                        .await?;
                    attempt += 1;
                }
                Err(e) => return Err(decl.err(e)),
                Ok(outcome) => {
                    self.metrics
                        .mutations(&decl.provider, &decl.kind, outcome.mutations);
                    *intent = settled_by_apply(&plan, &outcome, *intent);
                    return Ok(outcome);
                }
            }
        }
    }

    /// Observe, delete; retried like [`Self::reconcile_one`]. A resource of an interrupted
    /// create (`intent`) is claimed, so it is deleted rather than left behind as "not ours".
    async fn delete_one(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        intent: Option<Intent>,
    ) -> Result<Outcome, ProviderError> {
        let reg = self.registered(decl)?;
        let mut attempt = 1;
        loop {
            let mut obs = self
                .retrying(ctx, reg, decl, Operation::Observe, || {
                    reg.provider.observe_for_delete(ctx, decl)
                })
                .await?;
            settle_intent(&mut obs, &mut intent.clone());
            let result = self
                .once(ctx, reg, decl, Operation::Delete, || {
                    reg.provider.delete(ctx, decl, &obs)
                })
                .await;
            match result {
                Err(e) if e.retryable() && attempt < self.retry.max_attempts => {
                    self.backoff(ctx, decl, Operation::Delete, attempt, &e)
                        .await?;
                    attempt += 1;
                }
                Err(e) => return Err(decl.err(e)),
                Ok(outcome) => {
                    self.metrics
                        .mutations(&decl.provider, &decl.kind, outcome.mutations);
                    return Ok(outcome);
                }
            }
        }
    }

    async fn observe(
        &self,
        ctx: &ProviderContext,
        reg: &Registered,
        decl: &Declaration,
    ) -> Result<Observation, ProviderError> {
        self.retrying(ctx, reg, decl, Operation::Observe, || {
            reg.provider.observe(ctx, decl)
        })
        .await
    }

    fn registered(&self, decl: &Declaration) -> Result<&Registered, ProviderError> {
        self.providers
            .get(&decl.provider)
            .ok_or_else(|| decl.err(ProviderError::new(Cause::UnknownProvider)))
    }

    /// Run `op` under the provider's rate limit, retrying retryable errors with backoff and
    /// jitter, giving up early on cancellation.
    async fn retrying<'a, T, F, Fut>(
        &self,
        ctx: &ProviderContext,
        reg: &Registered,
        decl: &Declaration,
        which: Operation,
        mut op: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>> + 'a,
    {
        let mut attempt = 1;
        loop {
            match self.once(ctx, reg, decl, which, &mut op).await {
                Err(e) if e.retryable() && attempt < self.retry.max_attempts => {
                    self.backoff(ctx, decl, which, attempt, &e).await?;
                    attempt += 1;
                }
                other => return other.map_err(|e| decl.err(e)),
            }
        }
    }

    /// One attempt of `op`: rate limit (one token, unless the provider meters its calls),
    /// cancellation, metrics.
    async fn once<'a, T, F, Fut>(
        &self,
        ctx: &ProviderContext,
        reg: &Registered,
        decl: &Declaration,
        which: Operation,
        op: F,
    ) -> Result<T, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>> + 'a,
    {
        ctx.check_cancelled()?;
        if !reg.meters_calls {
            reg.limiter.acquire().await;
        }
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            r = op() => r,
            () = ctx.cancel.cancelled() => Err(ProviderError::new(Cause::Cancelled)),
        };
        // Waits of every acquire since the last report, this operation's calls among them.
        let waited = reg.limiter.take_waited();
        if !waited.is_zero() {
            self.metrics.throttled(&decl.provider, waited);
        }
        self.metrics.operation(
            &decl.provider,
            &decl.kind,
            which,
            result.is_ok(),
            started.elapsed(),
        );
        result
    }

    /// Wait before retry number `attempt + 1` of a retryable error; Err when cancelled meanwhile.
    async fn backoff(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        which: Operation,
        attempt: u32,
        e: &ProviderError,
    ) -> Result<(), ProviderError> {
        let delay = self.retry.delay(attempt);
        tracing::info!(error = %e, attempt, ?delay, "retrying");
        self.metrics
            .retry(&decl.provider, &decl.kind, which, attempt, delay);
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            () = ctx.cancel.cancelled() => Err(decl.err(ProviderError::new(Cause::Cancelled))),
        }
    }
}

/// The intent recorded on `decl`'s row in `previous`.
fn recorded_intent(previous: &[StatusRow], decl: &Declaration) -> Option<Intent> {
    previous
        .iter()
        .find(|r| r.provider == decl.provider && r.kind == decl.kind && r.name == decl.name)
        .and_then(|r| r.intent)
}

/// What is left of a create intent after `apply` carried out `plan` with `outcome`.
///
/// A create (or the update of a claimed resource) that returned without error left the resource
/// carrying the owner's tags (the provider contract: ownership tags on every created resource,
/// in the create call or before `apply` returns), so there is nothing left to claim and the row
/// the agent writes next records the resource without the intent: no later pass, and no extra
/// status write, is needed to clear it. A name that turned out to be someone else's leaves
/// nothing of ours to claim either. An error row or a blocked plan keeps the intent.
pub fn settled_by_apply(plan: &Plan, outcome: &Outcome, intent: Option<Intent>) -> Option<Intent> {
    use crate::plan::Action;
    match outcome.state {
        State::Conflict => None,
        State::Error => intent,
        _ if plan.blocked.is_none() && matches!(plan.action, Action::Create | Action::Update) => {
            None
        }
        _ => intent,
    }
}

/// Apply a recorded create intent to a fresh observation: a resource without owner tags is the
/// interrupted create's and is claimed (the diff then adds the tags, see [`settled_by_apply`]);
/// a resource that carries owner tags, ours or another's, settles the intent.
/// `kubectl orkestra plan` calls this very rule, so it shows what the runtime will do.
pub fn settle_intent(obs: &mut Observation, intent: &mut Option<Intent>) {
    if *intent != Some(Intent::Create) || !obs.exists {
        return;
    }
    match obs.ownership {
        Ownership::Unowned => {
            tracing::info!(
                "claiming a resource without owner tags: this CR recorded creating it before a create that did not finish"
            );
            obs.ownership = Ownership::Ours;
            obs.notes.push(
                "claimed: created by this resource's own interrupted create (intent recorded in status); owner tags will be added".into(),
            );
        }
        Ownership::Ours | Ownership::Foreign { .. } => *intent = None,
    }
}

/// Rows of `previous` whose resource is no longer declared and was not already gone or left
/// alone, turned into Orphaned rows that say why.
pub fn stale_rows(decls: &[Declaration], previous: &[StatusRow]) -> Vec<StatusRow> {
    let declared = |r: &StatusRow| {
        decls
            .iter()
            .any(|d| d.provider == r.provider && d.kind == r.kind && d.name == r.name)
    };
    previous
        .iter()
        .filter(|r| !declared(r))
        .filter(|r| !matches!(r.state, State::Deleted | State::Conflict))
        .map(|r| {
            let renamed_to: Vec<&str> = decls
                .iter()
                .filter(|d| d.provider == r.provider && d.kind == r.kind)
                .filter(|d| !previous.iter().any(|p| p.kind == d.kind && p.name == d.name))
                .map(|d| d.name.as_str())
                .collect();
            let hint = match renamed_to.as_slice() {
                [] => String::new(),
                names => format!(" (renamed to {}?)", names.join(", ")),
            };
            StatusRow {
                state: State::Orphaned,
                message: format!(
                    "{STALE_PREFIX}{hint}: left in place; a name change requires replacement, which orkestra never does by itself (delete it by hand, or declare it again)"
                ),
                last_sync_time: crate::status::now_rfc3339(),
                ..r.clone()
            }
        })
        .collect()
}

/// Start of the message of a row whose resource is no longer declared.
pub const STALE_PREFIX: &str = "no longer declared";

#[cfg(test)]
mod tests;
