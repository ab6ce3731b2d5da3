//! The providers of this build, as lint and render see them (schemas) and as plan uses them
//! (observe and diff, both read-only).
//!
//! [`crate::main_with`] installs the build's one registration here before any verb runs, so
//! every verb of the process sees the same providers the build's agent runs. The list is
//! process-wide because a plugin process runs exactly one verb for exactly one registration.

use std::sync::{Arc, OnceLock};

use orkestra_provider::{Provider, Providers};
use orkestra_provider_schema::ProviderSchema;

static PROVIDERS: OnceLock<Providers> = OnceLock::new();

/// Make `providers` the registration of this process (the first call wins).
pub(crate) fn install(providers: Providers) {
    let _ = PROVIDERS.set(providers);
}

/// The registration of this process: what [`install`] was given, else (a verb called without
/// [`crate::main_with`], as unit tests do) orkestra's built-in providers.
fn current() -> &'static Providers {
    PROVIDERS.get_or_init(|| orkestra_providers::builtin().unwrap_or_default())
}

/// Schemas of every registered provider.
pub fn schemas() -> Vec<ProviderSchema> {
    current().schemas()
}

/// Every registered provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    current().iter().cloned().collect()
}
