//! `orkestra-agent` as a child process: started with flags, its resident memory read from /proc,
//! its HTTP endpoints fetched, killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Context, Error, Result};

/// How to start one agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The binary.
    pub bin: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Where the agent sends AWS calls (moto, or a proxy in front of it).
    pub aws_endpoint: String,
    /// Extra flags (`--workers 8`, `--namespace ns`, `--leader-election on`, ...).
    pub args: Vec<String>,
    /// Log file (appended to: restarts keep the earlier lines).
    pub log: PathBuf,
}

/// A running agent.
pub struct Agent {
    child: tokio::process::Child,
    /// Its process id.
    pub pid: u32,
    /// `127.0.0.1:PORT` of /metrics, /healthz, /readyz.
    pub metrics_addr: String,
    /// Its log file.
    pub log: PathBuf,
}

impl Agent {
    /// Starts the agent with leader election as given in `spec.args` (default there: off is not
    /// assumed) and JSON logs, and waits until it serves /healthz.
    pub async fn start(spec: &AgentSpec) -> Result<Agent> {
        let port = crate::cluster::free_port()?;
        let metrics_addr = format!("127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .ctx(|| format!("opening {}", spec.log.display()))?;
        let log2 = log.try_clone().ctx(|| "cloning the log handle".into())?;
        let child = tokio::process::Command::new(&spec.bin)
            .arg("--metrics-addr")
            .arg(&metrics_addr)
            .arg("--log-format")
            .arg("json")
            .args(&spec.args)
            .env("KUBECONFIG", &spec.kubeconfig)
            .env("AWS_ENDPOINT_URL", &spec.aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_AGENT_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .ctx(|| format!("starting {}", spec.bin.display()))?;
        let pid = child.id().unwrap_or(0);
        let mut agent = Agent {
            child,
            pid,
            metrics_addr,
            log: spec.log.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = agent.child.try_wait() {
                return Err(Error::msg(format!(
                    "orkestra-agent exited at start ({st}); log: {}",
                    spec.log.display()
                )));
            }
            if agent.get("/healthz").await.is_ok() {
                return Ok(agent);
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: "orkestra-agent /healthz".into(),
                    secs: 60,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resident memory in KiB (VmRSS), None once the process is gone.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// Whether the process still runs (no exit observed).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The exit status if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL and reap.
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// GET a path of the agent's HTTP server; the body on a 2xx answer.
    pub async fn get(&self, path: &str) -> Result<String> {
        http_get(&self.metrics_addr, path).await
    }
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A plain HTTP/1.0 GET on loopback; the body of a 2xx response.
pub async fn http_get(addr: &str, path: &str) -> Result<String> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .ctx(|| format!("connecting to {addr}"))?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ctx(|| format!("GET {path}"))?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .await
            .ctx(|| format!("reading {path}"))?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let ok = head
            .split_whitespace()
            .nth(1)
            .is_some_and(|c| c.starts_with('2'));
        if ok {
            Ok(body.to_string())
        } else {
            Err(Error::msg(format!(
                "GET {addr}{path}: {}",
                head.lines().next().unwrap_or("")
            )))
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("GET {addr}{path}"),
            secs: 10,
        })?
}

/// The built binary `name` in the cargo target dir's profile folder.
pub fn target_bin(target_dir: &Path, profile: &str, name: &str) -> PathBuf {
    target_dir.join(profile).join(name)
}
