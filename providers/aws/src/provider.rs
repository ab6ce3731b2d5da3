//! [`AwsProvider`]: the `aws` block's [`Provider`], dispatching each kind to its module (S3, RDS,
//! SQS, IAM, Route 53) with a client for the declaration's region and credentials.

use async_trait::async_trait;
use aws_sdk_s3::config::Credentials;
use orkestra_provider::{
    Action, Cause, Declaration, Observation, Outcome, Plan, Provider, ProviderContext,
    ProviderError, ProviderSchema, SecretValue,
};
use serde_json::Value;

use crate::clients::{declared_credentials, AwsSettings, ClientFactory};
use crate::{iam, rds, route53, s3, schema, sqs};

enum Clients {
    Sdk(Box<ClientFactory>),
    /// Prebuilt clients used for every region (tests with aws-smithy-mocks).
    Fixed {
        clients: Box<FixedClients>,
        region: String,
    },
}

/// Prebuilt clients for [`AwsProvider::with_fixed_clients`]; a kind whose client is `None`
/// fails with an error naming the service.
#[derive(Debug, Clone, Default)]
pub struct FixedClients {
    /// For `s3`.
    pub s3: Option<aws_sdk_s3::Client>,
    /// For `rds`.
    pub rds: Option<aws_sdk_rds::Client>,
    /// For `sqs`.
    pub sqs: Option<aws_sdk_sqs::Client>,
    /// For the IAM kinds.
    pub iam: Option<aws_sdk_iam::Client>,
    /// For the Route 53 kinds.
    pub route53: Option<aws_sdk_route53::Client>,
}

/// The fixed client of one service, or an error naming it.
fn fixed<C: Clone>(client: &Option<C>, service: &str) -> Result<C, ProviderError> {
    client.clone().ok_or_else(|| {
        ProviderError::new(Cause::InvalidField {
            field: "(provider)".into(),
            message: format!("this provider was built without a {service} client"),
        })
    })
}

/// The `aws` provider.
pub struct AwsProvider {
    clients: Clients,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.clients {
            Clients::Sdk(factory) => f
                .debug_struct("AwsProvider")
                .field("settings", factory.settings())
                .finish(),
            Clients::Fixed { region, .. } => f
                .debug_struct("AwsProvider")
                .field("fixed_clients_region", region)
                .finish(),
        }
    }
}

impl AwsProvider {
    /// A provider reaching AWS as `settings` say.
    pub fn new(settings: AwsSettings) -> Self {
        Self {
            clients: Clients::Sdk(Box::new(ClientFactory::new(settings))),
        }
    }

    /// A provider configured from the environment (default chain, `AWS_ENDPOINT_URL`).
    pub fn from_env() -> Self {
        Self::new(AwsSettings::from_env())
    }

    /// A provider that sends every call through the given clients, whatever the region
    /// (for tests whose clients answer from aws-smithy-mocks rules).
    pub fn with_clients(s3: aws_sdk_s3::Client, rds: aws_sdk_rds::Client, region: &str) -> Self {
        Self::with_fixed_clients(
            FixedClients {
                s3: Some(s3),
                rds: Some(rds),
                ..FixedClients::default()
            },
            region,
        )
    }

    /// A provider that sends every call through `clients`, whatever the region.
    pub fn with_fixed_clients(clients: FixedClients, region: &str) -> Self {
        Self {
            clients: Clients::Fixed {
                clients: Box::new(clients),
                region: region.to_string(),
            },
        }
    }

    async fn region_for(&self, decl: &Declaration) -> String {
        match &self.clients {
            Clients::Sdk(f) => f.region_for(decl).await,
            Clients::Fixed { region, .. } => decl.str("region").unwrap_or(region).to_string(),
        }
    }

    /// The region named in settings, known without loading the SDK chain (for the pure diff).
    fn configured_region(&self) -> Option<&str> {
        match &self.clients {
            Clients::Sdk(f) => f.settings().region.as_deref(),
            Clients::Fixed { region, .. } => Some(region),
        }
    }

