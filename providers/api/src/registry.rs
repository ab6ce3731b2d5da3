//! [`Providers`]: the one list of providers a build registers, shared by every program of that
//! build.
//!
//! The agent reconciles with these providers and `kubectl orkestra` lints, renders and plans with
//! the very same list, so a provider registered once is known everywhere: lint accepts its block,
//! render coerces its fields as the agent does, plan observes and diffs it. A block name belongs
//! to exactly one provider: registering a second one under the same name is an error, never a
//! silent replacement.
//!
//! ```
//! # use std::sync::Arc;
//! # use orkestra_provider::{Providers, ProviderError};
//! # fn mine() -> Arc<dyn orkestra_provider::Provider> { unimplemented!() }
//! # fn demo(builtin: Providers) -> Result<(), ProviderError> {
//! let providers = builtin.with(mine())?; // fails if `mine` claims a block name already taken
//! # let _ = providers;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use crate::error::{Cause, ProviderError};
use crate::provider::Provider;
use crate::runtime::{ProviderRuntime, RateLimit};
use crate::schema::ProviderSchema;

/// Providers by block name, in registration order.
#[derive(Clone, Default)]
pub struct Providers {
    list: Vec<Arc<dyn Provider>>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Providers {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// These providers plus `provider`; an error if its block name is taken.
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Result<Self, ProviderError> {
        self.add(provider)?;
        Ok(self)
    }

    /// Add `provider`; an error if its block name is taken (nothing is replaced).
    pub fn add(&mut self, provider: Arc<dyn Provider>) -> Result<(), ProviderError> {
        let name = provider.name();
        if self.get(name).is_some() {
            return Err(ProviderError::new(Cause::DuplicateProvider {
                name: name.to_string(),
            }));
        }
        self.list.push(provider);
        Ok(())
    }

    /// The provider of block `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.list.iter().find(|p| p.name() == name)
    }

    /// Every provider, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.list.iter()
    }

    /// Block names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|p| p.name()).collect()
    }

    /// Every provider's schema (what lint and render check and coerce with).
    pub fn schemas(&self) -> Vec<ProviderSchema> {
        self.list.iter().map(|p| p.schema()).collect()
    }

    /// A runtime running these providers, each with its own `limit`.
    pub fn runtime(&self, limit: RateLimit) -> ProviderRuntime {
        let mut runtime = ProviderRuntime::new();
        for p in &self.list {
            // Names are distinct by construction (`add`), so registering cannot collide.
            runtime.insert(p.clone(), limit);
        }
        runtime
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Declaration, Observation, Outcome, Plan, ProviderContext};
    use async_trait::async_trait;

    struct Named(&'static str);

    #[async_trait]
    impl Provider for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn schema(&self) -> ProviderSchema {
            ProviderSchema {
                name: self.0,
                kinds: Vec::new(),
            }
        }
        async fn observe(
            &self,
            _: &ProviderContext,
            _: &Declaration,
        ) -> Result<Observation, ProviderError> {
            Ok(Observation::absent())
        }
        fn diff(&self, d: &Declaration, _: &Observation) -> Plan {
            Plan::new(&d.provider, &d.kind, &d.name, crate::Action::Noop)
        }
        async fn apply(
            &self,
            _: &ProviderContext,
            _: &Declaration,
            _: &Observation,
            _: &Plan,
        ) -> Result<Outcome, ProviderError> {
            Ok(Outcome::new(crate::State::Ready))
        }
        async fn delete(
            &self,
            _: &ProviderContext,
            _: &Declaration,
            _: &Observation,
        ) -> Result<Outcome, ProviderError> {
            Ok(Outcome::new(crate::State::Deleted))
        }
    }

    #[test]
    fn a_block_name_is_registered_once() {
        let set = Providers::new()
            .with(Arc::new(Named("aws")))
            .and_then(|s| s.with(Arc::new(Named("acme"))))
            .unwrap();
        assert_eq!(set.names(), ["aws", "acme"]);
        let e = set.clone().with(Arc::new(Named("aws"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "two providers are registered under the block name \"aws\"; each block needs exactly one"
        );
        assert_eq!(set.schemas().len(), 2);
        assert_eq!(
            set.runtime(RateLimit::default()).provider_names(),
            ["acme", "aws"]
        );
        assert!(set.get("acme").is_some() && set.get("gcp").is_none());
    }
}
