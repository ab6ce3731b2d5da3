//! Talking to OCI registries: references, credentials, and moving a Katalog artifact
//! ([`crate::artifact`]) in and out with oci-client (the ORAS project's Rust client).
//!
//! Every failure ends in one [`RegistryError`] that names the reference and says what to do:
//! refused credentials, a missing tag, a blob whose bytes do not match its digest, an artifact
//! over the size limit, something that is not a Katalog artifact.

pub mod credentials;
pub mod reference;
pub mod transfer;

pub use credentials::RegistryArgs;
pub use reference::{is_oci, OciRef};

use crate::artifact::unpack::DigestMismatch;
use crate::artifact::ArtifactError;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry refused the credentials (or wants some).
    #[error("{registry} refused {who} for {reference} (401 unauthorized; credentials from {source_}); check the user and password, `oras login {registry}`, or pass --username with --password-stdin")]
    Unauthorized {
        /// Host.
        registry: String,
        /// The reference.
        reference: String,
        /// "user X" or "anonymous access".
        who: String,
        /// Where the credentials came from.
        source_: String,
    },
    /// The user may not push or pull this repository.
    #[error("{registry} denied access to {reference} ({detail})")]
    Denied {
        /// Host.
        registry: String,
        /// The reference.
        reference: String,
        /// The registry's message.
        detail: String,
    },
    /// No such tag, digest or repository.
    #[error("{reference} does not exist in the registry ({detail}); list the tags with `oras repo tags {repository}`")]
    NotFound {
        /// The reference.
        reference: String,
        /// `host/repo`.
        repository: String,
        /// The registry's message.
        detail: String,
    },
    /// A blob that does not hash to its digest.
    #[error("{reference}: {source}")]
    Digest {
        /// The reference.
        reference: String,
        /// Which blob.
        source: DigestMismatch,
    },
    /// The artifact is not acceptable.
    #[error("{reference}: {source}")]
    Artifact {
        /// The reference.
        reference: String,
        /// What is wrong.
        source: ArtifactError,
    },
    /// The credentials could not be read.
    #[error("credentials for {registry}: {source}")]
    Credentials {
        /// Host.
        registry: String,
        /// What is wrong.
        source: credentials::CredentialError,
    },
    /// The registry could not be reached, or answered something else.
    #[error("{reference}: {detail}")]
    Transport {
        /// The reference.
        reference: String,
        /// What happened, and a hint.
        detail: String,
    },
}
