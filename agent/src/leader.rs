//! Leader election with a Lease (kube-lease-manager).
//!
//! Every instance runs its watchers (standbys keep warm caches); only the leader reconciles and
//! writes status. Leadership is published on a watch channel; controllers re-reconcile every CR
//! when their instance becomes the leader.

use std::sync::Arc;
use std::time::Duration;

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Toggle};
use crate::error::Error;
use crate::metrics::Metrics;

/// Lease validity after the last renewal.
const LEASE_DURATION_SECS: u64 = 15;
/// Renew this long before the Lease would expire.
const LEASE_GRACE_SECS: u64 = 5;

/// This instance's leadership, observable.
#[derive(Debug)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    /// Held when nothing else sends (election off): a closed channel would read as "lost".
    _fixed: Option<watch::Sender<bool>>,
}

impl Leadership {
    /// Always the leader (leader election off, or `--katalog FILE` runs).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Self {
            rx,
            _fixed: Some(tx),
        }
    }

    /// Whether this instance leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// A receiver of leadership changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }
}

/// The election task; await [`Election::released`] after cancelling its token.
#[derive(Debug)]
pub struct Election(Option<JoinHandle<()>>);

impl Election {
    /// Wait until the Lease was released (after the shutdown token was cancelled).
    pub async fn released(self) {
        if let Some(t) = self.0 {
            let _ = t.await;
        }
    }
}

/// Start leader election as `config` says. With election off, this instance always leads.
pub async fn elect(
    client: kube::Client,
    config: &Config,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(Leadership, Election), Error> {
    if config.leader_election == Toggle::Off {
        metrics.leader.set(1);
        return Ok((Leadership::always(), Election(None)));
    }
    let lease = format!("{}/{}", config.lease_namespace, config.lease_name);
    let identity = config.identity();
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.lease_namespace)
        .with_identity(&identity)
        .with_duration(LEASE_DURATION_SECS)
        .with_grace(LEASE_GRACE_SECS)
        .with_field_manager("orkestra-agent-lease")
        .build()
        .await
        .map_err(|source| Error::Lease {
            lease: lease.clone(),
            source,
        })?;
    let (tx, rx) = watch::channel(false);
    tracing::info!(%lease, %identity, "leader election started; standing by until the Lease is ours");
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    // Hand the Lease over at once instead of letting it expire: fast failover.
                    if let Err(e) = manager.release().await {
                        tracing::warn!(error = %e, %lease, "releasing the Lease failed");
                    }
                    let _ = tx.send(false);
                    metrics.leader.set(0);
                    return;
                }
                changed = manager.changed() => match changed {
                    Ok(leading) => {
                        tracing::info!(leading, %lease, "leadership changed");
                        metrics.leader.set(i64::from(leading));
                        let _ = tx.send(leading);
                    }
                    Err(e) => {
                        // Not knowing whether we lead means we must not act as the leader.
                        log_lease_error(&e, &lease);
                        metrics.leader.set(0);
                        let _ = tx.send(false);
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                },
            }
        }
    });
    Ok((Leadership { rx, _fixed: None }, Election(Some(task))))
}

fn log_lease_error(e: &LeaseManagerError, lease: &str) {
    tracing::warn!(error = %e, %lease, "leader election error; acting as a standby until it recovers");
}
