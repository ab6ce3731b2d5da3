//! Recently observed external resources, per CR, so that the reconcile our own status write
//! triggers moments later does not observe every external resource again.
//!
//! Each status write changes the CR, the watch delivers that change, and the controller
//! reconciles the CR once more; at 1,000 CRs that re-reconcile was most of the provider read
//! calls of a convergence. A CR's rows are reused, instead of observing, only when all of the
//! following hold: the rendered external declarations are identical to those of the last full
//! pass (any change to the CR's spec or metadata, or to the Katalog, renders differently), the
//! CR's Secrets and ConfigMaps are at the same resourceVersions (a provider may read them by
//! reference: a changed password Secret must reach its provider at once), that
//! pass ended less than [`WINDOW`] ago, and every row was Ready with no intent left to settle.
//! Resyncs come later than the window, so drift is still found on every resync. The cache lives
//! in memory per controller: a restarted agent or an updated Katalog starts empty. A composed CR
//! is walked in waves (see `reconcile`); each wave is remembered under its own key.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use orkestra_engine::External;
use orkestra_provider::{State, StatusRow};

/// How long a full pass over a CR's external resources stands in for another one.
pub const WINDOW: Duration = Duration::from_secs(5);

struct Pass {
    declared: u64,
    at: Instant,
    rows: Vec<StatusRow>,
}

/// The last full pass of each CR of one controller (`namespace/name` keys).
#[derive(Default)]
pub struct Freshness {
    passes: Mutex<HashMap<String, Pass>>,
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
    /// The rows of the last full pass of `key`, if they may stand in for a new pass at `now`.
    pub fn reuse(
        &self,
        key: &str,
        items: &[External],
        inputs: u64,
        now: Instant,
    ) -> Option<Vec<StatusRow>> {
        let passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        let pass = passes.get(key)?;
        let fresh = now.saturating_duration_since(pass.at) < WINDOW
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

    #[test]
    fn a_recent_ready_pass_over_the_same_declarations_stands_in() {
        let f = Freshness::default();
        let t0 = Instant::now();
        let items = [item(true)];
        f.record("ns/a", &items, 7, &[row(State::Ready, None)], t0);
        assert!(f
            .reuse("ns/a", &items, 7, t0 + Duration::from_secs(1))
            .is_some());
        // Not another CR, not after the window, not other declarations or inputs.
        assert!(f.reuse("ns/b", &items, 7, t0).is_none());
        assert!(f.reuse("ns/a", &items, 7, t0 + WINDOW).is_none());
        assert!(f.reuse("ns/a", &[item(false)], 7, t0).is_none());
        assert!(f.reuse("ns/a", &items, 8, t0).is_none());
        f.forget("ns/a");
        assert!(f.reuse("ns/a", &items, 7, t0).is_none());
    }

    #[test]
    fn pruning_keeps_live_crs_and_their_waves_only() {
        let f = Freshness::default();
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
        let f = Freshness::default();
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
