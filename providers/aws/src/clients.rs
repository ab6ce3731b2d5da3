//! Building SDK clients: the default credential chain or a declaration's Secret, an endpoint
//! override (AWS_ENDPOINT_URL) with path-style S3, explicit timeouts and the SDK's standard retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{Credentials, Region, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use orkestra_provider::{Declaration, KubeReader, ProviderError};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::calls::CallLog;
use crate::meter::{CallMeter, MeteredClient};

/// Region used when neither the declaration nor the environment names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Keys read from a `credentials.secretName` Secret.
pub const SECRET_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Secret key of the access key.
pub const SECRET_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Optional session token.
pub const SECRET_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// How the provider reaches AWS.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// Send every request here (S3-compatible stores, emulators). S3 then uses path-style URLs.
    pub endpoint_url: Option<String>,
    /// Region for declarations that name none (default: the SDK's region chain, then us-east-1).
    pub region: Option<String>,
    /// Use these credentials instead of the default chain (declarations with
    /// `credentials.secretName` still use their Secret).
    pub credentials: Option<Credentials>,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one attempt of one operation.
    pub attempt_timeout: Duration,
    /// Timeout of one operation, retries included.
    pub operation_timeout: Duration,
    /// Attempts per operation in the SDK's standard retry mode.
    pub max_attempts: u32,
    /// Record every request here (tests, benchmarks, metrics).
    pub call_log: Option<CallLog>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: None,
            credentials: None,
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(20),
            operation_timeout: Duration::from_secs(60),
            max_attempts: 3,
            call_log: None,
        }
    }
}

impl AwsSettings {
    /// Defaults plus `AWS_ENDPOINT_URL` from the environment.
    pub fn from_env() -> Self {
        Self {
            endpoint_url: std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            ..Self::default()
        }
    }
}

/// Makes S3 and RDS clients for a region and a credential source.
#[derive(Debug)]
pub(crate) struct ClientFactory {
    settings: AwsSettings,
    base: OnceCell<SdkConfig>,
    /// Every client's requests take a token of the runtime's rate limit (see `meter`).
    pub(crate) meter: Arc<CallMeter>,
    /// Clients by (region, credentials): building one per call costs more than the call itself
    /// on a local endpoint. Keyed by the credentials' content so a rotated Secret gets a new client.
    s3_clients: Mutex<HashMap<ClientKey, aws_sdk_s3::Client>>,
    rds_clients: Mutex<HashMap<ClientKey, aws_sdk_rds::Client>>,
    sqs_clients: Mutex<HashMap<ClientKey, aws_sdk_sqs::Client>>,
    iam_clients: Mutex<HashMap<ClientKey, aws_sdk_iam::Client>>,
    route53_clients: Mutex<HashMap<ClientKey, aws_sdk_route53::Client>>,
}

/// Region plus access key id, secret key and session token (None: the default chain).
type ClientKey = (String, Option<(String, String, Option<String>)>);

fn client_key(region: &str, creds: Option<&Credentials>) -> ClientKey {
    let creds = creds.map(|c| {
        (
            c.access_key_id().to_string(),
            c.secret_access_key().to_string(),
            c.session_token().map(str::to_string),
        )
    });
    (region.to_string(), creds)
}

/// A cached client of an SDK crate whose config needs nothing beyond region, credentials and the
/// call log (every service but S3): one per (region, credentials), built from the shared base.
macro_rules! standard_client {
    ($factory:expr, $cache:ident, $sdk:ident, $region:expr, $creds:expr) => {{
        let key = client_key($region, $creds);
        let cached = $factory
            .$cache
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        match cached {
            Some(c) => c,
            None => {
                let base = $factory.base().await;
                let mut b = $sdk::config::Builder::from(base)
                    .region($sdk::config::Region::new($region.to_string()));
                if let Some(c) = $creds {
                    b = b.credentials_provider($sdk::config::SharedCredentialsProvider::new(
                        c.clone(),
                    ));
                }
                if let Some(log) = &$factory.settings.call_log {
                    b = b.interceptor(log.clone());
                }
                b = b.http_client($factory.metered_http_client(base));
                let client = $sdk::Client::from_conf(b.build());
                if let Ok(mut m) = $factory.$cache.lock() {
                    m.insert(key, client.clone());
                }
                client
            }
        }
    }};
}

