//! The requests moto served, as it recorded them (`MOTO_ENABLE_RECORDING`, one JSON line per
//! request in `MOTO_RECORDING`).
//!
//! A client-side call log shows what the client believes it sent; this shows what reached the
//! emulator, so "a second reconcile makes zero mutating calls" is checked at the server. Every
//! test shares one moto, so a test filters the log by a name only it uses.

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::error::Error;

/// One request moto served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MotoRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The raw URL, path and query as sent.
    pub url: String,
    /// The operation: `X-Amz-Target`'s part after the dot (JSON protocols, `CreateQueue`), the
    /// query protocol's `Action=` (`CreateRole`), else the method and path (REST protocols).
    pub operation: String,
    /// The body as text (base64-decoded when moto stored it encoded; lossy for binary bodies).
    pub body: String,
}

impl MotoRequest {
    /// Whether the request can change state: anything but a read operation (`Get*`, `List*`,
    /// `Describe*`, `Head*`) or a `GET`/`HEAD` of a REST API.
    pub fn is_mutating(&self) -> bool {
        if self.operation.contains(' ') {
            return !matches!(self.method.as_str(), "GET" | "HEAD");
        }
        !["Get", "List", "Describe", "Head"]
            .iter()
            .any(|p| self.operation.starts_with(p))
    }

    /// Whether `needle` occurs in the URL or the body (percent-encoded forms included).
    pub fn mentions(&self, needle: &str) -> bool {
        let encoded = needle.replace(':', "%3A").replace('/', "%2F");
        [needle, encoded.as_str()]
            .iter()
            .any(|n| self.url.contains(n) || self.body.contains(n))
    }
}

/// Every request in the recording at `path`, oldest first.
pub(crate) fn read(path: &Path) -> Result<Vec<MotoRequest>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::EnvFile {
        path: path.to_path_buf(),
        detail: format!("reading moto's request recording: {e}"),
    })?;
    Ok(text.lines().filter_map(parse_line).collect())
}

fn parse_line(line: &str) -> Option<MotoRequest> {
    let v: Value = serde_json::from_str(line).ok()?;
    let method = v.get("method")?.as_str()?.to_string();
    let url = v.get("url")?.as_str()?.to_string();
    let raw = v.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = if v.get("body_encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    } else {
        raw.to_string()
    };
    let header = |name: &str| {
        v.get("headers")?
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string)
    };
    let operation = if let Some(target) = header("X-Amz-Target") {
        target.rsplit('.').next().unwrap_or(&target).to_string()
    } else if let Some(action) = form_action(&body).or_else(|| form_action(query(&url))) {
        action
    } else {
        format!("{method} {}", url.split('?').next().unwrap_or(&url))
    };
    Some(MotoRequest {
        method,
        url,
        operation,
        body,
    })
}

fn query(url: &str) -> &str {
    url.split_once('?').map(|(_, q)| q).unwrap_or_default()
}

fn form_action(form: &str) -> Option<String> {
    form.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_come_from_target_action_or_path() {
        let json = r#"{"headers": {"X-Amz-Target": "AmazonSQS.CreateQueue"}, "method": "POST", "url": "http://h/", "body": "{\"QueueName\":\"q1\"}", "body_encoded": false}"#;
        let r = parse_line(json).unwrap();
        assert_eq!(r.operation, "CreateQueue");
        assert!(r.is_mutating() && r.mentions("q1"));

        let form = base64::engine::general_purpose::STANDARD.encode("Action=GetRole&RoleName=r1");
        let query = format!(
            r#"{{"headers": {{}}, "method": "POST", "url": "http://h/", "body": "{form}", "body_encoded": true}}"#
        );
        let r = parse_line(&query).unwrap();
        assert_eq!(r.operation, "GetRole");
        assert!(!r.is_mutating() && r.mentions("r1"));

        let rest = r#"{"headers": {}, "method": "GET", "url": "http://h/2013-04-01/hostedzone/Z1/rrset?name=a", "body": "", "body_encoded": false}"#;
        let r = parse_line(rest).unwrap();
        assert_eq!(r.operation, "GET http://h/2013-04-01/hostedzone/Z1/rrset");
        assert!(!r.is_mutating() && r.mentions("Z1"));
        assert!(parse_line("not json").is_none());
    }
}
