//! Drift checks of CRs that are Ready at their generation, run in the time the workers have left.
//!
//! kube-runtime's controller keeps one queue for everything: watch events, error retries and the
//! `Action::requeue(resync)` every Ready CR asks for. When more are due than the workers can take,
//! the due set is not served oldest first, so with many CRs a fixed subset is drift-checked over
//! and over while the rest, new CRs included, wait (about workers × resync ÷ reconcile time CRs
//! are served; issue 17 measured 2,327 of 10,000 Ready after 15 minutes).
//!
//! So a Ready CR does not requeue itself. Its reconcile ends with `Action::await_change()` and
//! [`DriftSchedule::schedule`] files it here, due one resync period later with ±10 % jitter so
//! CRs created together spread out. [`DriftSchedule::releases`] hands due CRs to the controller
//! (through `Controller::reconcile_on`) oldest first, and only into a worker that stayed free
//! for a moment after its last reconcile (so nothing else was queued for it): released
//! drift checks plus running reconciles that are not drift checks never exceed the worker count.
//! New, changed, deleted, waiting and failing CRs keep coming through kube-runtime's own triggers
//! and requeues, and at most `workers` drift checks are ever ahead of them in the queue.
//! [`DriftSchedule::lag`] (the `orkestra_drift_lag_seconds` gauge) shows how far the oldest due
//! check is behind its time.
//!
//! The bookkeeping is a plain data structure ([`DriftQueue`]) driven by the tokio clock, so its
//! behaviour is tested on a paused clock with kube-runtime's real applier (tests/scheduling.rs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::Stream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How far a due time may move from the resync period, as a fraction of it.
const JITTER: f64 = 0.1;
/// How long a free worker must stay free before a drift check takes it. When a reconcile ends,
/// kube-runtime's runner starts the next queued request (a new or changed CR) at once; waiting
/// this long first means a drift check only ever takes a worker nothing else wanted.
const SETTLE: Duration = Duration::from_millis(2);

/// Due drift checks, oldest first, and how many are out with the controller.
#[derive(Debug)]
pub struct DriftQueue<K> {
    /// Due time and a sequence number (ties broken by filing order) → CR.
    due: BTreeMap<(Instant, u64), K>,
    /// CR → its entry in `due`.
    by_key: HashMap<K, (Instant, u64)>,
    /// Released to the controller, not yet finished.
    released: HashSet<K>,
    /// Reconciles running now that were not released from here.
    other_running: usize,
    /// Reconciles running now that were (their keys).
    drift_running: HashSet<K>,
    workers: usize,
    seq: u64,
    random: std::collections::hash_map::RandomState,
}

impl<K: Clone + Eq + Hash> DriftQueue<K> {
    /// An empty queue for a controller with `workers` workers (at least one).
    pub fn new(workers: usize) -> Self {
        Self {
            due: BTreeMap::new(),
            by_key: HashMap::new(),
            released: HashSet::new(),
            other_running: 0,
            drift_running: HashSet::new(),
            workers: workers.max(1),
            seq: 0,
            random: std::collections::hash_map::RandomState::new(),
        }
    }

    /// File `key` for a drift check one `period` (±10 %) after `now`, replacing an earlier one.
    pub fn schedule(&mut self, key: K, now: Instant, period: Duration) {
        self.remove(&key);
        self.seq += 1;
        // A per-process random seed, so CRs made at the same moment get different offsets.
        let unit = (self.random.hash_one((self.seq, now)) % 10_001) as f64 / 10_000.0;
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit;
        let at = now + period.mul_f64(factor);
        self.due.insert((at, self.seq), key.clone());
        self.by_key.insert(key, (at, self.seq));
    }

    /// Forget `key` (deleted, or its reconcile asked for its own requeue).
    pub fn remove(&mut self, key: &K) {
        if let Some(slot) = self.by_key.remove(key) {
            self.due.remove(&slot);
        }
    }

