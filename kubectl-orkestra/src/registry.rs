//! The providers compiled into this build, as lint and render see them.

use orkestra_provider_schema::ProviderSchema;

/// Schemas of every registered provider.
pub fn schemas() -> Vec<ProviderSchema> {
    vec![orkestra_provider_aws::schema()]
}
