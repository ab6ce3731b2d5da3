//! Per-object exponential backoff with jitter for failed reconciles.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Duration;

/// Failure counts by object key; the delay doubles per failure up to a cap, with ±50% jitter so
/// that many CRs failing together do not retry in lockstep.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Start at `base`, cap at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Record a failure of `key`; the delay before its next attempt.
    pub fn failed(&self, key: &str) -> Duration {
        let n = {
            let mut f = self
                .failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = f.entry(key.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let exp = self.base.saturating_mul(1u32 << (n - 1).min(16));
        let capped = exp.min(self.max);
        capped.mul_f64(0.5 + jitter())
    }

    /// `key` reconciled successfully: its next failure starts from `base` again.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// Keep only the objects `keep` accepts (prunes CRs that are gone without a last reconcile,
    /// a finalizer removed by hand for one).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k, _| keep(k));
    }

    /// Objects whose last reconcile failed.
    pub fn failing(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// A number in [0, 1): randomly keyed SipHash of the clock (std only; jitter needs no quality).
fn jitter() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_forgets_objects_that_are_gone() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        b.failed("ns/a");
        b.failed("ns/gone");
        b.retain(|k| k == "ns/a");
        assert_eq!(b.failing(), 1);
    }

    #[test]
    fn delays_grow_are_capped_jittered_and_reset() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let d1 = b.failed("a");
        assert!(
            d1 >= Duration::from_millis(500) && d1 < Duration::from_millis(1500),
            "{d1:?}"
        );
        for _ in 0..10 {
            b.failed("a");
        }
        let capped = b.failed("a");
        assert!(
            capped >= Duration::from_secs(4) && capped < Duration::from_secs(12),
            "{capped:?}"
        );
        assert_eq!(b.failing(), 1);
        b.succeeded("a");
        assert_eq!(b.failing(), 0);
        let again = b.failed("a");
        assert!(again < Duration::from_millis(1500), "{again:?}");
    }
}
