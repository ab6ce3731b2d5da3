//! Loading a Katalog: YAML → [`Katalog`], with every problem reported as a [`Diagnostic`].
//!
//! The loader is strict (an unknown field is an error with the closest valid name) and keeps
//! going after an error, so one run reports everything wrong with a file. A Katalog with any
//! error diagnostic is not returned.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use orkestra_provider_schema::{FieldSchema, FieldType, ProviderSchema};
use serde_json::{Map, Value};

use crate::blocks::{KubeBlock, CONTROL_KEYS, ITEM_CONTROL_KEYS};
use crate::condition::{Condition, Conditions, Operator};
use crate::diagnostic::{did_you_mean, Diagnostic, Severity};
use crate::graph::{self, Exposes, NodeRef, NodeSpec, Ref};
use crate::katalog::*;
use crate::path::Path;
use crate::source::{Document, Pos, SourceFile};
use crate::template::{Template, TemplateSet};
use crate::value::Tv;

/// The API group and version of Katalog objects.
pub const KATALOG_API_VERSION: &str = "orkestra.orkspace.io/v1";

/// The apiVersion upstream Orkestra's Katalogs used through v0.2.4; loaded as the current one.
pub const LEGACY_API_VERSION: &str = "orkestra.konductor.io/v1Alpha";

/// Keys of upstream Orkestra's format that orkestra does not run yet, with what they are there:
/// a Katalog using one gets an error naming the feature, never a generic "unknown field".
const NOT_SUPPORTED: &[(&str, &str)] = &[
    ("imports", "Motif imports"),
    ("sources", "Komposer sources"),
    ("enrich", "enrichment of children with pods and events"),
    ("enrichAll", "enrichment of children with pods and events"),
    ("setup", "setup files applied before the operator starts"),
    ("autoscale", "worker autoscaling"),
    ("external", "external HTTP calls"),
    ("hooks", "Go hooks (typed mode)"),
    ("constructor", "Go constructors (typed mode)"),
    ("mode", "typed mode"),
    ("webhooks", "admission webhooks"),
    ("endpoints", "health and info endpoints"),
    ("queue", "queue tuning"),
    ("requeue", "templated requeue intervals"),
    ("observe", "watches of other objects and event observation"),
    ("preReconcile", "reconcile gates"),
    (
        "runtime",
        "runtime settings (finalizers, deletion protection, cleanup)",
    ),
    ("finalizers", "custom finalizers"),
    ("removeFinalizers", "finalizer removal"),
    ("deletionProtection", "deletion protection"),
    ("restrictedNamespaces", "namespace deny lists"),
    ("rollBackOnError", "rollback on error"),
    (
        "labelSelector",
        "operators over built-in kinds selected by label",
    ),
    (
        "fieldSelector",
        "operators over built-in kinds selected by field",
    ),
    ("include", "included files"),
    ("forceConflict", "per-entry apply conflict settings"),
    ("profiles", "profiles"),
    ("gateway", "the gateway"),
    ("security", "security settings"),
    ("publish", "publishing"),
    ("notification", "notifications"),
    ("lifecycle", "lifecycle settings"),
    ("policy", "policies"),
    ("crossAccess", "cross-namespace access settings"),
    ("events", "custom events"),
    ("sleep", "pauses between children"),
];

/// What loading produced: the Katalog when there were no errors, and all diagnostics.
#[derive(Debug)]
pub struct Loaded {
    pub katalog: Option<Katalog>,
    pub diagnostics: Vec<Diagnostic>,
    /// Every template in the file, where it is and what it feeds (for lint's schema checks).
    pub uses: Vec<TemplateUse>,
}

/// A template in a Katalog: its place, its CRD entry and the type of the field it fills.
#[derive(Debug, Clone)]
pub struct TemplateUse {
    pub path: Path,
    /// Index of the entry in `spec.crds` order, if inside one.
    pub entry: Option<usize>,
    pub template: Template,
    /// The field's type when the template is a whole field value.
    pub target: Option<FieldType>,
    /// Whether `.children` is available (status fields only).
    pub in_status: bool,
    /// The names a `forEach` gives its entry's templates (`item` and its `as`).
    pub loop_vars: Vec<String>,
}

/// Load the first Katalog document of a file.
pub fn load_file(file: &SourceFile, providers: &[ProviderSchema]) -> Loaded {
    let (docs, mut diagnostics) = file.documents();
    let doc = docs.iter().find(|d| is_katalog(&d.value));
    match doc {
        Some(doc) => {
            let mut l = load_document(file, doc, providers);
            diagnostics.append(&mut l.diagnostics);
            l.diagnostics = diagnostics;
            l
        }
        None => {
            if diagnostics.is_empty() {
                diagnostics.push(Diagnostic::new(
                    Severity::Error,
                    "not-a-katalog",
                    &file.name,
                    Pos { line: 1, column: 1 },
                    "no document of kind Katalog in this file",
                ));
            }
            Loaded {
                katalog: None,
                diagnostics,
                uses: Vec::new(),
            }
        }
    }
}

/// Whether a document is a Katalog (by `kind`), or upstream's Komposer, which is loaded to be
/// refused by name rather than passed over.
pub fn is_katalog(v: &Value) -> bool {
    matches!(
        v.get("kind").and_then(Value::as_str),
        Some("Katalog" | "Komposer")
    )
}

/// Load one parsed Katalog document.
pub fn load_document(file: &SourceFile, doc: &Document, providers: &[ProviderSchema]) -> Loaded {
    let mut l = Loader {
        file,
        doc,
        diags: Vec::new(),
        set: TemplateSet::new(),
        providers,
        declared: HashMap::new(),
        uses: Vec::new(),
        entry_index: None,
        in_status: false,
        kube_count: 0,
        external_count: 0,
        specs: Vec::new(),
        status_refs: Vec::new(),
        node: None,
        in_ready_when: false,
        loop_vars: Vec::new(),
    };
    let katalog = l.katalog();
    let failed = l.diags.iter().any(Diagnostic::is_error);
    Loaded {
        katalog: if failed { None } else { katalog },
        diagnostics: l.diags,
        uses: l.uses,
    }
}

struct Loader<'a> {
    file: &'a SourceFile,
    doc: &'a Document,
    diags: Vec<Diagnostic>,
    set: TemplateSet,
    providers: &'a [ProviderSchema],
    /// Providers listed in the Katalog's `providers`, with `required`.
    declared: HashMap<String, bool>,
    uses: Vec<TemplateUse>,
    entry_index: Option<usize>,
    in_status: bool,
    /// Kubernetes entries and provider items of the entry so far (their `NodeRef` indices).
    kube_count: usize,
    external_count: usize,
    /// The graph nodes of the entry being loaded.
    specs: Vec<NodeSpec>,
    /// `.resources` reads in the entry's status fields.
    status_refs: Vec<Ref>,
    /// The node whose templates are being compiled: its index in `specs`, its path, how many
    /// path segments lead from it to a field (0 for Kubernetes entries, 1 — the kind key — for
    /// provider items) and the fields that take sensitive values.
    node: Option<CurrentNode>,
    /// Compiling `readyWhen:` (evaluated on the live object: no CR paths, no edges).
    in_ready_when: bool,
    /// The names the current entry's `forEach` binds (`item`, its `as`).
    loop_vars: Vec<String>,
}

struct CurrentNode {
    index: usize,
    path: Path,
    skip: usize,
    secret_inputs: Vec<&'static str>,
}

const ROOT_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "providers",
    "status",
    "notes",
];
const METADATA_KEYS: &[&str] = &[
    "name",
    "description",
    "version",
    // Upstream's KatalogMeta: descriptive only.
    "author",
    "license",
    "tags",
    "createdBy",
    "clusterName",
    "projects",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "finalizers",
    "ownerReferences",
    "selfLink",
    "generateName",
    "namespace",
];
/// `spec.notes` is where `kubectl orkestra apply` stores the notes (a Katalog object has no
/// top-level fields of its own).
const SPEC_KEYS: &[&str] = &["crds", "providers", "notes"];
/// Keys of `notes:` in its map form, and of one note.
const NOTES_KEYS: &[&str] = &["include", "functions"];
const NOTE_KEYS: &[&str] = &["name", "description", "expression", "shadow"];
const ENTRY_KEYS: &[&str] = &[
    "name",
    "apiTypes",
    "operatorBox",
    "status",
    "schema",
    "description",
    // Upstream's spellings: the CRD from a file, its example CRs, tuning on the entry, the
    // oldest layout's `reconciler:` wrapper, descriptive flags.
    "crdFile",
    "crFiles",
    "workers",
    "resync",
    "reconciler",
    "enabled",
    "namespaced",
    "allowedNamespaces",
    "validation",
    "admission",
    "mutation",
    "normalize",
    "dependsOn",
];
const VALIDATION_KEYS: &[&str] = &["rules"];
const ADMISSION_KEYS: &[&str] = &["validation", "mutation"];
const MUTATION_KEYS: &[&str] = &["rules", "mutateFirst"];
const MUTATION_RULE_KEYS: &[&str] = &["field", "default", "override", "valueType", "when", "or"];
const RULE_KEYS: &[&str] = &["field", "message", "action", "operator", "value"];
const API_KEYS: &[&str] = &[
    "group",
    "version",
    "kind",
    "plural",
    "singular",
    "shortNames",
    "scope",
];
const BOX_KEYS: &[&str] = &[
    "default",
    "reconciler",
    "onCreate",
    "onReconcile",
    "onDelete",
    "providers",
    // Upstream: status in the box (middle layout), tuning in it, and the newest layout's
    // `reconcile` (tuning and hooks) and `emit` (status).
    "status",
    "workers",
    "resync",
    "reconcile",
    "emit",
    "cross",
];
const CROSS_KEYS: &[&str] = &[
    "crd",
    "selector",
    "as",
    "strategy",
    "source",
    "labelSelector",
];
const SELECTOR_KEYS: &[&str] = &["name", "namespace", "matchLabels"];
const EMIT_KEYS: &[&str] = &["status"];
const RECONCILER_KEYS: &[&str] = &["default", "workers", "resync"];
const STATUS_KEYS: &[&str] = &["fields", "conditions"];
const STATUS_FIELD_KEYS: &[&str] = &["path", "value", "when", "or", "clearOnFalse"];
const CONDITION_KEYS: &[&str] = &["field", "operator", "value"];

