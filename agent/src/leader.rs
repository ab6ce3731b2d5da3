//! Leader election with a Lease (kube-lease-manager).
//!
//! Every instance runs its watchers (standbys keep warm caches); only the leader reconciles and
//! writes status. Leadership is published on a watch channel; controllers re-reconcile every CR
//! when their instance becomes the leader.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
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
    let (name, namespace) = (config.lease_name.clone(), config.lease_namespace.clone());
    let mut manager = build_manager(&client, &name, &namespace, &identity)
        .await
        .map_err(|source| setup_error(source, &namespace, &lease))?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
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
                changed = changed_or_poll(&manager, *tx.borrow()) => match changed {
                    None => {
                        // kube-lease-manager trusts its last look until the holder's Lease would
                        // expire; a Lease the leader released at shutdown is free now, so start
                        // over with a fresh manager, which takes it at once.
                        if lease_released(&leases, &name).await {
                            match build_manager(&client, &name, &namespace, &identity).await {
                                Ok(m) => manager = m,
                                Err(e) => log_lease_error(&e, &lease),
                            }
                        }
                    }
                    Some(Ok(leading)) => {
                        tracing::info!(leading, %lease, "leadership changed");
                        metrics.leader.set(i64::from(leading));
                        let _ = tx.send(leading);
                    }
                    Some(Err(e)) => {
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

/// The error of setting up the Lease, in one line saying what to do when the cause is a missing
/// namespace or missing rights (what a first run on a laptop meets).
fn setup_error(source: LeaseManagerError, namespace: &str, lease: &str) -> Error {
    let LeaseManagerError::KubeError(kube::Error::Api(status)) = &source else {
        return Error::Lease {
            lease: lease.to_string(),
            source,
        };
    };
    let switches = "or pass --lease-namespace NS (an existing namespace), or --leader-election=off for a single instance";
    match status.code {
        // `namespaces "orkestra-system" not found`
        404 if status.message.contains("namespace") => Error::Missing {
            missing: format!(
                "namespace {namespace} not found (the leader Lease {lease} lives there)"
            ),
            remedy: format!("run `kubectl orkestra install` (it creates {namespace}), {switches}"),
        },
        403 => Error::Missing {
            missing: format!(
                "not allowed to create or read Lease {lease} ({})",
                status.message
            ),
            remedy: format!(
                "grant this identity the leases rights of deploy/rbac.yaml in {namespace}, {switches}"
            ),
        },
        _ => Error::Lease {
            lease: lease.to_string(),
            source,
        },
    }
}

async fn build_manager(
    client: &kube::Client,
    name: &str,
    namespace: &str,
    identity: &str,
) -> Result<kube_lease_manager::LeaseManager, LeaseManagerError> {
    LeaseManagerBuilder::new(client.clone(), name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION_SECS)
        .with_grace(LEASE_GRACE_SECS)
        .with_field_manager("orkestra-agent-lease")
        .build()
        .await
}

/// Whether the Lease has no holder (released, or not there).
async fn lease_released(leases: &Api<Lease>, name: &str) -> bool {
    match leases.get_opt(name).await {
        Ok(Some(l)) => l
            .spec
            .and_then(|s| s.holder_identity)
            .is_none_or(|h| h.is_empty()),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// How often a standby looks at the Lease. kube-lease-manager sleeps until the holder's Lease
/// would expire, so a Lease released at shutdown would otherwise wait out the whole duration.
const STANDBY_POLL: Duration = Duration::from_secs(2);

/// `manager.changed()`, cut short every [`STANDBY_POLL`] while standing by (`None` then).
/// Dropping `changed()` there is safe: its next call re-reads the Lease from the server first, so
/// a lock taken just before the cut is seen as ours.
async fn changed_or_poll(
    manager: &kube_lease_manager::LeaseManager,
    leading: bool,
) -> Option<Result<bool, LeaseManagerError>> {
    if leading {
        return Some(manager.changed().await);
    }
    tokio::time::timeout(STANDBY_POLL, manager.changed())
        .await
        .ok()
}

fn log_lease_error(e: &LeaseManagerError, lease: &str) {
    tracing::warn!(error = %e, %lease, "leader election error; acting as a standby until it recovers");
}
