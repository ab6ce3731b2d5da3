//! One kube-runtime controller per CRD entry: its own queue, workers, resync and per-object
//! backoff. A panic or error in one CR's reconcile is caught here and stays with that CR.
//!
//! The resync of Ready CRs does not go through kube-runtime's requeue: a reconcile that asks
//! for `Action::requeue(resync)` (nothing to look at sooner) is filed with the controller's
//! [`DriftSchedule`] instead, which feeds drift checks back oldest first into free workers only,
//! so new and changed CRs never queue behind thousands of them.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use orkestra_engine::objects::labels;
use orkestra_engine::{CrdEntry, Katalog};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::context::AgentContext;
use crate::discovery::ResolvedApi;
use crate::drift::DriftSchedule;
use crate::error::Error;
use crate::metrics::CrdLabels;
use crate::reconcile;
use crate::status::{self, Body, Ready};

/// First retry of a failed CR after about this long; doubles up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between retries of a failing CR.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often per-CR tables are pruned of CRs that are gone.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Longest wait between looks for a CRD that is not installed yet.
const MAX_CRD_WAIT: Duration = Duration::from_secs(30);

/// What one entry's controller needs in every reconcile.
#[derive(Debug)]
pub struct EntryCtx {
    /// Agent-wide state.
    pub agent: Arc<AgentContext>,
    /// The Katalog the entry belongs to.
    pub katalog: Arc<Katalog>,
    /// The entry.
    pub entry: CrdEntry,
    /// `plural.group` (metrics label).
    pub crd: String,
    /// The CR kind's API resource, from discovery.
    pub api: ApiResource,
    /// Whether CRs are namespaced.
    pub namespaced: bool,
    /// Cancelled when the controller stops (passed on to providers).
    pub cancel: CancellationToken,
    /// Shared with the entry's stats.
    pub stats: Arc<EntryStats>,
    /// The last full pass over each CR's external resources.
    pub fresh: crate::freshness::Freshness,
    /// The status this agent last wrote for each CR.
    pub written: Arc<status::LastWritten>,
}

/// Where an entry's controller stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Discovering its kinds.
    Starting,
    /// The CRD is not served (yet).
    WaitingForCrd(String),
    /// An entry it `dependsOn` is not started (or not healthy) yet.
    WaitingForDependency(String),
    /// Watching and reconciling.
    Running,
}

/// Live figures of one entry's controller (for the Katalog's status and metrics).
#[derive(Debug)]
pub struct EntryStats {
    phase: Mutex<Phase>,
    stores: Mutex<Vec<Store<DynamicObject>>>,
    /// One drift schedule per watched namespace (one in all without `--namespace`).
    drifts: Mutex<Vec<Arc<DriftSchedule<Key>>>>,
    /// Per-CR failure counts.
    pub backoff: Backoff,
}

impl Default for EntryStats {
    fn default() -> Self {
        Self::new()
    }
}

impl EntryStats {
    /// A controller not started yet.
    pub fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Starting),
            stores: Mutex::new(Vec::new()),
            drifts: Mutex::new(Vec::new()),
            backoff: Backoff::new(BASE_BACKOFF, MAX_BACKOFF),
        }
    }
    fn set(&self, p: Phase) {
        *self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = p;
    }
    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
    /// CRs in the controller's cache.
    pub fn managed(&self) -> usize {
        self.stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|s| s.state().len())
            .sum()
    }
    /// CRs whose last reconcile failed.
    pub fn failing(&self) -> usize {
        self.backoff.failing()
    }
    /// How far the most delayed drift check of any namespace is behind its time, and how many
    /// CRs are filed for one in all (the entry's gauges sum over its per-namespace schedules).
    pub fn drift(&self) -> (Duration, usize) {
        let drifts = self
            .drifts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let lag = drifts.iter().map(|d| d.lag()).max().unwrap_or_default();
        (lag, drifts.iter().map(|d| d.len()).sum())
    }
}

/// A running entry controller; stops when dropped.
#[derive(Debug)]
pub struct EntryController {
    /// The entry's name.
    pub name: String,
    /// `apiVersion` of its CRs.
    pub api_version: String,
    /// Kind of its CRs.
    pub kind: String,
    /// `plural.group` of the CRD.
    pub crd: String,
    /// Live figures.
    pub stats: Arc<EntryStats>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Drop for EntryController {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
    }
}