impl Loader<'_> {
    fn diag(&mut self, sev: Severity, code: &'static str, pos: Pos, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(sev, code, &self.file.name, pos, msg));
    }
    fn err_at_key(&mut self, code: &'static str, p: &Path, msg: impl Into<String>) {
        let pos = self.doc.pos.key(p);
        self.diag(Severity::Error, code, pos, msg);
    }
    fn err_at_value(&mut self, code: &'static str, p: &Path, msg: impl Into<String>) {
        let pos = self.doc.pos.value(p);
        self.diag(Severity::Error, code, pos, msg);
    }
    fn warn_at_key(&mut self, code: &'static str, p: &Path, msg: impl Into<String>) {
        let pos = self.doc.pos.key(p);
        self.diag(Severity::Warning, code, pos, msg);
    }

    fn map<'v>(&mut self, v: &'v Value, p: &Path, what: &str) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.err_at_value(
                    "invalid-type",
                    p,
                    format!("{what} must be a mapping, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    fn list<'v>(&mut self, v: &'v Value, p: &Path, what: &str) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            Value::Null => None,
            other => {
                self.err_at_value(
                    "invalid-type",
                    p,
                    format!("{what} must be a list, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// Report keys of `m` not in `allowed`; a key of upstream Orkestra's format that orkestra
    /// does not run yet is named as such.
    fn check_keys(&mut self, m: &Map<String, Value>, p: &Path, allowed: &[&str], what: &str) {
        for k in m.keys() {
            if allowed.contains(&k.as_str()) {
                continue;
            }
            if let Some((_, feature)) = NOT_SUPPORTED.iter().find(|(n, _)| n == k) {
                self.err_at_key(
                    "not-supported",
                    &p.key(k),
                    format!("`{k}` in {what} is upstream Orkestra's {feature}, which orkestra does not support yet"),
                );
                continue;
            }
            let hint = did_you_mean(k, allowed.iter().copied());
            self.err_at_key(
                "unknown-field",
                &p.key(k),
                format!("unknown field `{k}` in {what}{hint}"),
            );
        }
    }

    fn string(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        p: &Path,
        required: bool,
        what: &str,
    ) -> Option<String> {
        match m.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            None | Some(Value::Null) if !required => None,
            Some(Value::String(_)) | None | Some(Value::Null) => {
                self.err_at_key(
                    "missing-field",
                    &p.key(key),
                    format!("{what} needs `{key}`"),
                );
                None
            }
            Some(other) => {
                self.err_at_value(
                    "invalid-type",
                    &p.key(key),
                    format!("`{key}` must be a string, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    fn katalog(&mut self) -> Option<Katalog> {
        let root = Path::root();
        let m = self.map(&self.doc.value, &root, "a Katalog")?;
        self.check_keys(m, &root, ROOT_KEYS, "the Katalog");
        if m.get("kind").and_then(Value::as_str) == Some("Komposer") {
            self.err_at_value(
                "not-supported",
                &root.key("kind"),
                "kind Komposer is upstream Orkestra's Katalog merger (sources/imports), which orkestra does not support yet",
            );
        }
        match m.get("apiVersion").and_then(Value::as_str) {
            Some(KATALOG_API_VERSION | LEGACY_API_VERSION) => {}
            Some(other) => self.err_at_value(
                "invalid-value",
                &root.key("apiVersion"),
                format!("apiVersion must be {KATALOG_API_VERSION} (or upstream's {LEGACY_API_VERSION}), found {other:?}"),
            ),
            None => self.err_at_key(
                "missing-field",
                &root.key("apiVersion"),
                format!("a Katalog needs `apiVersion: {KATALOG_API_VERSION}`"),
            ),
        }
        let meta_p = root.key("metadata");
        let mut name = None;
        let (mut version, mut description) = (None, None);
        match m.get("metadata") {
            Some(v) => {
                if let Some(meta) = self.map(v, &meta_p, "metadata") {
                    self.check_keys(meta, &meta_p, METADATA_KEYS, "metadata");
                    name = self.string(meta, "name", &meta_p, true, "metadata");
                    version = self.string(meta, "version", &meta_p, false, "metadata");
                    description = self.string(meta, "description", &meta_p, false, "metadata");
                }
            }
            None => self.err_at_key("missing-field", &meta_p, "a Katalog needs `metadata.name`"),
        }
        // `providers` may sit at the top level or under spec.
        let mut providers = Vec::new();
        for p in [root.key("providers"), root.key("spec").key("providers")] {
            if let Some(v) = pointer(&self.doc.value, &p) {
                providers.extend(self.provider_requirements(v, &p));
            }
        }
        // Notes first: every template below may call them.
        let mut notes = Vec::new();
        for p in [root.key("notes"), root.key("spec").key("notes")] {
            if let Some(v) = pointer(&self.doc.value, &p) {
                self.notes(v, &p, &mut notes);
            }
        }
        let spec_p = root.key("spec");
        let mut entries = Vec::new();
        match m.get("spec") {
            Some(v) => {
                if let Some(spec) = self.map(v, &spec_p, "spec") {
                    self.check_keys(spec, &spec_p, SPEC_KEYS, "spec");
                    match spec.get("crds") {
                        Some(crds) => entries = self.crds(crds, &spec_p.key("crds")),
                        None => self.err_at_key("missing-field", &spec_p, "spec needs `crds`"),
                    }
                }
            }
            None => self.err_at_key("missing-field", &spec_p, "a Katalog needs `spec.crds`"),
        }
        self.check_dependencies(&entries, &spec_p.key("crds"));
        let mut seen = BTreeSet::new();
        for (i, e) in entries.iter().enumerate() {
            if !seen.insert((e.api.group.clone(), e.api.kind.clone())) {
                self.err_at_value(
                    "duplicate",
                    &spec_p.key("crds").index(i),
                    format!("two entries handle {}/{}", e.api.group, e.api.kind),
                );
            }
        }
        Some(Katalog {
            name: name?,
            version,
            description,
            file: self.file.name.clone(),
            providers,
            entries,
            notes,
            templates: std::mem::take(&mut self.set),
        })
    }

    /// `operatorBox.cross: [{crd, selector: {name | matchLabels, namespace}, as, strategy}]`.
    fn cross(&mut self, v: &Value, p: &Path) -> Vec<crate::cross::CrossRead> {
        use crate::cross::{CrossRead, Selector};
        let mut out = Vec::new();
        let Some(items) = self.list(v, p, "cross") else {
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let ip = p.index(i);
            let Some(m) = self.map(item, &ip, "a cross read") else {
                continue;
            };
            self.check_keys(m, &ip, CROSS_KEYS, "a cross read");
            if m.contains_key("source") {
                self.err_at_key("not-supported", &ip.key("source"), "`source` reads CRs of another Orkestra binary over HTTP, which orkestra does not support; read CRs of this Katalog's entries");
                continue;
            }
            if m.contains_key("labelSelector") {
                self.err_at_key("not-supported", &ip.key("labelSelector"), "cross reads of CRDs found by label are not supported yet; name the entry with `crd`");
                continue;
            }
            let Some(entry) = self.string(m, "crd", &ip, true, "a cross read") else {
                continue;
            };
            let alias = self
                .string(m, "as", &ip, false, "a cross read")
                .unwrap_or_else(|| entry.clone());
            let all = match m.get("strategy").and_then(Value::as_str) {
                None | Some("first") => false,
                Some("all") => true,
                Some(other) => {
                    self.err_at_value("invalid-value", &ip.key("strategy"), format!("strategy {other:?}: it is first (one CR) or all (every matching CR, as a list)"));
                    continue;
                }
            };
            let sp = ip.key("selector");
            let Some(sm) = m
                .get("selector")
                .and_then(|s| self.map(s, &sp, "a cross selector"))
            else {
                if !m.contains_key("selector") {
                    self.err_at_key(
                        "missing-field",
                        &ip,
                        "a cross read needs `selector` (`name`, or `matchLabels`)",
                    );
                }
                continue;
            };
            self.check_keys(sm, &sp, SELECTOR_KEYS, "a cross selector");
            let namespace = sm
                .get("namespace")
                .map(|n| self.tv(n, &sp.key("namespace")));
            let selector = match (sm.get("matchLabels"), sm.get("name")) {
                (Some(l), _) => {
                    let lp = sp.key("matchLabels");
                    let Some(lm) = self.map(l, &lp, "matchLabels") else {
                        continue;
                    };
                    Selector::Labels(
                        lm.iter()
                            .map(|(k, v)| (k.clone(), self.tv(v, &lp.key(k))))
                            .collect(),
                    )
                }
                (None, Some(n)) => Selector::Name(self.tv(n, &sp.key("name"))),
                (None, None) => {
                    self.err_at_key(
                        "missing-field",
                        &sp,
                        "a cross selector needs `name` or `matchLabels`",
                    );
                    continue;
                }
            };
            out.push(CrossRead {
                source: ip.to_string(),
                entry,
                alias,
                selector,
                namespace,
                all,
            });
        }
        out
    }

    /// `dependsOn`: `[a, b]` (started), `{a: healthy}` or `{a: {condition: healthy}}`.
    fn depends_on(&mut self, v: &Value, p: &Path) -> Vec<Dependency> {
        let mut out = Vec::new();
        let mut add = |l: &mut Self, name: &str, cond: Option<&Value>, at: &Path| {
            let condition = match cond.and_then(Value::as_str).unwrap_or("started") {
                "" | "started" => DependencyCondition::Started,
                "healthy" | "ready" => DependencyCondition::Healthy,
                other => {
                    l.err_at_value(
                        "invalid-value",
                        at,
                        format!("dependsOn condition {other:?}: it is started (the entry's controller runs) or healthy (it runs and none of its CRs is failing)"),
                    );
                    return;
                }
            };
            out.push(Dependency {
                entry: name.to_string(),
                condition,
            });
        };
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(name) => add(self, name, None, &p.index(i)),
                        None => self.err_at_value(
                            "invalid-type",
                            &p.index(i),
                            "a dependsOn list names entries of this Katalog",
                        ),
                    }
                }
            }
            Value::Object(m) => {
                for (name, c) in m {
                    let cp = p.key(name);
                    match c {
                        Value::Object(cm) => {
                            self.check_keys(cm, &cp, &["condition"], "a dependsOn item");
                            add(self, name, cm.get("condition"), &cp.key("condition"));
                        }
                        Value::String(_) | Value::Null => add(self, name, Some(c), &cp),
                        _ => self.err_at_value(
                            "invalid-type",
                            &cp,
                            "a dependsOn item is a condition (started, healthy) or {condition}",
                        ),
                    }
                }
            }
            _ => self.err_at_value(
                "invalid-type",
                p,
                "dependsOn is a list of entry names or a mapping of entry names to conditions",
            ),
        }
        out
    }

    /// Every `dependsOn` names another entry of this Katalog, and no entry waits on itself
    /// through them (a cycle would never start).
    fn check_dependencies(&mut self, entries: &[CrdEntry], crds_p: &Path) {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let at = |l: &Self, i: usize| {
            let p = crds_p.key(&entries[i].name).key("dependsOn");
            if pointer(&l.doc.value, &p).is_some() {
                p
            } else {
                crds_p.index(i).key("dependsOn")
            }
        };
        for (i, e) in entries.iter().enumerate() {
            for d in &e.depends_on {
                if d.entry == e.name {
                    let p = at(self, i);
                    self.err_at_value(
                        "invalid-value",
                        &p,
                        format!("entry {} depends on itself", e.name),
                    );
                } else if !names.contains(&d.entry.as_str()) {
                    let p = at(self, i);
                    let hint = did_you_mean(&d.entry, names.iter().copied());
                    self.err_at_value(
                        "invalid-value",
                        &p,
                        format!(
                            "dependsOn names {:?}, which is not an entry of this Katalog{hint}",
                            d.entry
                        ),
                    );
                }
            }
        }
        for (i, e) in entries.iter().enumerate() {
            for c in &e.cross {
                if !names.contains(&c.entry.as_str()) {
                    let p = crds_p.key(&entries[i].name);
                    let p = if pointer(&self.doc.value, &p).is_some() {
                        p
                    } else {
                        crds_p.index(i)
                    };
                    let hint = did_you_mean(&c.entry, names.iter().copied());
                    self.err_at_key(
                        "invalid-value",
                        &p,
                        format!(
                            "{}: crd {:?} is not an entry of this Katalog{hint}",
                            c.source, c.entry
                        ),
                    );
                }
            }
        }
        // A cycle: follow dependencies depth-first from each entry (at most entries² steps).
        let deps = |name: &str| -> Vec<&str> {
            entries
                .iter()
                .find(|e| e.name == name)
                .map(|e| {
                    e.depends_on
                        .iter()
                        .map(|d| d.entry.as_str())
                        .filter(|d| *d != name)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut reported = BTreeSet::new();
        for (i, e) in entries.iter().enumerate() {
            let mut stack = vec![(e.name.as_str(), vec![e.name.as_str()])];
            let mut seen = BTreeSet::new();
            while let Some((cur, chain)) = stack.pop() {
                for next in deps(cur) {
                    if next == e.name {
                        let mut cycle = chain.clone();
                        cycle.push(next);
                        let mut members: Vec<&str> = cycle.clone();
                        members.sort_unstable();
                        members.dedup();
                        if reported.insert(members) {
                            let p = at(self, i);
                            self.err_at_value(
                                "invalid-value",
                                &p,
                                format!(
                                    "dependency cycle: {} (no entry of it could ever start)",
                                    cycle.join(" → ")
                                ),
                            );
                        }
                    } else if seen.insert(next) {
                        let mut c = chain.clone();
                        c.push(next);
                        stack.push((next, c));
                    }
                }
            }
        }
    }

    /// `notes:` as a list of notes, or `{include: FILE, functions: [...]}` (the file holds
    /// `functions:`; a note written here replaces an included one of the same name). Each is
    /// registered with the template set, then checked once all are known (notes may call each
    /// other in any order).
    fn notes(&mut self, v: &Value, p: &Path, out: &mut Vec<Note>) {
        let start = out.len();
        let mut add = |l: &mut Self, n: Note, at: &Path| {
            let builtin = crate::template::functions::lookup(&n.name).is_some();
            if !crate::validation::is_ident(&n.name) {
                l.err_at_value(
                    "invalid-value",
                    &at.key("name"),
                    format!(
                        "note name {:?} must be a name a template can call (letters, digits, _)",
                        n.name
                    ),
                );
                return;
            }
            if builtin && !n.shadow {
                l.err_at_value(
                    "invalid-value",
                    &at.key("name"),
                    format!("note `{}` has the name of a template function; rename it, or say `shadow: true` to replace the function in this Katalog's templates", n.name),
                );
                return;
            }
            if let Err(e) = l.set.add_note(&n.name, &n.expression) {
                let fp = at.key("expression");
                l.err_at_value(e.code, &fp, e.message);
                return;
            }
            out.retain(|o: &Note| o.name != n.name);
            out.push(n);
        };
        let (list, list_p) = match v {
            Value::Array(_) => (Some(v), p.clone()),
            Value::Object(m) => {
                self.check_keys(m, p, NOTES_KEYS, "notes");
                if let Some(inc) = m.get("include") {
                    let ip = p.key("include");
                    match inc.as_str().map(|rel| (rel, self.file.beside(rel))) {
                        Some((rel, Ok(text))) => {
                            let parsed: Result<Value, _> = serde_yaml_ng::from_str(&text);
                            match parsed.map(|v| v.get("functions").cloned()) {
                                Ok(Some(Value::Array(items))) => {
                                    for (i, item) in items.iter().enumerate() {
                                        match serde_json::from_value::<IncludedNote>(item.clone()) {
                                            Ok(n) => add(self, n.into(), &ip),
                                            Err(e) => self.err_at_value(
                                                "invalid-value",
                                                &ip,
                                                format!("{rel}: functions[{i}]: {e}"),
                                            ),
                                        }
                                    }
                                }
                                Ok(_) => self.err_at_value(
                                    "invalid-value",
                                    &ip,
                                    format!("{rel} holds no `functions:` list"),
                                ),
                                Err(e) => {
                                    self.err_at_value("invalid-value", &ip, format!("{rel}: {e}"))
                                }
                            }
                        }
                        Some((_, Err(e))) => self.err_at_value("invalid-value", &ip, e),
                        None => {
                            self.err_at_value("invalid-value", &ip, "`include` takes a file name")
                        }
                    }
                }
                (m.get("functions"), p.key("functions"))
            }
            _ => {
                self.err_at_value(
                    "invalid-value",
                    p,
                    "`notes` is a list of notes ({name, expression}) or {include, functions}",
                );
                return;
            }
        };
        if let Some(items) = list.and_then(|l| self.list(l, &list_p, "notes")) {
            for (i, item) in items.iter().enumerate() {
                let ip = list_p.index(i);
                let Some(m) = self.map(item, &ip, "a note") else {
                    continue;
                };
                self.check_keys(m, &ip, NOTE_KEYS, "a note");
                let name = self.string(m, "name", &ip, true, "a note");
                let expression = self.string(m, "expression", &ip, true, "a note");
                let shadow = m.get("shadow").and_then(Value::as_bool).unwrap_or(false);
                if let (Some(name), Some(expression)) = (name, expression) {
                    add(
                        self,
                        Note {
                            name,
                            expression,
                            shadow,
                        },
                        &ip,
                    );
                }
            }
        }
        for n in &out[start..] {
            if let Err(e) = self.set.check_note(&n.name) {
                self.err_at_value(e.code, p, format!("note `{}`: {}", n.name, e.message));
            }
        }
    }

    fn provider_requirements(&mut self, v: &Value, p: &Path) -> Vec<ProviderRequirement> {
        let mut out = Vec::new();
        let Some(items) = self.list(v, p, "providers") else {
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let ip = p.index(i);
            let Some(m) = self.map(item, &ip, "a providers entry") else {
                continue;
            };
            self.check_keys(
                m,
                &ip,
                &["name", "required", "version"],
                "a providers entry",
            );
            let Some(name) = self.string(m, "name", &ip, true, "a providers entry") else {
                continue;
            };
            let required = m.get("required").and_then(Value::as_bool).unwrap_or(false);
            if !self.providers.iter().any(|s| s.name == name) {
                let known = self.providers.iter().map(|s| s.name);
                let hint = did_you_mean(&name, known);
                let msg = format!(
                    "provider `{name}` is not registered with this build of orkestra{hint}"
                );
                if required {
                    self.err_at_value("unknown-provider", &ip.key("name"), msg);
                } else {
                    let pos = self.doc.pos.value(&ip.key("name"));
                    self.diag(Severity::Warning, "unknown-provider", pos, msg);
                }
            }
            self.declared.insert(name.clone(), required);
            out.push(ProviderRequirement { name, required });
        }
        out
    }

    fn crds(&mut self, v: &Value, p: &Path) -> Vec<CrdEntry> {
        let mut out = Vec::new();
        match v {
            // Map form: the key names the entry.
            Value::Object(m) => {
                for (i, (name, e)) in m.iter().enumerate() {
                    self.entry_index = Some(i);
                    if let Some(entry) = self.entry(e, &p.key(name), Some(name)) {
                        out.push(entry);
                    }
                }
            }
            Value::Array(items) => {
                for (i, e) in items.iter().enumerate() {
                    self.entry_index = Some(i);
                    if let Some(entry) = self.entry(e, &p.index(i), None) {
                        out.push(entry);
                    }
                }
            }
            other => self.err_at_value(
                "invalid-type",
                p,
                format!(
                    "spec.crds must be a mapping of entries or a list of entries, found {}",
                    kind_of(other)
                ),
            ),
        }
        out
    }

    fn entry(&mut self, v: &Value, p: &Path, key_name: Option<&str>) -> Option<CrdEntry> {
        let m = self.map(v, p, "a crds entry")?;
        self.check_keys(m, p, ENTRY_KEYS, "a crds entry");
        let name = match key_name {
            Some(k) => Some(k.to_string()),
            None => self.string(m, "name", p, true, "a crds entry in list form"),
        };
        // `apiTypes` wins over `crdFile` when both are given: `kubectl orkestra apply` records
        // the apiTypes it read from the file in the Katalog it stores, for the agent, which has
        // no files beside it.
        let (mut file_schema, mut crd_file) = (None, None);
        let api = match (m.get("apiTypes"), m.get("crdFile")) {
            (Some(a), _) => self.api_types(a, &p.key("apiTypes")),
            (None, Some(f)) => self
                .crd_file(f, &p.key("crdFile"))
                .map(|(api, schema, crd)| {
                    file_schema = schema;
                    crd_file = Some(crd);
                    api
                }),
            (None, None) => {
                self.err_at_key(
                    "missing-field",
                    p,
                    "a crds entry needs `apiTypes` (group, version, kind) or `crdFile`",
                );
                None
            }
        };
        if let Some(files) = m.get("crFiles") {
            self.cr_files(files, &p.key("crFiles"));
        }
        let schema = m.get("schema").cloned().or(file_schema);
        if let Some(s) = m.get("schema") {
            self.map(s, &p.key("schema"), "schema (an openAPIV3Schema)");
        }
        let allowed_namespaces = match m.get("allowedNamespaces") {
            Some(v) => self.strings(v, &p.key("allowedNamespaces"), "allowedNamespaces"),
            None => Vec::new(),
        };
        let mut entry = CrdEntry {
            name: name.unwrap_or_default(),
            api: api?,
            schema,
            reconciler: Reconciler::default(),
            kube: Vec::new(),
            external: Vec::new(),
            status: Vec::new(),
            graph: graph::Graph::default(),
            crd_file,
            validation: Vec::new(),
            mutations: Vec::new(),
            allowed_namespaces,
            depends_on: Vec::new(),
            cross: Vec::new(),
        };
        if let Some(v) = m.get("dependsOn") {
            entry.depends_on = self.depends_on(v, &p.key("dependsOn"));
        }
        // Normalize first, then mutation rules (upstream's pipeline order).
        if let Some(v) = m.get("normalize") {
            let muts = self.normalize(v, &p.key("normalize"));
            entry.mutations.extend(muts);
        }
        if let Some(v) = m.get("mutation") {
            let muts = self.mutation(v, &p.key("mutation"));
            entry.mutations.extend(muts);
        }
        if let Some(v) = m.get("validation") {
            entry.validation = self.validation(v, &p.key("validation"), entry.schema.as_ref());
        }
        if let Some(a) = m.get("admission") {
            let ap = p.key("admission");
            if let Some(am) = self.map(a, &ap, "admission") {
                self.check_keys(am, &ap, ADMISSION_KEYS, "admission");
                if let Some(v) = am.get("validation") {
                    let rules = self.validation(v, &ap.key("validation"), entry.schema.as_ref());
                    entry.validation.extend(rules);
                }
                if let Some(v) = am.get("mutation") {
                    let muts = self.mutation(v, &ap.key("mutation"));
                    entry.mutations.extend(muts);
                }
            }
        }
        self.specs.clear();
        self.status_refs.clear();
        // Upstream's oldest layout: tuning on the entry.
        self.tuning(m, p, &mut entry);
        let bp = p.key("operatorBox");
        match (m.get("operatorBox"), m.get("reconciler")) {
            (Some(b), _) => self.operator_box(b, &bp, &mut entry),
            // Upstream's oldest layout: the hooks and status in a `reconciler:` wrapper.
            (None, Some(r)) => self.operator_box(r, &p.key("reconciler"), &mut entry),
            // A Motif import brings the resources (refused by name above).
            (None, None) if m.contains_key("imports") => {}
            (None, None) => self.err_at_key("missing-field", p, "a crds entry needs `operatorBox`"),
        }
        if let Some(s) = m.get("status") {
            self.entry_status(s, &p.key("status"), &mut entry);
        }
        select_the_only_workload(&mut entry, &mut self.set);
        entry.graph = self.graph();
        Some(entry)
    }

    /// `status:` wherever a layout puts it (the entry, the box, `emit`); one per entry.
    fn entry_status(&mut self, v: &Value, p: &Path, entry: &mut CrdEntry) {
        if !entry.status.is_empty() {
            self.err_at_key(
                "duplicate",
                p,
                "this entry has status fields in another place already; keep one `status`",
            );
            return;
        }
        self.in_status = true;
        entry.status = self.status(v, p);
        self.in_status = false;
    }

    /// The items of `v.<list_key>` (`rules`, `fields`), a list of mappings inside a mapping,
    /// each with its path; keys of both levels (`(what, allowed keys)`) are checked.
    fn items<'v>(
        &mut self,
        v: &'v Value,
        p: &Path,
        (what, keys): (&str, &[&str]),
        list_key: &str,
        (item_what, item_keys): (&str, &[&str]),
    ) -> Vec<(Path, &'v Map<String, Value>)> {
        let mut out = Vec::new();
        let Some(m) = self.map(v, p, what) else {
            return out;
        };
        self.check_keys(m, p, keys, what);
        let lp = p.key(list_key);
        let Some(list) = m
            .get(list_key)
            .and_then(|l| self.list(l, &lp, &format!("{what}.{list_key}")))
        else {
            return out;
        };
        for (i, item) in list.iter().enumerate() {
            let ip = lp.index(i);
            if let Some(im) = self.map(item, &ip, item_what) {
                self.check_keys(im, &ip, item_keys, item_what);
                out.push((ip, im));
            }
        }
        out
    }

    /// A rule's `field` as steps, or an error at it.
    fn rule_field(&mut self, field: &str, ip: &Path) -> Option<Vec<String>> {
        crate::validation::parse_field(field)
            .map_err(|e| self.err_at_value("invalid-value", &ip.key("field"), e))
            .ok()
    }

    /// `validation: {rules: [...]}`: each rule a field of the CR's schema and one comparison.
    fn validation(
        &mut self,
        v: &Value,
        p: &Path,
        schema: Option<&Value>,
    ) -> Vec<crate::validation::Rule> {
        use crate::validation::{Check, Rule, CHECK_KEYS};
        let mut out = Vec::new();
        let allowed: Vec<&str> = RULE_KEYS.iter().chain(CHECK_KEYS).copied().collect();
        let rules = self.items(
            v,
            p,
            ("validation", VALIDATION_KEYS),
            "rules",
            ("a validation rule", &allowed),
        );
        for (ip, rm) in rules {
            let action = match rm.get("action") {
                None => crate::validation::Action::Deny,
                Some(a) => match a.as_str().and_then(crate::validation::Action::parse) {
                    Some(a) => a,
                    None => {
                        self.err_at_value(
                            "invalid-value",
                            &ip.key("action"),
                            format!("action {}: a rule's action is deny (refuse the CR, the default) or warn (accept it with the message as a warning)", crate::template::functions::to_text(a)),
                        );
                        continue;
                    }
                },
            };
            let message = self.string(rm, "message", &ip, true, "a validation rule");
            let field = self.string(rm, "field", &ip, true, "a validation rule");
            let mut checks: Vec<(String, &Value, Path)> = rm
                .iter()
                .filter(|(k, _)| CHECK_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v, ip.key(k)))
                .collect();
            if let Some(op) = rm.get("operator").and_then(Value::as_str) {
                checks.push((
                    op.to_string(),
                    rm.get("value").unwrap_or(&Value::Null),
                    ip.key("operator"),
                ));
            }
            let (Some(message), Some(field)) = (message, field) else {
                continue;
            };
            let Some(field) = self.rule_field(&field, &ip) else {
                continue;
            };
            // A field the CRD's schema declares is checked in the CRD itself; one it keeps
            // unknown (no schema, `x-kubernetes-preserve-unknown-fields`), or metadata beyond
            // the name, only a policy can read; one it prunes never reaches the API server.
            let in_crd = match declared(schema, &field) {
                Declared::Yes => true,
                Declared::Kept => false,
                Declared::Pruned(missing) => {
                    self.err_at_value(
                        "invalid-value",
                        &ip.key("field"),
                        format!("`{missing}` is not declared in the CR's schema (`schema:` or the crdFile's), which drops unknown fields: no CR can carry it"),
                    );
                    continue;
                }
            };
            let [(key, value, kp)] = checks.as_slice() else {
                self.err_at_key(
                    "invalid-value",
                    &ip,
                    format!("a validation rule has exactly one comparison ({} found), such as `prefix: myorg/` or `greaterThan: 0`", checks.len()),
                );
                continue;
            };
            match Check::parse(key, value) {
                Ok(check) => out.push(Rule {
                    field,
                    check,
                    message,
                    action,
                    in_crd,
                }),
                Err(e) => self.err_at_value("invalid-value", kp, e),
            }
        }
        out
    }

    /// `normalize: {spec: {image: "{{ trimSpace .spec.image }}"}}`: fields rewritten (always)
    /// before anything else; the inner keys are dotted paths under the outer one.
    fn normalize(&mut self, v: &Value, p: &Path) -> Vec<crate::mutation::Mutation> {
        let mut out = Vec::new();
        let Some(m) = self.map(v, p, "normalize") else {
            return out;
        };
        for (root, fields) in m {
            let rp = p.key(root);
            let Some(fm) = self.map(fields, &rp, "a normalize section") else {
                continue;
            };
            for (rel, value) in fm {
                let fp = rp.key(rel);
                match crate::validation::parse_field(&format!("{root}.{rel}")) {
                    Ok(field) => out.push(crate::mutation::Mutation {
                        source: fp.to_string(),
                        field,
                        value: self.tv(value, &fp),
                        mode: crate::mutation::Mode::Normalize,
                        value_type: None,
                        conditions: Conditions::default(),
                    }),
                    Err(e) => self.err_at_key("invalid-value", &fp, e),
                }
            }
        }
        out
    }

    /// `mutation: {rules: [{field, default | override, valueType, when, or}]}`.
    fn mutation(&mut self, v: &Value, p: &Path) -> Vec<crate::mutation::Mutation> {
        let mut out = Vec::new();
        let rules = self.items(
            v,
            p,
            ("mutation", MUTATION_KEYS),
            "rules",
            ("a mutation rule", MUTATION_RULE_KEYS),
        );
        for (ip, rm) in rules {
            let Some(field) = self.string(rm, "field", &ip, true, "a mutation rule") else {
                continue;
            };
            let Some(field) = self.rule_field(&field, &ip) else {
                continue;
            };
            use crate::mutation::Mode;
            let (value, mode) = match (rm.get("default"), rm.get("override")) {
                (Some(d), None) => (self.tv(d, &ip.key("default")), Mode::Default),
                (None, Some(o)) => (self.tv(o, &ip.key("override")), Mode::Override),
                _ => {
                    self.err_at_key(
                        "invalid-value",
                        &ip,
                        "a mutation rule has one of `default` (set when absent or empty) and `override` (always set)",
                    );
                    continue;
                }
            };
            let value_type = match rm.get("valueType") {
                None => None,
                Some(t) => match t.as_str().and_then(crate::mutation::ValueType::parse) {
                    Some(t) => Some(t),
                    None => {
                        self.err_at_value(
                            "invalid-value",
                            &ip.key("valueType"),
                            "valueType is string, int, float or bool",
                        );
                        continue;
                    }
                },
            };
            let conditions = self.conditions(rm, &ip);
            out.push(crate::mutation::Mutation {
                source: ip.to_string(),
                field,
                value,
                mode,
                value_type,
                conditions,
            });
        }
        out
    }

    /// `default`, `workers` and `resync`, wherever a layout puts them.
    fn tuning(&mut self, m: &Map<String, Value>, p: &Path, entry: &mut CrdEntry) {
        if let Some(b) = m.get("default") {
            entry.reconciler.default = self.boolean(b, &p.key("default"));
        }
        if let Some(w) = m.get("workers") {
            match w.as_u64().filter(|w| (1..=64).contains(w)) {
                Some(w) => entry.reconciler.workers = w as u16,
                None => self.err_at_value(
                    "invalid-value",
                    &p.key("workers"),
                    "workers must be an integer from 1 to 64",
                ),
            }
        }
        if let Some(r) = m.get("resync") {
            match parse_duration(r) {
                Some(d) => entry.reconciler.resync = d,
                None => self.err_at_value(
                    "invalid-value",
                    &p.key("resync"),
                    "resync must be a duration from 1s to 720h, like 30s, 5m or 1h",
                ),
            }
        }
    }

    /// A list of non-empty strings.
    fn strings(&mut self, v: &Value, p: &Path, what: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in self.list(v, p, what).into_iter().flatten().enumerate() {
            match item.as_str().filter(|s| !s.is_empty()) {
                Some(s) => out.push(s.to_string()),
                None => self.err_at_value(
                    "invalid-type",
                    &p.index(i),
                    format!("{what} lists names (non-empty strings)"),
                ),
            }
        }
        out
    }

    /// `crdFile:`: the entry's apiTypes (and its CR schema) read from a CRD file beside the
    /// Katalog, as upstream reads them: group, kind, plural, singular, short names and scope from
    /// the CRD, the version marked `storage`, else the first served, else the first.
    fn crd_file(&mut self, v: &Value, p: &Path) -> Option<(ApiTypes, Option<Value>, Value)> {
        let Some(rel) = v.as_str().filter(|s| !s.is_empty()) else {
            self.err_at_value("invalid-type", p, "crdFile must be a path to a CRD file");
            return None;
        };
        let text = match self.file.beside(rel) {
            Ok(t) => t,
            Err(e) => {
                self.err_at_value("unreadable-file", p, format!("crdFile {rel:?}: {e}"));
                return None;
            }
        };
        let crd = match serde_yaml_ng::from_str::<Value>(&text) {
            Ok(c) if c.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") => c,
            Ok(_) => {
                self.err_at_value(
                    "invalid-value",
                    p,
                    format!("crdFile {rel:?} is not a CustomResourceDefinition"),
                );
                return None;
            }
            Err(e) => {
                self.err_at_value("invalid-value", p, format!("crdFile {rel:?}: {e}"));
                return None;
            }
        };
        match api_types_of_crd(&crd) {
            Ok((api, schema)) => Some((api, schema, crd)),
            Err(missing) => {
                self.err_at_value(
                    "invalid-value",
                    p,
                    format!("crdFile {rel:?} has no `{missing}`"),
                );
                None
            }
        }
    }

    /// `crFiles:`: example CRs beside the Katalog; each must be readable YAML where there are
    /// files to read (not in the agent, which only runs the Katalog).
    fn cr_files(&mut self, v: &Value, p: &Path) {
        let names = self.strings(v, p, "crFiles");
        if self.file.dir.is_none() {
            return;
        }
        for (i, rel) in names.into_iter().enumerate() {
            let e = match self.file.beside(&rel) {
                Ok(t) => match SourceFile::new(&rel, t).documents() {
                    (_, d) if d.is_empty() => continue,
                    (_, d) => d[0].message.clone(),
                },
                Err(e) => e,
            };
            self.err_at_value(
                "unreadable-file",
                &p.index(i),
                format!("crFiles {rel:?}: {e}"),
            );
        }
    }

    fn api_types(&mut self, v: &Value, p: &Path) -> Option<ApiTypes> {
        let m = self.map(v, p, "apiTypes")?;
        self.check_keys(m, p, API_KEYS, "apiTypes");
        if !m.contains_key("group") && !m.contains_key("version") && m.contains_key("kind") {
            self.err_at_key(
                "not-supported",
                p,
                "apiTypes with only `kind` is upstream Orkestra's operator over a built-in kind (selected by labelSelector), which orkestra does not support yet; give group and version of a CRD",
            );
            return None;
        }
        let group = self.string(m, "group", p, true, "apiTypes");
        let version = self.string(m, "version", p, true, "apiTypes");
        let kind = self.string(m, "kind", p, true, "apiTypes");
        let (group, version, kind) = (group?, version?, kind?);
        if let Some(k) = kind.chars().next() {
            if !k.is_ascii_uppercase() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
                self.err_at_value(
                    "invalid-value",
                    &p.key("kind"),
                    format!("kind {kind:?} must be UpperCamelCase letters and digits"),
                );
            }
        }
        let plural = self
            .string(m, "plural", p, false, "apiTypes")
            .unwrap_or_else(|| format!("{}s", kind.to_lowercase()));
        let singular = self
            .string(m, "singular", p, false, "apiTypes")
            .unwrap_or_else(|| kind.to_lowercase());
        let short_names = m
            .get("shortNames")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let scope = match m.get("scope").and_then(Value::as_str) {
            None | Some("Namespaced") => Scope::Namespaced,
            Some("Cluster") => Scope::Cluster,
            Some(other) => {
                self.err_at_value(
                    "invalid-value",
                    &p.key("scope"),
                    format!("scope must be Namespaced or Cluster, found {other:?}"),
                );
                Scope::Namespaced
            }
        };
        if !group.contains('.') {
            self.err_at_value(
                "invalid-value",
                &p.key("group"),
                format!("group {group:?} must be a DNS subdomain like example.io"),
            );
        }
        Some(ApiTypes {
            group,
            version,
            kind,
            plural,
            singular,
            short_names,
            scope,
        })
    }

    fn operator_box(&mut self, v: &Value, p: &Path, entry: &mut CrdEntry) {
        let Some(m) = self.map(v, p, "operatorBox") else {
            return;
        };
        self.check_keys(m, p, BOX_KEYS, "operatorBox");
        self.tuning(m, p, entry);
        if let Some(r) = m.get("reconciler") {
            let rp = p.key("reconciler");
            if let Some(rm) = self.map(r, &rp, "reconciler") {
                self.check_keys(rm, &rp, RECONCILER_KEYS, "reconciler");
                self.tuning(rm, &rp, entry);
            }
        }
        // The newest layout: tuning and hooks under `reconcile`, status under `emit`.
        if let Some(r) = m.get("reconcile") {
            let rp = p.key("reconcile");
            if rp
                .0
                .iter()
                .filter(|s| matches!(s, crate::path::Seg::Key(k) if k == "reconcile"))
                .count()
                > 1
            {
                self.err_at_key(
                    "invalid-value",
                    &rp,
                    "`reconcile` cannot hold another `reconcile`",
                );
            } else {
                self.operator_box(r, &rp, entry);
            }
        }
        if let Some(c) = m.get("cross") {
            let reads = self.cross(c, &p.key("cross"));
            entry.cross.extend(reads);
        }
        if let Some(e) = m.get("emit") {
            let ep = p.key("emit");
            if let Some(em) = self.map(e, &ep, "emit") {
                self.check_keys(em, &ep, EMIT_KEYS, "emit");
                if let Some(s) = em.get("status") {
                    self.entry_status(s, &ep.key("status"), entry);
                }
            }
        }
        if let Some(s) = m.get("status") {
            self.entry_status(s, &p.key("status"), entry);
        }
        for hook in [
            HookKind::OnCreate,
            HookKind::OnReconcile,
            HookKind::OnDelete,
        ] {
            if let Some(h) = m.get(hook.key()) {
                self.hook(h, &p.key(hook.key()), hook, entry);
            }
        }
        if let Some(pv) = m.get("providers") {
            let pp = p.key("providers");
            if let Some(pm) = self.map(pv, &pp, "operatorBox.providers") {
                for (name, items) in pm {
                    if KubeBlock::from_key(name).is_some() {
                        self.err_at_key(
                            "unknown-provider",
                            &pp.key(name),
                            format!(
                                "`{name}` is a Kubernetes block; put it in onCreate or onReconcile"
                            ),
                        );
                        continue;
                    }
                    self.provider_block(name, items, &pp.key(name), HookKind::OnReconcile, entry);
                }
            }
        }
    }

    fn boolean(&mut self, v: &Value, p: &Path) -> bool {
        match v {
            Value::Bool(b) => *b,
            Value::String(s) if s == "true" || s == "false" => s == "true",
            other => {
                self.err_at_value(
                    "invalid-type",
                    p,
                    format!("expected true or false, found {}", kind_of(other)),
                );
                false
            }
        }
    }

    fn hook(&mut self, v: &Value, p: &Path, hook: HookKind, entry: &mut CrdEntry) {
        let Some(m) = self.map(v, p, hook.key()) else {
            return;
        };
        for (key, items) in m {
            let bp = p.key(key);
            match KubeBlock::from_key(key) {
                Some(block) => {
                    let Some(list) = self.list(items, &bp, key) else {
                        continue;
                    };
                    for (i, item) in list.iter().enumerate() {
                        if let Some(k) = self.kube_entry(item, &bp.index(i), hook, block) {
                            entry.kube.push(k);
                        }
                    }
                }
                None => match NOT_SUPPORTED.iter().find(|(n, _)| n == key) {
                    // Upstream's `external:` HTTP calls sit where provider blocks do.
                    Some((_, feature)) if !self.providers.iter().any(|s| s.name == *key) => {
                        self.err_at_key(
                            "not-supported",
                            &bp,
                            format!("`{key}` in {} is upstream Orkestra's {feature}, which orkestra does not support yet", hook.key()),
                        )
                    }
                    _ => self.provider_block(key, items, &bp, hook, entry),
                },
            }
        }
    }

    fn kube_entry(
        &mut self,
        v: &Value,
        p: &Path,
        hook: HookKind,
        block: KubeBlock,
    ) -> Option<KubeEntry> {
        let what = format!("a `{}` entry", block.key());
        let m = self.map(v, p, &what)?;
        // A copy is named as its source unless it says otherwise.
        let copy_key = match block {
            KubeBlock::Secrets => Some("fromSecret"),
            KubeBlock::ConfigMaps => Some("fromConfigMap"),
            _ => None,
        };
        let named;
        let m = match copy_key.and_then(|k| m.get(k)).and_then(Value::as_str) {
            Some(source) if !m.contains_key("name") => {
                let mut with = m.clone();
                with.insert("name".into(), Value::String(source.to_string()));
                named = with;
                &named
            }
            _ => m,
        };
        // Upstream's spellings: a default name when the entry gives none (`<cr>-deployment`),
        // labels and annotations as a list of `{key, value}`, random
        // Secret values as `generate:`.
        let upstream;
        let m = match upstream_spellings(block, m) {
            Some(with) => {
                upstream = with;
                &upstream
            }
            None => m,
        };
        let schema = block.fields();
        let allowed: Vec<&str> = schema
            .iter()
            .map(|f| f.name)
            .chain(CONTROL_KEYS.iter().copied())
            .chain((block == KubeBlock::Secrets).then_some("generate"))
            .chain((block == KubeBlock::Secrets).then_some("once"))
            .chain((block == KubeBlock::Secrets).then_some("rotateAfter"))
            .chain(copy_key)
            .chain(copy_key.map(|_| "fromNamespace"))
            .chain(copy_key.map(|_| "toNamespaces"))
            .collect();
        // A custom object's top-level fields are its kind's (a RuntimeClass's `handler`, a
        // StorageClass's `provisioner`): the API server checks them, with strict validation.
        if block != KubeBlock::Custom {
            self.check_keys(m, p, &allowed, &what);
        }
        let generate = match m.get("generate") {
            Some(g) if block == KubeBlock::Secrets => self.generate(g, &p.key("generate")),
            _ => Vec::new(),
        };
        let id = self.node_id(m, p);
        let index = self.specs.len();
        let after = self.after(m, p);
        let tail = p.0.last().map(|s| match s {
            crate::path::Seg::Index(i) => i.to_string(),
            crate::path::Seg::Key(k) => k.clone(),
        });
        self.specs.push(NodeSpec {
            node: NodeRef::Kube(self.kube_count),
            label: format!(
                "{}[{}]",
                block.key(),
                id.clone().or(tail).unwrap_or_default()
            ),
            id: id.clone().map(|i| (i, p.key("id"))),
            source: p.to_string(),
            after,
            refs: Vec::new(),
            exposes: Exposes::Kube {
                kind: block.type_meta().map(|(_, k)| k),
                secret: block == KubeBlock::Secrets,
            },
        });
        self.node = Some(CurrentNode {
            index,
            path: p.clone(),
            skip: 0,
            secret_inputs: schema
                .iter()
                .filter(|f| f.sensitive)
                .map(|f| f.name)
                .collect(),
        });
        let for_each = match m.get("forEach") {
            Some(f) => self.for_each(f, &p.key("forEach"), id.is_some()),
            None => None,
        };
        if let Some(f) = &for_each {
            self.loop_vars = vec!["item".to_string(), f.name.clone()];
        }
        let fields = self.fields(m, p, schema, &what);
        self.loop_vars.clear();
        let copy = copy_key.and_then(|k| self.copy(m, p, k));
        // A copy stays in sync with its source: written every cycle.
        let mut enforce = hook == HookKind::OnReconcile || copy.is_some();
        if let Some(r) = m.get("reconcile") {
            enforce |= self.boolean(r, &p.key("reconcile"));
        }
        // Kubernetes' `data` is base64; upstream encodes text itself. A literal that is not base64
        // would be refused by the API server at every reconcile: say so here.
        if block == KubeBlock::Secrets {
            if let Some(Value::Object(data)) = m.get("data") {
                for (k, v) in data {
                    let Some(t) = v.as_str().filter(|t| !t.contains("{{")) else {
                        continue;
                    };
                    if base64::Engine::decode(&base64::engine::general_purpose::STANDARD, t)
                        .is_err()
                    {
                        self.err_at_value(
                            "invalid-value",
                            &p.key("data").key(k),
                            format!("Secret data `{k}` is not base64 (Kubernetes' `data` is; upstream Orkestra encodes text itself): put text under `stringData`"),
                        );
                    }
                }
            }
        }
        // Upstream's `once: true` on a Secret: made once and kept, never rewritten.
        if let Some(o) = m.get("once").filter(|_| block == KubeBlock::Secrets) {
            if self.boolean(o, &p.key("once")) {
                enforce = false;
            }
        }
        // `rotateAfter` (with `once`): made again, generated keys anew, once it is that old.
        let mut rotate_after = None;
        if let Some(r) = m.get("rotateAfter").filter(|_| block == KubeBlock::Secrets) {
            let rp = p.key("rotateAfter");
            match parse_age(r) {
                None => self.err_at_value(
                    "invalid-value",
                    &rp,
                    format!("rotateAfter {}: an age such as 90d, 12w, 6mo or 1y (at most 10 years)", crate::template::functions::to_text(r)),
                ),
                Some(_) if enforce => self.warn_at_key(
                    "rotate-without-once",
                    &rp,
                    "rotateAfter renews a Secret that is created once (under onCreate, or `once: true`, and without `reconcile: true`); this Secret is rewritten every cycle, so it is never rotated",
                ),
                Some(d) => rotate_after = Some(d),
            }
        }
        if hook == HookKind::OnDelete && block != KubeBlock::Jobs {
            self.warn_at_key(
                "ondelete-kind",
                p,
                format!("onDelete runs one-shot jobs; a `{}` entry here is created at deletion and then removed with the CR", block.key()),
            );
        }
        let conditions = self.conditions(m, p);
        self.node = None;
        let ready_when = self.ready_when(m, p);
        self.kube_count += 1;
        Some(KubeEntry {
            hook,
            block,
            source: p.to_string(),
            fields,
            enforce,
            conditions,
            id,
            ready_when,
            generate,
            for_each,
            rotate_after,
            copy,
        })
    }

    /// `fromSecret`/`fromConfigMap` (`key`), `fromNamespace` and `toNamespaces`, or `None`
    /// when the entry is no copy. The source must be written out: a CR must not choose what
    /// another namespace gives away.
    fn copy(&mut self, m: &Map<String, Value>, p: &Path, key: &str) -> Option<CopyBlock> {
        let (from, ns, to) = (m.get(key), m.get("fromNamespace"), m.get("toNamespaces"));
        if from.is_none() && ns.is_none() && to.is_none() {
            return None;
        }
        let literal = |l: &mut Self, v: Option<&Value>, k: &str| -> Option<String> {
            match v.and_then(Value::as_str) {
                Some(s) if !s.contains("{{") && !s.is_empty() => Some(s.to_string()),
                Some(_) => {
                    l.err_at_value("invalid-value", &p.key(k), format!("`{k}` is written out, not templated: a CR must not choose which object of which namespace is copied"));
                    None
                }
                None => {
                    l.err_at_key("missing-field", p, format!("a copy needs `{key}` and `fromNamespace` (the object copied and where it lives)"));
                    None
                }
            }
        };
        let from_name = literal(self, from, key);
        let from_namespace = if from_name.is_some() {
            literal(self, ns, "fromNamespace")
        } else {
            None
        };
        let to = to.map(|t| self.tv(t, &p.key("toNamespaces")));
        Some(CopyBlock {
            from_namespace: from_namespace?,
            from_name: from_name?,
            to,
        })
    }

    /// `forEach: {field: spec.items, as: name}`: one object per element of a list (or entry of
    /// a map, as `{key, value}`), each rendered with `.item` and `.<as>` bound to it.
    fn for_each(&mut self, v: &Value, p: &Path, has_id: bool) -> Option<crate::katalog::ForEach> {
        let m = self.map(v, p, "forEach")?;
        self.check_keys(m, p, &["field", "as"], "forEach");
        if has_id {
            self.err_at_key(
                "invalid-value",
                p,
                "an entry with `forEach` makes several objects, so it cannot have an `id` others read",
            );
        }
        let field = self.string(m, "field", p, true, "forEach")?;
        let field = match crate::validation::parse_field(
            field.trim_start_matches("{{").trim_end_matches("}}").trim(),
        ) {
            Ok(f) => f,
            Err(e) => {
                self.err_at_value("invalid-value", &p.key("field"), e);
                return None;
            }
        };
        let name = self
            .string(m, "as", p, false, "forEach")
            .unwrap_or_else(|| "item".into());
        let reserved = [
            "metadata",
            "spec",
            "status",
            "resources",
            "children",
            "apiVersion",
            "kind",
        ];
        let ident = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if !ident || reserved.contains(&name.as_str()) {
            self.err_at_value(
                "invalid-value",
                &p.key("as"),
                format!("`as: {name}` must be a name that is not a CR field (metadata, spec, status, …)"),
            );
            return None;
        }
        Some(crate::katalog::ForEach { field, name })
    }

    /// Compile the fields of an entry, checking required ones and literal values.
    fn fields(
        &mut self,
        m: &Map<String, Value>,
        p: &Path,
        schema: &[FieldSchema],
        what: &str,
    ) -> Tv {
        for f in schema.iter().filter(|f| f.required) {
            if m.get(f.name).is_none_or(Value::is_null) {
                self.err_at_key("missing-field", p, format!("{what} needs `{}`", f.name));
            }
        }
        let mut items = Vec::new();
        for (k, v) in m {
            // Not fields of the object: `generate`/`once` (Secrets), upstream's `hasStatus`
            // (custom objects; orkestra reads the live object's status either way).
            if CONTROL_KEYS.contains(&k.as_str())
                || matches!(k.as_str(), "generate" | "once" | "hasStatus")
            {
                continue;
            }
            let fp = p.key(k);
            let tv = self.tv(v, &fp);
            if let Some(f) = schema.iter().find(|f| f.name == k) {
                self.check_literal(&tv, f, &fp);
                if let (Tv::Tpl(_), Some(u)) = (&tv, self.uses.last_mut()) {
                    if u.path == fp {
                        u.target = Some(f.ty);
                    }
                }
            }
            items.push((k.clone(), tv));
        }
        Tv::Map(items)
    }

    /// A literal value must already have the field's type and pass its validators.
    fn check_literal(&mut self, tv: &Tv, f: &FieldSchema, p: &Path) {
        if let Tv::Map(items) = tv {
            if f.ty == FieldType::Object && !f.children.is_empty() {
                let names: Vec<&str> = f.children.iter().map(|c| c.name).collect();
                for (k, v) in items {
                    match f.children.iter().find(|c| c.name == k) {
                        Some(c) => self.check_literal(v, c, &p.key(k)),
                        None => {
                            let hint = did_you_mean(k, names.iter().copied());
                            self.err_at_key(
                                "unknown-field",
                                &p.key(k),
                                format!("unknown field `{k}` in `{}`{hint}", f.name),
                            );
                        }
                    }
                }
                for c in f.children.iter().filter(|c| c.required) {
                    if tv.get(c.name).is_none() {
                        self.err_at_key(
                            "missing-field",
                            p,
                            format!("`{}` needs `{}`", f.name, c.name),
                        );
                    }
                }
                // Rules over the whole map, when no template leaves part of it unknown.
                if let Some(lit) = tv.literal() {
                    for val in &f.validators {
                        if let Err(e) = val.check(&lit) {
                            self.err_at_key("invalid-value", p, format!("`{}`: {e}", f.name));
                        }
                    }
                }
                return;
            }
        }
        let Some(lit) = tv.literal() else { return };
        if lit.is_null() {
            return;
        }
        match f.ty.coerce(&lit) {
            Err(e) => self.err_at_value("type-mismatch", p, format!("`{}`: {e}", f.name)),
            Ok(v) => {
                for val in &f.validators {
                    if let Err(e) = val.check(&v) {
                        self.err_at_value("invalid-value", p, format!("`{}`: {e}", f.name));
                    }
                }
            }
        }
    }

    fn provider_block(
        &mut self,
        name: &str,
        v: &Value,
        p: &Path,
        hook: HookKind,
        entry: &mut CrdEntry,
    ) {
        let schema = self.providers.iter().find(|s| s.name == name);
        if schema.is_none() {
            let candidates: Vec<&str> = KubeBlock::ALL
                .iter()
                .map(|b| b.key())
                .chain(self.providers.iter().map(|s| s.name))
                .collect();
            let hint = did_you_mean(name, candidates.iter().copied());
            let msg =
                format!("`{name}` is neither a Kubernetes block nor a registered provider{hint}");
            if self.declared.get(name).copied().unwrap_or(false) {
                self.err_at_key("unknown-provider", p, msg);
            } else if self.declared.contains_key(name) || hint.is_empty() {
                self.warn_at_key(
                    "unknown-provider",
                    p,
                    format!("{msg}; its items are skipped"),
                );
            } else {
                // A near-miss of a known name is almost certainly a typo.
                self.err_at_key("unknown-field", p, msg);
            }
        }
        if hook == HookKind::OnDelete {
            self.warn_at_key(
                "ondelete-provider",
                p,
                "provider resources are deleted on CR deletion according to their deletionPolicy; a provider block under onDelete is ignored",
            );
            return;
        }
        let Some(items) = self.list(v, p, &format!("the `{name}` block")) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            self.node = None;
            let ip = p.index(i);
            let Some(m) = self.map(item, &ip, &format!("a `{name}` item")) else {
                continue;
            };
            let kinds: Vec<&String> = m
                .keys()
                .filter(|k| !ITEM_CONTROL_KEYS.contains(&k.as_str()))
                .collect();
            let [kind] = kinds.as_slice() else {
                self.err_at_value(
                    "invalid-value",
                    &ip,
                    format!(
                        "a `{name}` item must have exactly one kind key (like `s3:`), found {}",
                        kinds.len()
                    ),
                );
                continue;
            };
            let kp = ip.key(kind);
            let what = format!("`{name}.{kind}`");
            let kind_schema = schema.and_then(|s| s.kind(kind));
            let id = self.node_id(m, &ip);
            let index = self.specs.len();
            let after = self.after(m, &ip);
            self.specs.push(NodeSpec {
                node: NodeRef::External(self.external_count),
                label: match &id {
                    Some(id) => format!("{name}.{kind} {id}"),
                    None => format!("{name}.{kind}[{i}]"),
                },
                id: id.clone().map(|i| (i, ip.key("id"))),
                source: kp.to_string(),
                after,
                refs: Vec::new(),
                exposes: Exposes::External {
                    outputs: kind_schema.map(|k| k.outputs.clone()),
                },
            });
            self.node = Some(CurrentNode {
                index,
                path: ip.clone(),
                skip: 1,
                secret_inputs: kind_schema
                    .map(|k| {
                        k.fields
                            .iter()
                            .filter(|f| f.sensitive)
                            .map(|f| f.name)
                            .collect()
                    })
                    .unwrap_or_default(),
            });
            let fields = match (schema, schema.and_then(|s| s.kind(kind))) {
                (Some(s), None) => {
                    let hint = did_you_mean(kind, s.kinds.iter().map(|k| k.name));
                    self.err_at_key(
                        "unknown-kind",
                        &kp,
                        format!("provider `{name}` has no kind `{kind}`{hint}"),
                    );
                    continue;
                }
                (_, Some(ks)) => {
                    let Some(fm) = self.map(&m[kind.as_str()], &kp, &what) else {
                        continue;
                    };
                    let allowed: Vec<&str> = ks.fields.iter().map(|f| f.name).collect();
                    self.check_keys(fm, &kp, &allowed, &what);
                    self.fields(fm, &kp, &ks.fields, &what)
                }
                (None, None) => self.tv(&m[kind.as_str()], &kp),
            };
            let conditions = self.conditions(m, &ip);
            self.node = None;
            let ready_when = self.ready_when(m, &ip);
            self.external_count += 1;
            entry.external.push(ProviderItem {
                hook,
                provider: name.to_string(),
                kind: kind.to_string(),
                source: kp.to_string(),
                fields,
                conditions,
                registered: schema.is_some(),
                id,
                ready_when,
            });
        }
    }

    fn status(&mut self, v: &Value, p: &Path) -> Vec<StatusField> {
        let mut out = Vec::new();
        let fields = self.items(
            v,
            p,
            ("status", STATUS_KEYS),
            "fields",
            ("a status field", STATUS_FIELD_KEYS),
        );
        for (ip, fm) in fields {
            let Some(path) = self.string(fm, "path", &ip, true, "a status field") else {
                continue;
            };
            let path = path
                .trim_start_matches('.')
                .trim_start_matches("status.")
                .to_string();
            if matches!(
                path.split('.').next(),
                Some("conditions" | "observedGeneration" | "external" | "waiting")
            ) {
                self.err_at_value(
                    "invalid-value",
                    &ip.key("path"),
                    format!("status.{path} is written by orkestra itself; choose another path"),
                );
                continue;
            }
            let value = match fm.get("value") {
                Some(v) => self.tv(v, &ip.key("value")),
                None => {
                    self.err_at_key("missing-field", &ip, "a status field needs `value`");
                    continue;
                }
            };
            let conditions = self.conditions(fm, &ip);
            let clear_on_false = fm
                .get("clearOnFalse")
                .is_some_and(|b| self.boolean(b, &ip.key("clearOnFalse")));
            out.push(StatusField {
                path,
                value,
                conditions,
                clear_on_false,
            });
        }
        out
    }

    fn conditions(&mut self, m: &Map<String, Value>, p: &Path) -> Conditions {
        let mut c = Conditions::default();
        for (key, dest) in [("when", &mut c.all), ("or", &mut c.any)] {
            let Some(v) = m.get(key) else { continue };
            let cp = p.key(key);
            // A single condition may be written without the list.
            let items: Vec<(Path, &Value)> = match v {
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (cp.index(i), x))
                    .collect(),
                Value::Object(_) => vec![(cp.clone(), v)],
                other => {
                    self.err_at_value(
                        "invalid-type",
                        &cp,
                        format!(
                            "`{key}` must be a list of conditions, found {}",
                            kind_of(other)
                        ),
                    );
                    continue;
                }
            };
            for (ip, item) in items {
                if let Some(cond) = self.condition(item, &ip) {
                    dest.push(cond);
                }
            }
        }
        c
    }

    fn condition(&mut self, v: &Value, p: &Path) -> Option<Condition> {
        let m = self.map(v, p, "a condition")?;
        let field = self.string(m, "field", p, true, "a condition");
        let mut operator = None;
        let mut value = m.get("value");
        for (k, val) in m {
            if CONDITION_KEYS.contains(&k.as_str()) {
                continue;
            }
            match Operator::parse(k) {
                Some(op) if operator.is_none() && !m.contains_key("operator") => {
                    operator = Some(op);
                    value = Some(val);
                }
                Some(_) => {
                    self.err_at_key("invalid-value", &p.key(k), "a condition has one operator")
                }
                None => {
                    let allowed: Vec<&str> = CONDITION_KEYS
                        .iter()
                        .chain(Operator::NAMES)
                        .copied()
                        .collect();
                    let hint = did_you_mean(k, allowed);
                    self.err_at_key(
                        "unknown-field",
                        &p.key(k),
                        format!("unknown field `{k}` in a condition{hint}"),
                    );
                }
            }
        }
        if let Some(op) = m.get("operator") {
            match op.as_str().and_then(Operator::parse) {
                Some(o) => operator = Some(o),
                None => {
                    let hint =
                        did_you_mean(op.as_str().unwrap_or(""), Operator::NAMES.iter().copied());
                    self.err_at_value(
                        "invalid-value",
                        &p.key("operator"),
                        format!("unknown operator {op}{hint}"),
                    );
                    return None;
                }
            }
        }
        let field = field?;
        let Some(operator) = operator else {
            self.err_at_key(
                "missing-field",
                p,
                "a condition needs `operator` (or a shorthand like `equals: x`)",
            );
            return None;
        };
        if operator.needs_value() && value.is_none() {
            self.err_at_key(
                "missing-field",
                p,
                format!(
                    "operator `{}` needs `value`",
                    Operator::NAMES[operator as usize]
                ),
            );
            return None;
        }
        // `spec.tier`, `.spec.tier` and `{{ .spec.tier }}` all name the same field.
        let subject_src = if field.contains("{{") {
            field.clone()
        } else {
            format!("{{{{ .{} }}}}", field.trim_start_matches('.'))
        };
        let subject = self.compile(&subject_src, &p.key("field"))?;
        let regex = if operator == Operator::Regex {
            let src = value.and_then(Value::as_str).unwrap_or_default();
            match regex::Regex::new(src) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.err_at_value(
                        "invalid-value",
                        &p.key("value"),
                        format!("invalid regex: {e}"),
                    );
                    return None;
                }
            }
        } else {
            None
        };
        let value = value.map(|v| self.tv(v, &p.key("value")));
        Some(Condition {
            field,
            subject: Tv::Tpl(subject),
            operator,
            value,
            regex,
        })
    }

    /// Compile a value tree; template errors become diagnostics and the scalar stays literal.
    fn tv(&mut self, v: &Value, p: &Path) -> Tv {
        match v {
            Value::String(s) => match self.compile(s, p) {
                Some(Template::Literal(v)) => Tv::Lit(v),
                Some(t) => Tv::Tpl(t),
                // Already reported; null keeps later checks from piling on.
                None => Tv::Lit(Value::Null),
            },
            Value::Object(m) => Tv::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), self.tv(v, &p.key(k))))
                    .collect(),
            ),
            Value::Array(a) => Tv::List(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| self.tv(v, &p.index(i)))
                    .collect(),
            ),
            other => Tv::Lit(other.clone()),
        }
    }

    fn compile(&mut self, src: &str, p: &Path) -> Option<Template> {
        match self.set.compile(src) {
            Ok(t) => {
                if !matches!(t, Template::Literal(_)) {
                    self.record_refs(&t, p);
                }
                if !matches!(t, Template::Literal(_)) && !self.in_ready_when {
                    self.uses.push(TemplateUse {
                        path: p.clone(),
                        entry: self.entry_index,
                        template: t.clone(),
                        target: None,
                        in_status: self.in_status,
                        loop_vars: self.loop_vars.clone(),
                    });
                }
                Some(t)
            }
            Err(e) => {
                let mut pos = self.doc.pos.value(p);
                // Point into the scalar when it sits on one line; skip an opening quote.
                if let Some(line) = self.file.line(pos.line) {
                    let rest: String = line.chars().skip(pos.column - 1).collect();
                    let quoted = rest.starts_with('"') || rest.starts_with('\'');
                    let body = if quoted { &rest[1..] } else { rest.as_str() };
                    if body.starts_with(&src[..e.offset.min(src.len())]) {
                        pos.column += e.offset + usize::from(quoted);
                    }
                }
                self.diag(Severity::Error, e.code, pos, e.message);
                None
            }
        }
    }
}

