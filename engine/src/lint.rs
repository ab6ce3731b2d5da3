//! Lint: everything that can be checked about Katalogs without a cluster.
//!
//! The loader already reports YAML syntax, unknown fields, template syntax, unknown functions,
//! unknown providers and kinds, missing required fields and literal values a provider rejects.
//! Lint adds what needs the CR's schema (from the Katalog's `schema`, or CRDs found beside it or
//! given with `--crd`): template paths not in the schema (warnings) and type mismatches between a
//! schema field and the Kubernetes or provider field it fills.

use std::collections::HashMap;

use orkestra_provider_schema::{FieldType, ProviderSchema};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Severity};
use crate::load::{is_katalog, load_document, TemplateUse};
use crate::source::SourceFile;
use crate::template::Expr;

/// The result of linting a set of files.
#[derive(Debug, Default)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
    /// How many Katalog documents were checked.
    pub katalogs: usize,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// A file to lint; `explicit` when the user named it (not found by walking a folder).
pub struct Input {
    pub file: SourceFile,
    pub explicit: bool,
}

/// Lint `inputs`. CRDs among the inputs and in `crds` supply CR schemas.
pub fn lint(inputs: &[Input], crds: &[SourceFile], providers: &[ProviderSchema]) -> Report {
    let mut report = Report::default();
    let mut parsed = Vec::new();
    let mut schemas = CrdSchemas::default();
    for f in crds {
        let (docs, diags) = f.documents();
        report.diagnostics.extend(diags);
        docs.iter().for_each(|d| schemas.add(&d.value));
    }
    for input in inputs {
        let (docs, diags) = input.file.documents();
        report.diagnostics.extend(diags.iter().cloned());
        docs.iter().for_each(|d| schemas.add(&d.value));
        parsed.push((input, docs, diags.is_empty()));
    }
    for (input, docs, parsed_ok) in &parsed {
        let mut found = false;
        for doc in docs.iter().filter(|d| is_katalog(&d.value)) {
            found = true;
            report.katalogs += 1;
            let loaded = load_document(&input.file, doc, providers);
            report.diagnostics.extend(loaded.diagnostics);
            let entries = entry_schemas(&doc.value, &schemas);
            for u in &loaded.uses {
                check_use(
                    u,
                    &entries,
                    &input.file.name,
                    &doc.pos,
                    &mut report.diagnostics,
                );
            }
        }
        let other_kinds = docs.iter().any(|d| d.value.get("kind").is_some());
        if input.explicit && !found && *parsed_ok && !other_kinds {
            report.diagnostics.push(Diagnostic::new(
                Severity::Warning,
                "not-a-katalog",
                &input.file.name,
                crate::source::Pos { line: 1, column: 1 },
                "no Katalog in this file",
            ));
        }
    }
    report
        .diagnostics
        .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    report.diagnostics.dedup();
    report
}

/// openAPIV3Schemas of CRDs, by (group, kind, version).
#[derive(Default)]
struct CrdSchemas(HashMap<(String, String, String), Value>);

impl CrdSchemas {
    fn add(&mut self, doc: &Value) {
        if doc.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            return;
        }
        let s = |p: &str| {
            doc.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (group, kind) = (s("/spec/group"), s("/spec/names/kind"));
        for v in doc
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(name), Some(schema)) = (
                v.get("name").and_then(Value::as_str),
                v.pointer("/schema/openAPIV3Schema"),
            ) {
                self.0.insert(
                    (group.clone(), kind.clone(), name.to_string()),
                    schema.clone(),
                );
            }
        }
    }
}

/// The schema of each entry, by entry index: the Katalog's own `schema`, else a matching CRD.
fn entry_schemas(katalog: &Value, crds: &CrdSchemas) -> HashMap<usize, Value> {
    let mut out = HashMap::new();
    let entries: Vec<&Value> = match katalog.pointer("/spec/crds") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(m)) => m.values().collect(),
        _ => Vec::new(),
    };
    for (i, e) in entries.into_iter().enumerate() {
        if let Some(s) = e.get("schema") {
            out.insert(i, s.clone());
            continue;
        }
        let s = |p: &str| {
            e.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let key = (
            s("/apiTypes/group"),
            s("/apiTypes/kind"),
            s("/apiTypes/version"),
        );
        if let Some(schema) = crds.0.get(&key) {
            out.insert(i, schema.clone());
        }
    }
    out
}

const METADATA_FIELDS: &[&str] = &[
    "name",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "generation",
    "creationTimestamp",
    "resourceVersion",
    "generateName",
    "deletionTimestamp",
    "finalizers",
    "ownerReferences",
];

