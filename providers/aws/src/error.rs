//! Turning AWS SDK errors into [`ProviderError`]s that keep AWS's code and message and say whether
//! a retry can help.

use std::error::Error;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
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
///
/// The message is what an Error row shows after `{operation} failed: {code}: `, so it carries
/// what the code alone does not: the HTTP status of a service error (a 503 `SlowDown` and a 400
/// `SlowDown` call for different reactions), that a response had no error code at all, or that
/// no response came (reset, refused, timed out). It is built only from AWS's `<Message>`, the
/// status line and transport errors, never from headers or the raw body: S3's
/// `SignatureDoesNotMatch` body echoes the access key id, the string to sign and the signature.
pub(crate) fn sdk_error<E>(operation: &str, e: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let code = e.code().map(str::to_string);
    let status = http_status(e);
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
    let message = match e {
        SdkError::ServiceError(se) => {
            service_message(e.message(), code.is_some(), se.raw().status().as_u16())
        }
        // The SDK's own attempt or operation timeout ("... occurred after 20s").
        SdkError::TimeoutError(_) => match e.source() {
            Some(s) => format!("timed out: {}", error_chain(s)),
            None => "timed out".to_string(),
        },
        SdkError::DispatchFailure(d) => match d.as_connector_error() {
            Some(c) => dispatch_message(c),
            None => error_chain(e),
        },
        SdkError::ResponseError(r) => match e.source() {
            Some(s) => format!(
                "HTTP {}: the response could not be read: {}",
                r.raw().status().as_u16(),
                error_chain(s)
            ),
            None => format!("HTTP {}: the response could not be read", r.raw().status()),
        },
        _ => error_chain(e),
    };
    ProviderError::api(operation, code, message, retryable)
}

/// The message of a service error: AWS's own message and the HTTP status.
fn service_message(aws_message: Option<&str>, has_code: bool, status: u16) -> String {
    match (aws_message, has_code) {
        (Some(m), _) => format!("{m} (HTTP {status})"),
        (None, true) => format!("HTTP {status}"),
        // A HEAD answer (no body) or a proxy's HTML page: nothing the SDK could parse.
        (None, false) => format!("HTTP {status} (no error code in the response)"),
    }
}

/// A request that got no response: say which way the connection failed, in words, then the
/// transport's own text (hyper's and the OS's errors name no headers, so no credentials).
fn dispatch_message(c: &ConnectorError) -> String {
    let what = if c.is_timeout() {
        "connection timed out"
    } else {
        match c.source().and_then(io_error_kind) {
            Some(std::io::ErrorKind::ConnectionReset) => "connection reset",
            Some(std::io::ErrorKind::ConnectionRefused) => "connection refused",
            Some(std::io::ErrorKind::ConnectionAborted) => "connection aborted",
            Some(std::io::ErrorKind::TimedOut) => "connection timed out",
            _ if c.is_io() => "connection failed",
            _ => "request not sent",
        }
    };
    // ConnectorError's own Display is only its kind ("io error"), which `what` says better.
    match c.source() {
        Some(s) => format!("{what}: {}", error_chain(s)),
        None => what.to_string(),
    }
}

