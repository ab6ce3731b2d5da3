//! The `aws` provider: S3 buckets (`s3:`) and RDS instances (`rds:`) declared in a Katalog's `aws:` block.
//!
//! - [`AwsProvider`] implements [`orkestra_provider::Provider`];
//! - [`AwsSettings`]: endpoint override (path-style S3), region, timeouts, retries, call log;
//! - [`CallLog`]: an SDK interceptor recording every request (tests prove no-op reconciles make no
//!   mutating call; benchmarks count calls per resource);
//! - [`schema`]: the kinds and fields lint checks.
#![forbid(unsafe_code)]

pub mod calls;
pub mod clients;
mod error;
mod ownership;
pub mod provider;
pub mod rds;
pub mod s3;
pub mod schema;

pub use calls::{Call, CallLog};
pub use clients::AwsSettings;
pub use provider::AwsProvider;
pub use schema::schema;
