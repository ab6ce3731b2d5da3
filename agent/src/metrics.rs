//! The agent's Prometheus metrics (served on `/metrics`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use orkestra_provider::runtime::{Operation, RuntimeMetrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of per-CRD reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `plural.group` of the CRD.
    pub crd: String,
    /// `ok`, or the error's reason (`RenderFailed`, `StepFailed`, `ReconcilePanicked`, ...).
    pub result: String,
}

/// Labels of per-CRD metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CrdLabels {
    /// `plural.group` of the CRD.
    pub crd: String,
}

/// Labels of the external-resource gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExternalLabels {
    /// `plural.group` of the owning CRD.
    pub crd: String,
    /// Provider block (`aws`).
    pub provider: String,
    /// Kind (`s3`).
    pub kind: String,
    /// Row state (`Ready`, `Error`, ...).
    pub state: String,
}

/// Labels of per-provider metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLabels {
    /// Provider block.
    pub provider: String,
}

/// Labels of provider operation metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    /// Provider block.
    pub provider: String,
    /// Kind.
    pub kind: String,
    /// `observe`, `apply` or `delete`.
    pub operation: String,
    /// `ok` or `error`.
    pub result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 5 ms .. ~40 s
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// All metrics, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by CRD and result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile durations by CRD.
    pub reconcile_seconds: HistogramFamily<CrdLabels>,
    /// Reconciles running now, by CRD (the part of the queue being worked on).
    pub in_flight: Family<CrdLabels, Gauge>,
    /// CRs known to each CRD's controller.
    pub managed: Family<CrdLabels, Gauge>,
    /// How long the oldest due drift check has waited past its time, seconds ([`crate::drift`]).
    pub drift_lag_seconds: Family<CrdLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// CRs filed for a drift check.
    pub drift_scheduled: Family<CrdLabels, Gauge>,
    /// CRs whose last reconcile failed.
    pub failing: Family<CrdLabels, Gauge>,
    /// External resources by state.
    pub external: Family<ExternalLabels, Gauge>,
    /// Provider calls by provider, kind, operation and result.
    pub provider_calls: Family<ProviderLabels, Counter>,
    /// Provider call durations.
    pub provider_seconds: HistogramFamily<ProviderLabels>,
    /// Time provider calls waited for the provider's rate limit (`--provider-rate`), seconds.
    pub throttled_seconds: Family<RateLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Controllers running (one per accepted CRD entry).
    pub controllers: Gauge,
    /// 1 when this instance is the leader.
    pub leader: Gauge,
    /// Last external rows per CR, to move the `external` gauge when they change.
    rows: Mutex<HashMap<String, Vec<ExternalLabels>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered under the `orkestra_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("orkestra");
        let m = Self {
            reconciles: Family::default(),
            reconcile_seconds: Family::new_with_constructor(
                duration_histogram as fn() -> Histogram,
            ),
            in_flight: Family::default(),
            managed: Family::default(),
            drift_lag_seconds: Family::default(),
            drift_scheduled: Family::default(),
            failing: Family::default(),
            external: Family::default(),
            provider_calls: Family::default(),
            provider_seconds: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            throttled_seconds: Family::default(),
            controllers: Gauge::default(),
            leader: Gauge::default(),
            rows: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "reconciles",
            "Reconciles by CRD and result",
            m.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile durations by CRD",
            m.reconcile_seconds.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now by CRD",
            m.in_flight.clone(),
        );
        registry.register("custom_resources", "CRs managed by CRD", m.managed.clone());
        registry.register(
            "drift_lag_seconds",
            "How long the oldest due drift check of a Ready CR has waited past its resync, by CRD",
            m.drift_lag_seconds.clone(),
        );
        registry.register(
            "drift_checks_scheduled",
            "Ready CRs waiting for their next drift check, by CRD",
            m.drift_scheduled.clone(),
        );
        registry.register(
            "custom_resources_failing",
            "CRs whose last reconcile failed, by CRD",
            m.failing.clone(),
        );
        registry.register(
            "external_resources",
            "External resources by CRD, provider, kind and state",
            m.external.clone(),
        );
        registry.register(
            "provider_calls",
            "Provider operations by provider, kind, operation and result",
            m.provider_calls.clone(),
        );
        registry.register(
            "provider_call_duration_seconds",
            "Provider operation durations",
            m.provider_seconds.clone(),
        );
        registry.register(
            "provider_throttled_seconds",
            "Time provider calls waited for the provider's rate limit (--provider-rate)",
            m.throttled_seconds.clone(),
        );
        registry.register(
            "controllers",
            "Controllers running (one per accepted CRD entry)",
            m.controllers.clone(),
        );
        registry.register(
            "leader",
            "1 when this instance holds the leader Lease",
            m.leader.clone(),
        );
        Self { registry, ..m }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Count one finished reconcile.
    pub fn reconciled(&self, crd: &str, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                crd: crd.into(),
                result: result.into(),
            })
            .inc();
        self.reconcile_seconds
            .get_or_create(&CrdLabels { crd: crd.into() })
            .observe(took.as_secs_f64());
    }

    /// Replace the external rows of CR `key` (an empty list when the CR is gone).
    pub fn external_rows(&self, crd: &str, key: &str, rows: Vec<(String, String, String)>) {
        let new: Vec<ExternalLabels> = rows
            .into_iter()
            .map(|(provider, kind, state)| ExternalLabels {
                crd: crd.into(),
                provider,
                kind,
                state,
            })
            .collect();
        let mut all = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = if new.is_empty() {
            all.remove(key)
        } else {
            all.insert(key.to_string(), new.clone())
        };
        for l in old.unwrap_or_default() {
            self.external.get_or_create(&l).dec();
        }
        for l in &new {
            self.external.get_or_create(l).inc();
        }
    }
}

impl RuntimeMetrics for Metrics {
    fn operation(&self, provider: &str, kind: &str, op: Operation, ok: bool, elapsed: Duration) {
        let labels = ProviderLabels {
            provider: provider.into(),
            kind: kind.into(),
            operation: op.as_str().into(),
            result: if ok { "ok" } else { "error" }.into(),
        };
        self.provider_calls.get_or_create(&labels).inc();
        self.provider_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    fn throttled(&self, provider: &str, waited: Duration) {
        self.throttled_seconds
            .get_or_create(&RateLabels {
                provider: provider.into(),
            })
            .inc_by(waited.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_rows_move_between_states() {
        let m = Metrics::new();
        m.external_rows(
            "webs.demo.io",
            "ns/a",
            vec![("aws".into(), "s3".into(), "Creating".into())],
        );
        m.external_rows(
            "webs.demo.io",
            "ns/a",
            vec![("aws".into(), "s3".into(), "Ready".into())],
        );
        let text = m.encode();
        assert!(text.contains(r#"orkestra_external_resources{crd="webs.demo.io",provider="aws",kind="s3",state="Ready"} 1"#), "{text}");
        assert!(text.contains(r#"state="Creating"} 0"#), "{text}");
        m.throttled("aws", Duration::from_millis(250));
        m.throttled("aws", Duration::from_millis(250));
        assert!(
            m.encode()
                .contains(r#"orkestra_provider_throttled_seconds_total{provider="aws"} 0.5"#),
            "{}",
            m.encode()
        );
        m.reconciled("webs.demo.io", "ok", Duration::from_millis(20));
        assert!(m
            .encode()
            .contains(r#"orkestra_reconciles_total{crd="webs.demo.io",result="ok"} 1"#));
    }
}
