//! The providers compiled into this build, as lint and render see them (schemas) and as plan
//! uses them (observe and diff, both read-only).

use std::sync::Arc;

use orkestra_provider::Provider;
use orkestra_provider_schema::ProviderSchema;

/// Schemas of every registered provider.
pub fn schemas() -> Vec<ProviderSchema> {
    vec![
        orkestra_provider_aws::schema(),
        orkestra_provider_database::schema(),
    ]
}

/// Every registered provider, configured from the environment (the AWS default credential
/// chain, `AWS_ENDPOINT_URL`; the database provider reads its connections from each item's
/// Secrets).
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![
        Arc::new(orkestra_provider_aws::AwsProvider::from_env()),
        Arc::new(orkestra_provider_database::DatabaseProvider::new()),
    ]
}
