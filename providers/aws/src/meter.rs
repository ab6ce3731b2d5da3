//! Counting every HTTP request to AWS against the runtime's rate limit for this provider.
//!
//! The runtime hands the provider its token bucket ([`orkestra_provider::Provider::meter_calls`]);
//! every SDK client the provider builds sends its requests through [`MeteredClient`], which takes
//! one token before each request goes out, the SDK's own retries included. An observe of an S3
//! bucket is several requests, so counting operations let several times `--provider-rate` calls
//! through; counting requests keeps the agent under the rate its flag names.

use std::sync::{Arc, RwLock};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use orkestra_provider::TokenBucket;

/// Where the runtime's token bucket goes once the provider is registered. Clients built before
/// registration share it too: they read it per request.
#[derive(Debug, Default)]
pub(crate) struct CallMeter {
    bucket: RwLock<Option<Arc<TokenBucket>>>,
}

impl CallMeter {
    /// Take tokens from `bucket` from now on (a second registration replaces the first).
    pub(crate) fn attach(&self, bucket: Arc<TokenBucket>) {
        *self
            .bucket
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bucket);
    }

    fn bucket(&self) -> Option<Arc<TokenBucket>> {
        self.bucket
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// An HTTP client that takes a token of the meter's bucket before each request.
#[derive(Debug, Clone)]
pub(crate) struct MeteredClient {
    inner: SharedHttpClient,
    meter: Arc<CallMeter>,
}

impl MeteredClient {
    /// `inner` with each request metered by `meter`.
    pub(crate) fn wrap(inner: SharedHttpClient, meter: Arc<CallMeter>) -> SharedHttpClient {
        SharedHttpClient::new(Self { inner, meter })
    }
}

impl HttpClient for MeteredClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(MeteredConnector {
            inner: self.inner.http_connector(settings, components),
            meter: self.meter.clone(),
        })
    }
}

#[derive(Debug)]
struct MeteredConnector {
    inner: SharedHttpConnector,
    meter: Arc<CallMeter>,
}

impl HttpConnector for MeteredConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let bucket = self.meter.bucket();
        HttpConnectorFuture::new(async move {
            if let Some(bucket) = bucket {
                bucket.acquire().await;
            }
            inner.call(request).await
        })
    }
}