impl Loader<'_> {
    /// `id:` of a declaration.
    fn node_id(&mut self, m: &Map<String, Value>, p: &Path) -> Option<String> {
        self.string(m, "id", p, false, "a declaration")
    }

    /// `after: [id, ...]` (a single id may be written without the list).
    fn after(&mut self, m: &Map<String, Value>, p: &Path) -> Vec<(String, Path)> {
        let ap = p.key("after");
        match m.get("after") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![(s.clone(), ap)],
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v.as_str() {
                        Some(s) => out.push((s.to_string(), ap.index(i))),
                        None => self.err_at_value(
                            "invalid-type",
                            &ap.index(i),
                            format!("`after` lists ids, found {}", kind_of(v)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.err_at_value(
                    "invalid-type",
                    &ap,
                    format!("`after` must be a list of ids, found {}", kind_of(other)),
                );
                Vec::new()
            }
        }
    }

    /// `readyWhen:` — the `when` syntax, evaluated on the live object (or the external row).
    fn ready_when(&mut self, m: &Map<String, Value>, p: &Path) -> Conditions {
        let mut c = Conditions::default();
        let Some(v) = m.get("readyWhen") else {
            return c;
        };
        let rp = p.key("readyWhen");
        let items: Vec<(Path, &Value)> = match v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| (rp.index(i), x))
                .collect(),
            Value::Object(_) => vec![(rp.clone(), v)],
            other => {
                self.err_at_value(
                    "invalid-type",
                    &rp,
                    format!(
                        "`readyWhen` must be a list of conditions, found {}",
                        kind_of(other)
                    ),
                );
                return c;
            }
        };
        self.in_ready_when = true;
        for (ip, item) in items {
            if let Some(cond) = self.condition(item, &ip) {
                c.all.push(cond);
            }
        }
        self.in_ready_when = false;
        c
    }

    /// `generate: {password: {length: 32, alphabet: ...}}` on a Secret.
    fn generate(&mut self, v: &Value, p: &Path) -> Vec<Generate> {
        let mut out = Vec::new();
        let Some(m) = self.map(v, p, "generate") else {
            return out;
        };
        for (key, spec) in m {
            let kp = p.key(key);
            let mut g = Generate {
                key: key.clone(),
                length: crate::generate::DEFAULT_LENGTH,
                alphabet: crate::generate::ALPHANUMERIC.to_string(),
            };
            match spec {
                Value::Null => {}
                Value::Object(sm) => {
                    self.check_keys(sm, &kp, &["length", "alphabet"], "a generated key");
                    if let Some(l) = sm.get("length") {
                        match l.as_u64().filter(|l| crate::generate::LENGTHS.contains(l)) {
                            Some(l) => g.length = l as usize,
                            None => self.err_at_value(
                                "invalid-value",
                                &kp.key("length"),
                                format!(
                                    "length must be an integer from {} to {}",
                                    crate::generate::LENGTHS.start(),
                                    crate::generate::LENGTHS.end()
                                ),
                            ),
                        }
                    }
                    if let Some(a) = sm.get("alphabet") {
                        match a.as_str().map(crate::generate::alphabet) {
                            Some(Ok(a)) => g.alphabet = a,
                            Some(Err(e)) => {
                                self.err_at_value("invalid-value", &kp.key("alphabet"), e)
                            }
                            None => self.err_at_value(
                                "invalid-type",
                                &kp.key("alphabet"),
                                "alphabet must be a string",
                            ),
                        }
                    }
                }
                other => {
                    self.err_at_value(
                        "invalid-type",
                        &kp,
                        format!(
                            "a generated key takes {{length, alphabet}} or nothing, found {}",
                            kind_of(other)
                        ),
                    );
                    continue;
                }
            }
            out.push(g);
        }
        out
    }

    /// Note the `.resources.<id>` reads of a template compiled at `p`.
    fn record_refs(&mut self, t: &Template, p: &Path) {
        if self.in_ready_when {
            return;
        }
        let reads: Vec<(String, Vec<String>)> = t
            .paths()
            .into_iter()
            .filter(|path| path.first().map(String::as_str) == Some("resources"))
            .filter_map(|path| Some((path.get(1)?.clone(), path[2..].to_vec())))
            .collect();
        if reads.is_empty() {
            return;
        }
        if self.in_status {
            let field = p.to_string();
            for (id, rest) in reads {
                self.status_refs.push(Ref {
                    id,
                    rest,
                    at: p.clone(),
                    field: field.clone(),
                    secret_input: false,
                });
            }
            return;
        }
        let Some(node) = &self.node else {
            let pos = self.doc.pos.value(p);
            self.diag(
                Severity::Error,
                "unknown-id",
                pos,
                "`.resources` is available only in declarations and status fields",
            );
            return;
        };
        let rel = &p.0[node.path.0.len().min(p.0.len())..];
        let field = Path(rel.to_vec()).to_string();
        let secret_input = match rel.get(node.skip) {
            Some(crate::path::Seg::Key(k)) => node.secret_inputs.contains(&k.as_str()),
            _ => false,
        };
        let index = node.index;
        for (id, rest) in reads {
            self.specs[index].refs.push(Ref {
                id,
                rest,
                at: p.clone(),
                field: field.clone(),
                secret_input,
            });
        }
    }

    /// Check the entry's declarations as a graph; problems become diagnostics.
    fn graph(&mut self) -> graph::Graph {
        let specs = std::mem::take(&mut self.specs);
        let status_refs = std::mem::take(&mut self.status_refs);
        self.kube_count = 0;
        self.external_count = 0;
        let (g, problems) = graph::build(specs, &status_refs);
        for pr in problems {
            let pos = self.doc.pos.value(&pr.at);
            self.diag(Severity::Error, pr.code, pos, pr.message);
        }
        g
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Follow a path in a value.
pub(crate) fn pointer<'v>(v: &'v Value, p: &Path) -> Option<&'v Value> {
    let mut cur = v;
    for s in &p.0 {
        cur = match s {
            crate::path::Seg::Key(k) => cur.get(k)?,
            crate::path::Seg::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// An entry's fields in orkestra's spelling where upstream's differs (`None` when they agree):
/// the block's default name filled in, `labels`/`annotations` lists of `{key, value}` made maps.
fn upstream_spellings(block: KubeBlock, m: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut out: Option<Map<String, Value>> = None;
    if let Some(default) = block.default_name() {
        if m.get("name").is_none_or(Value::is_null) {
            out.get_or_insert_with(|| m.clone())
                .insert("name".into(), Value::String(default.into()));
        }
    }
    if block == KubeBlock::Secrets {
        random_keys_to_generate(m, &mut out);
    }
    for key in ["labels", "annotations"] {
        let Some(Value::Array(items)) = m.get(key) else {
            continue;
        };
        let pairs: Option<Map<String, Value>> = items
            .iter()
            .map(|i| {
                let k = i.get("key")?.as_str()?.to_string();
                Some((k, i.get("value").cloned().unwrap_or(Value::Null)))
            })
            .collect();
        // Anything else stays as written, for the type check to report.
        if let Some(pairs) = pairs {
            out.get_or_insert_with(|| m.clone())
                .insert(key.into(), Value::Object(pairs));
        }
    }
    out
}

/// Upstream's `data: {password: "{{ randomAlphanumeric 32 }}"}` on a Secret, as orkestra's
/// `generate: {password: {length: 32}}`: made once from the operating system's randomness and
/// kept, instead of a template that would change on every render.
fn random_keys_to_generate(m: &Map<String, Value>, out: &mut Option<Map<String, Value>>) {
    let random = regex::Regex::new(r"^\{\{-?\s*randomAlphanumeric\s+(\d{1,4})\s*-?\}\}$")
        .expect("a valid pattern");
    for field in ["data", "stringData"] {
        let Some(Value::Object(data)) = m.get(field) else {
            continue;
        };
        let made: Vec<(String, u64)> = data
            .iter()
            .filter_map(|(k, v)| {
                let c = random.captures(v.as_str()?.trim())?;
                Some((k.clone(), c[1].parse().ok()?))
            })
            .collect();
        if made.is_empty() {
            continue;
        }
        let with = out.get_or_insert_with(|| m.clone());
        let mut rest = data.clone();
        let mut generate = with
            .get("generate")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, n) in made {
            rest.remove(&k);
            generate.insert(k, serde_json::json!({"length": n}));
        }
        with.insert(field.into(), Value::Object(rest));
        with.insert("generate".into(), Value::Object(generate));
    }
}

/// The first step of `field` the schema does not declare (a step under an object that keeps
/// unknown fields, or with no schema at all, is not declared), if any.
/// How a CR schema holds a field a validation rule names.
enum Declared {
    /// Declared: a CEL rule in the CRD can read it.
    Yes,
    /// Kept without being declared (no schema, `x-kubernetes-preserve-unknown-fields`, or
    /// metadata other than `name`): only a ValidatingAdmissionPolicy can read it.
    Kept,
    /// Dropped by the schema (pruned): the step that is missing.
    Pruned(String),
}

fn declared(schema: Option<&Value>, field: &[String]) -> Declared {
    if field.first().map(String::as_str) == Some("metadata") {
        return if field.len() == 2 && matches!(field[1].as_str(), "name" | "generateName") {
            Declared::Yes
        } else {
            Declared::Kept
        };
    }
    let Some(mut cur) = schema else {
        return Declared::Kept;
    };
    for (i, step) in field.iter().enumerate() {
        match cur.get("properties").and_then(|p| p.get(step)) {
            Some(next) => cur = next,
            None if cur.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) => {
                return Declared::Kept
            }
            None => return Declared::Pruned(field[..=i].join(".")),
        }
    }
    Declared::Yes
}

