//! What a provider gets besides the declaration: cancellation, a tracing span with the request id,
//! the resolved CR and the read-only Kubernetes reader.

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::{Cause, ProviderError};
use crate::journal::Journal;
use crate::reader::KubeReader;

/// The context of one reconcile of one CR.
#[derive(Debug, Clone)]
pub struct ProviderContext {
    /// Cancelled when the agent shuts down or loses its lease; long loops must check it.
    pub cancel: CancellationToken,
    /// Correlates logs and events of one reconcile.
    pub request_id: String,
    /// The span every provider call runs in (carries `request_id`).
    pub span: tracing::Span,
    /// The resolved CR (spec, metadata, status) as JSON.
    pub cr: Arc<Value>,
    /// Read-only access to Secrets and ConfigMaps.
    pub kube: KubeReader,
    /// Where the runtime records create intents (see [`crate::journal`]). Private to this crate
    /// so that providers, which receive this context, cannot write through it.
    pub(crate) journal: Option<Arc<dyn Journal>>,
}

impl ProviderContext {
    /// A context for reconciling `cr`, with a fresh span named after `request_id`.
    pub fn new(request_id: impl Into<String>, cr: Value, kube: KubeReader) -> Self {
        let request_id = request_id.into();
        let span = tracing::info_span!("provider", request_id = %request_id);
        Self {
            cancel: CancellationToken::new(),
            request_id,
            span,
            cr: Arc::new(cr),
            kube,
            journal: None,
        }
    }

    /// Record create intents in `journal` before create calls (the agent passes one that
    /// writes the CR's status). Without a journal, creates are not crash-safe for kinds that
    /// cannot be tagged in the create call.
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Use `cancel` as the cancellation token.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// `Err(Cancelled)` once cancellation was requested.
    pub fn check_cancelled(&self) -> Result<(), ProviderError> {
        if self.cancel.is_cancelled() {
            Err(ProviderError::new(Cause::Cancelled))
        } else {
            Ok(())
        }
    }
}