/// The kind of the first `std::io::Error` among an error's sources.
fn io_error_kind(e: &(dyn Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// The HTTP status of an SDK service error, if it got that far.
pub(crate) fn http_status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The error and its sources, Display only (DisplayErrorContext adds a Debug dump of the raw
/// response, far too long for a status row).
fn error_chain(e: &(dyn Error + 'static)) -> String {
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

/// Not against moto: moto answers every request it understands with its own 2xx/4xx and cannot
/// be made to send a 5xx, a reset or no answer on demand. So each test stands up a TCP listener on
/// loopback that answers with fixed raw HTTP bytes (or resets, or stays silent), and sends the
/// request through the real S3 client (HTTP client, SigV4 signing, error parsing, timeouts); only
/// the server is fake. The messages checked are those an Error row shows (`short_message`).
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_s3::config::retry::RetryConfig;
    use aws_sdk_s3::config::timeout::TimeoutConfig;
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const ACCESS_KEY: &str = "AKIACANARYACCESSKEY1";
    const SECRET_KEY: &str = "canary/secret/key/9f3b2a7d";
    const SESSION_TOKEN: &str = "canary-session-token-5e1c";

    /// What the fake server does with each request.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Send these bytes (a whole HTTP/1.1 response) and close.
        Raw(&'static str),
        /// A 403 `SignatureDoesNotMatch` that echoes the request's signing headers in its body,
        /// as S3 does.
        EchoSignature,
        /// Close with RST (SO_LINGER 0) after reading the request.
        Reset,
        /// Read the request and never answer.
        Silent,
    }

    /// A listener on 127.0.0.1 answering every connection with `answer`; its endpoint URL.
    async fn server(answer: Answer) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer_one(stream, answer));
            }
        });
        url
    }

    async fn answer_one(mut stream: TcpStream, answer: Answer) {
        let head = read_request_head(&mut stream).await;
        match answer {
            Answer::Raw(bytes) => {
                let _ = stream.write_all(bytes.as_bytes()).await;
            }
            Answer::EchoSignature => {
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>\
                     <Message>The request signature we calculated does not match the signature you provided.</Message>\
                     <AWSAccessKeyId>{ACCESS_KEY}</AWSAccessKeyId><SignatureProvided>{}</SignatureProvided>\
                     <StringToSign>{}</StringToSign></Error>",
                    header("authorization"),
                    header("x-amz-security-token"),
                );
                let response = format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
            Answer::Reset => {
                let _ = stream.set_zero_linger();
            }
            Answer::Silent => {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
    }

    /// The request line and headers (the requests in these tests carry no body).
    async fn read_request_head(stream: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The real S3 client against `url`, no retries (one request per test), short timeouts.
    fn client(url: &str) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(url)
                .force_path_style(true)
                .credentials_provider(Credentials::new(
                    ACCESS_KEY,
                    SECRET_KEY,
                    Some(SESSION_TOKEN.to_string()),
                    None,
                    "test",
                ))
                .retry_config(RetryConfig::disabled())
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(2))
                        .operation_attempt_timeout(Duration::from_millis(500))
                        .build(),
                )
                .build(),
        )
    }

    fn assert_no_credentials(e: &ProviderError) {
        let text = format!("{e} {e:?}");
        for secret in [
            ACCESS_KEY,
            SECRET_KEY,
            SESSION_TOKEN,
            "Signature=",
            "AWS4-HMAC",
        ] {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }

    #[tokio::test]
    async fn slow_down_names_operation_code_message_and_status() {
        let url = server(Answer::Raw(
            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: 153\r\nConnection: close\r\n\r\n\
             <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>",
        ))
        .await;
        let e = client(&url)
            .create_bucket()
            .bucket("b1")
            .send()
            .await
            .expect_err("503");
        let err = sdk_error("CreateBucket", &e);
        assert_eq!(
            err.short_message(),
            "CreateBucket failed: SlowDown: Please reduce your request rate. (HTTP 503)"
        );
        assert_eq!(err.code(), Some("SlowDown"));
        assert!(err.retryable());
        assert_no_credentials(&err);
    }

    #[tokio::test]
    async fn head_500_without_a_body_says_there_was_no_error_code() {
        let url = server(Answer::Raw(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ))
        .await;
        let e = client(&url)
            .head_bucket()
            .bucket("b1")
            .send()
            .await
            .expect_err("500");
        let err = sdk_error("HeadBucket", &e);
        assert_eq!(
            err.short_message(),
            "HeadBucket failed: HTTP 500 (no error code in the response)"
        );
        assert_eq!(err.code(), None);
        assert!(err.retryable());
    }

    #[tokio::test]
    async fn html_502_from_a_proxy_says_there_was_no_error_code() {
        let url = server(Answer::Raw(
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 50\r\nConnection: close\r\n\r\n\
             <html><body><h1>502 Bad Gateway</h1></body></html>",
        ))
        .await;
        let e = client(&url)
            .get_bucket_tagging()
            .bucket("b1")
            .send()
            .await
            .expect_err("502");
        let err = sdk_error("GetBucketTagging", &e);
        assert_eq!(
            err.short_message(),
            "GetBucketTagging failed: HTTP 502 (no error code in the response)"
        );
        assert!(err.retryable());
    }

    #[tokio::test]
    async fn signature_error_keeps_aws_message_but_not_the_echoed_signature() {
        let url = server(Answer::EchoSignature).await;
        let e = client(&url)
            .put_bucket_versioning()
            .bucket("b1")
            .send()
            .await
            .expect_err("403");
        let err = sdk_error("PutBucketVersioning", &e);
        assert_eq!(
            err.short_message(),
            "PutBucketVersioning failed: SignatureDoesNotMatch: The request signature we \
             calculated does not match the signature you provided. (HTTP 403)"
        );
        assert!(!err.retryable());
        assert_no_credentials(&err);
    }

    #[tokio::test]
    async fn connection_reset_is_named() {
        let url = server(Answer::Reset).await;
        let e = client(&url)
            .get_bucket_tagging()
            .bucket("b1")
            .send()
            .await
            .expect_err("reset");
        let err = sdk_error("GetBucketTagging", &e);
        let m = err.short_message();
        assert!(
            m.starts_with("GetBucketTagging failed: connection reset: "),
            "{m}"
        );
        assert!(err.retryable());
        assert_no_credentials(&err);
    }

    #[tokio::test]
    async fn refused_connection_is_named() {
        // Bind and drop: nothing listens on the port afterwards.
        let url = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            format!("http://{}", l.local_addr().expect("addr"))
        };
        let e = client(&url)
            .head_bucket()
            .bucket("b1")
            .send()
            .await
            .expect_err("refused");
        let m = sdk_error("HeadBucket", &e).short_message();
        assert!(
            m.starts_with("HeadBucket failed: connection refused: "),
            "{m}"
        );
    }

    #[tokio::test]
    async fn no_answer_is_a_timeout() {
        let url = server(Answer::Silent).await;
        let e = client(&url)
            .get_bucket_tagging()
            .bucket("b1")
            .send()
            .await
            .expect_err("timeout");
        let err = sdk_error("GetBucketTagging", &e);
        assert_eq!(
            err.short_message(),
            "GetBucketTagging failed: timed out: operation attempt timeout (single attempt) \
             occurred after 500ms"
        );
        assert!(err.retryable());
    }
}
