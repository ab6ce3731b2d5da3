//! Real test systems for orkestra's tests: a private Kubernetes control plane (etcd,
//! kube-apiserver, kube-controller-manager built from upstream Go modules), a moto server for
//! the AWS APIs, PostgreSQL, and a node (kubelet + containerd with locally built images) that
//! runs Pods ([`TestEnv::node`]).
//!
//! The systems are started by `tests/cluster/up.sh` into a temporary directory, once per test
//! binary, and stopped by a watchdog (`ORKESTRA_OWNER_PID`) when the test binary exits: Rust
//! never runs destructors of statics, so the process itself cannot clean up.
//!
//! ```no_run
//! # async fn demo() -> Result<(), orkestra_testsupport::Error> {
//! use std::time::Duration;
//! let env = orkestra_testsupport::cluster().await;
//! let ns = env.namespace("demo").await?;
//! let client = env.client().await;
//! // ... create objects in ns.name() ...
//! orkestra_testsupport::wait_for("the demo to be ready", Duration::from_secs(30), || async {
//!     true
//! })
//! .await?;
//! ns.cleanup().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Set `ORKESTRA_TEST_ENV=DIR` to reuse systems already started with `tests/cluster/up.sh DIR`
//! (faster when running test binaries one after another, and the way to debug by hand).
//!
//! Each test makes its own namespace ([`TestEnv::namespace`]) and unique AWS names
//! ([`unique_name`]), so tests sharing one set of systems do not see each other's state.

mod audit_log;
mod env;
mod error;
mod helpers;
mod moto_log;
mod namespace;
mod start;
mod wait;

pub use audit_log::AuditEvent;
pub use env::{MotoEnv, NodeEnv, RegistryEnv, TestEnv};
pub use error::Error;
pub use helpers::{free_port, http_get, strip_finalizers};
pub use moto_log::MotoRequest;
pub use namespace::TestNamespace;
pub use start::{cluster, moto, TEST_ENV_VAR};
pub use wait::{unique_name, wait_for, Ready};