    /// The oldest due CR, when one is due at `now` and a worker is free for it.
    pub fn release(&mut self, now: Instant) -> Option<K> {
        if self.other_running + self.released.len() + self.drift_running.len() >= self.workers {
            return None;
        }
        let (&slot, _) = self
            .due
            .first_key_value()
            .filter(|((at, _), _)| *at <= now)?;
        let key = self.due.remove(&slot)?;
        self.by_key.remove(&key);
        self.released.insert(key.clone());
        Some(key)
    }

    /// A released CR the controller will not reconcile (it is gone from its cache).
    pub fn dropped(&mut self, key: &K) {
        self.released.remove(key);
    }

    /// A reconcile of `key` starts; true when it is a drift check released from here.
    pub fn started(&mut self, key: &K) -> bool {
        if self.released.remove(key) {
            self.drift_running.insert(key.clone());
            true
        } else {
            self.other_running += 1;
            false
        }
    }

    /// The reconcile of `key` that [`DriftQueue::started`] reported as `drift` ended.
    pub fn finished(&mut self, key: &K, drift: bool) {
        if drift {
            self.drift_running.remove(key);
        } else {
            self.other_running = self.other_running.saturating_sub(1);
        }
    }

    /// When the oldest check falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.first_key_value().map(|((at, _), _)| *at)
    }

    /// How long the oldest due check has waited past its time.
    pub fn lag(&self, now: Instant) -> Duration {
        self.next_due()
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
    }

    /// CRs filed for a drift check.
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// Whether no CR is filed.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

/// A [`DriftQueue`] shared by a controller's reconciles and its trigger stream.
#[derive(Debug)]
pub struct DriftSchedule<K> {
    queue: Mutex<DriftQueue<K>>,
    changed: Notify,
    period: Duration,
}

impl<K: Clone + Eq + Hash + Send + 'static> DriftSchedule<K> {
    /// A schedule with drift checks every `period` for a controller with `workers` workers.
    pub fn new(workers: usize, period: Duration) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(DriftQueue::new(workers)),
            changed: Notify::new(),
            period,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DriftQueue<K>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `key` is Ready at its generation: check it again one period from now.
    pub fn schedule(&self, key: K) {
        self.lock().schedule(key, Instant::now(), self.period);
        self.changed.notify_one();
    }

    /// `key` needs no drift check from here (deleted, or it requeues itself sooner).
    pub fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    /// A reconcile of `key` starts; keep the returned guard until it ends.
    pub fn started(self: &Arc<Self>, key: K) -> Running<K> {
        let drift = self.lock().started(&key);
        Running {
            schedule: self.clone(),
            key,
            drift,
        }
    }

    /// How long the oldest due check has waited past its time.
    pub fn lag(&self) -> Duration {
        self.lock().lag(Instant::now())
    }

    /// CRs filed for a drift check.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no CR is filed.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Due CRs, oldest first, each when a worker is free for it. `exists` says whether the
    /// controller still has the CR; one it has not is dropped instead of yielded (kube-runtime
    /// would discard it without a reconcile, and its slot would never come back).
    pub fn releases(
        self: Arc<Self>,
        exists: impl Fn(&K) -> bool + Send + 'static,
    ) -> impl Stream<Item = K> + Send + 'static {
        futures::stream::unfold((self, exists), |(this, exists)| async move {
            loop {
                tokio::time::sleep(SETTLE).await;
                let (released, next) = {
                    let mut q = this.lock();
                    let released = q.release(Instant::now());
                    (released, q.next_due())
                };
                match released {
                    Some(key) if exists(&key) => return Some((key, (this, exists))),
                    Some(key) => {
                        this.lock().dropped(&key);
                        continue;
                    }
                    None => {}
                }
                // A change notified since the look above is not lost: `notify_one` leaves a
                // permit when nobody waits, and this wait takes it at once.
                let changed = this.changed.notified();
                match next {
                    // Due but no worker free: wait for a reconcile to end.
                    Some(at) if at <= Instant::now() => changed.await,
                    Some(at) => {
                        tokio::select! {
                            () = changed => {}
                            () = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => changed.await,
                }
            }
        })
    }
}

