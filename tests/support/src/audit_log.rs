//! The API server's audit log (`APISERVER_AUDIT_LOG`, one JSON event per line): every mutating
//! request with who sent it and whether it was a dry run.
//!
//! Metrics count requests by verb and resource only, so telling a command's writes from the
//! controllers' meant waiting for the whole cluster to go quiet, which a namespace stuck in
//! Terminating prevents for good. The audit log names the user and the user agent of each
//! request, so a test looks at exactly the requests its command sent. `up.sh`'s policy logs
//! mutating requests at `Metadata` level only (no reads, leases or events).

use std::path::Path;

use serde_json::Value;

use crate::error::Error;

/// One request the API server finished handling (stage `ResponseComplete` or `Panic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// The Kubernetes verb: `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// The authenticated user (`orkestra-admin` for the test kubeconfig).
    pub user: String,
    /// The `User-Agent` header as sent.
    pub user_agent: String,
    /// Path and query as sent (`dryRun=All` shows a dry run).
    pub request_uri: String,
    /// `deployments`, `sites`, ...
    pub resource: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// Empty for collection requests.
    pub name: String,
    /// The HTTP status code of the response (0 when the event carries none).
    pub code: u16,
}

impl AuditEvent {
    /// Whether the request asked for a dry run, which persists nothing.
    pub fn is_dry_run(&self) -> bool {
        self.request_uri
            .split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|p| p == "dryRun=All"))
    }

    /// Whether the request could change stored state: a mutating verb without dry run.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) && !self.is_dry_run()
    }
}

/// Every finished request in the log at `path`, oldest first.
pub(crate) fn read(path: &Path) -> Result<Vec<AuditEvent>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::EnvFile {
        path: path.to_path_buf(),
        detail: format!("reading the API server's audit log: {e}"),
    })?;
    Ok(text.lines().filter_map(parse_line).collect())
}

fn parse_line(line: &str) -> Option<AuditEvent> {
    let v: Value = serde_json::from_str(line).ok()?;
    if !matches!(v["stage"].as_str(), Some("ResponseComplete" | "Panic")) {
        return None;
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Some(AuditEvent {
        verb: text(&v["verb"]),
        user: text(&v["user"]["username"]),
        user_agent: text(&v["userAgent"]),
        request_uri: text(&v["requestURI"]),
        resource: text(&v["objectRef"]["resource"]),
        namespace: text(&v["objectRef"]["namespace"]),
        name: text(&v["objectRef"]["name"]),
        code: v["responseStatus"]["code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_and_dry_runs_are_not_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"kind":"Event","stage":"ResponseComplete","verb":"patch","user":{"username":"orkestra-admin"},"userAgent":"kubectl-orkestra","requestURI":"/apis/apps/v1/namespaces/a/deployments/web?dryRun=All&fieldManager=x","objectRef":{"resource":"deployments","namespace":"a","name":"web"},"responseStatus":{"code":200}}"#,
                "\n",
                r#"{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"system:serviceaccount:kube-system:x"},"userAgent":"kube-controller-manager","requestURI":"/api/v1/namespaces/a/configmaps","objectRef":{"resource":"configmaps","namespace":"a"},"responseStatus":{"code":201}}"#,
                "\n",
                r#"{"kind":"Event","stage":"ResponseStarted","verb":"create"}"#,
                "\nnot json\n",
            ),
        )
        .unwrap();
        let events = read(&path).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events[0].is_dry_run() && !events[0].is_write());
        assert_eq!(events[0].name, "web");
        assert_eq!(events[0].code, 200);
        assert!(!events[1].is_dry_run() && events[1].is_write());
        assert_eq!(events[1].user, "system:serviceaccount:kube-system:x");
        assert!(read(&dir.path().join("missing")).is_err());
    }
}
