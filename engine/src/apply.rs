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

/// The object to write for `child`: `namespace` (the child's own or the CR's, `None` for a
/// cluster-scoped kind) filled in, generated keys kept from `live` or made new, and, for an
/// enforced child, the applied hash stamped. Returns the body and the keys made new.
pub fn body(
    child: &Child,
    namespace: Option<&str>,
    live: Option<&Value>,
) -> Result<(Value, Vec<String>), RandomUnavailable> {
    let mut desired = child.object.clone();
    if let (Some(ns), Some(meta)) = (
        namespace,
        desired.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        meta.entry("namespace")
            .or_insert_with(|| Value::String(ns.to_string()));
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
        }
    }

    #[test]
    fn enforced_children_are_stamped_and_namespaced() {
        let (b, made) = body(&child(true), Some("team-a"), None).unwrap();
        assert!(made.is_empty());
        assert_eq!(b["metadata"]["namespace"], "team-a");
        assert!(b["metadata"]["annotations"][labels::APPLIED_HASH].is_string());
        let (b, _) = body(&child(false), None, None).unwrap();
        assert!(b["metadata"].get("annotations").is_none());
        assert!(b["metadata"].get("namespace").is_none());
    }
}
