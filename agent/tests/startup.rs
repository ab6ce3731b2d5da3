//! The agent binary started on a laptop against a cluster that lacks what it needs: it stops at
//! once with one line saying what is missing and what to run or pass, exit 1, no Debug-printed
//! API error, no backtrace (even with RUST_BACKTRACE=1).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use orkestra_testsupport::unique_name;

const BIN: &str = env!("CARGO_BIN_EXE_orkestra-agent");

/// Run the agent with `args` against `kubeconfig`; it must exit on its own within a minute.
fn run_agent(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--metrics-addr", "off", "--log-format", "text"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start orkestra-agent");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait for orkestra-agent").is_some() {
            return child.wait_with_output().expect("agent output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("agent output");
            panic!(
                "the agent was still running after 60s instead of stopping; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Exit 1, the last stderr line the only `error: ` line and containing every needle, and
/// nothing of a Debug-printed error or a backtrace.
fn assert_one_line_error(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr:\n{err}");
    for bad in [
        "panicked",
        "stack backtrace",
        "Stack backtrace",
        "Status {",
        "ErrorResponse",
        "Api(",
    ] {
        assert!(!err.contains(bad), "{bad:?} in stderr:\n{err}");
    }
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: "),
        "last line is not the error:\n{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{err}"
    );
    for n in needles {
        assert!(last.contains(n), "expected {n:?} in {last:?}");
    }
}

#[tokio::test]
async fn a_missing_lease_namespace_is_one_line_naming_it_and_what_to_do() {
    let env = orkestra_testsupport::cluster().await;
    common::install_katalog_crd(&env.client().await).await;
    let ns = unique_name("no-such-ns");
    let o = tokio::task::spawn_blocking({
        let kubeconfig = env.kubeconfig.clone();
        let ns = ns.clone();
        move || {
            run_agent(
                &kubeconfig,
                &["--leader-election", "on", "--lease-namespace", &ns],
            )
        }
    })
    .await
    .unwrap();
    assert_one_line_error(
        &o,
        &[
            &format!("error: namespace {ns} not found (the leader Lease {ns}/orkestra-agent lives there)"),
            "run `kubectl orkestra install`",
            "--lease-namespace",
            "--leader-election=off",
        ],
    );
}

/// Stops a private control plane of this test when dropped (the watchdog stops it as well
/// when the test binary dies first).
struct BareCluster(PathBuf);

impl Drop for BareCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(common::repo().join("tests/cluster/down.sh"))
            .arg(&self.0)
            .stdin(Stdio::null())
            .output();
    }
}

/// A cluster without the Katalog CRD: a control plane of this test's own (the shared one has the
/// CRD, and other tests need it there).
#[tokio::test]
async fn a_missing_katalog_crd_is_one_line_naming_it_and_what_to_do() {
    let dir = tempfile::Builder::new()
        .prefix("orkestra-bare-")
        .tempdir()
        .unwrap()
        .keep();
    let cluster = BareCluster(dir.clone());
    let up = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            Command::new("bash")
                .arg(common::repo().join("tests/cluster/up.sh"))
                .args(["--only", "kube"])
                .arg(&dir)
                .env("ORKESTRA_OWNER_PID", std::process::id().to_string())
                .stdin(Stdio::null())
                .output()
                .expect("run up.sh")
        }
    })
    .await
    .unwrap();
    assert!(
        up.status.success(),
        "up.sh --only kube {}: {}",
        dir.display(),
        String::from_utf8_lossy(&up.stderr)
    );
    let kubeconfig = dir.join("kubeconfig");
    assert!(kubeconfig.exists(), "no {}", kubeconfig.display());
    let o = tokio::task::spawn_blocking({
        let kubeconfig = kubeconfig.clone();
        move || run_agent(&kubeconfig, &["--leader-election", "off"])
    })
    .await
    .unwrap();
    assert_one_line_error(
        &o,
        &[
            "error: the Katalog CRD (katalogs.orkestra.orkspace.io) is not installed in this cluster",
            "run `kubectl orkestra install`",
            "--katalog FILE",
        ],
    );
    // With election on, the CRD is still what is named first (nothing was half started).
    let o = tokio::task::spawn_blocking(move || run_agent(&kubeconfig, &[]))
        .await
        .unwrap();
    assert_one_line_error(&o, &["the Katalog CRD (katalogs.orkestra.orkspace.io)"]);
    drop(cluster);
}
