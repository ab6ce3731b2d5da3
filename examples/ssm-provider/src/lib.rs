//! `acme-orkestra-ssm`: an orkestra provider written outside orkestra, as a third party ships one.
//!
//! It manages AWS Systems Manager Parameter Store parameters declared in a Katalog's `ssm:` block:
//!
//! ```yaml
//! ssm:
//!   - parameter:
//!       name: "/apps/{{ .metadata.name }}/log-level"
//!       value: "{{ .spec.logLevel }}"
//!   - parameter:
//!       name: "/apps/{{ .metadata.name }}/api-token"
//!       type: SecureString
//!       valueSecret: {name: "{{ .metadata.name }}-token", key: token}
//! ```
//!
//! Everything here uses orkestra's public API only:
//! - [`schema`] describes the block, so `lint` checks it offline and `render` coerces it exactly as
//!   the agent does;
//! - [`SsmProvider`] implements [`orkestra_provider::Provider`]: observe (read-only), a pure diff,
//!   one apply step, delete, with orkestra's ownership rules from [`orkestra_provider::policy`];
//! - [`providers`] is the one registration this build's agent and plugin both use (the two
//!   binaries in `src/bin/` are one line each).
#![forbid(unsafe_code)]

pub mod parameter;
pub mod provider;
pub mod schema;

use std::sync::Arc;

use orkestra_provider::{ProviderError, Providers};

pub use provider::SsmProvider;

/// orkestra's built-in providers plus `ssm`: what both binaries of this build register.
pub fn providers() -> Result<Providers, ProviderError> {
    orkestra_providers::builtin()?.with(Arc::new(SsmProvider::from_env()))
}
