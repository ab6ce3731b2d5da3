//! The providers orkestra ships with, registered in one place.
//!
//! Both binaries start from [`builtin`]: `orkestra-agent` reconciles with it and
//! `kubectl orkestra` lints, renders and plans with it, so the two always know the same blocks.
//! A custom build adds its own providers to the same list and hands it to both entry points
//! (`orkestra_agent::main_with`, `kubectl_orkestra::main_with`):
//!
//! ```no_run
//! # fn mine() -> std::sync::Arc<dyn orkestra_provider::Provider> { unimplemented!() }
//! fn providers() -> Result<orkestra_provider::Providers, orkestra_provider::ProviderError> {
//!     orkestra_providers::builtin()?.with(mine())
//! }
//! ```
#![forbid(unsafe_code)]

use std::sync::Arc;

use orkestra_provider::{ProviderError, Providers};

/// The `aws` provider (configured from the environment: the AWS default credential chain,
/// `AWS_ENDPOINT_URL`) and the `database` provider (its connections come from each item's
/// Secrets).
pub fn builtin() -> Result<Providers, ProviderError> {
    Providers::new()
        .with(Arc::new(orkestra_provider_aws::AwsProvider::from_env()))?
        .with(Arc::new(orkestra_provider_database::DatabaseProvider::new()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ships_aws_and_database() {
        let providers = super::builtin().unwrap();
        assert_eq!(providers.names(), ["aws", "database"]);
    }
}
