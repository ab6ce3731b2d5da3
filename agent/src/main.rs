//! `orkestra-agent`: flags, logging, the Kubernetes client and signals; everything else is in the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use kube::api::{Api, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use orkestra_agent::{Config, LogFormat};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&anyhow::Error::new(e).context("starting the async runtime")),
    };
    match runtime.block_on(agent(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn agent(config: Config) -> anyhow::Result<()> {
    let client = client(&config).await?;
    if config.katalog_files.is_empty() {
        katalog_crd_served(&client).await?;
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    orkestra_agent::run(config, client, shutdown).await?;
    Ok(())
}

/// Print `e` as one `error: …` line (its causes joined, without repeating a cause its context
/// already quotes) and exit 1: no Debug structure, no backtrace.
fn fail(e: &anyhow::Error) -> ExitCode {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    eprintln!("error: {}", line.replace('\n', " "));
    ExitCode::FAILURE
}

/// The Katalog CRD must be served before the agent can watch Katalogs; without it the watch
/// would retry forever with a warning. Only definite answers stop the agent (not served,
/// forbidden); a server that cannot be reached yet is left to the watch's retries.
async fn katalog_crd_served(client: &kube::Client) -> Result<(), orkestra_agent::Error> {
    let resource = orkestra_agent::supervisor::katalog_resource();
    let katalogs: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let crd = format!("{}.{}", resource.plural, resource.group);
    match katalogs.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(orkestra_agent::Error::Missing {
            missing: format!("the Katalog CRD ({crd}) is not installed in this cluster"),
            remedy: "run `kubectl orkestra install`, or `kubectl apply -f deploy/crds/katalog.yaml`, or pass --katalog FILE to run a Katalog from a file".to_string(),
        }),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(orkestra_agent::Error::Missing {
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
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.init();
    }
}

async fn client(config: &Config) -> anyhow::Result<kube::Client> {
    let options = KubeConfigOptions {
        context: config.context.clone(),
        ..KubeConfigOptions::default()
    };
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("finding Kubernetes credentials (kubeconfig or in-cluster)")?,
    };
    kube::Client::try_from(kube_config).context("building the Kubernetes client")
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