/// The live figures of a Katalog's entries by name, for `dependsOn` (an entry that another
/// Katalog already runs has none).
pub type Siblings = BTreeMap<String, Arc<EntryStats>>;

/// Start the controller of `katalog.entries[index]`, reporting into `stats`; it waits for the
/// entries it `dependsOn` among `siblings` first.
pub fn start(
    agent: Arc<AgentContext>,
    katalog: Arc<Katalog>,
    index: usize,
    stats: Arc<EntryStats>,
    siblings: Arc<Siblings>,
) -> EntryController {
    let entry = katalog.entries[index].clone();
    let cancel = CancellationToken::new();
    let name = entry.name.clone();
    let api_version = entry.api.api_version();
    let kind = entry.api.kind.clone();
    let crd = entry.api.crd_name();
    let task = tokio::spawn(run(
        agent,
        katalog,
        entry,
        stats.clone(),
        siblings,
        cancel.clone(),
    ));
    EntryController {
        name,
        api_version,
        kind,
        crd,
        stats,
        cancel,
        task,
    }
}

/// Decrements the running-controllers gauge however the task ends (including abort).
struct Running(Arc<AgentContext>);
impl Drop for Running {
    fn drop(&mut self) {
        self.0.metrics.controllers.dec();
    }
}

async fn run(
    agent: Arc<AgentContext>,
    katalog: Arc<Katalog>,
    entry: CrdEntry,
    stats: Arc<EntryStats>,
    siblings: Arc<Siblings>,
    cancel: CancellationToken,
) {
    wait_for_dependencies(&entry, &stats, &siblings).await;
    let crd = entry.api.crd_name();
    let api_version = entry.api.api_version();
    let resolved = wait_for_kind(&agent, &api_version, &entry.api.kind, &stats).await;
    let child_kinds = child_kinds(&agent, &entry).await;
    let workers = agent
        .config
        .workers
        .unwrap_or(entry.reconciler.workers)
        .max(1);
    let selector = format!(
        "{}={},{}={},{}={}",
        labels::MANAGED_BY,
        labels::MANAGER,
        labels::PART_OF,
        orkestra_engine::objects::label_value(&katalog.name),
        labels::OWNER_KIND,
        orkestra_engine::objects::label_value(&entry.api.kind)
    );
    let ctx = Arc::new(EntryCtx {
        agent: agent.clone(),
        katalog: katalog.clone(),
        entry: entry.clone(),
        crd: crd.clone(),
        api: resolved.resource.clone(),
        namespaced: resolved.namespaced,
        cancel,
        stats: stats.clone(),
        fresh: crate::freshness::Freshness::new(entry.reconciler.resync),
        written: Arc::default(),
    });
    let namespaces: Vec<Option<String>> =
        if resolved.namespaced && !agent.config.namespaces.is_empty() {
            agent.config.namespaces.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        };
    let mut streams = Vec::new();
    for ns in &namespaces {
        let client = agent.client.clone();
        let api: Api<DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resolved.resource),
            None => Api::all_with(client.clone(), &resolved.resource),
        };
        // The CR cache keeps no managedFields: nothing reads them, and with many CRs they are
        // most of each cached object.
        let writer = reflector::store::Writer::new(resolved.resource.clone());
        let reader = writer.as_reader();
        let crs = watcher::watcher(api, watcher::Config::default())
            .modify(|cr| cr.managed_fields_mut().clear())
            .reflect(writer)
            .applied_objects();
        let mut c = Controller::for_stream_with(crs, reader, resolved.resource.clone())
            .with_config(ControllerConfig::default().concurrency(workers));
        // Child changes (drift, a Deployment becoming ready) wake the owning CR at once.
        for ck in &child_kinds {
            let capi: Api<DynamicObject> = match (ns, ck.namespaced) {
                (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &ck.resource),
                _ => Api::all_with(client.clone(), &ck.resource),
            };
            c = c.owns_with(
                capi,
                ck.resource.clone(),
                watcher::Config::default().labels(&selector),
            );
        }
        c = c.reconcile_all_on(leadership_gained(agent.leadership.subscribe()));
        let store = c.store();
        let drift = DriftSchedule::new(workers.into(), entry.reconciler.resync);
        stats
            .drifts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(drift.clone());
        let cached = store.clone();
        c = c.reconcile_on(
            drift
                .clone()
                .releases(move |key: &Key| cached.get(key).is_some()),
        );
        stats
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(store);
        streams.push(
            c.run(
                move |obj, ctx| guarded(obj, ctx, drift.clone()),
                error_policy,
                ctx.clone(),
            )
            .boxed(),
        );
    }
    stats.set(Phase::Running);
    agent.metrics.controllers.inc();
    let _running = Running(agent.clone());
    tracing::info!(katalog = %katalog.name, entry = %entry.name, %crd, workers, "controller started");
    let mut all = futures::stream::select_all(streams);
    let drive = async {
        while let Some(item) = all.next().await {
            match item {
                Ok((obj, _)) => tracing::trace!(%crd, object = %obj, "reconciled"),
                Err(e) => tracing::debug!(%crd, error = %e, "controller"),
            }
        }
    };
    tokio::select! {
        () = drive => {}
        () = prune_every(&ctx, PRUNE_EVERY) => {}
        () = forget_passes_on_leadership(&ctx) => {}
    }
    tracing::info!(%crd, "controller stream ended");
}

