//! A CR's status: `observedGeneration`, the `Ready` condition, `status.fields` and the
//! `external` rows, written by server-side apply on the status subresource. The condition and
//! rows are the typed contract the plugin reads back ([`orkestra_provider::CrStatus`]).

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use orkestra_provider::cr_status::READY;
use orkestra_provider::status::now_rfc3339;
use orkestra_provider::{Condition, StatusRow, WaitingRow};
use serde_json::{json, Map, Value};

use crate::error::{Error, KubeContext};

/// The field manager for CR status.
pub const FIELD_MANAGER: &str = "orkestra-agent-status";

/// Keys of `status` the agent owns; `status.fields` paths may not take them.
const RESERVED: &[&str] = &["observedGeneration", "conditions", "external", "waiting"];

/// The `Ready` condition to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// True or False.
    pub ready: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human message (never a secret value).
    pub message: String,
}

impl Ready {
    /// Ready=True.
    pub fn yes(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ready: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
    /// Ready=False.
    pub fn no(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ready: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// What goes into the status besides the condition.
#[derive(Debug, Clone, Default)]
pub struct Body {
    /// Rendered `status.fields` (merged at the root of `status`).
    pub fields: Map<String, Value>,
    /// `status.external` rows.
    pub external: Vec<Value>,
    /// `status.waiting` rows.
    pub waiting: Vec<WaitingRow>,
}

impl Body {
    /// Keep what the live status has (fields and rows), for cycles that could not compute them.
    pub fn from_live(cr: &Value) -> Self {
        let mut fields = cr
            .get("status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let external = match fields.remove("external") {
            Some(Value::Array(rows)) => rows,
            _ => Vec::new(),
        };
        let waiting = fields
            .remove("waiting")
            .and_then(|w| serde_json::from_value(w).ok())
            .unwrap_or_default();
        fields.retain(|k, _| !RESERVED.contains(&k.as_str()));
        Self {
            fields,
            external,
            waiting,
        }
    }

    /// Rows from the provider runtime.
    pub fn rows(rows: &[StatusRow]) -> Vec<Value> {
        rows.iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .collect()
    }
}

/// The full status object for `cr`.
pub fn build(cr: &Value, ready: &Ready, body: Body) -> Value {
    let generation = cr.pointer("/metadata/generation").and_then(Value::as_i64);
    let status_word = if ready.ready { "True" } else { "False" };
    let previous = cr
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == READY));
    // lastTransitionTime moves only when the status flips.
    let transition = previous
        .filter(|c| c["status"] == status_word)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| Value::String(now_rfc3339()));
    let condition = Condition {
        type_: READY.to_string(),
        status: status_word.to_string(),
        reason: ready.reason.clone(),
        message: ready.message.clone(),
        last_transition_time: transition.as_str().map(str::to_string),
        observed_generation: generation,
    };
    let mut status = Map::new();
    for (k, v) in body.fields {
        if !RESERVED.contains(&k.as_str()) {
            status.insert(k, v);
        }
    }
    if let Some(g) = generation {
        status.insert("observedGeneration".into(), json!(g));
    }
    status.insert("conditions".into(), json!([condition]));
    if !body.external.is_empty() {
        status.insert("external".into(), Value::Array(body.external));
    }
    if !body.waiting.is_empty() {
        status.insert("waiting".into(), json!(body.waiting));
    }
    Value::Object(status)
}

/// Whether writing `new` would change nothing that matters (row sync times aside).
pub fn unchanged(cr: &Value, new: &Value) -> bool {
    let Some(live) = cr.get("status") else {
        return false;
    };
    strip_sync_times(live) == strip_sync_times(new)
}

fn strip_sync_times(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(rows) = v.get_mut("external").and_then(Value::as_array_mut) {
        for r in rows {
            if let Some(o) = r.as_object_mut() {
                o.remove("lastSyncTime");
            }
        }
    }
    v
}

/// Server-side apply `status` to the CR's status subresource, unless nothing changed.
pub async fn write(api: &Api<DynamicObject>, cr: &Value, status: Value) -> Result<(), Error> {
    if unchanged(cr, &status) {
        return Ok(());
    }
    let name = cr
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let patch = json!({
        "apiVersion": cr.get("apiVersion"),
        "kind": cr.get("kind"),
        "metadata": {"name": name},
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .ctx(|| {
        format!(
            "writing the status of {} {name}",
            cr.get("kind").and_then(Value::as_str).unwrap_or("CR")
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_flips() {
        let cr = json!({"metadata": {"generation": 3}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "", "lastTransitionTime": "2020-01-01T00:00:00Z"}
        ]}});
        let same = build(&cr, &Ready::yes("Reconciled", "ok"), Body::default());
        assert_eq!(
            same["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(same["observedGeneration"], 3);
        let flipped = build(&cr, &Ready::no("RenderFailed", "x"), Body::default());
        assert_ne!(
            flipped["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
    }

    #[test]
    fn fields_cannot_take_reserved_keys_and_sync_times_do_not_count() {
        let mut fields = Map::new();
        fields.insert("url".into(), json!("http://x"));
        fields.insert("conditions".into(), json!("nope"));
        let rows = vec![
            json!({"provider": "aws", "kind": "s3", "name": "b", "state": "Ready", "lastSyncTime": "t1"}),
        ];
        let s = build(
            &json!({}),
            &Ready::yes("Reconciled", ""),
            Body {
                fields,
                external: rows,
                waiting: Vec::new(),
            },
        );
        assert_eq!(s["url"], "http://x");
        assert!(s["conditions"].is_array());
        let mut later = s.clone();
        later["external"][0]["lastSyncTime"] = json!("t2");
        assert!(unchanged(&json!({"status": s}), &later));
    }
}
