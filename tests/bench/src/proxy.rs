//! A loopback HTTP proxy in front of moto: it records every AWS request that reaches moto (the
//! figures "from moto's side", independent of what the agent says it did) and, when told to,
//! injects faults: 5xx answers, throttling (503 SlowDown), connection resets and latency.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Context, Error, Result};
use crate::rng::Rng;

/// Fault rates (each 0..=1, checked in this order) and added latency.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Faults {
    /// Answer 500 InternalError without reaching moto.
    pub error_5xx: f64,
    /// Answer 503 SlowDown without reaching moto.
    pub throttle: f64,
    /// Close the connection without an answer.
    pub reset: f64,
    /// Delay before forwarding.
    pub latency_ms: u64,
}

/// One S3 request as seen on the wire.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Call {
    /// Operation name derived from method, path and query (CreateBucket, PutBucketTagging, ...).
    pub op: String,
    /// Bucket named in the path ("" for ListBuckets).
    pub bucket: String,
    /// Status returned to the client (0 when the connection was reset).
    pub status: u16,
    /// True when the proxy answered (or reset) instead of moto.
    pub injected: bool,
    /// Whether the operation changes state.
    pub mutating: bool,
    /// The X-Amz-Security-Token header, if any (to see which credentials were used).
    pub session_token: Option<String>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    faults: Faults,
}

/// A running proxy.
#[derive(Clone)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String, seed: u64) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .ctx(|| "binding the proxy".into())?;
        let addr = listener.local_addr().ctx(|| "proxy address".into())?;
        let state = Arc::new(Mutex::new(State::default()));
        let proxy = Proxy {
            endpoint: format!("http://{addr}"),
            state: state.clone(),
        };
        let rng = Arc::new(Mutex::new(Rng::new(seed)));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, upstream, rng) = (state.clone(), upstream.clone(), rng.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(req, state.clone(), upstream.clone(), rng.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(proxy)
    }

    /// Sets the fault rates from now on.
    pub fn set_faults(&self, f: Faults) {
        self.state.lock().expect("proxy state").faults = f;
    }

    /// All calls recorded so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("proxy state").calls.clone()
    }

    /// Number of calls recorded so far (a mark for `calls_since`).
    pub fn mark(&self) -> usize {
        self.state.lock().expect("proxy state").calls.len()
    }

    /// Calls recorded after `mark`.
    pub fn calls_since(&self, mark: usize) -> Vec<Call> {
        let st = self.state.lock().expect("proxy state");
        st.calls
            .get(mark..)
            .map(<[Call]>::to_vec)
            .unwrap_or_default()
    }
}

/// Calls counted by operation.
pub fn by_op(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in calls {
        *m.entry(c.op.clone()).or_insert(0) += 1;
    }
    m
}

/// Names the S3 operation of a path-style request.
pub fn s3_op(method: &str, path: &str, query: &str) -> (String, String, bool) {
    let path = path.trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (b.to_string(), k.to_string()),
        None => (path.to_string(), String::new()),
    };
    let q: Vec<&str> = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|s| s.split('=').next().unwrap_or(""))
        .collect();
    let sub = [
        ("tagging", "BucketTagging"),
        ("versioning", "BucketVersioning"),
        ("publicAccessBlock", "PublicAccessBlock"),
        ("encryption", "BucketEncryption"),
        ("location", "BucketLocation"),
        ("policy", "BucketPolicy"),
        ("acl", "BucketAcl"),
        ("versions", "ObjectVersions"),
        ("delete", "Objects"),
        ("uploads", "MultipartUploads"),
    ]
    .iter()
    .find(|(k, _)| q.contains(k))
    .map(|(_, n)| *n);
    let mutating = matches!(method, "PUT" | "POST" | "DELETE");
    let op = match (method, bucket.is_empty(), key.is_empty(), sub) {
        ("GET", true, _, _) => "ListBuckets".to_string(),
        ("HEAD", _, true, None) => "HeadBucket".to_string(),
        ("PUT", _, true, None) => "CreateBucket".to_string(),
        ("DELETE", _, true, None) => "DeleteBucket".to_string(),
        ("GET", _, true, None) => "ListObjects".to_string(),
        ("POST", _, true, Some("Objects")) => "DeleteObjects".to_string(),
        ("GET", _, true, Some("ObjectVersions")) => "ListObjectVersions".to_string(),
        ("GET", _, true, Some(s)) => format!("GetBucket{}", s.trim_start_matches("Bucket")),
        ("PUT", _, true, Some(s)) => format!("PutBucket{}", s.trim_start_matches("Bucket")),
        ("DELETE", _, true, Some(s)) => format!("DeleteBucket{}", s.trim_start_matches("Bucket")),
        (m, _, false, _) => format!("{m} object"),
        (m, _, _, _) => format!("{m} {}", query),
    };
    // Keep the SDK's names for the public access block calls.
    let op = op
        .replace("PutBucketPublicAccessBlock", "PutPublicAccessBlock")
        .replace("GetBucketPublicAccessBlock", "GetPublicAccessBlock")
        .replace("DeleteBucketPublicAccessBlock", "DeletePublicAccessBlock");
    (op, bucket, mutating)
}

fn xml_error(status: StatusCode, code: &str, msg: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{msg}</Message><RequestId>orkestra-fault-proxy</RequestId></Error>"
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    upstream: String,
    rng: Arc<Mutex<Rng>>,
) -> std::result::Result<Response<Full<Bytes>>, Error> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let (op, bucket, mutating) = s3_op(&method, &path, &query);
    let session_token = req
        .headers()
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let faults = state.lock().expect("proxy state").faults;
    let roll = |p: f64| p > 0.0 && rng.lock().expect("rng").chance(p);
    let record = |status: u16, injected: bool| {
        state.lock().expect("proxy state").calls.push(Call {
            op: op.clone(),
            bucket: bucket.clone(),
            status,
            injected,
            mutating,
            session_token: session_token.clone(),
        });
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if roll(faults.error_5xx) {
        record(500, true);
        return Ok(xml_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again. (injected)",
        ));
    }
    if roll(faults.throttle) {
        record(503, true);
        return Ok(xml_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate. (injected)",
        ));
    }
    if roll(faults.reset) {
        record(0, true);
        // An error from the service makes hyper drop the connection without an answer.
        return Err(Error::msg("injected connection reset"));
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| Error::msg(format!("reading request body: {e}")))?
        .to_bytes();
    let mut out = Request::from_parts(parts, Full::new(body));
    out.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    let resp = forward(&upstream, out).await;
    match resp {
        Ok(r) => {
            record(r.status().as_u16(), false);
            Ok(r)
        }
        Err(e) => {
            record(502, true);
            Ok(xml_error(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                &format!("proxy could not reach moto: {e}"),
            ))
        }
    }
}

async fn forward(upstream: &str, req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>> {
    let stream = TcpStream::connect(upstream)
        .await
        .ctx(|| format!("connecting to moto at {upstream}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Error::msg(format!("handshake with moto: {e}")))?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::msg(format!("request to moto: {e}")))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| Error::msg(format!("reading moto's answer: {e}")))?
        .to_bytes();
    let mut r = Response::from_parts(parts, Full::new(body));
    r.headers_mut().remove(hyper::header::CONNECTION);
    r.headers_mut().remove(hyper::header::TRANSFER_ENCODING);
    Ok(r)
}
