//! Waiting on conditions with a timeout, and names that do not collide between tests.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// What a [`wait_for`] condition returns: `bool` (done or not) or `Option<T>` (done with a
/// value, or not yet).
pub trait Ready {
    /// What [`wait_for`] returns once the condition holds.
    type Output;
    /// `Some` once the condition holds.
    fn ready(self) -> Option<Self::Output>;
}

impl Ready for bool {
    type Output = ();
    fn ready(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Ready for Option<T> {
    type Output = T;
    fn ready(self) -> Option<T> {
        self
    }
}

/// Polls `check` until it reports ready, for at most `timeout`; the error names `what`.
///
/// The poll interval starts at 50 ms and doubles up to 1 s, so fast conditions finish fast
/// without hammering the API server on slow ones. A check still running at the deadline is
/// cut off.
pub async fn wait_for<F, Fut, R>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<R::Output, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = R>,
    R: Ready,
{
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(50);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(result) = tokio::time::timeout(left, check()).await {
            if let Some(value) = result.ready() {
                return Ok(value);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                what: what.to_owned(),
                timeout,
            });
        }
        tokio::time::sleep(interval.min(left)).await;
        interval = (interval * 2).min(Duration::from_secs(1));
    }
}

/// `PREFIX-xxxxxxxx`: lower-case, DNS-safe, unique within this process and (by the clock and
/// process id) very likely across runs sharing one moto — for S3 buckets, RDS instances and
/// other names the API server cannot generate.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = (u64::from(std::process::id()) << 32 | u64::from(nanos))
        ^ u64::from(n).wrapping_mul(0x9e37_79b9);
    format!("{}-{:08x}{:x}", prefix.trim_end_matches('-'), mix as u32, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_for_returns_the_value_once_ready() {
        let mut calls = 0;
        let got = wait_for("the third call", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { (n >= 3).then_some(n) }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn wait_for_times_out_naming_what_it_waited_for() {
        let err = wait_for(
            "a condition that never holds",
            Duration::from_millis(200),
            || async { false },
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("a condition that never holds"),
            "{err}"
        );
    }

    #[test]
    fn unique_names_differ_and_are_dns_safe() {
        let a = unique_name("bucket-");
        let b = unique_name("bucket");
        assert_ne!(a, b);
        for n in [&a, &b] {
            assert!(n.starts_with("bucket-"), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
        }
    }
}