/// `doc` (the Katalog document `katalog` was loaded from) with the apiTypes read from each
/// `crdFile` written into its entry: what `kubectl orkestra apply` stores, so the agent, which
/// has no files beside the Katalog, loads the same entries.
pub fn with_api_types(doc: &Value, katalog: &Katalog) -> Value {
    let mut out = doc.clone();
    let entries: Vec<&mut Value> = match out.pointer_mut("/spec/crds") {
        Some(Value::Object(m)) => m.values_mut().collect(),
        Some(Value::Array(a)) => a.iter_mut().collect(),
        _ => Vec::new(),
    };
    for (v, entry) in entries.into_iter().zip(&katalog.entries) {
        let Some(m) = v.as_object_mut() else { continue };
        if entry.crd_file.is_none() || m.contains_key("apiTypes") {
            continue;
        }
        let a = &entry.api;
        let scope = match a.scope {
            Scope::Namespaced => "Namespaced",
            Scope::Cluster => "Cluster",
        };
        m.insert(
            "apiTypes".into(),
            serde_json::json!({
                "group": a.group, "version": a.version, "kind": a.kind, "plural": a.plural,
                "singular": a.singular, "shortNames": a.short_names, "scope": scope,
            }),
        );
        if let (Some(schema), false) = (&entry.schema, m.contains_key("schema")) {
            m.insert("schema".into(), schema.clone());
        }
    }
    // The notes, included files resolved, where a Katalog object keeps them.
    if let Some(m) = out.as_object_mut() {
        m.remove("notes");
    }
    if !katalog.notes.is_empty() {
        if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
            let list: Vec<Value> = katalog
                .notes
                .iter()
                .map(|n| {
                    let mut v = serde_json::json!({"name": n.name, "expression": n.expression});
                    if n.shadow {
                        v["shadow"] = Value::Bool(true);
                    }
                    v
                })
                .collect();
            spec.insert("notes".into(), Value::Array(list));
        }
    }
    out
}

