//! The trait every provider implements.

use async_trait::async_trait;

use crate::context::ProviderContext;
use crate::declaration::Declaration;
use crate::error::ProviderError;
use crate::observation::Observation;
use crate::outcome::Outcome;
use crate::plan::Plan;
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
/// - retries, rate limits, status, events and ordering belong to the runtime, not the provider.
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

    /// Delete (or orphan, per the declaration's policies) the resource.
    async fn delete(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
    ) -> Result<Outcome, ProviderError>;
}
