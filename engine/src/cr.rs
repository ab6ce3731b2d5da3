//! A CR as the engine meets it: who it is, and which Katalog entry handles it.
//!
//! `render` and `plan` read CRs from files, where the namespace may be left out; both resolve
//! them here so they fill it in and refuse the same CRs the same way.

use serde_json::Value;

use crate::katalog::{CrdEntry, Katalog, Scope};

/// The identity of a CR (the `cr` object of cli.md's JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CrId {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl CrId {
    /// Read kind, namespace and name from a CR.
    pub fn of(cr: &Value) -> Self {
        let s = |p: &str| cr.pointer(p).and_then(Value::as_str).map(String::from);
        Self {
            kind: s("/kind").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name").unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for CrId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Why a CR cannot be rendered under a Katalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrError {
    #[error(
        "{api_version} {kind} {name:?} is not handled by Katalog {katalog} (it handles {handled})"
    )]
    NotHandled {
        api_version: String,
        kind: String,
        name: String,
        katalog: String,
        handled: String,
    },
    #[error("the {kind} has no metadata.name")]
    NoName { kind: String },
}

/// The entry of `katalog` that handles `cr`; a namespaced CR without a namespace gets
/// `default_namespace`, as kubectl would give it.
pub fn resolve<'k>(
    katalog: &'k Katalog,
    cr: &mut Value,
    default_namespace: &str,
) -> Result<&'k CrdEntry, CrError> {
    let api_version = cr
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let id = CrId::of(cr);
    let Some(entry) = katalog.entry_for(&api_version, &id.kind) else {
        let handled: Vec<String> = katalog
            .entries
            .iter()
            .map(|e| format!("{}/{}", e.api.api_version(), e.api.kind))
            .collect();
        return Err(CrError::NotHandled {
            api_version,
            kind: id.kind,
            name: id.name,
            katalog: katalog.name.clone(),
            handled: handled.join(", "),
        });
    };
    if id.name.is_empty() {
        return Err(CrError::NoName { kind: id.kind });
    }
    if entry.api.scope == Scope::Namespaced && id.namespace.is_none() {
        if let Some(meta) = cr.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), default_namespace.into());
        }
    }
    Ok(entry)
}
