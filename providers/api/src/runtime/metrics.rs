//! Hooks the agent fills with its metrics registry; the runtime calls them, the default does nothing.

use std::time::Duration;

/// The provider operation a metric is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `observe`.
    Observe,
    /// `apply`.
    Apply,
    /// `delete`.
    Delete,
}

impl Operation {
    /// Lower-case label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Observe => "observe",
            Operation::Apply => "apply",
            Operation::Delete => "delete",
        }
    }
}

/// Receives runtime measurements. Every method has an empty default.
pub trait RuntimeMetrics: Send + Sync {
    /// One provider operation finished (`ok` false when it returned an error).
    fn operation(
        &self,
        _provider: &str,
        _kind: &str,
        _op: Operation,
        _ok: bool,
        _elapsed: Duration,
    ) {
    }
    /// A retryable error is retried after `delay`.
    fn retry(&self, _provider: &str, _kind: &str, _op: Operation, _attempt: u32, _delay: Duration) {
    }
    /// The rate limiter made calls wait this long (all waits since the last report).
    fn throttled(&self, _provider: &str, _waited: Duration) {}
    /// Mutating external calls made by an apply or delete.
    fn mutations(&self, _provider: &str, _kind: &str, _count: u32) {}
}

/// Metrics that go nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMetrics;

impl RuntimeMetrics for NoMetrics {}
