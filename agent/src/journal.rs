//! The agent's [`Journal`]: create intents written onto the CR's status (server-side apply,
//! the status field manager) before the provider runtime makes a create call, so a crash between
//! creating a resource and tagging it cannot lock the resource out (see
//! [`orkestra_provider::journal`]).

use std::sync::Arc;

use async_trait::async_trait;
use kube::api::{Api, DynamicObject};
use orkestra_provider::{Journal, ProviderError, StatusRow};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::status::{self, Body, LastWritten, Ready};

/// Writes intents into one CR's `status.external`, keeping the rows it has written so far in
/// this reconcile (one CR can create several resources in one pass). Nothing is copied until the
/// first intent: most reconciles create nothing.
pub struct StatusJournal {
    api: Api<DynamicObject>,
    cr: Arc<Value>,
    written: Arc<LastWritten>,
    rows: Mutex<Option<Vec<Value>>>,
}

impl std::fmt::Debug for StatusJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusJournal")
            .field("cr", &self.cr.pointer("/metadata/name"))
            .finish_non_exhaustive()
    }
}

impl StatusJournal {
    /// A journal for `cr` (as read at the start of the reconcile), written through `api` and
    /// remembered in `written`.
    pub fn new(api: Api<DynamicObject>, cr: Arc<Value>, written: Arc<LastWritten>) -> Self {
        Self {
            api,
            cr,
            written,
            rows: Mutex::new(None),
        }
    }
}

/// `rows` with `row` in place of the row of the same resource, or appended.
pub fn upsert(rows: &mut Vec<Value>, row: &StatusRow) {
    let value = serde_json::to_value(row).unwrap_or(Value::Null);
    let same = |r: &Value| {
        r["provider"] == row.provider.as_str()
            && r["kind"] == row.kind.as_str()
            && r["name"] == row.name.as_str()
    };
    match rows.iter_mut().find(|r| same(r)) {
        Some(r) => *r = value,
        None => rows.push(value),
    }
}

#[async_trait]
impl Journal for StatusJournal {
    async fn record(&self, row: &StatusRow) -> Result<(), ProviderError> {
        let mut guard = self.rows.lock().await;
        let rows = guard.get_or_insert_with(|| Body::from_live(&self.cr).external);
        upsert(rows, row);
        let ready = Ready::no(
            "Creating",
            format!("creating {} {} {}", row.provider, row.kind, row.name),
        );
        let body = Body {
            external: rows.clone(),
            ..Body::from_live(&self.cr)
        };
        let status = status::build(&self.cr, &ready, body);
        status::write(&self.api, &self.cr, status, &self.written)
            .await
            .map_err(|e| {
                ProviderError::api(
                    "RecordCreateIntent",
                    None,
                    format!("could not record the create on the CR's status first: {e}"),
                    true,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::{Intent, State};
    use serde_json::json;

    fn row(name: &str, state: State) -> StatusRow {
        StatusRow {
            provider: "aws".into(),
            kind: "s3".into(),
            name: name.into(),
            id: None,
            state,
            message: String::new(),
            last_sync_time: "2026-11-30T10:00:00Z".into(),
            outputs: Default::default(),
            intent: Some(Intent::Create),
            deletion_policy: None,
        }
    }

    #[test]
    fn upsert_replaces_the_same_resource_and_keeps_the_others() {
        let mut rows = vec![
            json!({"provider": "aws", "kind": "s3", "name": "a", "state": "Error"}),
            json!({"provider": "aws", "kind": "rds", "name": "a", "state": "Ready"}),
        ];
        upsert(&mut rows, &row("a", State::Creating));
        upsert(&mut rows, &row("b", State::Creating));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["state"], "Creating");
        assert_eq!(rows[0]["intent"], "Create");
        assert_eq!(rows[1]["kind"], "rds");
        assert_eq!(rows[2]["name"], "b");
    }
}