/// A Service written without `selector` selects the pods of the entry's only workload (a
/// Deployment or StatefulSet), whatever the two are named: upstream names them apart by default
/// (`<cr>-svc`, `<cr>-deployment`), and a Service selecting by its own name would route to no
/// pod. With several workloads (or none) it keeps selecting by its own name.
fn select_the_only_workload(entry: &mut CrdEntry, set: &mut TemplateSet) {
    let workloads: Vec<&KubeEntry> = entry
        .kube
        .iter()
        .filter(|k| matches!(k.block, KubeBlock::Deployments | KubeBlock::StatefulSets))
        .filter(|k| k.for_each.is_none())
        .collect();
    let [workload] = workloads.as_slice() else {
        return;
    };
    let Tv::Map(fields) = &workload.fields else {
        return;
    };
    let Some((_, name)) = fields.iter().find(|(k, _)| k == "name") else {
        return;
    };
    let Ok(instance) = set.compile("{{ .metadata.name }}") else {
        return;
    };
    // The workload's pod labels (objects::Owner::selector), as templates.
    let selector = Tv::Map(vec![
        (crate::objects::labels::NAME.to_string(), name.clone()),
        (
            crate::objects::labels::INSTANCE.to_string(),
            Tv::Tpl(instance),
        ),
    ]);
    for k in entry
        .kube
        .iter_mut()
        .filter(|k| k.block == KubeBlock::Services)
    {
        if let Tv::Map(f) = &mut k.fields {
            let external = f.iter().any(|(k, v)| {
                k == "type" && matches!(v, Tv::Lit(Value::String(t)) if t == "ExternalName")
            });
            if !external && !f.iter().any(|(k, _)| k == "selector") {
                f.push(("selector".into(), selector.clone()));
            }
        }
    }
}

