//! A CR's status: `observedGeneration`, the `Ready` condition, `status.fields` and the
//! `external` rows, written by server-side apply on the status subresource. The condition and
//! rows are the typed contract the plugin reads back ([`orkestra_provider::CrStatus`]).
//!
//! A status is written only when it changes something. "Changes" is judged against the cached
//! CR and, when the cache has not caught up with this agent's own writes yet, against the status
//! this agent last wrote ([`LastWritten`]): a reconcile that a child's event starts before the
//! watch delivered our last status write would otherwise write the same status again.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

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

/// How long after its creation a CR's first status may wait while the CR waits only on its
/// children (a Deployment turning Available): most are ready by then, and their first status is
/// then the Ready one, one write instead of two. The CR is looked at again when it is over.
pub const FIRST_STATUS_HOLD: Duration = Duration::from_secs(5);

/// How much longer `cr`'s first status may be held at `now` (see [`FIRST_STATUS_HOLD`]): `None`
/// once it has a status, or is older than the hold, or has no creation time.
pub fn first_status_hold(cr: &Value, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    if cr.get("status").is_some_and(|s| !s.is_null()) {
        return None;
    }
    let created = cr
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())?;
    let age = now
        .signed_duration_since(created)
        .to_std()
        .unwrap_or_default();
    FIRST_STATUS_HOLD
        .checked_sub(age)
        .filter(|left| !left.is_zero())
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

/// The statuses this agent last wrote, per CR (`namespace/name`), with the resourceVersions the
/// CR went through up to that write. A status equal to the last written one is not written
/// again while the cached CR is at one of those versions: nothing but our own writes happened
/// to it that the cache could show. A version the table does not know (someone else wrote, or
/// the cache moved on) falls back to comparing with the cached CR. Only a hash of each status is
/// kept, so the table costs about a hundred bytes per CR.
#[derive(Debug, Default)]
pub struct LastWritten {
    table: Mutex<HashMap<String, Written>>,
}

#[derive(Debug)]
struct Written {
    uid: Option<String>,
    /// The versions the CR had from the first of our consecutive writes on (oldest first).
    versions: Vec<String>,
    status: u64,
}

/// How many consecutive versions of one CR the table keeps (a reconcile writes at most a few).
const VERSIONS: usize = 8;

fn cr_key(cr: &Value) -> String {
    let s = |p: &str| cr.pointer(p).and_then(Value::as_str).unwrap_or_default();
    format!("{}/{}", s("/metadata/namespace"), s("/metadata/name"))
}

fn text(cr: &Value, pointer: &str) -> Option<String> {
    cr.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A hash of what matters in `status`: row sync times and the condition's transition time
/// aside (the transition time is derived from the CR it was built on; when the condition's
/// status word is the same, what we wrote last stands).
fn status_hash(status: &Value) -> u64 {
    let mut v = strip_sync_times(status);
    if let Some(cs) = v.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in cs {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastTransitionTime");
            }
        }
    }
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

impl LastWritten {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Written>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `new` is what this agent last wrote for `cr`, when the cached `cr` has seen
    /// nothing since but our own writes; `None` when the table cannot say (no write of ours
    /// recorded, or the cache shows a version we did not go through) and the cached status is
    /// what to compare with. A cache that still shows the status from before our last write
    /// must not make a status equal to that older one look unchanged (an intent recorded, then
    /// settled, leaves the same rows as before it, but the live status holds the intent).
    pub fn judge(&self, cr: &Value, new: &Value) -> Option<bool> {
        let table = self.lock();
        let w = table.get(&cr_key(cr))?;
        let version = text(cr, "/metadata/resourceVersion")?;
        (w.uid == text(cr, "/metadata/uid") && w.versions.contains(&version))
            .then(|| w.status == status_hash(new))
    }

    /// `status` was written for `cr` (as cached), leaving the CR at `version`.
    pub fn remember(&self, cr: &Value, status: &Value, version: Option<String>) {
        let mut table = self.lock();
        let uid = text(cr, "/metadata/uid");
        let before = text(cr, "/metadata/resourceVersion");
        let key = cr_key(cr);
        // Consecutive writes from the same cached version (a reconcile's intent write, then its
        // final write) extend the list; anything else starts it again.
        let mut versions = match table.remove(&key) {
            Some(w) if w.uid == uid && before.as_ref().is_some_and(|b| w.versions.contains(b)) => {
                w.versions
            }
            _ => before.into_iter().collect(),
        };
        versions.extend(version);
        if versions.len() > VERSIONS {
            versions.drain(..versions.len() - VERSIONS);
        }
        table.insert(
            key,
            Written {
                uid,
                versions,
                status: status_hash(status),
            },
        );
    }

