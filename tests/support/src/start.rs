//! Starting the systems once per test binary (or reusing `ORKESTRA_TEST_ENV`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use crate::env::{read_env_file, MotoEnv, TestEnv};
use crate::error::Error;

/// Names a directory holding systems started by hand with `tests/cluster/up.sh DIR`.
pub const TEST_ENV_VAR: &str = "ORKESTRA_TEST_ENV";

static CLUSTER: OnceLock<Result<TestEnv, String>> = OnceLock::new();
static MOTO: OnceLock<Result<MotoEnv, String>> = OnceLock::new();

/// The full test systems of this test binary, started on first use.
///
/// # Panics
/// When they cannot be started; the message carries `up.sh`'s output (the failing
/// component's log tail). Every later call panics with the same message.
pub async fn cluster() -> &'static TestEnv {
    let result = tokio::task::spawn_blocking(|| {
        CLUSTER.get_or_init(|| start_full().map_err(|e| e.to_string()))
    })
    .await
    .expect("the thread starting the test systems panicked");
    match result {
        Ok(env) => env,
        Err(e) => panic!("{e}"),
    }
}

/// Just the moto server (fast: no control plane). Reuses `ORKESTRA_TEST_ENV` or this
/// binary's full systems when those are there.
///
/// # Panics
/// As [`cluster`].
pub async fn moto() -> &'static MotoEnv {
    let result = tokio::task::spawn_blocking(|| {
        MOTO.get_or_init(|| start_moto().map_err(|e| e.to_string()))
    })
    .await
    .expect("the thread starting moto panicked");
    match result {
        Ok(env) => env,
        Err(e) => panic!("{e}"),
    }
}

fn start_full() -> Result<TestEnv, Error> {
    if let Some(dir) = reused_dir() {
        return TestEnv::from_dir(&dir);
    }
    let dir = run_up(None)?;
    TestEnv::from_dir(&dir)
}

fn start_moto() -> Result<MotoEnv, Error> {
    if let Some(dir) = reused_dir() {
        return moto_from_dir(&dir);
    }
    if let Some(Ok(env)) = CLUSTER.get() {
        return Ok(env.aws.clone());
    }
    let dir = run_up(Some("moto"))?;
    moto_from_dir(&dir)
}

fn moto_from_dir(dir: &Path) -> Result<MotoEnv, Error> {
    let path = dir.join("env");
    let vars = read_env_file(&path)?;
    MotoEnv::from_vars(&vars, &path)
}

fn reused_dir() -> Option<PathBuf> {
    std::env::var_os(TEST_ENV_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The scripts sit beside this crate in the repository.
fn up_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cluster/up.sh")
}

/// How often a start is tried when a port was taken between up.sh picking it and binding it
/// (other test runs on the machine pick ports too).
const ATTEMPTS: usize = 3;

/// Runs `up.sh [--only ONLY] DIR` in a fresh temporary directory, with this process as the
/// owner: its watchdog runs `down.sh DIR` once the test binary has exited.
fn run_up(only: Option<&str>) -> Result<PathBuf, Error> {
    let mut attempt = 1;
    loop {
        match run_up_once(only) {
            Err(Error::Start { detail, .. })
                if attempt < ATTEMPTS
                    && detail
                        .to_ascii_lowercase()
                        .contains("address already in use") =>
            {
                eprintln!("orkestra-testsupport: a port was taken meanwhile; starting again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn run_up_once(only: Option<&str>) -> Result<PathBuf, Error> {
    let script = up_script();
    let start_err = |detail: String| Error::Start {
        script: script.clone(),
        detail,
    };
    let dir = tempfile::Builder::new()
        .prefix("orkestra-test-")
        .tempdir()
        .map_err(|e| start_err(format!("making a temporary directory: {e}")))?
        .keep();
    let mut cmd = Command::new("bash");
    cmd.arg(&script);
    if let Some(only) = only {
        cmd.args(["--only", only]);
    }
    let started = Instant::now();
    // up.sh's background processes write to their own log files, so output() returns when
    // up.sh itself exits.
    let output = cmd
        .arg(&dir)
        .env("ORKESTRA_OWNER_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| start_err(format!("running bash: {e}")))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // up.sh has run down.sh, which removes DIR when empty; a leftover is harmless.
        return Err(start_err(format!(
            "{} in {}:\n{stderr}",
            output.status,
            dir.display()
        )));
    }
    eprintln!(
        "orkestra-testsupport: test systems ({}) up in {:.1}s: {}",
        only.unwrap_or("kube,moto,postgres"),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(dir)
}
