//! A Katalog object from the cluster, turned back into the document the engine loads.
//!
//! The object's JSON is a Katalog document once the server's bookkeeping (managedFields,
//! resourceVersion, status, ...) is dropped. It is written out as YAML so the engine's
//! diagnostics carry line and column numbers into that text.

use orkestra_engine::diagnostic::Diagnostic;
use orkestra_engine::{Loaded, SourceFile};
use orkestra_provider::ProviderSchema;
use serde_json::{json, Map, Value};

use crate::error::Error;

/// The document of a Katalog object: apiVersion, kind, metadata (name, labels, annotations), spec
/// and the optional top-level `providers`.
pub fn document_of(object: &Value) -> Value {
    let mut meta = Map::new();
    for key in ["name", "labels", "annotations"] {
        if let Some(v) = object.pointer(&format!("/metadata/{key}")) {
            meta.insert(key.into(), v.clone());
        }
    }
    let mut doc = json!({
        "apiVersion": object.get("apiVersion").cloned().unwrap_or_else(|| json!(orkestra_engine::load::KATALOG_API_VERSION)),
        "kind": "Katalog",
        "metadata": meta,
        "spec": object.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(p) = object.get("providers") {
        doc["providers"] = p.clone();
    }
    doc
}

/// Load a Katalog object with the engine, as the file `katalog/<name>`.
pub fn load_object(
    object: &Value,
    providers: &[ProviderSchema],
) -> Result<(SourceFile, Loaded), Error> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("unnamed");
    let text = serde_yaml_ng::to_string(&document_of(object)).map_err(|e| Error::Invalid {
        what: format!("Katalog {name}"),
        message: e.to_string(),
    })?;
    let file = SourceFile::new(format!("katalog/{name}"), text);
    let loaded = orkestra_engine::load_file(&file, providers);
    Ok((file, loaded))
}

/// Load a Katalog file from disk.
pub fn load_path(
    path: &std::path::Path,
    providers: &[ProviderSchema],
) -> Result<(SourceFile, Loaded), Error> {
    let file = SourceFile::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let loaded = orkestra_engine::load_file(&file, providers);
    Ok((file, loaded))
}

/// A diagnostic as it appears on a Katalog's status (the same fields `kubectl orkestra lint -o json` prints).
pub fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "severity": if d.is_error() { "error" } else { "warning" },
        "code": d.code,
        "message": d.message,
    })
}

/// One line per error diagnostic, `file:line:col: code: message`.
pub fn error_summary(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            format!(
                "{}:{}:{}: {}: {}",
                d.file, d.line, d.column, d.code, d.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_bookkeeping_is_dropped_and_the_document_loads() {
        let object = json!({
            "apiVersion": "orkestra.orkspace.io/v1", "kind": "Katalog",
            "metadata": {"name": "k", "uid": "u", "resourceVersion": "7", "managedFields": [{"manager": "x"}]},
            "spec": {"crds": {"web": {
                "apiTypes": {"group": "demo.io", "version": "v1", "kind": "Web", "plural": "webs"},
                "operatorBox": {"onCreate": {"configMaps": [{"name": "{{ .metadata.name }}", "data": {"a": "b"}}]}}
            }}},
            "status": {"conditions": []}
        });
        let doc = document_of(&object);
        assert!(doc["metadata"].get("managedFields").is_none());
        assert!(doc.get("status").is_none());
        let (_, loaded) = load_object(&object, &[]).unwrap();
        assert!(loaded.katalog.is_some(), "{:?}", loaded.diagnostics);
        assert_eq!(loaded.katalog.unwrap().entries[0].api.kind, "Web");
    }

    #[test]
    fn an_unknown_field_is_a_diagnostic_with_a_position() {
        let object = json!({
            "apiVersion": "orkestra.orkspace.io/v1", "kind": "Katalog", "metadata": {"name": "bad"},
            "spec": {"crds": {"web": {
                "apiTypes": {"group": "demo.io", "version": "v1", "kind": "Web", "plural": "webs"},
                "operatorBox": {"onCreat": {}}
            }}}
        });
        let (_, loaded) = load_object(&object, &[]).unwrap();
        assert!(loaded.katalog.is_none());
        let summary = error_summary(&loaded.diagnostics);
        assert!(
            summary.contains("katalog/bad:") && summary.contains("onCreat"),
            "{summary}"
        );
    }
}