/// A reconcile in progress; frees its worker slot in the schedule when dropped (also on panic or
/// when the controller is stopped mid-reconcile).
#[derive(Debug)]
pub struct Running<K: Clone + Eq + Hash + Send + 'static> {
    schedule: Arc<DriftSchedule<K>>,
    key: K,
    drift: bool,
}

impl<K: Clone + Eq + Hash + Send + 'static> Running<K> {
    /// Whether this reconcile is a drift check released by the schedule.
    pub fn is_drift_check(&self) -> bool {
        self.drift
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Drop for Running<K> {
    fn drop(&mut self) {
        self.schedule.lock().finished(&self.key, self.drift);
        self.schedule.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn due_checks_come_out_oldest_first_and_only_into_free_workers() {
        let mut q = DriftQueue::new(2);
        let t0 = Instant::now();
        for k in 0..5u32 {
            q.schedule(k, t0 + Duration::from_secs(u64::from(k) * 10), PERIOD);
        }
        assert_eq!(q.release(t0), None, "nothing is due yet");
        let late = t0 + Duration::from_secs(200);
        // Two workers: one busy with new work leaves room for one drift check.
        assert!(!q.started(&99));
        let first = q.release(late).unwrap();
        assert_eq!(first, 0, "the oldest due check first");
        assert_eq!(q.release(late), None, "both workers are taken");
        assert!(q.started(&first));
        q.finished(&99, false);
        assert_eq!(q.release(late), Some(1));
        q.finished(&first, true);
        assert_eq!(q.release(late), Some(2), "a worker is free again");
        assert_eq!(
            q.release(late),
            None,
            "1 and 2 are out: both workers are spoken for"
        );
        assert!(q.started(&1));
        q.finished(&1, true);
        assert_eq!(q.release(late), Some(3));
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn due_times_spread_within_ten_percent_of_the_period() {
        let mut q = DriftQueue::new(1);
        let t0 = Instant::now();
        for k in 0..1000u32 {
            q.schedule(k, t0, PERIOD);
        }
        let first = q.next_due().unwrap() - t0;
        let last = q.due.last_key_value().unwrap().0 .0 - t0;
        assert!(first >= PERIOD.mul_f64(0.9) && last <= PERIOD.mul_f64(1.1));
        assert!(last - first > PERIOD.mul_f64(0.15), "{first:?}..{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn rescheduling_replaces_and_removal_forgets() {
        let mut q = DriftQueue::new(1);
        let t0 = Instant::now();
        q.schedule("a", t0, PERIOD);
        q.schedule("a", t0 + PERIOD, PERIOD);
        assert_eq!(q.len(), 1);
        assert!(q.next_due().unwrap() > t0 + PERIOD.mul_f64(1.8));
        q.remove(&"a");
        assert!(q.is_empty());
        assert_eq!(q.lag(t0 + PERIOD * 10), Duration::ZERO);
        q.schedule("b", t0, PERIOD);
        assert!(q.lag(t0 + PERIOD * 2) >= PERIOD.mul_f64(0.9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_release_frees_its_slot() {
        let mut q = DriftQueue::new(1);
        let t0 = Instant::now();
        q.schedule(1u8, t0, PERIOD);
        q.schedule(2u8, t0, PERIOD);
        let late = t0 + PERIOD * 2;
        let k = q.release(late).unwrap();
        assert_eq!(q.release(late), None);
        q.dropped(&k);
        assert!(q.release(late).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_waits_for_due_times_and_skips_what_is_gone() {
        use futures::StreamExt;
        let s = DriftSchedule::new(4, PERIOD);
        s.schedule(1u32);
        // Half a period later, so 1 falls due first whatever the jitter.
        tokio::time::advance(PERIOD / 2).await;
        s.schedule(2u32);
        let mut releases = Box::pin(s.clone().releases(|k| *k != 1));
        let t0 = Instant::now();
        let k = releases.next().await.unwrap();
        assert_eq!(k, 2, "1 is gone from the cache");
        assert!(Instant::now() - t0 >= PERIOD.mul_f64(0.9));
        // 1 was looked at and dropped on the way.
        let guard = s.started(k);
        assert!(guard.is_drift_check());
        drop(guard);
        assert!(s.is_empty());
    }
}
