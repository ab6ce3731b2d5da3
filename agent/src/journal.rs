//! The agent's [`Journal`]: create intents written onto the CR before the provider runtime makes
//! a create call, so a crash between creating a resource and tagging it cannot lock the resource
//! out (see [`orkestra_provider::journal`]).
//!
//! Where they are written depends on the finalizer. A CR that carries it gets its intents on
//! `status.external` (server-side apply, the status field manager). A CR that does not yet (its
//! first reconcile) gets the finalizer and the intents in one request, the intents in the
//! annotation [`INTENTS_ANNOTATION`]: the finalizer must be there before anything external exists,
//! and joining the two saves a write per CR.

use std::sync::Arc;

use async_trait::async_trait;
use kube::api::{Api, DynamicObject, ObjectMeta};
use orkestra_provider::journal::INTENTS_ANNOTATION;
use orkestra_provider::{Journal, ProviderError, StatusRow};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::Error;
use crate::finalizer;
use crate::status::{self, Body, LastWritten, Ready};

/// Writes intents for one CR, keeping the rows it has written so far in this reconcile (one CR
/// can create several resources in one pass). Nothing is copied until the first intent: most
/// reconciles create nothing.
pub struct StatusJournal {
    api: Api<DynamicObject>,
    cr: Arc<Value>,
    written: Arc<LastWritten>,
    state: Mutex<State>,
}

struct State {
    rows: Option<Vec<Value>>,
    /// The CR's metadata while it does not carry the finalizer; `None` once it does.
    unfinalized: Option<ObjectMeta>,
}

impl std::fmt::Debug for StatusJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusJournal")
            .field("cr", &self.cr.pointer("/metadata/name"))
            .finish_non_exhaustive()
    }
}

impl StatusJournal {
    /// A journal for `cr` (as read at the start of the reconcile, `meta` its metadata), written
    /// through `api` and remembered in `written`.
    pub fn new(
        api: Api<DynamicObject>,
        cr: Arc<Value>,
        meta: &ObjectMeta,
        written: Arc<LastWritten>,
    ) -> Self {
        let unfinalized = (!finalizer::in_meta(meta)).then(|| meta.clone());
        Self {
            api,
            cr,
            written,
            state: Mutex::new(State {
                rows: None,
                unfinalized,
            }),
        }
    }

    /// Whether the CR carries the finalizer now (it had it, or this journal added it).
    pub async fn finalized(&self) -> bool {
        self.state.lock().await.unfinalized.is_none()
    }

    /// Add the finalizer on its own, if it is missing (for what must not exist without it:
    /// children owner references cannot reach). `Ok(false)`: the CR changed meanwhile.
    pub async fn finalize(&self) -> Result<bool, Error> {
        let mut state = self.state.lock().await;
        let Some(meta) = &state.unfinalized else {
            return Ok(true);
        };
        let added = finalizer::add_to(&self.api, meta, None).await?.is_some();
        if added {
            state.unfinalized = None;
        }
        Ok(added)
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

/// The rows a CR starts a reconcile with: its status rows or, before it has any, the rows of
/// its intents annotation (an earlier first reconcile that stopped before its status write).
fn recorded(cr: &Value) -> Vec<Value> {
    if cr.pointer("/status/external").is_some() {
        return Body::from_live(cr).external;
    }
    Body::rows(&orkestra_provider::journal::rows_of(cr))
}

#[async_trait]
impl Journal for StatusJournal {
    async fn record(&self, row: &StatusRow) -> Result<(), ProviderError> {
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        let rows = state.rows.get_or_insert_with(|| recorded(&self.cr));
        upsert(rows, row);
        if let Some(meta) = &state.unfinalized {
            let intents = Value::Array(rows.clone()).to_string();
            let added = finalizer::add_to(&self.api, meta, Some((INTENTS_ANNOTATION, intents)))
                .await
                .map_err(|e| {
                    ProviderError::api(
                        "RecordCreateIntent",
                        None,
                        format!("could not record the create on the CR first: {e}"),
                        true,
                    )
                })?;
            if added.is_none() {
                return Err(ProviderError::api(
                    "RecordCreateIntent",
                    None,
                    "the CR changed while its finalizer and create intent were being added; the create waits for the next reconcile".to_string(),
                    true,
                ));
            }
            state.unfinalized = None;
            return Ok(());
        }
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
