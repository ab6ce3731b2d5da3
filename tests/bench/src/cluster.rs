//! The private test systems (`tests/cluster/up.sh --only kube,moto DIR`): start, reach, restart,
//! stop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Context, Error, Result};

/// A running set of test systems in one directory.
pub struct Cluster {
    /// The repository root (scripts live under it).
    pub repo: PathBuf,
    /// The state directory given to up.sh.
    pub dir: PathBuf,
    /// The `NAME=value` lines of `DIR/env`.
    pub env: BTreeMap<String, String>,
    /// An admin client.
    pub client: kube::Client,
    /// Whether this run started the systems (and so stops them).
    owned: bool,
}

impl Cluster {
    /// Starts kube-apiserver, kube-controller-manager and moto in `dir` (or reuses them when `dir`
    /// is already up). A watchdog stops them when this process exits, even on a crash.
    pub async fn up(repo: &Path, dir: &Path) -> Result<Self> {
        let was_up = dir.join("env").exists();
        let status = tokio::process::Command::new(repo.join("tests/cluster/up.sh"))
            .args(["--only", "kube,moto"])
            .arg(dir)
            .env("ORKESTRA_OWNER_PID", std::process::id().to_string())
            // Thousands of Services need more than the default /24 of ClusterIPs.
            .env("SERVICE_CIDR", "10.0.0.0/16")
            .stdin(Stdio::null())
            .status()
            .await
            .ctx(|| "running tests/cluster/up.sh".into())?;
        if !status.success() {
            return Err(Error::msg(format!(
                "tests/cluster/up.sh {} failed: {status}",
                dir.display()
            )));
        }
        let env_text = std::fs::read_to_string(dir.join("env"))
            .ctx(|| format!("reading {}/env", dir.display()))?;
        let env = env_text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        let client = client_from(&dir.join("kubeconfig")).await?;
        Ok(Cluster {
            repo: repo.to_path_buf(),
            dir: dir.to_path_buf(),
            env,
            client,
            owned: !was_up,
        })
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// moto's endpoint, e.g. `http://127.0.0.1:PORT`.
    pub fn moto_endpoint(&self) -> String {
        self.env
            .get("AWS_ENDPOINT_URL")
            .cloned()
            .unwrap_or_default()
    }

    /// moto's `host:port`.
    pub fn moto_addr(&self) -> String {
        self.moto_endpoint()
            .trim_start_matches("http://")
            .to_string()
    }

    /// kubectl to use (the one up.sh picked).
    pub fn kubectl(&self) -> String {
        self.env
            .get("KUBECTL")
            .cloned()
            .unwrap_or_else(|| "kubectl".into())
    }

    /// A `kubectl` command with the admin kubeconfig.
    pub fn kubectl_cmd(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(self.kubectl());
        c.env("KUBECONFIG", self.kubeconfig()).stdin(Stdio::null());
        c
    }

    /// An S3 client straight to moto (path-style), for checks and for the floor.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.moto_endpoint()).await
    }

    /// Stops and starts kube-apiserver with its own command line (tests/cluster/restart.sh),
    /// then waits until it serves /readyz and replaces the client.
    pub async fn restart_apiserver(&mut self) -> Result<()> {
        let status = tokio::process::Command::new(self.repo.join("tests/cluster/restart.sh"))
            .arg(&self.dir)
            .arg("kube-apiserver")
            .stdin(Stdio::null())
            .status()
            .await
            .ctx(|| "running tests/cluster/restart.sh".into())?;
        if !status.success() {
            return Err(Error::msg(format!(
                "tests/cluster/restart.sh failed: {status}"
            )));
        }
        self.client = client_from(&self.kubeconfig()).await?;
        Ok(())
    }

    /// Stops the systems if this run started them.
    pub async fn down(&self) {
        if !self.owned {
            return;
        }
        let _ = tokio::process::Command::new(self.repo.join("tests/cluster/down.sh"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .await;
    }
}

/// An admin client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .map_err(|e| Error::msg(format!("reading {}: {e}", kubeconfig.display())))?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::msg(format!("kubeconfig {}: {e}", kubeconfig.display())))?;
    cfg.read_timeout = Some(Duration::from_secs(60));
    kube::Client::try_from(cfg).ctx(|| "building the Kubernetes client".into())
}

/// An S3 client for `endpoint` with moto's test credentials, path-style.
pub async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "bench");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    )
}

/// A free loopback port (bound then released).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ctx(|| "binding a free port".into())?;
    Ok(l.local_addr().ctx(|| "reading the port".into())?.port())
}