/// One note of an included notes file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludedNote {
    name: String,
    expression: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    shadow: bool,
}

impl From<IncludedNote> for Note {
    fn from(n: IncludedNote) -> Self {
        Note {
            name: n.name,
            expression: n.expression,
            shadow: n.shadow,
        }
    }
}

/// The apiTypes and the storage version's openAPIV3Schema of a CRD, or the field it lacks.
pub fn api_types_of_crd(crd: &Value) -> Result<(ApiTypes, Option<Value>), &'static str> {
    let text = |p: &'static str| {
        crd.pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .ok_or(p)
    };
    let group = text("/spec/group").map_err(|_| "spec.group")?;
    let kind = text("/spec/names/kind").map_err(|_| "spec.names.kind")?;
    let plural = text("/spec/names/plural").map_err(|_| "spec.names.plural")?;
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or("spec.versions")?;
    let flag = |v: &&Value, f: &str| v.get(f).and_then(Value::as_bool) == Some(true);
    let chosen = versions
        .iter()
        .find(|v| flag(v, "storage"))
        .or_else(|| versions.iter().find(|v| flag(v, "served")))
        .unwrap_or(&versions[0]);
    let version = chosen
        .get("name")
        .and_then(Value::as_str)
        .ok_or("spec.versions[].name")?
        .to_string();
    let singular = text("/spec/names/singular").unwrap_or_else(|_| kind.to_lowercase());
    let short_names = crd
        .pointer("/spec/names/shortNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let scope = match crd.pointer("/spec/scope").and_then(Value::as_str) {
        Some("Cluster") => Scope::Cluster,
        _ => Scope::Namespaced,
    };
    let schema = chosen.pointer("/schema/openAPIV3Schema").cloned();
    Ok((
        ApiTypes {
            group,
            version,
            kind,
            plural,
            singular,
            short_names,
            scope,
        },
        schema,
    ))
}

