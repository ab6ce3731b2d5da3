//! What every controller of this agent shares: the client, providers, metrics, events,
//! discovery and leadership.

use std::sync::Arc;

use orkestra_provider::{ProviderRuntime, ProviderSchema};

use crate::config::Config;
use crate::discovery::ApiCache;
use crate::events::Events;
use crate::leader::Leadership;
use crate::metrics::Metrics;

/// Agent-wide state, shared by reference.
pub struct AgentContext {
    /// The Kubernetes client (the agent's own identity).
    pub client: kube::Client,
    /// Flags.
    pub config: Config,
    /// Registered providers, with retry and rate limiting.
    pub providers: ProviderRuntime,
    /// The registered providers' schemas (rendering coerces external fields with them).
    pub provider_schemas: Vec<ProviderSchema>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Event recorder.
    pub events: Events,
    /// Resolved kinds.
    pub apis: ApiCache,
    /// Whether this instance leads.
    pub leadership: Leadership,
}

impl AgentContext {
    /// Whether this instance may act (reconcile, write status).
    pub fn is_leader(&self) -> bool {
        self.leadership.is_leader()
    }
}

impl std::fmt::Debug for AgentContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentContext")
            .field("config", &self.config)
            .field("providers", &self.providers.provider_names())
            .finish_non_exhaustive()
    }
}
