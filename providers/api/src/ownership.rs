//! Who owns an external resource, told by tags written when the resource is created.
//!
//! A resource carrying another owner's tags is never changed or deleted; one carrying no owner tags
//! is only taken over when the declaration says `adopt: true`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tag holding the owner CR's uid (the identity that decides ownership).
pub const TAG_OWNER_UID: &str = "orkestra.orkspace.io/owner-uid";
/// Tag holding the owner CR's `namespace/name` (for humans).
pub const TAG_OWNER: &str = "orkestra.orkspace.io/owner";
/// Tag holding the Katalog that declared the resource.
pub const TAG_KATALOG: &str = "orkestra.orkspace.io/katalog";

/// The CR an external resource belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// `metadata.uid` of the CR.
    pub uid: String,
    /// `metadata.namespace` of the CR (also where referenced Secrets are read).
    pub namespace: String,
    /// `metadata.name` of the CR.
    pub name: String,
    /// Name of the Katalog whose operator manages the CR.
    pub katalog: String,
}

impl Owner {
    /// The owner of the external resources of `cr` (a CR as JSON), managed by Katalog `katalog`:
    /// its uid, namespace and name (each empty when the CR lacks it: a CR not created yet has no
    /// uid).
    pub fn of_cr(cr: &serde_json::Value, katalog: &str) -> Self {
        let meta = |key: &str| {
            cr.get("metadata")
                .and_then(|m| m.get(key))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Self {
            uid: meta("uid"),
            namespace: meta("namespace"),
            name: meta("name"),
            katalog: katalog.to_string(),
        }
    }

    /// The tags written on every resource created for this owner.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_OWNER_UID.to_string(), self.uid.clone()),
            (
                TAG_OWNER.to_string(),
                format!("{}/{}", self.namespace, self.name),
            ),
            (TAG_KATALOG.to_string(), self.katalog.clone()),
        ])
    }

    /// Judge the ownership of a resource from its tags.
    pub fn judge(&self, tags: &BTreeMap<String, String>) -> Ownership {
        match tags.get(TAG_OWNER_UID) {
            None => Ownership::Unowned,
            Some(uid) if *uid == self.uid => Ownership::Ours,
            Some(uid) => Ownership::Foreign {
                owner: tags.get(TAG_OWNER).cloned().unwrap_or_default(),
                uid: uid.clone(),
            },
        }
    }
}

/// True for the tag keys orkestra writes itself.
pub fn is_ownership_tag(key: &str) -> bool {
    matches!(key, TAG_OWNER_UID | TAG_OWNER | TAG_KATALOG)
}

/// Whose a resource is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Ownership {
    /// Carries this CR's uid.
    Ours,
    /// Carries another CR's uid: never changed or deleted.
    Foreign {
        /// `namespace/name` of the other owner, as tagged.
        owner: String,
        /// Its uid.
        uid: String,
    },
    /// Carries no owner tags (created outside orkestra): adopted only with `adopt: true`.
    #[default]
    Unowned,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_by_uid() {
        let me = Owner {
            uid: "u1".into(),
            namespace: "ns".into(),
            name: "a".into(),
            katalog: "k".into(),
        };
        assert_eq!(me.judge(&me.tags()), Ownership::Ours);
        assert_eq!(me.judge(&BTreeMap::new()), Ownership::Unowned);
        let other = Owner {
            uid: "u2".into(),
            ..me.clone()
        };
        assert_eq!(
            me.judge(&other.tags()),
            Ownership::Foreign {
                owner: "ns/a".into(),
                uid: "u2".into()
            }
        );
        assert!(is_ownership_tag(TAG_KATALOG) && !is_ownership_tag("team"));
    }

    #[test]
    fn owner_of_a_cr() {
        let cr = serde_json::json!({"metadata": {"uid": "u1", "namespace": "ns", "name": "a"}});
        assert_eq!(
            Owner::of_cr(&cr, "k"),
            Owner {
                uid: "u1".into(),
                namespace: "ns".into(),
                name: "a".into(),
                katalog: "k".into(),
            }
        );
        // A CR not created yet (planned from a file) has no uid; a cluster-scoped one no namespace.
        let fresh = Owner::of_cr(&serde_json::json!({"metadata": {"name": "b"}}), "k");
        assert_eq!((fresh.uid.as_str(), fresh.namespace.as_str()), ("", ""));
        assert_eq!(fresh.name, "b");
        assert_eq!(Owner::of_cr(&serde_json::json!(null), "k").katalog, "k");
    }
}
