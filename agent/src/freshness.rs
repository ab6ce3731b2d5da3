//! The last full pass over each CR's external resources, so that a reconcile that is not a drift
//! check does not observe every external resource again.
//!
//! Each status write changes the CR, the watch delivers that change, and the controller
//! reconciles the CR once more; a child's status change (a Deployment becoming available) wakes
//! it too. At 1,000 CRs those re-reconciles were most of the provider read calls of a
//! convergence, and with a time window the cost per CR grew with load (issue 17: 13.6 calls per
//! CR in one run, 30.2 in a slower one). So a CR's rows are reused, instead of observing, when
//! all of the following hold: the reconcile is not a drift check (the caller decides: a drift
//! check always observes), the rendered external declarations are identical to those of the
//! last full pass (any change to the CR's spec or metadata, or to the Katalog, renders
//! differently), the CR's Secrets and ConfigMaps are at the same resourceVersions (a provider may
//! read them by reference: a changed password Secret must reach its provider at once), every row
//! was Ready with no intent left to settle, and the pass is younger than the entry's resync
//! period (so a CR whose drift checks lag is still observed at least that often). Drift in the
//! cloud is therefore found by drift checks, once per resync period, as the resync promises.
//! The cache lives in memory per controller: a restarted agent, an updated Katalog or a gained
//! leadership starts empty. A composed CR is walked in waves (see `reconcile`); each wave is
//! remembered under its own key.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use orkestra_engine::External;
use orkestra_provider::{State, StatusRow};

struct Pass {
    declared: u64,
    at: Instant,
    rows: Vec<StatusRow>,
}

/// The last full pass of each CR of one controller (`namespace/name` keys).
pub struct Freshness {
    passes: Mutex<HashMap<String, Pass>>,
    max_age: Duration,
}

impl std::fmt::Debug for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Freshness").finish_non_exhaustive()
    }
}

/// A fingerprint of the rendered external declarations and of what they may read (`inputs`,
/// see [`inputs`]).
fn fingerprint(items: &[External], inputs: u64) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(items)
        .unwrap_or_default()
        .hash(&mut h);
    inputs.hash(&mut h);
    h.finish()
}

/// A fingerprint of the CR's children a provider may read by reference: each Secret's and
/// ConfigMap's name and resourceVersion (`(kind, live object)` pairs). Other children (a
/// Deployment whose status moves during a rollout) do not count.
pub fn inputs<'a>(children: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>) -> u64 {
    let mut h = DefaultHasher::new();
    for (kind, live) in children {
        if matches!(kind, "Secret" | "ConfigMap") {
            kind.hash(&mut h);
            for p in [
                "/metadata/namespace",
                "/metadata/name",
                "/metadata/resourceVersion",
            ] {
                live.pointer(p).and_then(|v| v.as_str()).hash(&mut h);
            }
        }
    }
    h.finish()
}

impl Freshness {
    /// An empty cache whose passes stand in for new ones for at most `max_age` (the entry's
    /// resync period).
    pub fn new(max_age: Duration) -> Self {
        Self {
            passes: Mutex::default(),
            max_age,
        }
    }

    /// The rows of the last full pass of `key`, if they may stand in for a new pass at `now`
    /// (the caller asks only outside drift checks).
    pub fn reuse(
        &self,
        key: &str,
        items: &[External],
        inputs: u64,
        now: Instant,
    ) -> Option<Vec<StatusRow>> {
        let passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        let pass = passes.get(key)?;
        let fresh = now.saturating_duration_since(pass.at) < self.max_age
            && pass.declared == fingerprint(items, inputs)
            && pass
                .rows
                .iter()
                .all(|r| r.state == State::Ready && r.intent.is_none());
        fresh.then(|| pass.rows.clone())
    }

    /// Remember a full pass of `key` over `items` (reading `inputs`) that ended at `now` with
    /// `rows`.
    pub fn record(
        &self,
        key: &str,
        items: &[External],
        inputs: u64,
        rows: &[StatusRow],
        now: Instant,
    ) {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        passes.insert(
            key.to_string(),
            Pass {
                declared: fingerprint(items, inputs),
                at: now,
                rows: rows.to_vec(),
            },
        );
    }

    /// Forget `key` and its waves (the CR is being deleted, or gone).
    pub fn forget(&self, key: &str) {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        passes.remove(key);
        let wave = format!("{key}#");
        passes.retain(|k, _| !k.starts_with(&wave));
    }