impl ClientFactory {
    pub(crate) fn new(settings: AwsSettings) -> Self {
        Self {
            settings,
            base: OnceCell::new(),
            meter: Arc::default(),
            s3_clients: Mutex::new(HashMap::new()),
            rds_clients: Mutex::new(HashMap::new()),
            sqs_clients: Mutex::new(HashMap::new()),
            iam_clients: Mutex::new(HashMap::new()),
            route53_clients: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The HTTP client of every SDK client, metered: the base configuration's when it names
    /// one, else the SDK's default stack (the SDK picks that per client, past where a wrapper
    /// could reach it).
    fn metered_http_client(&self, base: &SdkConfig) -> SharedHttpClient {
        let inner = base.http_client().unwrap_or_else(default_http_client);
        MeteredClient::wrap(inner, self.meter.clone())
    }

    /// The shared SDK configuration (default chain), loaded once.
    async fn base(&self) -> &SdkConfig {
        self.base
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(self.settings.connect_timeout)
                            .operation_attempt_timeout(self.settings.attempt_timeout)
                            .operation_timeout(self.settings.operation_timeout)
                            .build(),
                    )
                    .retry_config(
                        RetryConfig::standard().with_max_attempts(self.settings.max_attempts),
                    );
                if let Some(url) = &self.settings.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                if let Some(creds) = &self.settings.credentials {
                    loader = loader.credentials_provider(creds.clone());
                }
                if let Some(region) = &self.settings.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                loader.load().await
            })
            .await
    }

    /// The region for `decl`: its `region` field, else the settings', else the SDK chain's.
    pub(crate) async fn region_for(&self, decl: &Declaration) -> String {
        if let Some(r) = decl.str("region") {
            return r.to_string();
        }
        self.default_region().await
    }

    pub(crate) async fn default_region(&self) -> String {
        self.base()
            .await
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| FALLBACK_REGION.to_string())
    }

    /// An S3 client for `region` using `creds` (or the default chain).
    pub(crate) async fn s3(&self, region: &str, creds: Option<&Credentials>) -> aws_sdk_s3::Client {
        let key = client_key(region, creds);
        if let Some(c) = self
            .s3_clients
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return c;
        }
        let client = self.build_s3(region, creds).await;
        if let Ok(mut m) = self.s3_clients.lock() {
            m.insert(key, client.clone());
        }
        client
    }

    async fn build_s3(&self, region: &str, creds: Option<&Credentials>) -> aws_sdk_s3::Client {
        let base = self.base().await;
        let mut b = aws_sdk_s3::config::Builder::from(base).region(Region::new(region.to_string()));
        if let Some(c) = creds {
            b = b.credentials_provider(SharedCredentialsProvider::new(c.clone()));
        }
        if base.endpoint_url().is_some() {
            // S3-compatible stores and emulators rarely serve virtual-hosted bucket names, and
            // some reject the newer default checksums.
            b = b
                .force_path_style(true)
                .request_checksum_calculation(
                    aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                )
                .response_checksum_validation(
                    aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                );
        }
        if let Some(log) = &self.settings.call_log {
            b = b.interceptor(log.clone());
        }
        b = b.http_client(self.metered_http_client(base));
        aws_sdk_s3::Client::from_conf(b.build())
    }

    /// An RDS client for `region` using `creds` (or the default chain).
    pub(crate) async fn rds(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> aws_sdk_rds::Client {
        standard_client!(self, rds_clients, aws_sdk_rds, region, creds)
    }

    /// An SQS client for `region` using `creds` (or the default chain).
    pub(crate) async fn sqs(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> aws_sdk_sqs::Client {
        standard_client!(self, sqs_clients, aws_sdk_sqs, region, creds)
    }

    /// An IAM client using `creds` (or the default chain). IAM is global: every call goes to
    /// its one endpoint, signed for `region` (us-east-1 in the aws partition).
    pub(crate) async fn iam(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> aws_sdk_iam::Client {
        standard_client!(self, iam_clients, aws_sdk_iam, region, creds)
    }

    /// A Route 53 client using `creds` (or the default chain). Route 53 is global like IAM.
    pub(crate) async fn route53(
        &self,
        region: &str,
        creds: Option<&Credentials>,
    ) -> aws_sdk_route53::Client {
        standard_client!(self, route53_clients, aws_sdk_route53, region, creds)
    }
}

/// The SDK's default HTTPS stack (hyper 1 with rustls on aws-lc), proxies from the
/// environment (`HTTPS_PROXY`, `NO_PROXY`) as the SDK's own default reads them.
fn default_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Credentials from the declaration's `credentials.secretName` Secret (in the CR's namespace),
/// or `None` to use the default chain.
pub(crate) async fn declared_credentials(
    decl: &Declaration,
    kube: &KubeReader,
) -> Result<Option<Credentials>, ProviderError> {
    let Some(secret) = decl
        .fields
        .get("credentials")
        .and_then(|c| c.get("secretName"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let ns = kube.namespace();
    let read = |key: &'static str| async move { kube.secret_value(secret, key).await };
    let text = |v: orkestra_provider::SecretValue, key: &str| {
        v.expose_str().map(str::to_string).ok_or_else(|| {
            ProviderError::invalid_field(
                "credentials.secretName",
                format!("key {key} of Secret {ns}/{secret} is not UTF-8"),
            )
        })
    };
    let id = text(read(SECRET_ACCESS_KEY_ID).await?, SECRET_ACCESS_KEY_ID)?;
    let key = text(
        read(SECRET_SECRET_ACCESS_KEY).await?,
        SECRET_SECRET_ACCESS_KEY,
    )?;
    let token = match kube.get_secret(secret).await? {
        Some(data) => data
            .get(SECRET_SESSION_TOKEN)
            .and_then(|v| v.expose_str().map(str::to_string)),
        None => None,
    };
    Ok(Some(Credentials::new(
        id,
        key,
        token,
        None,
        "orkestra-secret",
    )))
}