/// Forget the per-CR state (backoff counts, external passes, last written statuses) of CRs no longer in the
/// controller's cache, every `period`: a CR can go without a last reconcile (its finalizer
/// removed by hand, deleted while this instance was a standby), and the tables must not grow
/// with every CR ever seen.
async fn prune_every(ctx: &EntryCtx, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let live: std::collections::HashSet<String> = ctx
            .stats
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .flat_map(|s| s.state())
            .map(|o| reconcile::key(&o))
            .collect();
        ctx.stats.backoff.retain(|k| live.contains(k));
        ctx.fresh.retain(|k| live.contains(k));
        ctx.written.retain(|k| live.contains(k));
    }
}

/// Forget the remembered external passes each time leadership changes: while this instance was
/// a standby another may have changed what it remembers, and the reconcile of every CR that
/// leadership brings must observe.
async fn forget_passes_on_leadership(ctx: &EntryCtx) {
    let mut rx = ctx.agent.leadership.subscribe();
    while rx.changed().await.is_ok() {
        ctx.fresh.clear();
    }
    // The sender is gone (the agent is stopping): nothing more to forget.
    std::future::pending::<()>().await;
}

/// Resolve the CR kind, waiting (with backoff) while its CRD is not served.
/// How often a waiting entry looks at the entries it depends on.
const DEPENDENCY_POLL: Duration = Duration::from_millis(500);

/// Why `entry` cannot start yet: the first of its dependencies that is not started (or not
/// healthy), or `None`.
pub fn unmet_dependency(entry: &CrdEntry, siblings: &Siblings) -> Option<String> {
    use orkestra_engine::katalog::DependencyCondition;
    entry.depends_on.iter().find_map(|d| {
        let what = format!("waits for entry {} to be {}", d.entry, d.condition.word());
        let Some(s) = siblings.get(&d.entry) else {
            return Some(format!(
                "{what}: it is not run by this Katalog (another Katalog runs its kind)"
            ));
        };
        match s.phase() {
            Phase::Running => {}
            Phase::Starting => return Some(format!("{what}: it is starting")),
            Phase::WaitingForCrd(m) => return Some(format!("{what}: {m}")),
            Phase::WaitingForDependency(m) => return Some(format!("{what}, which {m}")),
        }
        let failing = s.failing();
        (d.condition == DependencyCondition::Healthy && failing > 0)
            .then(|| format!("{what}: {failing} of its CRs failing"))
    })
}

