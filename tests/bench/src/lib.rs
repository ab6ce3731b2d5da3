//! orkestra's benchmark harness and fault suite.
//!
//! Everything runs against the real test systems of `tests/cluster` (a private kube-apiserver with
//! kube-controller-manager, and a moto server), on loopback only. The agent (`orkestra-agent`) and
//! the plugin (`kubectl-orkestra`) are driven as black-box binaries through their flags, the way a
//! user runs them. Figures are printed beside a floor measured in the same run; nothing here
//! asserts a time. The fault suite checks outcomes (convergence, nothing created twice, nothing
//! left behind, no secret leaked), each scenario bounded by a deadline.

pub mod agent;
pub mod apimetrics;
pub mod cluster;
pub mod error;
pub mod floor;
pub mod plot;
pub mod proxy;
pub mod report;
pub mod rng;
pub mod stats;
pub mod workload;

pub use error::{Error, Result};
