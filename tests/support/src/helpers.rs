//! Small things several test crates need beside the systems: a free local port, one HTTP GET
//! against the agent's health/metrics server, and releasing CRs an agent left its finalizer on.

use kube::api::{Api, DynamicObject, Patch, PatchParams};

/// A local TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on `addr` (the agent's health/metrics server): (status code, body).
pub async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// After the agent stopped, CRs still carry its finalizer and would keep the test namespace from
/// ever finishing deletion: remove it from every CR in `api`.
pub async fn strip_finalizers(api: &Api<DynamicObject>) {
    let Ok(list) = api.list(&Default::default()).await else {
        return;
    };
    for o in list.items {
        if let Some(name) = o.metadata.name {
            let _ = api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
    }
}