/// Start only once every `dependsOn` holds (upstream's start gate: it orders controllers, a
/// dependency that later fails does not stop its dependents).
async fn wait_for_dependencies(entry: &CrdEntry, stats: &EntryStats, siblings: &Siblings) {
    let mut logged = None;
    while let Some(why) = unmet_dependency(entry, siblings) {
        if logged.as_ref() != Some(&why) {
            tracing::info!(entry = %entry.name, "{why}");
            logged = Some(why.clone());
        }
        stats.set(Phase::WaitingForDependency(why));
        tokio::time::sleep(DEPENDENCY_POLL).await;
    }
}

async fn wait_for_kind(
    agent: &AgentContext,
    api_version: &str,
    kind: &str,
    stats: &EntryStats,
) -> ResolvedApi {
    let mut wait = Duration::from_secs(1);
    loop {
        match agent.apis.resolve(api_version, kind).await {
            Ok(r) => return r,
            Err(e) => {
                tracing::info!(error = %e, "waiting for the CRD of {kind}.{api_version}");
                stats.set(Phase::WaitingForCrd(e.to_string()));
                agent.apis.forget(api_version, kind);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_CRD_WAIT);
            }
        }
    }
}

/// The kinds of the entry's Kubernetes blocks (custom objects are found on resync only).
async fn child_kinds(agent: &AgentContext, entry: &CrdEntry) -> Vec<ResolvedApi> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for k in &entry.kube {
        let Some((api_version, kind)) = k.block.type_meta() else {
            continue;
        };
        if !seen.insert((api_version, kind)) {
            continue;
        }
        match agent.apis.resolve(api_version, kind).await {
            Ok(r) => out.push(r),
            Err(e) => {
                tracing::warn!(error = %e, "not watching {kind} children; drift is corrected on resync")
            }
        }
    }
    out
}

/// A stream that yields once each time this instance becomes the leader.
fn leadership_gained(rx: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            rx.changed().await.ok()?;
            if *rx.borrow_and_update() {
                return Some(((), rx));
            }
        }
    })
}

/// A CR as the controller's cache and the drift schedule know it.
type Key = ObjectRef<DynamicObject>;

/// Reconcile with the guards every CR gets: leadership, panic isolation, metrics, backoff reset,
/// and the drift schedule's bookkeeping (a worker slot while it runs, the next drift check after).
async fn guarded(
    obj: Arc<DynamicObject>,
    ctx: Arc<EntryCtx>,
    drift: Arc<DriftSchedule<Key>>,
) -> Result<Action, Error> {
    if !ctx.agent.is_leader() {
        // A standby keeps its cache warm and waits; becoming the leader re-reconciles everything.
        return Ok(Action::await_change());
    }
    let object_ref = ObjectRef::from_obj_with(&*obj, ctx.api.clone());
    let slot = drift.started(object_ref.clone());
    let key = reconcile::key(&obj);
    let who = reconcile::label(&obj, &ctx.entry.api.kind);
    let started = Instant::now();
    let in_flight = ctx
        .agent
        .metrics
        .in_flight
        .get_or_create(&CrdLabels {
            crd: ctx.crd.clone(),
        })
        .clone();
    in_flight.inc();
    let result = AssertUnwindSafe(reconcile::reconcile(
        obj.clone(),
        ctx.clone(),
        slot.is_drift_check(),
    ))
    .catch_unwind()
    .await
    .unwrap_or_else(|panic| {
        Err(Error::Panic {
            cr: who.clone(),
            message: panic_message(panic.as_ref()),
        })
    });
    in_flight.dec();
    let outcome = match &result {
        Ok(_) => {
            ctx.stats.backoff.succeeded(&key);
            "ok"
        }
        Err(e) => {
            tracing::warn!(cr = %who, error = %e, "reconcile failed");
            if let Error::Panic { .. } = e {
                record_panic(&ctx, &obj, e).await;
            }
            e.reason()
        }
    };
    ctx.agent
        .metrics
        .reconciled(&ctx.crd, outcome, started.elapsed());
    let result = match result {
        // Ready at its generation, nothing to look at sooner: the next look is a drift check.
        Ok(action)
            if action == Action::requeue(ctx.entry.reconciler.resync)
                && obj.metadata.deletion_timestamp.is_none() =>
        {
            drift.schedule(object_ref);
            Ok(Action::await_change())
        }
        // It asked for its own requeue, is being deleted, or failed (the error policy requeues).
        other => {
            drift.remove(&object_ref);
            other
        }
    };
    drop(slot);
    let labels = CrdLabels {
        crd: ctx.crd.clone(),
    };
    let (lag, scheduled) = ctx.stats.drift();
    ctx.agent
        .metrics
        .drift_lag_seconds
        .get_or_create(&labels)
        .set(lag.as_secs_f64());
    ctx.agent
        .metrics
        .drift_scheduled
        .get_or_create(&labels)
        .set(i64::try_from(scheduled).unwrap_or(i64::MAX));
    result
}

