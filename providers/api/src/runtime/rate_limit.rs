//! A token bucket limiting calls to one provider's external API.

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
        }
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
                    return started.elapsed();
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
    }
}
