//! [`SsmProvider`]: the `ssm` block's [`Provider`].

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use orkestra_provider::{
    Cause, Declaration, Observation, Outcome, Plan, Provider, ProviderContext, ProviderError,
    ProviderSchema,
};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::parameter::{self, Desired};
use crate::schema;

/// Parameter Store parameters, through the AWS default credential chain and `AWS_ENDPOINT_URL`.
#[derive(Debug, Default)]
pub struct SsmProvider {
    client: OnceCell<Client>,
}

impl SsmProvider {
    /// A provider configured from the environment when it first makes a call.
    pub fn from_env() -> Self {
        Self::default()
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Client::new(&config)
            })
            .await
    }

    /// The value the declaration asks for: `value`, or `valueSecret` read from the CR's namespace
    /// (the reader can read no other).
    async fn desired(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
    ) -> Result<Option<Desired>, ProviderError> {
        if let Some(v) = decl.str("value") {
            return Ok(Some(Desired::Plain(v.to_string())));
        }
        let Some(reference) = decl.fields.get("valueSecret") else {
            return Ok(None);
        };
        let field = |k: &str| reference.get(k).and_then(Value::as_str).unwrap_or_default();
        let value = ctx.kube.secret_value(field("name"), field("key")).await?;
        Ok(Some(Desired::Secret(value)))
    }

    fn check_kind(decl: &Declaration) -> Result<(), ProviderError> {
        if decl.kind == schema::PARAMETER {
            Ok(())
        } else {
            Err(ProviderError::new(Cause::UnknownKind))
        }
    }
}

#[async_trait]
impl Provider for SsmProvider {
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
        Self::check_kind(decl).map_err(|e| decl.err(e))?;
        ctx.check_cancelled()?;
        let desired = self.desired(ctx, decl).await.map_err(|e| decl.err(e))?;
        parameter::observe(self.client().await, decl, desired.as_ref())
            .await
            .map_err(|e| decl.err(e))
    }

    async fn observe_for_delete(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
    ) -> Result<Observation, ProviderError> {
        // Deciding a delete needs existence and ownership, not the Secret (which may be gone).
        ctx.check_cancelled()?;
        parameter::observe(self.client().await, decl, None)
            .await
            .map_err(|e| decl.err(e))
    }

    fn diff(&self, decl: &Declaration, obs: &Observation) -> Plan {
        parameter::diff(decl, obs)
    }

    async fn apply(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Outcome, ProviderError> {
        ctx.check_cancelled()?;
        let desired = self.desired(ctx, decl).await.map_err(|e| decl.err(e))?;
        parameter::apply(self.client().await, decl, obs, plan, desired.as_ref())
            .await
            .map_err(|e| decl.err(e))
    }

    async fn delete(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        obs: &Observation,
    ) -> Result<Outcome, ProviderError> {
        ctx.check_cancelled()?;
        parameter::delete(self.client().await, decl, obs)
            .await
            .map_err(|e| decl.err(e))
    }
}
