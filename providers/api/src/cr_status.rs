//! The status of a CR as the agent writes it and the plugin reads it: one typed contract for two
//! programs (`kubectl orkestra status`, `plan`, scripts reading `-o json`).
//!
//! `status.observedGeneration`, one `Ready` condition, the Katalog's `status.fields` at the root
//! (free-form, not modelled here), `status.external`, one [`StatusRow`] per external resource,
//! and `status.waiting`, one [`WaitingRow`] per declaration waiting for a value.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::StatusRow;

/// The condition type the agent writes.
pub const READY: &str = "Ready";

/// A CR's `status`, as far as orkestra itself writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrStatus {
    /// The generation the agent last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// One row per external resource, in graph order.
    #[serde(default)]
    pub external: Vec<StatusRow>,
    /// One row per declaration that waits for a value not known yet (composition.md, rule 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<WaitingRow>,
}

/// A declaration that is neither created nor changed yet, and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitingRow {
    /// `deployments[web]`.
    pub node: String,
    /// `aws.rds db`.
    pub waits_for: String,
    /// Where that one stands: `Creating`, `not created yet`.
    pub state: String,
    /// The value read from it: `outputs.endpoint` (empty for `after:`).
    #[serde(default)]
    pub value: String,
}

/// One condition (`Ready`), Kubernetes' shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// CamelCase: `Reconciled`, `Waiting`, `ExternalNotReady`, ...
    #[serde(default)]
    pub reason: String,
    /// Never a secret value.
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// Whether `status` is `True`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

impl CrStatus {
    /// The status of `cr` (empty when it has none yet); an error names what does not fit.
    pub fn of(cr: &Value) -> Result<Self, serde_json::Error> {
        match cr.get("status") {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(s) => serde_json::from_value(s.clone()),
        }
    }

    /// The `Ready` condition, once the agent has written one.
    pub fn ready(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == READY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_the_agent_writes_and_keeps_its_shape() {
        let cr = json!({"status": {"observedGeneration": 2, "site": "x",
            "conditions": [{"type": "Ready", "status": "False", "reason": "Waiting",
                "message": "deployments[web] waits for aws.rds db (Creating): outputs.endpoint",
                "lastTransitionTime": "2026-12-02T00:00:00Z", "observedGeneration": 2}],
            "external": [{"provider": "aws", "kind": "rds", "name": "db", "state": "Creating",
                "message": "creating", "lastSyncTime": "2026-12-02T00:00:00Z"}],
            "waiting": [{"node": "deployments[web]", "waitsFor": "aws.rds db", "state": "Creating",
                "value": "outputs.endpoint"}]}});
        let s = CrStatus::of(&cr).unwrap();
        let ready = s.ready().unwrap();
        assert!(!ready.is_true());
        assert_eq!(ready.reason, "Waiting");
        assert_eq!(s.external[0].state, crate::State::Creating);
        assert_eq!(s.waiting[0].waits_for, "aws.rds db");
        let back = serde_json::to_value(ready).unwrap();
        assert_eq!(back, cr["status"]["conditions"][0]);
        assert_eq!(CrStatus::of(&json!({})).unwrap(), CrStatus::default());
        assert!(CrStatus::of(&json!({"status": {"external": [{"name": 1}]}})).is_err());
    }
}
