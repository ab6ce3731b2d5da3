//! The `aws` provider: S3 buckets (`s3:`) and RDS instances (`rds:`) declared in a Katalog's `aws:` block.
//!
//! - [`AwsProvider`] implements [`orkestra_provider::Provider`];
//! - [`AwsSettings`]: endpoint override (path-style S3), region, timeouts, retries, call log;
//! - [`CallLog`]: an SDK interceptor recording every request (tests prove no-op reconciles make no
//!   mutating call; benchmarks count calls per resource);
//! - [`schema`]: the kinds and fields lint checks.
//!
//! How the agent (or `kubectl orkestra plan`) drives it:
//!
//! ```no_run
//! # async fn demo(kube: kube::Client) -> Result<(), orkestra_provider::ProviderError> {
//! use std::sync::Arc;
//! use orkestra_provider::{Declaration, KubeReader, Owner, ProviderContext, ProviderRuntime, RateLimit};
//! use orkestra_provider_aws::AwsProvider;
//!
//! let mut runtime = ProviderRuntime::new();
//! runtime.register(Arc::new(AwsProvider::from_env()), RateLimit::default())?;
//!
//! // One rendered, when/or-filtered item of the CR's `aws:` block.
//! let owner = Owner { uid: "0b6f…".into(), namespace: "shop".into(), name: "web".into(), katalog: "shop".into() };
//! let item = serde_json::json!({"bucket": "shop-web-assets", "versioning": true});
//! let schema = orkestra_provider_aws::schema();
//! let decl = Declaration::from_rendered("aws", schema.kind("s3").unwrap(), item.as_object().unwrap(), owner)?;
//!
//! let ctx = ProviderContext::new("request-1", serde_json::json!({}), KubeReader::new(kube, "shop"));
//! for planned in runtime.plan(&ctx, std::slice::from_ref(&decl)).await {
//!     print!("{}", planned?.1.render()); // what `kubectl orkestra plan` prints
//! }
//! let report = runtime.reconcile(&ctx, &[decl]).await; // rows for status.external
//! # let _ = report;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod calls;
pub mod clients;
mod error;
pub mod iam;
mod meter;
mod ownership;
pub mod provider;
pub mod rds;
pub mod route53;
pub mod s3;
pub mod schema;
pub mod sqs;

pub use calls::{Call, CallLog};
pub use clients::AwsSettings;
pub use provider::{AwsProvider, FixedClients};
pub use schema::schema;
