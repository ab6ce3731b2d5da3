//! A token bucket limiting calls to one provider's external API.
//!
//! The runtime takes one token per provider operation, unless the provider meters its own
//! external calls with the bucket ([`crate::Provider::meter_calls`]): then each HTTP request,
//! SDK retries included, takes one, and `--provider-rate` means what it says (an observe of an
//! S3 bucket is several calls; counted per operation, 20 operations/s let about 80 calls/s out).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Steady rate and burst of a [`TokenBucket`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Operations per second, sustained.
    pub per_second: f64,
    /// Operations allowed at once after a quiet period.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 20 operations per second, bursts of 40: well under AWS's control-plane limits.
    fn default() -> Self {
        Self {
            per_second: 20.0,
            burst: 40,
        }
    }
}

/// A token bucket: `acquire` waits until a token is available.
#[derive(Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    state: Mutex<(f64, Instant)>,
    /// Time spent waiting for tokens since the last [`TokenBucket::take_waited`], nanoseconds.
    waited: AtomicU64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit) -> Self {
        let limit = RateLimit {
            per_second: limit.per_second.max(0.001),
            burst: limit.burst.max(1),
        };
        Self {
            limit,
            state: Mutex::new((f64::from(limit.burst), Instant::now())),
            waited: AtomicU64::new(0),
        }
    }

    /// The time all acquires waited since the last call (for the throttling metric, which the
    /// runtime reports whoever acquired: a provider's HTTP layer cannot reach the metrics).
    pub fn take_waited(&self) -> Duration {
        Duration::from_nanos(self.waited.swap(0, Ordering::Relaxed))
    }

    /// Take one token, waiting for it if needed. Returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                let refill = now.duration_since(state.1).as_secs_f64() * self.limit.per_second;
                state.0 = (state.0 + refill).min(f64::from(self.limit.burst));
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    let waited = started.elapsed();
                    if !waited.is_zero() {
                        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
                        self.waited.fetch_add(nanos, Ordering::Relaxed);
                    }
                    return waited;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.limit.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused clock: time only advances through the bucket's own sleeps, so the figures are exact
    // and the test does not depend on machine speed.
    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let bucket = TokenBucket::new(RateLimit {
            per_second: 10.0,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.acquire().await, Duration::ZERO);
        }
        for _ in 0..5 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(499) && elapsed <= Duration::from_millis(510),
            "{elapsed:?}"
        );
        // The five waits of 100 ms each, reported once.
        let waited = bucket.take_waited();
        assert!(waited >= Duration::from_millis(499), "{waited:?}");
        assert_eq!(bucket.take_waited(), Duration::ZERO);
    }
}
