//! Ownership marks and the rules that follow from them.
//!
//! Databases and roles carry no tags, so the owner's tags ([`Owner::tags`]) are written as a JSON
//! object in the object's comment (`COMMENT ON DATABASE`, `COMMENT ON ROLE`) on PostgreSQL, and in
//! a document of a marker collection (databases) or the user's `customData` (users) on MongoDB.
//! The mark is serialized by serde_json and sent as a quoted literal or a BSON value, so neither a
//! name nor an owner can add keys to it. A comment that is not such an object (a human's note) is
//! read as no mark: the object is unowned and is only taken over with `adopt: true`, which replaces
//! the comment.
//!
//! The rules are [`orkestra_provider::policy`]'s, as every provider applies them: another owner's object is never modified or deleted (the row
//! is a Conflict), an unowned one is adopted only on request, `managementPolicy: Observe` only
//! reads, `deletionPolicy: Orphan` leaves the object behind.

use std::collections::BTreeMap;

use orkestra_provider::{
    policy, Blocked, Declaration, FieldChange, Observation, Outcome, Owner, Plan,
};
use serde_json::Value;

/// The mark written on an object created for `owner`: a JSON object of its tags.
pub fn mark(owner: &Owner) -> String {
    // A map of strings always serializes.
    serde_json::to_string(&owner.tags()).unwrap_or_default()
}

/// The tags a comment (or customData document) carries: a JSON object's string values, or
/// nothing when it is not a JSON object.
pub fn tags_of(comment: Option<&str>) -> BTreeMap<String, String> {
    comment
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// How databases and roles carry their ownership mark (for the policy messages).
const MARK: &str = "ownership mark in its comment";

/// Why the object must not be touched, if it must not.
pub fn conflict_message(obs: &Observation, adopt: bool) -> Option<String> {
    policy::conflict_message(obs, adopt, MARK)
}

/// For the diff: a Conflict block when the existing object is not ours to change.
pub fn observe_guard(decl: &Declaration, obs: &Observation) -> Option<Blocked> {
    policy::observe_guard(decl, obs, MARK)
}

/// For delete: the outcome when nothing may or needs to be deleted.
pub fn delete_guard(decl: &Declaration, obs: &Observation) -> Option<Outcome> {
    policy::delete_guard(decl, obs, MARK)
}

/// Update, Replace (blocked) or Noop from a list of changes.
pub fn plan_from_changes(decl: &Declaration, obs: &Observation, changes: Vec<FieldChange>) -> Plan {
    policy::plan_from_changes(
        decl,
        obs,
        changes,
        "the ownership mark will replace the comment",
    )
}

pub use orkestra_provider::policy::{blocked_outcome, describe_changes};

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Ownership;

    fn owner(name: &str) -> Owner {
        Owner {
            uid: "u1".into(),
            namespace: "ns".into(),
            name: name.into(),
            katalog: "k".into(),
        }
    }

    #[test]
    fn marks_round_trip_and_resist_injection() {
        let me = owner("a\",\"orkestra.orkspace.io/owner-uid\":\"evil");
        let m = mark(&me);
        let tags = tags_of(Some(&m));
        assert_eq!(tags, me.tags());
        assert_eq!(me.judge(&tags), Ownership::Ours);
        assert_eq!(
            tags.get("orkestra.orkspace.io/owner-uid")
                .map(String::as_str),
            Some("u1")
        );
    }

    #[test]
    fn comments_that_are_not_marks_are_unowned() {
        let me = owner("a");
        for c in [
            None,
            Some("a human's note"),
            Some("[1,2]"),
            Some("{\"x\": 1}"),
        ] {
            assert_eq!(me.judge(&tags_of(c)), Ownership::Unowned, "{c:?}");
        }
        let other = Owner {
            uid: "u2".into(),
            ..owner("b")
        };
        assert!(matches!(
            me.judge(&tags_of(Some(&mark(&other)))),
            Ownership::Foreign { .. }
        ));
    }
}
