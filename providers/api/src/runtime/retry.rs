//! Exponential backoff with jitter for retryable provider errors.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How often and how patiently to retry a retryable error within one reconcile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt (before jitter).
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based): `base * 2^(attempt-1)`, capped,
    /// then "equal jitter" (a random point in its upper half) so many CRs failing together do not
    /// retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(random_unit())
    }
}

/// A random number in [0, 1), from the standard library's randomly seeded hasher (no extra crate
/// for something that needs no quality beyond "not the same for every caller").
fn random_unit() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_bounded_and_vary() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for attempt in 1..=10 {
            let exp =
                (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(Duration::from_secs(1));
            let d = p.delay(attempt);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} not in {:?}..={exp:?}",
                exp / 2
            );
        }
        let samples: std::collections::BTreeSet<_> = (0..20).map(|_| p.delay(5)).collect();
        assert!(samples.len() > 1, "jitter never varied");
    }
}