    /// Keep only the passes of CRs `keep` accepts (by CR key, waves included).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        passes.retain(|k, _| keep(k.split_once('#').map_or(k.as_str(), |(cr, _)| cr)));
    }

    /// Forget every pass (this instance became the leader: another may have acted meanwhile).
    pub fn clear(&self) {
        self.passes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// How many passes are remembered (waves count one each).
    pub fn len(&self) -> usize {
        self.passes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no pass is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of one wave of a composed CR's walk: each wave has its own declarations.
    pub fn wave_key(key: &str, wave: usize) -> String {
        if wave == 0 {
            key.to_string()
        } else {
            format!("{key}#{wave}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Intent;
    use serde_json::{json, Map};

    fn item(versioning: bool) -> External {
        let mut fields = Map::new();
        fields.insert("bucket".into(), json!("b"));
        fields.insert("versioning".into(), json!(versioning));
        External {
            provider: "aws".into(),
            kind: "s3".into(),
            name: "b".into(),
            fields,
            source: "onCreate.aws[0]".into(),
            registered: true,
            id: None,
        }
    }

    fn row(state: State, intent: Option<Intent>) -> StatusRow {
        StatusRow {
            provider: "aws".into(),
            kind: "s3".into(),
            name: "b".into(),
            id: None,
            state,
            message: String::new(),
            last_sync_time: "2026-11-30T10:00:00Z".into(),
            outputs: Default::default(),
            intent,
            deletion_policy: None,
        }
    }

    const RESYNC: Duration = Duration::from_secs(30);

    #[test]
    fn a_ready_pass_over_the_same_declarations_stands_in_until_the_resync_period() {
        let f = Freshness::new(RESYNC);
        let t0 = Instant::now();
        let items = [item(true)];
        f.record("ns/a", &items, 7, &[row(State::Ready, None)], t0);
        // Well past the few seconds a status write's echo takes: a slow convergence still
        // reuses (issue 17), for as long as a drift check would not be due.
        assert!(f
            .reuse("ns/a", &items, 7, t0 + Duration::from_secs(29))
            .is_some());
        // Not another CR, not a resync period later, not other declarations or inputs.
        assert!(f.reuse("ns/b", &items, 7, t0).is_none());
        assert!(f.reuse("ns/a", &items, 7, t0 + RESYNC).is_none());
        assert!(f.reuse("ns/a", &[item(false)], 7, t0).is_none());
        assert!(f.reuse("ns/a", &items, 8, t0).is_none());
        f.forget("ns/a");
        assert!(f.reuse("ns/a", &items, 7, t0).is_none());
        f.record("ns/a", &items, 7, &[row(State::Ready, None)], t0);
        f.clear();
        assert!(f.is_empty());
    }

    #[test]
    fn pruning_keeps_live_crs_and_their_waves_only() {
        let f = Freshness::new(RESYNC);
        let t0 = Instant::now();
        let items = [item(true)];
        let ready = [row(State::Ready, None)];
        for key in ["ns/a", "ns/gone"] {
            f.record(key, &items, 0, &ready, t0);
            f.record(&Freshness::wave_key(key, 1), &items, 0, &ready, t0);
        }
        f.retain(|k| k == "ns/a");
        assert_eq!(f.len(), 2);
        assert!(f.reuse("ns/a", &items, 0, t0).is_some());
        assert!(f.reuse("ns/gone", &items, 0, t0).is_none());
    }

    #[test]
    fn rows_not_ready_or_with_an_intent_are_observed_again() {
        let f = Freshness::new(RESYNC);
        let t0 = Instant::now();
        let items = [item(true)];
        f.record("ns/a", &items, 0, &[row(State::Creating, None)], t0);
        assert!(f.reuse("ns/a", &items, 0, t0).is_none());
        f.record(
            "ns/a",
            &items,
            0,
            &[row(State::Ready, Some(Intent::Create))],
            t0,
        );
        assert!(f.reuse("ns/a", &items, 0, t0).is_none());
    }

    #[test]
    fn only_secrets_and_configmaps_count_as_inputs() {
        let secret = |rv: &str| json!({"metadata": {"namespace": "ns", "name": "pw", "resourceVersion": rv}});
        let deployment = |rv: &str| json!({"metadata": {"namespace": "ns", "name": "web", "resourceVersion": rv}});
        let (s1, s2, d1, d2) = (secret("1"), secret("2"), deployment("1"), deployment("2"));
        assert_ne!(
            inputs([("Secret", &s1), ("Deployment", &d1)]),
            inputs([("Secret", &s2), ("Deployment", &d1)])
        );
        assert_eq!(
            inputs([("Secret", &s1), ("Deployment", &d1)]),
            inputs([("Secret", &s1), ("Deployment", &d2)])
        );
    }
}
