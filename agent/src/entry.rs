//! The agent as a program: flags, logging, the Kubernetes client, signals, exit status.
//!
//! [`main_with`] is the whole `main` of an agent binary, so a build with providers of its own is
//! a few lines: register them next to the built-in ones and hand the list over. `orkestra-agent`
//! itself is `main_with(orkestra_providers::builtin())`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use kube::api::{Api, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use orkestra_provider::{ProviderError, Providers};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};
use crate::error::Error;

/// Parse the command line, set up logging from `RUST_LOG`, connect to Kubernetes and run the
/// agent with `providers` until SIGTERM or Ctrl-C. Errors are printed as one `error: …` line
/// and the exit status is 1.
pub fn main_with(providers: Result<Providers, ProviderError>) -> ExitCode {
    let config = Config::parse();
    init_logging(config.log_format);
    let providers = match providers {
        Ok(p) => p,
        Err(e) => return fail(&format!("registering providers: {e}")),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("starting the async runtime: {e}")),
    };
    match runtime.block_on(agent(config, providers)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

async fn agent(config: Config, providers: Providers) -> Result<(), Error> {
    let client = client(&config).await?;
    if config.katalog_files.is_empty() {
        katalog_crd_served(&client).await?;
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    let runtime = providers.runtime(config.provider_limit());
    crate::run_with(config, client, runtime, shutdown).await
}

/// Print `message` as one `error: …` line (no Debug structure, no backtrace) and exit 1.
fn fail(message: &str) -> ExitCode {
    eprintln!("error: {}", message.replace('\n', " "));
    ExitCode::FAILURE
}

/// The Katalog CRD must be served before the agent can watch Katalogs; without it the watch
/// would retry forever with a warning. Only definite answers stop the agent (not served,
/// forbidden); a server that cannot be reached yet is left to the watch's retries.
async fn katalog_crd_served(client: &kube::Client) -> Result<(), Error> {
    let resource = crate::supervisor::katalog_resource();
    let katalogs: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let crd = format!("{}.{}", resource.plural, resource.group);
    match katalogs.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(Error::Missing {
            missing: format!("the Katalog CRD ({crd}) is not installed in this cluster"),
            remedy: "run `kubectl orkestra install`, or `kubectl apply -f deploy/crds/katalog.yaml`, or pass --katalog FILE to run a Katalog from a file".to_string(),
        }),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(Error::Missing {
            missing: format!("not allowed to list Katalogs ({crd}): {}", s.message),
            remedy: "grant this identity the ClusterRole orkestra-agent of deploy/rbac.yaml (`kubectl orkestra install` does)".to_string(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "listing Katalogs failed; the watch retries");
            Ok(())
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A program that set up its own subscriber keeps it.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

async fn client(config: &Config) -> Result<kube::Client, Error> {
    let invalid = |what: String, message: String| Error::Invalid { what, message };
    let options = KubeConfigOptions {
        context: config.context.clone(),
        ..KubeConfigOptions::default()
    };
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| {
                invalid(
                    format!("reading kubeconfig {}", path.display()),
                    e.to_string(),
                )
            })?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| {
                    invalid(
                        format!("loading kubeconfig {}", path.display()),
                        e.to_string(),
                    )
                })?
        }
        None => kube::Config::infer().await.map_err(|e| {
            invalid(
                "finding Kubernetes credentials (kubeconfig or in-cluster)".into(),
                e.to_string(),
            )
        })?,
    };
    kube::Client::try_from(kube_config)
        .map_err(|e| invalid("building the Kubernetes client".into(), e.to_string()))
}

async fn on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