    /// Keep only the CRs `keep` accepts (`namespace/name`).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|k, _| keep(k));
    }

    /// How many CRs are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no CR is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

/// Server-side apply `status` to the CR's status subresource, unless nothing changed (against
/// the cached `cr` or what `last` says this agent wrote since).
pub async fn write(
    api: &Api<DynamicObject>,
    cr: &Value,
    status: Value,
    last: &LastWritten,
) -> Result<(), Error> {
    if last
        .judge(cr, &status)
        .unwrap_or_else(|| unchanged(cr, &status))
    {
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
    let written = api
        .patch_status(
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
    last.remember(cr, &patch["status"], written.metadata.resource_version);
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

    fn cr(rv: &str, uid: &str) -> Value {
        json!({"metadata": {"namespace": "ns", "name": "a", "uid": uid, "resourceVersion": rv}})
    }

    fn ready(yes: bool, at: &str) -> Value {
        let r = if yes {
            Ready::yes("Reconciled", "ok")
        } else {
            Ready::no("Creating", "creating aws s3 b")
        };
        let mut s = build(&json!({}), &r, Body::default());
        s["conditions"][0]["lastTransitionTime"] = json!(at);
        s
    }

    #[test]
    fn the_last_written_status_covers_a_cache_that_saw_only_our_writes() {
        let last = LastWritten::default();
        // A reconcile on version 10 records an intent (→ 11), then the final status (→ 12).
        last.remember(&cr("10", "u1"), &ready(false, "t0"), Some("11".into()));
        last.remember(&cr("10", "u1"), &ready(true, "t1"), Some("12".into()));
        // The next reconcile runs on a cache at 10, 11 or 12: the same status is not written,
        // whatever transition time it derived from the stale condition.
        for rv in ["10", "11", "12"] {
            assert_eq!(
                last.judge(&cr(rv, "u1"), &ready(true, "t2")),
                Some(true),
                "{rv}"
            );
        }
        // Another status is written, even one equal to what the stale cache shows.
        assert_eq!(
            last.judge(&cr("10", "u1"), &ready(false, "t0")),
            Some(false)
        );
        // A version we did not write (someone else did), another CR of the same name: the
        // table cannot say.
        assert_eq!(last.judge(&cr("13", "u1"), &ready(true, "t1")), None);
        assert_eq!(last.judge(&cr("12", "u2"), &ready(true, "t1")), None);
        // A write from a version the table does not know starts the list again.
        last.remember(&cr("20", "u1"), &ready(false, "t3"), Some("21".into()));
        assert_eq!(last.judge(&cr("12", "u1"), &ready(false, "t3")), None);
        assert_eq!(last.judge(&cr("21", "u1"), &ready(false, "t3")), Some(true));
        last.retain(|k| k != "ns/a");
        assert!(last.is_empty());
    }

    #[test]
    fn the_version_list_stays_bounded() {
        let last = LastWritten::default();
        for v in 0..100u32 {
            last.remember(
                &cr(&v.to_string(), "u"),
                &ready(true, "t"),
                Some((v + 1).to_string()),
            );
        }
        let table = last.lock();
        assert_eq!(table["ns/a"].versions.len(), VERSIONS);
        assert_eq!(
            table["ns/a"].versions.last().map(String::as_str),
            Some("100")
        );
    }

    #[test]
    fn a_first_status_is_held_only_while_the_cr_is_young_and_has_none() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:03Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let young = json!({"metadata": {"creationTimestamp": "2026-12-06T10:00:00Z"}});
        assert_eq!(first_status_hold(&young, now), Some(Duration::from_secs(2)));
        let old = json!({"metadata": {"creationTimestamp": "2026-12-06T09:59:50Z"}});
        assert_eq!(first_status_hold(&old, now), None);
        let mut written = young.clone();
        written["status"] = json!({"conditions": []});
        assert_eq!(first_status_hold(&written, now), None);
        // A clock behind the API server's: held for the whole hold, not longer.
        let ahead = json!({"metadata": {"creationTimestamp": "2026-12-06T10:00:09Z"}});
        assert_eq!(first_status_hold(&ahead, now), Some(FIRST_STATUS_HOLD));
        assert_eq!(first_status_hold(&json!({"metadata": {}}), now), None);
    }
}
