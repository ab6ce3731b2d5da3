//! The one error type of the provider contract.
//!
//! Every error names the resource it concerns (provider, kind, name) and says whether retrying can
//! help, so the runtime decides between a backoff retry and an Error row without parsing messages.
//! Errors from a cloud API keep the API's own code and message.

use std::fmt;

/// The resource an error concerns. Empty parts are allowed for errors raised before a
/// declaration is known (a Secret read, for instance); [`ProviderError::for_target`] fills them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Provider block (`aws`).
    pub provider: String,
    /// Kind inside the block (`s3`).
    pub kind: String,
    /// Resource name (bucket name, RDS identifier).
    pub name: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.provider.is_empty(), self.kind.is_empty()) {
            (true, _) => Ok(()),
            (false, true) => write!(f, "{} {:?}: ", self.provider, self.name),
            (false, false) => write!(f, "{}.{} {:?}: ", self.provider, self.kind, self.name),
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The external API rejected or failed a call. `code` and `message` are the API's own.
    Api {
        /// The operation that failed (`CreateBucket`).
        operation: String,
        /// The API error code (`BucketAlreadyExists`, `Throttling`), when the API gave one.
        code: Option<String>,
        /// The API's message.
        message: String,
        /// Retrying the same call later can succeed (throttling, 5xx, timeouts).
        retryable: bool,
    },
    /// A declared field is missing or has a value the provider cannot use.
    InvalidField {
        /// Field name as written in the Katalog.
        field: String,
        /// What is wrong, for a human.
        message: String,
    },
    /// A Secret or ConfigMap the declaration refers to could not be read.
    Reference {
        /// `Secret` or `ConfigMap`.
        object: &'static str,
        /// `namespace/name`.
        name: String,
        /// What is wrong (missing, no such key, API failure).
        message: String,
        /// The read can succeed later (API unreachable), as opposed to a missing object or key.
        retryable: bool,
    },
    /// The declaration names a kind the provider does not have.
    UnknownKind,
    /// No provider is registered under the block's name.
    UnknownProvider,
    /// Two providers were registered under one block name (`name`).
    DuplicateProvider {
        /// The block name both claim.
        name: String,
    },
    /// The operation was cancelled (agent shutting down, lease lost).
    Cancelled,
}

/// An error from a provider or the runtime around it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProviderError {
    /// The resource concerned (boxed, as is the cause, to keep `Result`s small).
    pub target: Box<Target>,
    /// What went wrong.
    pub cause: Box<Cause>,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)?;
        match self.cause.as_ref() {
            Cause::Api {
                operation,
                code: Some(code),
                message,
                ..
            } => {
                write!(f, "{operation} failed: {code}: {message}")
            }
            Cause::Api {
                operation,
                code: None,
                message,
                ..
            } => {
                write!(f, "{operation} failed: {message}")
            }
            Cause::InvalidField { field, message } => write!(f, "field {field}: {message}"),
            Cause::Reference {
                object,
                name,
                message,
                ..
            } => write!(f, "{object} {name}: {message}"),
            Cause::UnknownKind => write!(f, "the provider has no such kind"),
            Cause::UnknownProvider => write!(f, "no provider is registered under this name"),
            Cause::DuplicateProvider { name } => write!(
                f,
                "two providers are registered under the block name {name:?}; each block needs exactly one"
            ),
            Cause::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl ProviderError {
    /// An error with no target yet.
    pub fn new(cause: Cause) -> Self {
        Self {
            target: Box::default(),
            cause: Box::new(cause),
        }
    }

    /// A failed external call.
    pub fn api(
        operation: impl Into<String>,
        code: Option<String>,
        message: impl Into<String>,
        retryable: bool,
    ) -> Self {
        Self::new(Cause::Api {
            operation: operation.into(),
            code,
            message: message.into(),
            retryable,
        })
    }

    /// A declared field the provider cannot use.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Cause::InvalidField {
            field: field.into(),
            message: message.into(),
        })
    }

    /// Attach the resource the error concerns (keeps a target already set).
    pub fn for_target(mut self, provider: &str, kind: &str, name: &str) -> Self {
        if self.target.provider.is_empty() {
            self.target = Box::new(Target {
                provider: provider.to_string(),
                kind: kind.to_string(),
                name: name.to_string(),
            });
        }
        self
    }

    /// Retrying the same operation later can succeed.
    pub fn retryable(&self) -> bool {
        match self.cause.as_ref() {
            Cause::Api { retryable, .. } | Cause::Reference { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The external API's error code, if any.
    pub fn code(&self) -> Option<&str> {
        match self.cause.as_ref() {
            Cause::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The message without the target prefix, for a status row that already names the resource.
    pub fn short_message(&self) -> String {
        let full = self.to_string();
        let prefix = self.target.to_string();
        full.strip_prefix(&prefix).unwrap_or(&full).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_resource_and_api_code() {
        let e = ProviderError::api(
            "CreateBucket",
            Some("BucketAlreadyExists".into()),
            "taken",
            false,
        )
        .for_target("aws", "s3", "assets");
        assert_eq!(
            e.to_string(),
            "aws.s3 \"assets\": CreateBucket failed: BucketAlreadyExists: taken"
        );
        assert_eq!(
            e.short_message(),
            "CreateBucket failed: BucketAlreadyExists: taken"
        );
        assert!(!e.retryable());
        assert_eq!(e.code(), Some("BucketAlreadyExists"));
    }

    #[test]
    fn first_target_wins() {
        let e = ProviderError::new(Cause::Cancelled)
            .for_target("aws", "s3", "a")
            .for_target("aws", "rds", "b");
        assert_eq!(e.target.name, "a");
    }
}