async fn record_panic(ctx: &EntryCtx, obj: &DynamicObject, e: &Error) {
    let api = reconcile::cr_api(ctx, obj);
    let cr = serde_json::to_value(obj).unwrap_or_default();
    let s = status::build(
        &cr,
        &Ready::no(e.reason(), e.to_string()),
        Body::from_live(&cr),
    );
    if let Err(w) = status::write(&api, &cr, s, &ctx.written).await {
        tracing::warn!(error = %w, "could not record the panic on the CR's status");
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

fn error_policy(obj: Arc<DynamicObject>, _e: &Error, ctx: Arc<EntryCtx>) -> Action {
    Action::requeue(ctx.stats.backoff.failed(&reconcile::key(&obj)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::GroupVersionKind;

    fn key(name: &str, ns: &str) -> Key {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps.example.io", "v1", "Stack"));
        ObjectRef::new_with(name, ar).within(ns)
    }

    #[tokio::test(start_paused = true)]
    async fn drift_figures_cover_every_namespace_schedule() {
        let stats = EntryStats::new();
        let period = Duration::from_secs(30);
        let (a, b) = (DriftSchedule::new(2, period), DriftSchedule::new(2, period));
        stats.drifts.lock().unwrap().extend([a.clone(), b.clone()]);
        a.schedule(key("x", "team-a"));
        tokio::time::advance(Duration::from_secs(20)).await;
        b.schedule(key("y", "team-b"));
        b.schedule(key("z", "team-b"));
        // 60 s in: a's check (due by 33 s) is late by at least 27 s, b's by at least 7 s.
        tokio::time::advance(Duration::from_secs(40)).await;
        let (lag, scheduled) = stats.drift();
        assert_eq!(scheduled, 3);
        assert!(lag >= Duration::from_secs(27), "{lag:?}");
        assert_eq!(lag, a.lag().max(b.lag()));
    }

    #[test]
    fn an_entry_starts_once_its_dependencies_run_and_healthy_ones_have_no_failing_cr() {
        use orkestra_engine::katalog::{Dependency, DependencyCondition};
        let text = "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {name: k}\nspec:\n  crds:\n    db:\n      apiTypes: {group: a.io, version: v1, kind: Db}\n      operatorBox: {onCreate: {}}\n";
        let loaded =
            orkestra_engine::load_file(&orkestra_engine::SourceFile::new("k.yaml", text), &[]);
        let mut entry = loaded.katalog.expect("loads").entries[0].clone();
        entry.name = "app".into();
        entry.depends_on = vec![Dependency {
            entry: "db".into(),
            condition: DependencyCondition::Healthy,
        }];
        let db = Arc::new(EntryStats::new());
        let siblings: Siblings = [("db".to_string(), db.clone())].into();
        let why = unmet_dependency(&entry, &siblings).unwrap();
        assert_eq!(why, "waits for entry db to be healthy: it is starting");
        db.set(Phase::WaitingForCrd("not served".into()));
        assert!(unmet_dependency(&entry, &siblings)
            .unwrap()
            .ends_with(": not served"));
        db.set(Phase::Running);
        assert_eq!(unmet_dependency(&entry, &siblings), None);
        db.backoff.failed("ns/x");
        assert_eq!(
            unmet_dependency(&entry, &siblings).unwrap(),
            "waits for entry db to be healthy: 1 of its CRs failing"
        );
        entry.depends_on[0].condition = DependencyCondition::Started;
        assert_eq!(unmet_dependency(&entry, &siblings), None);
        assert!(unmet_dependency(&entry, &Siblings::new())
            .unwrap()
            .contains("not run by this Katalog"));
    }
}
