//! The trait every provider implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::context::ProviderContext;
use crate::declaration::Declaration;
use crate::error::ProviderError;
use crate::observation::Observation;
use crate::outcome::Outcome;
use crate::plan::Plan;
use crate::runtime::TokenBucket;
use crate::schema::ProviderSchema;

/// A provider: observe (read-only), a pure diff, apply one step, delete.
///
/// Contract (providers.md):
/// - idempotent: `observe` looks before `apply` creates; a second reconcile with nothing changed
///   makes no mutating call;
/// - `diff` is pure, so `kubectl orkestra plan` shows exactly what `apply` will do;
/// - `apply` and `delete` never wait for a long operation: they return an in-progress state and a
///   requeue delay;
/// - `delete` of something already gone is success ([`crate::State::Deleted`]);
/// - no Kubernetes writes (the context only carries a [`crate::KubeReader`]);
/// - retries, rate limits, status, events and ordering belong to the runtime, not the provider
///   (a provider may count its own calls against the runtime's limit: [`Provider::meter_calls`]).
#[async_trait]
pub trait Provider: Send + Sync {
    /// Block key in a Katalog (`aws`).
    fn name(&self) -> &'static str;

    /// Kinds and fields accepted (used by lint and to build declarations).
    fn schema(&self) -> ProviderSchema;

    /// Read the external resource; never changes anything.
    async fn observe(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
    ) -> Result<Observation, ProviderError>;

    /// Compare declared with observed state. Pure: no I/O, same inputs give the same plan.
    fn diff(&self, decl: &Declaration, obs: &Observation) -> Plan;

    /// Carry out one step of `plan` (which `diff` made from `obs`).
    async fn apply(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Outcome, ProviderError>;

    /// Observe enough to decide a delete: existence, id and ownership. Defaults to
    /// [`Provider::observe`]; a provider may read less here.
    async fn observe_for_delete(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
    ) -> Result<Observation, ProviderError> {
        self.observe(ctx, decl).await
    }

    /// Take one token of `limiter` (the runtime's rate limit for this provider) per external
    /// call from now on, and return true; the runtime then stops taking one per operation. The
    /// default returns false: operations are counted, whatever calls they make.
    fn meter_calls(&self, limiter: Arc<TokenBucket>) -> bool {
        let _ = limiter;
        false
    }

    /// Delete (or orphan, per the declaration's policies) the resource.
    async fn delete(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
    ) -> Result<Outcome, ProviderError>;
}
