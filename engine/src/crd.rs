//! The CustomResourceDefinition an entry's `apiTypes` (and optional `schema`) stand for.
//!
//! `kubectl orkestra apply` installs it when the CRD does not exist yet; lint reads the same
//! schema. Without a `schema`, `spec` keeps unknown fields so any CR is accepted.

use serde_json::{json, Value};

use crate::katalog::{CrdEntry, Scope};

/// Append the entry's `deny` validation rules on declared fields to the root of `schema` (`self`
/// is the whole CR); `warn` rules, and rules on fields the schema keeps unknown, have no place
/// in a CRD and go to a policy ([`crate::validation::admission_policies`]).
fn add_validations(schema: &mut Value, entry: &CrdEntry) {
    let deny: Vec<&crate::validation::Rule> = entry
        .validation
        .iter()
        .filter(|r| r.action == crate::validation::Action::Deny && r.in_crd)
        .collect();
    if deny.is_empty() {
        return;
    }
    let Some(m) = schema.as_object_mut() else {
        return;
    };
    let list = m
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Some(a) = list.as_array_mut() {
        for r in deny {
            a.push(json!({"rule": r.cel(), "message": r.message, "fieldPath": format!(".{}", r.field_path())}));
        }
    }
}

/// The CRD for `entry`: the one its `crdFile` holds, as written (its validation rules go to
/// policies), or one generated from apiTypes with a status subresource, Ready/Age printer
/// columns and the `deny` rules.
pub fn generate(entry: &CrdEntry, katalog: &str) -> Value {
    if let Some(crd) = &entry.crd_file {
        return crd.clone();
    }
    let api = &entry.api;
    let mut schema = entry.schema.clone().unwrap_or_else(|| {
        json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            }
        })
    });
    // orkestra writes status (conditions, external rows, fields); it must never be pruned.
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "status".into(),
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    add_validations(&mut schema, entry);
    let mut names = json!({
        "kind": api.kind, "plural": api.plural, "singular": api.singular,
        "listKind": format!("{}List", api.kind),
    });
    if !api.short_names.is_empty() {
        names["shortNames"] = json!(api.short_names);
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": api.crd_name(),
            "labels": {
                "app.kubernetes.io/managed-by": "orkestra",
                crate::objects::labels::KATALOG: crate::objects::label_value(katalog),
            },
        },
        "spec": {
            "group": api.group,
            "names": names,
            "scope": match api.scope { Scope::Namespaced => "Namespaced", Scope::Cluster => "Cluster" },
            "versions": [{
                "name": api.version,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    })
}
