//! The one error type of the crate.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong while starting or using the test systems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `tests/cluster/up.sh` could not be run or did not bring the systems up.
    #[error("starting the test systems with {script} failed: {detail}")]
    Start {
        /// The script that was run.
        script: PathBuf,
        /// Its exit status and the tail of its output.
        detail: String,
    },
    /// The env file of a test environment could not be read or lacks a variable.
    #[error("test environment {path}: {detail}")]
    EnvFile {
        /// The env file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        timeout: Duration,
    },
    /// A Kubernetes client could not be made or a request failed.
    #[error("{context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Connecting to PostgreSQL failed.
    #[error("connecting to PostgreSQL at {url}: {source}")]
    Postgres {
        /// The connection URL (it holds only the test password).
        url: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A system answered in a way it never should (a bug there or here).
    #[error("unexpected answer: {detail}")]
    Unexpected {
        /// What came back.
        detail: String,
    },
}
