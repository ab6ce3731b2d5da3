//! The agent's one error type. Every variant names the object or field it is about.

use std::path::PathBuf;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{context}: {}", kube_message(source))]
    Kube {
        /// What was being done, naming the object (`applying Deployment shop/web`).
        context: String,
        #[source]
        source: kube::Error,
    },
    /// A CR's templates did not render (a missing required value, a wrong type).
    #[error("{cr}: {field}: {message}")]
    Render {
        /// `Kind namespace/name` of the CR.
        cr: String,
        /// The Katalog field that failed, e.g. `spec.crds.website.operatorBox.onCreate.deployments[0].replicas`.
        field: String,
        /// Why.
        message: String,
    },
    /// A Katalog did not load (its diagnostics are on its status or were printed).
    #[error("Katalog {name}: {message}")]
    Katalog {
        /// `metadata.name` or file name.
        name: String,
        /// Summary of the diagnostics.
        message: String,
    },
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The health/metrics server could not start.
    #[error("health and metrics server on {addr}: {source}")]
    Http {
        /// The address it tried to listen on.
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Leader election could not be set up.
    #[error("leader election with Lease {lease}: {source}")]
    Lease {
        /// `namespace/name` of the Lease.
        lease: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    /// A reconcile step that did not finish: the CR keeps its finalizer or its Ready=False status says why.
    #[error("{cr}: {message}")]
    Step {
        /// `Kind namespace/name` of the CR.
        cr: String,
        /// What failed, naming the child or external resource.
        message: String,
    },
    /// A reconcile panicked; caught so that no other CR or CRD is affected.
    #[error("reconcile of {cr} panicked: {message}")]
    Panic {
        /// `Kind namespace/name` of the CR.
        cr: String,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// Something the agent needs at startup is not in the cluster (its Lease's namespace, the
    /// Katalog CRD): one line saying what is missing and what to run or pass.
    #[error("{missing}: {remedy}")]
    Missing {
        /// What is missing, naming it (`namespace orkestra-system not found (…)`).
        missing: String,
        /// What to run or pass instead.
        remedy: String,
    },
    /// A value the agent could not interpret (an object without a name, bad configuration).
    #[error("{what}: {message}")]
    Invalid {
        /// What was being interpreted.
        what: String,
        /// Why it is wrong.
        message: String,
    },
}

impl Error {
    /// The short reason used in conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "KubernetesError",
            Error::Render { .. } => "RenderFailed",
            Error::Katalog { .. } => "KatalogInvalid",
            Error::Io { .. } | Error::Http { .. } | Error::Lease { .. } | Error::Missing { .. } => {
                "AgentError"
            }
            Error::Step { .. } => "StepFailed",
            Error::Panic { .. } => "ReconcilePanicked",
            Error::Invalid { .. } => "Invalid",
        }
    }
}

/// Attach context to a failed Kubernetes call.
pub(crate) trait KubeContext<T> {
    /// Wrap the error with `context` (evaluated only on error).
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Kube {
            context: context(),
            source,
        })
    }
}

/// The API server's own message for API errors (`... range is full (InternalError, 500)`),
/// rather than the whole Status structure; other errors as they display.
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({}, {})", s.message, s.reason, s.code),
        other => other.to_string(),
    }
}

/// Whether a Kubernetes error is an API answer with `code`.
pub(crate) fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}
