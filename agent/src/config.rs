//! The agent's flags and environment variables (cli.md, "The agent").

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON when stderr is not a terminal (in the cluster), readable text on a terminal.
    Auto,
    /// One JSON object per line.
    Json,
    /// Readable text.
    Text,
}

/// `orkestra-agent`: turns Katalogs into running operators.
#[derive(Debug, Clone, Parser)]
#[command(name = "orkestra-agent", version, about, long_about = None)]
pub struct Config {
    /// Run the Katalog(s) in FILE instead of watching Katalog objects in the cluster (repeatable).
    #[arg(
        long = "katalog",
        value_name = "FILE",
        env = "ORKESTRA_KATALOG",
        value_delimiter = ','
    )]
    pub katalog_files: Vec<PathBuf>,

    /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then the in-cluster service account).
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Address of the /metrics, /healthz and /readyz server ("off" disables it).
    #[arg(
        long,
        value_name = "ADDR",
        env = "ORKESTRA_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_addr: String,

    /// Leader election with a Lease: only the leader reconciles, standbys keep warm caches.
    #[arg(
        long,
        value_enum,
        env = "ORKESTRA_LEADER_ELECTION",
        default_value = "on"
    )]
    pub leader_election: Toggle,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        value_name = "NAME",
        env = "ORKESTRA_LEASE_NAME",
        default_value = "orkestra-agent"
    )]
    pub lease_name: String,

    /// Namespace of the leader-election Lease (in the cluster: the agent's own namespace).
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "orkestra-system"
    )]
    pub lease_namespace: String,

    /// This instance's identity in the Lease and in events (in the cluster: the pod name).
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    pub identity: Option<String>,

    /// Act only on CRs in these namespaces (repeatable or comma-separated; default: all).
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        env = "ORKESTRA_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Concurrent reconciles per CRD entry, overriding each Katalog's `workers`.
    #[arg(long, value_name = "N", env = "ORKESTRA_WORKERS")]
    pub workers: Option<u16>,

    /// Only run Katalog objects matching this label selector.
    #[arg(long, value_name = "SELECTOR", env = "ORKESTRA_KATALOG_SELECTOR")]
    pub katalog_selector: Option<String>,

    /// Log format.
    #[arg(long, value_enum, env = "ORKESTRA_LOG_FORMAT", default_value = "auto")]
    pub log_format: LogFormat,

    /// External API calls per second each provider may make, sustained (bursts of twice that).
    /// Every resync observes each resource (a few read calls), so with many CRs and a short resync
    /// raise this, or resync less often: below the rate resyncs need, new CRs wait behind them.
    #[arg(
        long,
        value_name = "PER_SECOND",
        env = "ORKESTRA_PROVIDER_RATE",
        default_value_t = 20.0,
        value_parser = positive_rate
    )]
    pub provider_rate: f64,
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("expected calls per second above 0, got {s:?}")),
    }
}

impl Config {
    /// Defaults for running in-process (tests, embedding): no metrics server, no leader election.
    pub fn local() -> Self {
        Self {
            katalog_files: Vec::new(),
            kubeconfig: None,
            context: None,
            metrics_addr: "off".into(),
            leader_election: Toggle::Off,
            lease_name: "orkestra-agent".into(),
            lease_namespace: "orkestra-system".into(),
            identity: None,
            namespaces: Vec::new(),
            workers: None,
            katalog_selector: None,
            log_format: LogFormat::Auto,
            provider_rate: 20.0,
        }
    }

    /// The rate limit of each provider (`--provider-rate`, bursts of twice that).
    pub fn provider_limit(&self) -> orkestra_provider::RateLimit {
        orkestra_provider::RateLimit {
            per_second: self.provider_rate,
            burst: (self.provider_rate * 2.0).ceil().min(f64::from(u32::MAX)) as u32,
        }
    }

    /// This instance's identity: `--identity`, else the host name, else a fixed name.
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("orkestra-agent-{}", std::process::id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_rate_sets_the_limit_and_refuses_nonsense() {
        let c = Config::try_parse_from(["orkestra-agent", "--provider-rate", "150"]).unwrap();
        let limit = c.provider_limit();
        assert_eq!((limit.per_second, limit.burst), (150.0, 300));
        assert_eq!(
            Config::try_parse_from(["orkestra-agent"])
                .unwrap()
                .provider_rate,
            Config::local().provider_rate
        );
        for bad in ["0", "-3", "fast", "inf"] {
            let flag = format!("--provider-rate={bad}");
            let e = Config::try_parse_from(["orkestra-agent", flag.as_str()]).unwrap_err();
            assert!(e.to_string().contains("calls per second"), "{e}");
        }
    }
}
