//! The per-resource rows of a CR's `status.external`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::declaration::{Declaration, DeletionPolicy};
use crate::journal::Intent;
use crate::outcome::{Outcome, State};

/// One row of `status.external` (see providers.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    /// Provider block (`aws`).
    pub provider: String,
    /// Kind (`s3`).
    pub kind: String,
    /// Resource name.
    pub name: String,
    /// Resource id (ARN), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Resource state.
    pub state: State,
    /// Why (never a secret).
    #[serde(default)]
    pub message: String,
    /// When the row was last computed, RFC 3339 UTC.
    pub last_sync_time: String,
    /// Non-secret outputs.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    /// An operation recorded before it was attempted (see [`crate::journal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// `Orphan` when deleting the CR leaves this resource in place (`deletionPolicy: Orphan` or
    /// `managementPolicy: Observe`); recorded so a CR whose Katalog no longer renders can still be
    /// cleaned up from its status alone without deleting what it must keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

impl StatusRow {
    /// The row for `decl` after `outcome`, stamped now.
    pub fn from_outcome(decl: &Declaration, outcome: &Outcome) -> Self {
        Self {
            provider: decl.provider.clone(),
            kind: decl.kind.clone(),
            name: decl.name.clone(),
            id: outcome.id.clone(),
            state: outcome.state,
            message: outcome.message.clone(),
            last_sync_time: now_rfc3339(),
            outputs: outcome.outputs.clone(),
            intent: None,
            deletion_policy: decl.keeps_on_delete().then_some(DeletionPolicy::Orphan),
        }
    }
}

/// Current time as `2026-11-24T10:00:00Z`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::Owner;
    use serde_json::json;

    #[test]
    fn serializes_like_providers_md() {
        let decl = Declaration {
            provider: "aws".into(),
            kind: "s3".into(),
            name: "shop-prod-assets".into(),
            fields: Map::new(),
            deletion_policy: Default::default(),
            management_policy: Default::default(),
            adopt: false,
            owner: Owner::default(),
        };
        let mut outputs = Map::new();
        outputs.insert("region".into(), json!("eu-west-1"));
        let outcome = Outcome::new(State::Ready)
            .id(Some("arn:aws:s3:::shop-prod-assets".into()))
            .outputs(outputs);
        let mut row = StatusRow::from_outcome(&decl, &outcome);
        row.last_sync_time = "2026-11-24T10:00:00Z".into();
        assert_eq!(
            serde_json::to_value(&row).unwrap(),
            json!({"provider": "aws", "kind": "s3", "name": "shop-prod-assets",
                   "id": "arn:aws:s3:::shop-prod-assets", "state": "Ready", "message": "",
                   "lastSyncTime": "2026-11-24T10:00:00Z", "outputs": {"region": "eu-west-1"}})
        );
        assert!(now_rfc3339().ends_with('Z'));
    }
}