    async fn s3(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> Result<aws_sdk_s3::Client, ProviderError> {
        match &self.clients {
            Clients::Sdk(f) => Ok(f.s3(region, creds).await),
            Clients::Fixed { clients, .. } => fixed(&clients.s3, "S3"),
        }
    }

    async fn rds(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> Result<aws_sdk_rds::Client, ProviderError> {
        match &self.clients {
            Clients::Sdk(f) => Ok(f.rds(region, creds).await),
            Clients::Fixed { clients, .. } => fixed(&clients.rds, "RDS"),
        }
    }

    async fn sqs(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> Result<aws_sdk_sqs::Client, ProviderError> {
        match &self.clients {
            Clients::Sdk(f) => Ok(f.sqs(region, creds).await),
            Clients::Fixed { clients, .. } => fixed(&clients.sqs, "SQS"),
        }
    }

    async fn iam(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> Result<aws_sdk_iam::Client, ProviderError> {
        match &self.clients {
            Clients::Sdk(f) => Ok(f.iam(region, creds).await),
            Clients::Fixed { clients, .. } => fixed(&clients.iam, "IAM"),
        }
    }

    async fn route53(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> Result<aws_sdk_route53::Client, ProviderError> {
        match &self.clients {
            Clients::Sdk(f) => Ok(f.route53(region, creds).await),
            Clients::Fixed { clients, .. } => fixed(&clients.route53, "Route 53"),
        }
    }

    /// The region an existing bucket lives in (observed), else the declared/default one.
    async fn bucket_region(&self, decl: &Declaration, obs: &Observation) -> String {
        match obs.fields.get("region").and_then(Value::as_str) {
            Some(r) => r.to_string(),
            None => self.region_for(decl).await,
        }
    }

    async fn observe_inner(
        &self,
        ctx: &ProviderContext,
        decl: &Declaration,
        for_delete: bool,
    ) -> Result<Observation, ProviderError> {
        ctx.check_cancelled()?;
        let creds = declared_credentials(decl, &ctx.kube).await?;
        let region = self.region_for(decl).await;
        match decl.kind.as_str() {
            "s3" => {
                let client = self.s3(&region, creds.as_ref()).await?;
                match s3::head(&client, &decl.name).await? {
                    s3::Head::Missing => Ok(Observation::absent()),
                    s3::Head::Forbidden => Ok(s3::observe_forbidden(decl)),
                    s3::Head::Found(found) => {
                        let actual = match found {
                            Some(r) => r,
                            // Some S3-compatible stores omit the region header.
                            None => s3::location(&client, &decl.name)
                                .await?
                                .unwrap_or_else(|| region.clone()),
                        };
                        let client = if actual == region {
                            client
                        } else {
                            self.s3(&actual, creds.as_ref()).await?
                        };
                        if for_delete {
                            s3::observe_ownership(&client, decl, &actual).await
                        } else {
                            s3::observe_found(&client, decl, &actual).await
                        }
                    }
                }
            }
            "rds" => rds::observe(&self.rds(&region, creds.as_ref()).await?, decl).await,
            kind if sqs::KINDS.contains(&kind) => {
                sqs::observe(&self.sqs(&region, creds.as_ref()).await?, decl, for_delete).await
            }
            kind if iam::KINDS.contains(&kind) => {
                iam::observe(
                    &self.iam(&region, creds.as_ref()).await?,
                    ctx,
                    decl,
                    for_delete,
                )
                .await
            }
            kind if route53::KINDS.contains(&kind) => {
                let client = self.route53(&region, creds.as_ref()).await?;
                route53::observe(&client, ctx, decl, for_delete).await
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
        let creds = declared_credentials(decl, &ctx.kube).await?;
        match decl.kind.as_str() {
            "s3" => {
                let region = self.bucket_region(decl, obs).await;
                s3::apply(
                    &self.s3(&region, creds.as_ref()).await?,
                    decl,
                    obs,
                    plan,
                    &region,
                )
                .await
            }
            "rds" => {
                let password = if plan.effective_action() == Action::Create {
                    master_password(ctx, decl).await?
                } else {
                    None
                };
                let region = self.region_for(decl).await;
                rds::apply(
                    &self.rds(&region, creds.as_ref()).await?,
                    decl,
                    obs,
                    plan,
                    password,
                )
                .await
            }
            kind if sqs::KINDS.contains(&kind) => {
                let region = self.region_for(decl).await;
                sqs::apply(&self.sqs(&region, creds.as_ref()).await?, decl, obs, plan).await
            }
            kind if iam::KINDS.contains(&kind) => {
                let region = self.region_for(decl).await;
                iam::apply(&self.iam(&region, creds.as_ref()).await?, decl, obs, plan).await
            }
            kind if route53::KINDS.contains(&kind) => {
                let region = self.region_for(decl).await;
                route53::apply(
                    &self.route53(&region, creds.as_ref()).await?,
                    decl,
                    obs,
                    plan,
                )
                .await
            }
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
        let creds = declared_credentials(decl, &ctx.kube).await?;
        match decl.kind.as_str() {
            "s3" => {
                let region = self.bucket_region(decl, obs).await;
                s3::delete(&self.s3(&region, creds.as_ref()).await?, decl, obs).await
            }
            "rds" => {
                let region = self.region_for(decl).await;
                rds::delete(&self.rds(&region, creds.as_ref()).await?, decl, obs).await
            }
            kind if sqs::KINDS.contains(&kind) => {
                let region = self.region_for(decl).await;
                sqs::delete(&self.sqs(&region, creds.as_ref()).await?, decl, obs).await
            }
            kind if iam::KINDS.contains(&kind) => {
                let region = self.region_for(decl).await;
                iam::delete(&self.iam(&region, creds.as_ref()).await?, decl, obs).await
            }
            kind if route53::KINDS.contains(&kind) => {
                let region = self.region_for(decl).await;
                route53::delete(&self.route53(&region, creds.as_ref()).await?, decl, obs).await
            }
            _ => Err(ProviderError::new(Cause::UnknownKind)),
        }
    }
}

/// The master password from `masterPasswordSecret: {name, key}` in the CR's namespace.
async fn master_password(
    ctx: &ProviderContext,
    decl: &Declaration,
) -> Result<Option<SecretValue>, ProviderError> {
    let Some(reference) = decl.fields.get("masterPasswordSecret") else {
        return Ok(None);
    };
    let name = reference
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = reference
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or(rds::DEFAULT_PASSWORD_KEY);
    ctx.kube.secret_value(name, key).await.map(Some)
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        schema::NAME
    }

    fn schema(&self) -> ProviderSchema {
        schema::schema()
    }

    /// Clients this provider builds send every request through the runtime's bucket; fixed
    /// clients (tests with aws-smithy-mocks) are counted per operation.
    fn meter_calls(&self, limiter: std::sync::Arc<orkestra_provider::TokenBucket>) -> bool {
        match &self.clients {
            Clients::Sdk(factory) => {
                factory.meter.attach(limiter);
                true
            }
            Clients::Fixed { .. } => false,
        }
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
        match decl.kind.as_str() {
            "s3" => s3::diff(decl, obs, self.configured_region()),
            "rds" => rds::diff(decl, obs),
            kind if sqs::KINDS.contains(&kind) => sqs::diff(decl, obs),
            kind if iam::KINDS.contains(&kind) => iam::diff(decl, obs),
            kind if route53::KINDS.contains(&kind) => route53::diff(decl, obs),
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

#[cfg(test)]
mod tests {
    use orkestra_provider::{Declaration, Owner};
    use serde_json::json;

    fn build(kind: &str, item: serde_json::Value) -> Result<Declaration, String> {
        let schema = crate::schema();
        Declaration::from_rendered(
            "aws",
            schema.kind(kind).unwrap(),
            item.as_object().unwrap(),
            Owner::default(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn bad_values_are_caught_before_any_call() {
        let e = build("s3", json!({"bucket": "Bad_Name"})).unwrap_err();
        assert!(
            e.starts_with("aws.s3 \"Bad_Name\": field bucket: bucket name \"Bad_Name\""),
            "{e}"
        );
        let e = build("s3", json!({"bucket": "ok-name", "region": "mars"})).unwrap_err();
        assert!(
            e.contains("field region: \"mars\" is not an AWS region name"),
            "{e}"
        );
        let e = build(
            "rds",
            json!({"identifier": "db1", "instanceClass": "db.t3.micro", "engine": "postgres", "allocatedStorage": "5"}),
        )
        .unwrap_err();
        assert!(
            e.contains("field allocatedStorage: 5 is outside 20..=65536"),
            "{e}"
        );
        let ok = build(
            "s3",
            json!({"bucket": "ok-name", "versioning": "true", "forceDestroy": "false"}),
        )
        .unwrap();
        assert_eq!(ok.fields.get("versioning"), Some(&json!(true)));
    }
}
