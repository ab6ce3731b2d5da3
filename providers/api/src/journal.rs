//! Create intents: what makes a create safe against a crash between the create call and the
//! ownership tags.
//!
//! Some APIs cannot tag a resource in the call that creates it (S3's CreateBucket, as moto and
//! older regions serve it): a process killed between CreateBucket and PutBucketTagging leaves a
//! bucket without owner tags, which every later cycle would judge "not created by orkestra" and
//! refuse to touch, forever. So before a create call the runtime has the agent persist an
//! *intent* on the CR's status row (`intent: Create`). A later cycle that finds the resource
//! existing without owner tags, while its own row still records that intent, knows the resource
//! is its own interrupted create and claims it (adds the tags) instead of declaring a conflict.
//! The intent is cleared once the resource is seen carrying owner tags, or when the name turns
//! out to belong to someone else.
//!
//! The runtime never writes to Kubernetes itself, and providers never see the journal: the agent
//! hands the runtime a [`Journal`] that writes the CR's status.
//!
//! A CR's very first creates are recorded elsewhere: the request that adds the agent's finalizer
//! also sets the annotation [`INTENTS_ANNOTATION`] to the intent rows (one write where there were
//! two). Those rows count only while the CR has no `status.external` yet; the first status write
//! records every row, so from then on the annotation is a leftover that nothing reads.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::ProviderError;
use crate::status::StatusRow;

/// An operation recorded before it is attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// A create call is about to be (or was) made for the row's resource.
    Create,
}

/// Where the runtime persists intents before acting on them.
#[async_trait]
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Persist `row` (state Creating, `intent: Create`) durably before the create call.
    /// An error stops the create: an unrecorded create is exactly what the journal prevents.
    async fn record(&self, row: &StatusRow) -> Result<(), ProviderError>;
}

/// The CR annotation holding the intent rows (a JSON list) of creates recorded before the CR had
/// a `status.external` (see the module docs).
pub const INTENTS_ANNOTATION: &str = "orkestra.orkspace.io/create-intents";

/// The rows of `status.external` of a CR (as JSON), skipping rows that do not parse (a hand-edited
/// status must not stop a reconcile). A CR without `status.external` has the rows of its
/// [`INTENTS_ANNOTATION`], if any.
pub fn rows_of(cr: &serde_json::Value) -> Vec<StatusRow> {
    let parse = |rows: &Vec<serde_json::Value>| {
        rows.iter()
            .filter_map(|r| serde_json::from_value(r.clone()).ok())
            .collect()
    };
    if let Some(rows) = cr
        .pointer("/status/external")
        .and_then(serde_json::Value::as_array)
    {
        return parse(rows);
    }
    cr.pointer("/metadata/annotations")
        .and_then(|a| a.get(INTENTS_ANNOTATION))
        .and_then(serde_json::Value::as_str)
        .and_then(|text| serde_json::from_str::<Vec<serde_json::Value>>(text).ok())
        .map(|rows| parse(&rows))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_of_reads_status_and_skips_broken_rows() {
        let cr = json!({"status": {"external": [
            {"provider": "aws", "kind": "s3", "name": "a", "state": "Creating", "intent": "Create",
             "lastSyncTime": "2026-11-30T10:00:00Z"},
            {"provider": "aws", "kind": "s3"},
        ]}});
        let rows = rows_of(&cr);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].intent, Some(Intent::Create));
        assert!(rows_of(&json!({"spec": {}})).is_empty());
    }

    #[test]
    fn the_annotation_counts_only_until_the_status_has_rows() {
        let first = json!([{"provider": "aws", "kind": "s3", "name": "a", "state": "Creating",
            "intent": "Create", "lastSyncTime": "2026-11-30T10:00:00Z"}]);
        let annotated =
            json!({"metadata": {"annotations": {INTENTS_ANNOTATION: first.to_string()}}});
        let rows = rows_of(&annotated);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].name.as_str(), rows[0].intent),
            ("a", Some(Intent::Create))
        );
        // Once the status has rows (even none), the annotation is not read.
        let mut written = annotated.clone();
        written["status"] = json!({"external": []});
        assert!(rows_of(&written).is_empty());
        // A broken annotation is no row, not an error.
        let broken = json!({"metadata": {"annotations": {INTENTS_ANNOTATION: "[{"}}});
        assert!(rows_of(&broken).is_empty());
    }
}
