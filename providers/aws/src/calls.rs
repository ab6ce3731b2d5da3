//! Counting the external calls the provider makes, so tests can prove that a reconcile with nothing
//! to change makes no mutating call, and benchmarks can report calls per resource.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// One HTTP request sent to AWS (a retried operation counts once per attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Service (`S3`, `RDS`).
    pub service: String,
    /// Operation (`PutBucketTagging`).
    pub operation: String,
    /// The operation changes something (everything but Get/Head/List/Describe).
    pub mutating: bool,
    /// The access key id the request was signed with (not a secret; shows which credentials were used).
    pub access_key_id: Option<String>,
}

/// An SDK interceptor recording every request. Clones share one log.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl CallLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Number of calls so far.
    pub fn total(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or_default()
    }

    /// The mutating calls so far.
    pub fn mutating(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.mutating).collect()
    }

    /// Forget the calls so far.
    pub fn clear(&self) {
        if let Ok(mut c) = self.calls.lock() {
            c.clear();
        }
    }
}

/// True for operations that change state.
pub fn is_mutating(operation: &str) -> bool {
    !["Get", "Head", "List", "Describe"]
        .iter()
        .any(|p| operation.starts_with(p))
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "orkestra-call-log"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_default();
        // SigV4: "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ..."
        let access_key_id = context
            .request()
            .headers()
            .get("authorization")
            .and_then(|h| h.split("Credential=").nth(1))
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string);
        let call = Call {
            mutating: is_mutating(&operation),
            service,
            operation,
            access_key_id,
        };
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_operations() {
        for read in [
            "HeadBucket",
            "GetBucketTagging",
            "ListObjectVersions",
            "DescribeDBInstances",
        ] {
            assert!(!is_mutating(read), "{read}");
        }
        for write in [
            "CreateBucket",
            "PutBucketTagging",
            "DeleteObjects",
            "ModifyDBInstance",
            "AddTagsToResource",
        ] {
            assert!(is_mutating(write), "{write}");
        }
    }
}
