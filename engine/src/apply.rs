//! The body the agent writes for a child, and the field manager it writes with: one definition
//! that the agent's writes and `kubectl orkestra plan`'s server-side dry runs both use, so a
//! converged child plans to "no change" by construction.
//!
//! An enforced child is server-side applied as [`body`] returns it: the CR's namespace filled in
//! when the kind is namespaced, `generate:`d keys taken from the live Secret (or made), and the
//! hash of the result stamped into [`crate::objects::labels::APPLIED_HASH`]. A create-only child is created with
//! the same body minus the stamp.

use serde_json::Value;

use crate::generate::{self, RandomUnavailable};
use crate::objects::stamp_applied_hash;
use crate::render::Child;

/// The field manager of every child write (server-side apply and create).
pub const FIELD_MANAGER: &str = "orkestra-agent";

/// Where a child lives, as discovery says (the agent's and `plan`'s), not as the offline
/// renderer guessed from its fixed list of built-in cluster-scoped kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement<'a> {
    /// A namespaced kind, in this namespace (`None`: neither the child nor its CR names one).
    Namespaced(Option<&'a str>),
    /// A cluster-scoped kind. `owner_namespaced`: its CR lives in a namespace, so an owner
    /// reference cannot reach the child (the agent deletes it explicitly instead).
    Cluster { owner_namespaced: bool },
}

/// The object to write for `child` at `placement`: the namespace filled in for a namespaced
/// kind, or taken out (with an owner reference that cannot resolve) for a cluster-scoped one;
/// generated keys kept from `live` or made new; for an enforced child, the applied hash stamped.
/// Returns the body and the keys made new.
pub fn body(
    child: &Child,
    placement: Placement<'_>,
    live: Option<&Value>,
    copied: Option<&Value>,
) -> Result<(Value, Vec<String>), RandomUnavailable> {
    let mut desired = child.object.clone();
    // A copy carries its source's data (and a Secret's type) as they are now.
    if let (Some(src), Some(o)) = (
        copied.filter(|_| child.copy_from.is_some()),
        desired.as_object_mut(),
    ) {
        for k in ["data", "binaryData", "type"] {
            match src.get(k) {
                Some(v) => {
                    o.insert(k.into(), v.clone());
                }
                None => {
                    o.remove(k);
                }
            }
        }
        // The copy is the source's data only: no `stringData` of the Katalog's on top of it.
        o.remove("stringData");
    }
    if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        match placement {
            Placement::Namespaced(Some(ns)) => {
                meta.entry("namespace")
                    .or_insert_with(|| Value::String(ns.to_string()));
            }
            Placement::Namespaced(None) => {}
            Placement::Cluster { owner_namespaced } => {
                // The API server would drop the namespace, and the live object would then never
                // contain the body: a re-apply on every cycle.
                meta.remove("namespace");
                if owner_namespaced {
                    meta.remove("ownerReferences");
                }
            }
        }
    }
    let made = generate::fill(&mut desired, live, &child.generate)?;
    if child.enforce {
        stamp_applied_hash(&mut desired);
    }
    Ok((desired, made))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::labels;
    use serde_json::json;

    fn child(enforce: bool) -> Child {
        Child {
            hook: "onReconcile",
            enforce,
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "c".into(),
            namespace: None,
            object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            source: "s".into(),
            id: None,
            generate: Vec::new(),
            reads_others: false,
            rotate_after_seconds: None,
            copy_from: None,
        }
    }

    #[test]
    fn enforced_children_are_stamped_and_namespaced() {
        let (b, made) = body(
            &child(true),
            Placement::Namespaced(Some("team-a")),
            None,
            None,
        )
        .unwrap();
        assert!(made.is_empty());
        assert_eq!(b["metadata"]["namespace"], "team-a");
        assert!(b["metadata"]["annotations"][labels::APPLIED_HASH].is_string());
        let (b, _) = body(&child(false), Placement::Namespaced(None), None, None).unwrap();
        assert!(b["metadata"].get("annotations").is_none());
        assert!(b["metadata"].get("namespace").is_none());
    }

    #[test]
    fn a_cluster_scoped_kind_loses_the_namespace_and_an_owner_that_cannot_own_it() {
        // What the offline renderer makes of a kind outside its fixed list: namespaced.
        let mut c = child(true);
        c.object["metadata"]["namespace"] = json!("team-a");
        c.object["metadata"]["ownerReferences"] = json!([{"kind": "Stack", "name": "s"}]);
        let placement = Placement::Cluster {
            owner_namespaced: true,
        };
        let (b, _) = body(&c, placement, None, None).unwrap();
        assert!(b["metadata"].get("namespace").is_none(), "{b}");
        assert!(b["metadata"].get("ownerReferences").is_none(), "{b}");
        // A cluster-scoped CR may own it.
        let placement = Placement::Cluster {
            owner_namespaced: false,
        };
        let (b, _) = body(&c, placement, None, None).unwrap();
        assert!(b["metadata"]["ownerReferences"].is_array(), "{b}");
    }
}
