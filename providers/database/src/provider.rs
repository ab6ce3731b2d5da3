//! [`DatabaseProvider`]: the `database` block's [`Provider`], dispatching on `driver` and kind.

use async_trait::async_trait;
use orkestra_provider::{
    Action, Cause, Declaration, ManagementPolicy, Observation, Outcome, Plan, Provider,
    ProviderContext, ProviderError, ProviderSchema,
};
use serde_json::Value;

use crate::connection::{endpoint, referenced_password, Endpoint, PgPool};
use crate::mongo::{self, MongoPool};
use crate::password;
use crate::postgres::role::PasswordState;
use crate::postgres::{database, grant, role};
use crate::schema::{self, check_driver, driver};

/// The `database` provider. It keeps open connections (per server, user and database) across
/// reconciles; it holds no other state.
#[derive(Debug, Default)]
pub struct DatabaseProvider {
    pg: PgPool,
    mongo: MongoPool,
}

impl DatabaseProvider {
    /// A provider with no connections open yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The password state of a `user` declaration: the Secret's password, its
    /// `passwordVersion` under this admin connection, and the one the CR's row recorded.
    async fn password_state(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        ep: &Endpoint,
    ) -> Result<PasswordState, ProviderError> {
        let Some(reference) = decl.fields.get("passwordSecret") else {
            return Ok(PasswordState::default());
        };
        if decl.management_policy == ManagementPolicy::Observe {
            return Ok(PasswordState::default());
        }
        let pw = referenced_password(&ctx.kube, reference)
            .await
            .map_err(|e| match *e.cause {
                Cause::Reference { .. } => e,
                _ => ProviderError::invalid_field("passwordSecret", e.short_message()),
            })?;
        let desired = password::version(&ep.password, &decl.name, &pw);
        let recorded = orkestra_provider::journal::rows_of(&ctx.cr)
            .into_iter()
            .find(|r| r.provider == decl.provider && r.kind == decl.kind && r.name == decl.name)
            .and_then(|r| {
                r.outputs
                    .get("passwordVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        Ok(PasswordState {
            password: Some(pw),
            desired: Some(desired),
            recorded,
        })
    }

    async fn observe_inner(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        for_delete: bool,
    ) -> Result<Observation, ProviderError> {
        ctx.check_cancelled()?;
        check_driver(decl)?;
        let ep = endpoint(decl, &ctx.kube).await?;
        match (driver(decl), decl.kind.as_str()) {
            ("postgres", "database") => database::observe(&self.pg, &ep, decl, for_delete).await,
            ("postgres", "user") => {
                let pw = if for_delete {
                    PasswordState::default()
                } else {
                    self.password_state(ctx, decl, &ep).await?
                };
                role::observe(&self.pg, &ep, decl, &pw).await
            }
            ("postgres", "grant") => grant::observe(&self.pg, &ep, decl).await,
            ("mongo", kind) => {
                let pw = if for_delete || kind != "user" {
                    PasswordState::default()
                } else {
                    self.password_state(ctx, decl, &ep).await?
                };
                mongo::observe(&self.mongo, &ep, decl, &pw).await
            }
            _ => Err(ProviderError::new(Cause::UnknownKind)),
        }
    }

    async fn apply_inner(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Outcome, ProviderError> {
        ctx.check_cancelled()?;
        check_driver(decl)?;
        let ep = endpoint(decl, &ctx.kube).await?;
        let pw = if decl.kind == "user" && plan.effective_action() != Action::Noop {
            self.password_state(ctx, decl, &ep).await?
        } else {
            PasswordState {
                recorded: obs
                    .outputs
                    .get("passwordVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                ..PasswordState::default()
            }
        };
        match (driver(decl), decl.kind.as_str()) {
            ("postgres", "database") => database::apply(&self.pg, &ep, decl, obs, plan).await,
            ("postgres", "user") => role::apply(&self.pg, &ep, decl, obs, plan, &pw).await,
            ("postgres", "grant") => grant::apply(&self.pg, &ep, decl, obs, plan).await,
            ("mongo", _) => mongo::apply(&self.mongo, &ep, decl, obs, plan, &pw).await,
            _ => Err(ProviderError::new(Cause::UnknownKind)),
        }
    }

    async fn delete_inner(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
    ) -> Result<Outcome, ProviderError> {
        ctx.check_cancelled()?;
        if decl.keeps_on_delete() || !obs.exists {
            // Nothing to connect for: the guards decide.
            return Ok(crate::ownership::delete_guard(decl, obs)
                .unwrap_or_else(|| Outcome::new(orkestra_provider::State::Deleted)));
        }
        check_driver(decl)?;
        let ep = endpoint(decl, &ctx.kube).await?;
        match (driver(decl), decl.kind.as_str()) {
            ("postgres", "database") => database::delete(&self.pg, &ep, decl, obs).await,
            ("postgres", "user") => role::delete(&self.pg, &ep, decl, obs).await,
            ("postgres", "grant") => grant::delete(&self.pg, &ep, decl, obs).await,
            ("mongo", _) => mongo::delete(&self.mongo, &ep, decl, obs).await,
            _ => Err(ProviderError::new(Cause::UnknownKind)),
        }
    }
}

#[async_trait]
impl Provider for DatabaseProvider {
    fn name(&self) -> &'static str {
        schema::NAME
    }

    fn schema(&self) -> ProviderSchema {
        schema::schema()
    }

    async fn observe(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
    ) -> Result<Observation, ProviderError> {
        self.observe_inner(ctx, decl, false)
            .await
            .map_err(|e| decl.err(e))
    }

    async fn observe_for_delete(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
    ) -> Result<Observation, ProviderError> {
        self.observe_inner(ctx, decl, true)
            .await
            .map_err(|e| decl.err(e))
    }

    fn diff(&self, decl: &Declaration, obs: &Observation) -> Plan {
        match (driver(decl), decl.kind.as_str()) {
            ("postgres", "database") => database::diff(decl, obs),
            ("postgres", "user") => role::diff(decl, obs),
            ("postgres", "grant") => grant::diff(decl, obs),
            ("mongo", _) => mongo::diff(decl, obs),
            _ => Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop),
        }
    }

    async fn apply(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Outcome, ProviderError> {
        self.apply_inner(ctx, decl, obs, plan)
            .await
            .map_err(|e| decl.err(e))
    }

    async fn delete(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
    ) -> Result<Outcome, ProviderError> {
        self.delete_inner(ctx, decl, obs)
            .await
            .map_err(|e| decl.err(e))
    }
}
