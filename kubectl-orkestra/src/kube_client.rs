//! Reaching the cluster the way kubectl does: `--kubeconfig`, `--context`, `-n`, `-A`, and
//! `KUBECONFIG` holding several files merged in order (the first file to set a value wins).
//!
//! Every verb that talks to the cluster flattens [`KubeArgs`] into its arguments and calls
//! [`connect`]; errors from the API go through [`explain`] so the user reads one line saying what
//! went wrong and what to try, never a debug dump.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The `User-Agent` of the plugin's API requests.
pub const USER_AGENT: &str = concat!("kubectl-orkestra/", env!("CARGO_PKG_VERSION"));

/// The kubectl flags that pick a cluster and a namespace.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace, then "default").
    #[arg(short = 'n', long, value_name = "NS", global = true)]
    pub namespace: Option<String>,
}

/// A connected client and where it points.
#[derive(Clone)]
pub struct Kube {
    /// The API client.
    pub client: kube::Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The API server's URL (for messages).
    pub server: String,
}

/// A tokio runtime for one verb (the plugin is a short-lived process).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Where the kubeconfig comes from, in kubectl's order.
fn kubeconfig_paths(a: &KubeArgs) -> anyhow::Result<Vec<PathBuf>> {
    if let Some(p) = &a.kubeconfig {
        if !p.exists() {
            anyhow::bail!(
                "kubeconfig {} does not exist; pass an existing file to --kubeconfig",
                p.display()
            );
        }
        return Ok(vec![p.clone()]);
    }
    if let Some(v) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        // kubectl skips files in KUBECONFIG that do not exist, and fails only when none does.
        let all: Vec<PathBuf> = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        let existing: Vec<PathBuf> = all.iter().filter(|p| p.exists()).cloned().collect();
        if existing.is_empty() {
            anyhow::bail!(
                "no kubeconfig: none of the files in KUBECONFIG exists ({}); set KUBECONFIG or pass --kubeconfig",
                all.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
        }
        return Ok(existing);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let default = home.join(".kube").join("config");
    if default.exists() {
        return Ok(vec![default]);
    }
    anyhow::bail!(
        "no kubeconfig: {} does not exist and KUBECONFIG is not set; pass --kubeconfig FILE or set KUBECONFIG",
        default.display()
    )
}

fn read_kubeconfig(path: &Path) -> anyhow::Result<Kubeconfig> {
    Kubeconfig::read_from(path)
        .map_err(|e| anyhow!("cannot read kubeconfig {}: {e}", path.display()))
}

/// The merged kubeconfig the flags and environment select.
pub fn load_kubeconfig(a: &KubeArgs) -> anyhow::Result<Kubeconfig> {
    let mut merged: Option<Kubeconfig> = None;
    for p in kubeconfig_paths(a)? {
        let k = read_kubeconfig(&p)?;
        merged = Some(match merged {
            None => k,
            Some(m) => m
                .merge(k)
                .map_err(|e| anyhow!("cannot merge kubeconfig {}: {e}", p.display()))?,
        });
    }
    merged.ok_or_else(|| anyhow!("no kubeconfig"))
}

/// Connect as `a` says. Nothing is sent to the server yet.
pub async fn connect(a: &KubeArgs) -> anyhow::Result<Kube> {
    let kubeconfig = load_kubeconfig(a)?;
    if let Some(ctx) = &a.context {
        if !kubeconfig.contexts.iter().any(|c| &c.name == ctx) {
            let known: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            anyhow::bail!(
                "context {ctx:?} is not in the kubeconfig (it has: {})",
                known.join(", ")
            );
        }
    } else if kubeconfig
        .current_context
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        anyhow::bail!("the kubeconfig has no current-context; pass --context NAME");
    }
    let options = KubeConfigOptions {
        context: a.context.clone(),
        cluster: None,
        user: None,
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| anyhow!("cannot use the kubeconfig: {e}"))?;
    // An unreachable server should fail fast, not after the default 30 s per attempt.
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    // Like kubectl, name the client: the API server's audit log then says which requests were
    // the plugin's (kube-rs sends no User-Agent of its own).
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    let server = config.cluster_url.to_string();
    let namespace = a
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config)
        .map_err(|e| anyhow!("cannot build a client for {server}: {e}"))?;
    Ok(Kube {
        client,
        namespace,
        server,
    })
}

/// Turn an API error into one line that says what failed and what to do.
///
/// `what` names the object or operation (`get customresourcedefinition websites.demo.io`).
pub fn explain(e: kube::Error, what: &str, server: &str) -> anyhow::Error {
    match &e {
        kube::Error::Api(s) => match s.code {
            401 => anyhow!("{what}: unauthorized at {server}; check the credentials in your kubeconfig"),
            403 => anyhow!("{what}: forbidden: {}", s.message),
            404 => anyhow!("{what}: not found"),
            _ => anyhow!("{what}: {}", s.message),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => anyhow!(
            "cannot reach the cluster at {server} ({}); is it running, and are --kubeconfig/--context right?",
            root_cause(&e)
        ),
        _ => anyhow!("{what}: {}", root_cause(&e)),
    }
}

/// The innermost message of an error chain (the one a user can act on).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether an API error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
