//! Turning AWS SDK errors into [`ProviderError`]s that keep AWS's code and message and say whether
//! a retry can help.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::ProviderError;

/// Error codes AWS uses for throttling and transient server trouble.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "PriorRequestNotComplete",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Convert an SDK error from `operation`.
pub(crate) fn sdk_error<E>(operation: &str, e: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().map(str::to_string);
    let status = e.raw_response().map(|r| r.status().as_u16());
    let retryable = match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            code.as_deref()
                .is_some_and(|c| RETRYABLE_CODES.contains(&c))
                || status.is_some_and(|s| s == 429 || s >= 500)
        }
        _ => false,
    };
    let message = match (e.message(), status) {
        (Some(m), _) => m.to_string(),
        (None, Some(s)) if code.is_some() => format!("HTTP {s}"),
        _ => error_chain(e),
    };
    ProviderError::api(operation, code, message, retryable)
}

/// The HTTP status of an SDK service error, if it got that far.
pub(crate) fn http_status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The error and its sources, Display only (DisplayErrorContext adds a Debug dump of the raw
/// response, far too long for a status row).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The body of a 200 response the SDK could not parse (some S3-compatible servers name XML
/// roots differently), so the caller can read the one element it needs.
pub(crate) fn unparsed_ok_body<E>(e: &SdkError<E, HttpResponse>) -> Option<String> {
    match e {
        SdkError::ServiceError(se) if se.raw().status().as_u16() == 200 => se
            .raw()
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// The text of the first `<name>…</name>` element in `xml`.
pub(crate) fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}
