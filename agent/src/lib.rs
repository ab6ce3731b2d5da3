//! orkestra-agent: the runtime that turns Katalogs into running operators.
//!
//! The agent watches `Katalog` objects (or reads `--katalog FILE`) and runs one kube-runtime
//! controller per CRD entry, each with its own queue, workers, resync and per-object backoff.
//! A reconcile renders the CR with the engine, creates or server-side applies its children,
//! drives external resources through the provider runtime and writes the CR's status.
//!
//! - [`katalog_watcher`] and [`supervisor`]: Katalogs in, controllers started/updated/stopped,
//!   Katalog status out;
//! - [`controller`]: one entry's controller, panic isolation, backoff;
//! - [`reconcile`], [`children`], [`external`], [`status`], [`finalizer`], [`cleanup`]: one CR;
//! - [`leader`], [`health`], [`metrics`], [`events`]: running it as a service.
//!
//! [`run`] is the whole agent; [`main_with`] is the whole program (flags, logging, client,
//! signals) for any set of providers, so `main.rs` is one line.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod children;
pub mod cleanup;
pub mod config;
pub mod context;
pub mod controller;
pub mod cross;
pub mod discovery;
pub mod drift;
pub mod entry;
pub mod error;
pub mod events;
pub mod external;
pub mod finalizer;
pub mod freshness;
pub mod health;
pub mod journal;
pub mod katalog_doc;
pub mod katalog_watcher;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod status;
pub mod supervisor;
pub mod walk;

use std::sync::Arc;

use orkestra_provider::ProviderRuntime;
use tokio_util::sync::CancellationToken;

pub use config::{Config, LogFormat, Toggle};
pub use entry::main_with;
pub use error::Error;

/// Run the agent with orkestra's built-in providers until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    client: kube::Client,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let providers = orkestra_providers::builtin().map_err(|e| Error::Invalid {
        what: "registering providers".into(),
        message: e.to_string(),
    })?;
    let runtime = providers.runtime(config.provider_limit());
    run_with(config, client, runtime, shutdown).await
}

/// Run the agent with the given providers until `shutdown` is cancelled.
pub async fn run_with(
    config: Config,
    client: kube::Client,
    providers: ProviderRuntime,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let metrics = Arc::new(metrics::Metrics::new());
    let providers = providers.with_metrics(metrics.clone());
    let provider_schemas = providers
        .provider_names()
        .into_iter()
        .filter_map(|n| providers.provider(n))
        .map(|p| p.schema())
        .collect();
    let election_stop = shutdown.child_token();
    let (leadership, election) = leader::elect(
        client.clone(),
        &config,
        metrics.clone(),
        election_stop.clone(),
    )
    .await?;
    let probes = Arc::new(health::Probes::default());
    if config.metrics_addr != "off" {
        health::serve(
            &config.metrics_addr,
            probes.clone(),
            metrics.clone(),
            shutdown.child_token(),
        )
        .await?;
    }
    let identity = config.identity();
    let agent = Arc::new(context::AgentContext {
        events: events::Events::new(client.clone(), identity),
        apis: discovery::ApiCache::new(client.clone()),
        client,
        config,
        providers,
        provider_schemas,
        metrics,
        leadership,
    });
    let sup = Arc::new(supervisor::Supervisor::new(agent.clone()));
    let result = if agent.config.katalog_files.is_empty() {
        katalog_watcher::watch(agent.clone(), sup.clone(), probes, shutdown.clone()).await;
        Ok(())
    } else {
        match supervisor::apply_files(&sup, &agent.config.katalog_files) {
            Ok(()) => {
                probes.set_ready();
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        _ = tick.tick() => sup.report().await,
                    }
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    // Stop every controller, then hand the Lease over.
    sup.stop_all();
    election_stop.cancel();
    election.released().await;
    tracing::info!("agent stopped");
    result
}