/// The longest duration a Katalog or flag may give (30 days): longer ones are errors, so no
/// input can overflow a clock (`Instant + Duration` panics on overflow).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// `30s`, `5m`, `1h`, `1h30m`, or a number of seconds; `None` if malformed, zero or longer than
/// [`MAX_DURATION`].
pub fn parse_duration(v: &Value) -> Option<Duration> {
    bounded_duration(v, false, MAX_DURATION)
}

/// The longest `rotateAfter` (ten years).
pub const MAX_AGE: Duration = Duration::from_secs(3650 * 24 * 3600);

/// An age such as a Secret's `rotateAfter`: [`parse_duration`]'s units and upstream's long ones,
/// `d` (days), `w` (weeks), `mo` (30 days) and `y` (365 days), up to [`MAX_AGE`].
pub fn parse_age(v: &Value) -> Option<Duration> {
    bounded_duration(v, true, MAX_AGE)
}

fn bounded_duration(v: &Value, long_units: bool, max: Duration) -> Option<Duration> {
    let within = |secs: u64| {
        let d = Duration::from_secs(secs);
        (secs > 0 && d <= max).then_some(d)
    };
    if let Some(n) = v.as_u64() {
        return within(n);
    }
    let s = v.as_str()?.trim();
    let mut total = 0u64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' if long_units && chars.peek() == Some(&'o') => {
                chars.next();
                30 * 86_400
            }
            'm' => 60,
            'h' => 3600,
            'd' if long_units => 86_400,
            'w' if long_units => 7 * 86_400,
            'y' if long_units => 365 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !num.is_empty() {
        total = total.checked_add(num.parse::<u64>().ok()?)?;
    }
    within(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_and_ages_are_bounded_and_ages_know_upstreams_long_units() {
        assert_eq!(
            parse_duration(&json!("1h30m")),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_duration(&json!(45)), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration(&json!("2d")), None, "no days in a resync");
        assert_eq!(parse_duration(&json!("721h")), None);
        assert_eq!(parse_duration(&json!("6000000000000000h")), None);
        assert_eq!(parse_duration(&json!("0s")), None);
        let day = 86_400;
        assert_eq!(
            parse_age(&json!("90d")),
            Some(Duration::from_secs(90 * day))
        );
        assert_eq!(parse_age(&json!("2w")), Some(Duration::from_secs(14 * day)));
        assert_eq!(
            parse_age(&json!("6mo")),
            Some(Duration::from_secs(180 * day))
        );
        assert_eq!(
            parse_age(&json!("1y12h")),
            Some(Duration::from_secs(365 * day + 43_200))
        );
        assert_eq!(parse_age(&json!("5m")), Some(Duration::from_secs(300)));
        assert_eq!(parse_age(&json!("11y")), None);
        assert_eq!(parse_age(&json!("3x")), None);
        assert_eq!(parse_age(&json!("99999999999999999999y")), None);
    }
}