/// What a schema says about a path.
enum Found {
    /// The type at the path (`None` when the schema does not say).
    Type(Option<String>),
    /// The path leaves the schema at the segment with this index.
    Missing(usize),
}

fn lookup(schema: &Value, segs: &[String]) -> Found {
    let mut cur = schema;
    for (i, seg) in segs.iter().enumerate() {
        if cur
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Found::Type(None);
        }
        let next = match cur.get("type").and_then(Value::as_str) {
            Some("array") => cur.get("items"),
            _ => match cur.get("properties").and_then(|p| p.get(seg)) {
                Some(s) => Some(s),
                None => match cur.get("additionalProperties") {
                    Some(Value::Bool(true)) => return Found::Type(None),
                    Some(s @ Value::Object(_)) => Some(s),
                    _ if cur.get("properties").is_none() => return Found::Type(None),
                    _ => None,
                },
            },
        };
        match next {
            Some(n) => cur = n,
            None => return Found::Missing(i),
        }
    }
    Found::Type(cur.get("type").and_then(Value::as_str).map(String::from))
}

fn check_use(
    u: &TemplateUse,
    schemas: &HashMap<usize, Value>,
    file: &str,
    pos: &crate::source::PosIndex,
    out: &mut Vec<Diagnostic>,
) {
    let at = pos.value(&u.path);
    let schema = u.entry.and_then(|i| schemas.get(&i));
    for path in u.template.paths() {
        let Some(first) = path.first() else { continue };
        let dotted = format!(".{}", path.join("."));
        match first.as_str() {
            "metadata" => {
                if let Some(f) = path.get(1) {
                    if !METADATA_FIELDS.contains(&f.as_str()) {
                        let hint = crate::diagnostic::did_you_mean(f, METADATA_FIELDS.iter().copied());
                        out.push(Diagnostic::new(Severity::Warning, "schema-path", file, at, format!("`{dotted}` is not a field of a CR's metadata (it renders empty){hint}")));
                    }
                }
            }
            "spec" | "status" => {
                let Some(schema) = schema else { continue };
                if let Found::Missing(i) = lookup(schema, path) {
                    out.push(Diagnostic::new(
                        Severity::Warning,
                        "schema-path",
                        file,
                        at,
                        format!("`{dotted}` is not in the CR's schema (no `{}` under `.{}`); it renders empty", path[i], path[..i].join(".")),
                    ));
                }
            }
            "children" if u.in_status => {}
            // Bound by the entry's `forEach`.
            v if u.loop_vars.iter().any(|l| l == v) => {}
            // Checked against the entry's graph when the Katalog loads (crate::graph).
            "resources" => {}
            // `operatorBox.cross` reads (see crate::cross).
            "cross" => {}
            "apiVersion" | "kind" => {}
            other => out.push(Diagnostic::new(
                Severity::Warning,
                "schema-path",
                file,
                at,
                format!("`{dotted}` does not start with a CR field (`.metadata`, `.spec`, `.status`{}); `{other}` renders empty", if u.in_status { ", `.children`" } else { "" }),
            )),
        }
    }
    // A whole-field template whose source type cannot become the field's type.
    let (Some(target), Some(schema)) = (u.target, schema) else {
        return;
    };
    let Some(Expr::Path(path)) = u.template.single() else {
        return;
    };
    if path.first().map(String::as_str) != Some("spec") {
        return;
    }
    let Found::Type(Some(ty)) = lookup(schema, path) else {
        return;
    };
    let dotted = format!(".{}", path.join("."));
    let field = u.path.last_key().unwrap_or_default();
    let bad = matches!(
        (target, ty.as_str()),
        (FieldType::Integer, "object" | "array" | "boolean")
            | (
                FieldType::Boolean,
                "object" | "array" | "integer" | "number"
            )
            | (FieldType::String, "object" | "array")
            | (
                FieldType::StringMap | FieldType::Object,
                "string" | "integer" | "number" | "boolean" | "array"
            )
            | (
                FieldType::List,
                "string" | "integer" | "number" | "boolean" | "object"
            )
    );
    if bad {
        out.push(Diagnostic::new(
            Severity::Error,
            "type-mismatch",
            file,
            at,
            format!(
                "`{field}` needs {} but `{dotted}` is of type {ty} in the CR's schema",
                target.describe()
            ),
        ));
    } else if target == FieldType::Integer && ty == "string" {
        out.push(Diagnostic::new(
            Severity::Warning,
            "type-mismatch",
            file,
            at,
            format!("`{field}` needs an integer but `{dotted}` is a string in the CR's schema; a non-numeric value will fail at reconcile"),
        ));
    }
}
