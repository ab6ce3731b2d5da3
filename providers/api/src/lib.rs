//! The provider contract.
//!
//! A provider manages resources that live outside Kubernetes (an S3 bucket, an RDS instance) for one
//! named Katalog block (`aws:`). This crate holds what the runtime and every provider share:
//!
//! - [`schema`]: a provider's self-description (kinds, fields, literal validation) that lets
//!   `kubectl orkestra lint` check a Katalog offline, before anything reaches a cloud API;
//! - [`Declaration`], [`Owner`]: what a provider is asked to make true, and for whom;
//! - [`Provider`]: observe (read-only), a pure [`Plan`] diff, apply one step, delete;
//! - [`ProviderContext`] with cancellation, request id and a [`KubeReader`] that can only read
//!   Secrets and ConfigMaps;
//! - [`Outcome`], [`State`], [`StatusRow`]: what happened, as `status.external` shows it;
//! - [`policy`]: the ownership and policy rules (Conflict, adopt, Observe, Orphan, replacement)
//!   every provider applies the same way;
//! - [`runtime`]: ordering, rate limiting, retries with backoff and jitter, rows per resource;
//! - [`Providers`]: the one registration of a build, which its agent and its plugin both use.
#![forbid(unsafe_code)]

pub mod context;
pub mod cr_status;
pub mod declaration;
pub mod error;
pub mod journal;
pub mod observation;
pub mod outcome;
pub mod ownership;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod reader;
pub mod registry;
pub mod runtime;
pub use orkestra_provider_schema as schema;
pub mod status;

pub use context::ProviderContext;
pub use cr_status::{Condition, CrStatus, WaitingRow};
pub use declaration::{Declaration, DeletionPolicy, ManagementPolicy};
pub use error::{Cause, ProviderError, Target};
pub use journal::{Intent, Journal};
pub use observation::Observation;
pub use outcome::{Outcome, State};
pub use ownership::{Owner, Ownership};
pub use plan::{Action, Blocked, FieldChange, Plan, PlanValue};
pub use provider::Provider;
pub use reader::{KubeReader, SecretData, SecretValue};
pub use registry::Providers;
pub use runtime::{ProviderRuntime, RateLimit, RetryPolicy, RunReport, TokenBucket};
pub use schema::{FieldSchema, FieldType, KindSchema, ProviderSchema, Validator};
pub use status::StatusRow;
