//! `operatorBox.cross`: reads of other CRs (upstream Orkestra's cross-operator reads).
//!
//! A read names another entry of the same Katalog (`crd`), a selector (a templated `name`, or
//! `matchLabels`), the name templates reach the result by (`as`) and whether one CR or all
//! matching ones are wanted (`strategy: first | all`). Templates then read `.cross.<as>.found`,
//! `.name`, `.namespace`, `.labels`, `.annotations`, `.spec` and `.status`; a CR that is not
//! there is `{found: false, spec: {}, status: {}}`, never an error (upstream's contract: the
//! Katalog gates on `found` itself).
//!
//! The model is split the way the rest of the engine is: [`requests`] renders what to read
//! (pure), the caller reads it (the agent and `plan` from the API server), and [`value`] turns
//! what was found into the `.cross` tree (pure). A read stays in the CR's own namespace: a
//! namespaced CR cannot read another tenant's CRs through a Katalog.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::katalog::{ApiTypes, CrdEntry, Katalog, Scope as CrScope};
use crate::render::RenderError;
use crate::template::Scope;
use crate::value::Tv;

/// The most CRs one `strategy: all` read puts into `.cross` (the rest are left out, so a read
/// never makes rendering unbounded).
pub const MAX_ALL: usize = 256;

/// One `operatorBox.cross[i]`, compiled.
#[derive(Debug, Clone)]
pub struct CrossRead {
    /// Where it is written (`spec.crds.app.operatorBox.cross[0]`).
    pub source: String,
    /// The entry whose CRs are read.
    pub entry: String,
    /// What templates call it (`.cross.<as>`).
    pub alias: String,
    pub selector: Selector,
    /// `selector.namespace`, when given (it must render to the CR's own namespace).
    pub namespace: Option<Tv>,
    /// `strategy: all`: every matching CR, as a list.
    pub all: bool,
}

/// Which CRs a read selects.
#[derive(Debug, Clone)]
pub enum Selector {
    /// `selector.name`.
    Name(Tv),
    /// `selector.matchLabels`.
    Labels(Vec<(String, Tv)>),
}

/// A rendered read, for the caller to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub alias: String,
    /// The CR kind read.
    pub api: ApiTypes,
    /// The namespace read in (`None`: a cluster-scoped kind).
    pub namespace: Option<String>,
    /// `Some(name)` for one CR by name; `None` with `labels` for a label selector.
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub all: bool,
}

impl Request {
    /// How many CRs a list call for it asks for.
    pub fn list_limit(&self) -> u32 {
        if self.all {
            u32::try_from(MAX_ALL).unwrap_or(u32::MAX)
        } else {
            1
        }
    }

    /// `key=value,...` for a list call.
    pub fn label_selector(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What `entry`'s reads of `cr` ask for, selectors rendered against the CR.
pub fn requests(
    katalog: &Katalog,
    entry: &CrdEntry,
    cr: &Value,
) -> Result<Vec<Request>, RenderError> {
    if entry.cross.is_empty() {
        return Ok(Vec::new());
    }
    let scope = Scope::new(cr);
    let text = |tv: &Tv, field: String| -> Result<String, RenderError> {
        let v = tv
            .render(&katalog.templates, &scope)
            .map_err(|e| RenderError::at(&field, e))?;
        Ok(crate::template::functions::to_text(&v))
    };
    let own_ns = cr.pointer("/metadata/namespace").and_then(Value::as_str);
    let mut out = Vec::new();
    for read in &entry.cross {
        let Some(target) = katalog.entry(&read.entry) else {
            return Err(RenderError {
                field: format!("{}.crd", read.source),
                message: format!("no entry {} in this Katalog", read.entry),
            });
        };
        let namespace = match (&read.namespace, target.api.scope) {
            (_, CrScope::Cluster) => None,
            (Some(tv), CrScope::Namespaced) => {
                let ns = text(tv, format!("{}.selector.namespace", read.source))?;
                match own_ns {
                    Some(own) if ns != own && !ns.is_empty() => {
                        return Err(RenderError {
                            field: format!("{}.selector.namespace", read.source),
                            message: format!("renders to namespace {ns:?}: a cross read stays in the CR's own namespace ({own})"),
                        })
                    }
                    Some(own) => Some(own.to_string()),
                    None if ns.is_empty() => {
                        return Err(RenderError {
                            field: format!("{}.selector.namespace", read.source),
                            message: "renders empty: a cluster-scoped CR names the namespace it reads in".into(),
                        })
                    }
                    None => Some(ns),
                }
            }
            (None, CrScope::Namespaced) => match own_ns {
                Some(own) => Some(own.to_string()),
                None => {
                    return Err(RenderError {
                        field: format!("{}.selector", read.source),
                        message: format!(
                            "{} CRs are namespaced: a cluster-scoped CR gives `selector.namespace`",
                            target.api.kind
                        ),
                    })
                }
            },
        };
        let (name, labels) = match &read.selector {
            Selector::Name(tv) => (
                Some(text(tv, format!("{}.selector.name", read.source))?),
                BTreeMap::new(),
            ),
            Selector::Labels(items) => {
                let mut labels = BTreeMap::new();
                for (k, tv) in items {
                    let v = text(tv, format!("{}.selector.matchLabels.{k}", read.source))?;
                    label_value_ok(&v).map_err(|message| RenderError {
                        field: format!("{}.selector.matchLabels.{k}", read.source),
                        message,
                    })?;
                    labels.insert(k.clone(), v);
                }
                (None, labels)
            }
        };
        out.push(Request {
            alias: read.alias.clone(),
            api: target.api.clone(),
            namespace,
            name,
            labels,
            all: read.all,
        });
    }
    Ok(out)
}

/// A label value as Kubernetes allows it: at most 63 characters of letters, digits, `-`, `_`
/// and `.`, starting and ending with a letter or digit. Checked because the values go into a
/// selector: a CR value with `,` or `=` in it must not widen what is read.
fn label_value_ok(v: &str) -> Result<(), String> {
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && edge(v.chars().next())
        && edge(v.chars().last())
    {
        Ok(())
    } else {
        Err(format!("renders to {v:?}, which is not a label value (at most 63 letters, digits, -, _ or ., starting and ending with a letter or digit)"))
    }
}

/// The `.cross` tree: for each request, what was found (in `found`, the same order).
pub fn value(requests: &[Request], found: &[Vec<Value>]) -> Value {
    let mut out = Map::new();
    for (i, r) in requests.iter().enumerate() {
        let objects = found.get(i).map(Vec::as_slice).unwrap_or_default();
        let v = if r.all {
            Value::Array(objects.iter().take(MAX_ALL).map(one).collect())
        } else {
            objects.first().map_or_else(missing, one)
        };
        out.insert(r.alias.clone(), v);
    }
    Value::Object(out)
}

/// A found CR as templates read it.
fn one(o: &Value) -> Value {
    let meta = |k: &str| o.pointer(&format!("/metadata/{k}")).cloned();
    json!({
        "found": true,
        "name": meta("name").unwrap_or(Value::Null),
        "namespace": meta("namespace").unwrap_or(Value::Null),
        "labels": meta("labels").unwrap_or_else(|| json!({})),
        "annotations": meta("annotations").unwrap_or_else(|| json!({})),
        "spec": o.get("spec").cloned().unwrap_or_else(|| json!({})),
        "status": o.get("status").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A read that found nothing (upstream's shape).
fn missing() -> Value {
    json!({"found": false, "spec": {}, "status": {}, "labels": {}, "annotations": {}})
}

/// `cr` with `.cross` made of what the reads of `requests` found (any serializable object, in
/// the same order): what the agent and `plan` render with.
pub fn with_found<T: serde::Serialize>(
    cr: &Value,
    requests: &[Request],
    found: &[Vec<T>],
) -> Value {
    let found: Vec<Vec<Value>> = found
        .iter()
        .map(|objs| {
            objs.iter()
                .map(|o| serde_json::to_value(o).unwrap_or_default())
                .collect()
        })
        .collect();
    with_cross(cr, value(requests, &found))
}

/// `cr` with `.cross` set, for rendering (the CR as stored is untouched).
pub fn with_cross(cr: &Value, cross: Value) -> Value {
    let mut out = cr.clone();
    if let Value::Object(m) = &mut out {
        m.insert("cross".into(), cross);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn katalog(cross: &str) -> Katalog {
        let text = format!(
            r#"
apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata: {{name: k}}
spec:
  crds:
    database:
      apiTypes: {{group: x.io, version: v1, kind: Database}}
      operatorBox: {{onCreate: {{}}}}
    app:
      apiTypes: {{group: x.io, version: v1, kind: App}}
      operatorBox:
        cross:
{cross}
        onCreate: {{}}
"#
        );
        let loaded = crate::load_file(&crate::SourceFile::new("k.yaml", text), &[]);
        loaded
            .katalog
            .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics))
    }

    fn cr() -> Value {
        json!({"apiVersion": "x.io/v1", "kind": "App", "metadata": {"name": "shop", "namespace": "team-a"}, "spec": {"tier": "gold"}})
    }

    #[test]
    fn reads_render_their_selector_and_found_crs_become_the_cross_tree() {
        let k = katalog("          - {crd: database, selector: {name: \"{{ .metadata.name }}-db\"}, as: db}\n          - {crd: database, selector: {matchLabels: {tier: \"{{ .spec.tier }}\"}}, as: peers, strategy: all}");
        let e = k.entry("app").unwrap();
        let reqs = requests(&k, e, &cr()).unwrap();
        assert_eq!(reqs[0].name.as_deref(), Some("shop-db"));
        assert_eq!(reqs[0].namespace.as_deref(), Some("team-a"));
        assert_eq!(reqs[0].api.kind, "Database");
        assert_eq!(reqs[1].label_selector(), "tier=gold");
        let db = json!({"metadata": {"name": "shop-db", "namespace": "team-a"}, "status": {"phase": "Ready"}});
        let v = value(
            &reqs,
            &[
                vec![db.clone()],
                vec![db, json!({"metadata": {"name": "b"}})],
            ],
        );
        assert_eq!(v["db"]["found"], true);
        assert_eq!(v["db"]["status"]["phase"], "Ready");
        assert_eq!(v["peers"].as_array().unwrap().len(), 2);
        let none = value(&reqs, &[vec![], vec![]]);
        assert_eq!(
            none["db"],
            json!({"found": false, "spec": {}, "status": {}, "labels": {}, "annotations": {}})
        );
        assert_eq!(none["peers"], json!([]));
        // Templates read it under `.cross`.
        let rendered = with_cross(&cr(), v);
        assert_eq!(rendered["cross"]["db"]["name"], "shop-db");
    }

    #[test]
    fn a_cr_value_cannot_widen_a_label_selector() {
        let k = katalog("          - {crd: database, selector: {matchLabels: {tier: \"{{ .spec.tier }}\"}}, as: peers, strategy: all}");
        let mut c = cr();
        c["spec"]["tier"] = json!("gold,team!=x");
        let err = requests(&k, k.entry("app").unwrap(), &c).unwrap_err();
        assert!(err.message.contains("not a label value"), "{err:?}");
    }

    #[test]
    fn a_read_in_another_namespace_is_refused() {
        let k =
            katalog("          - {crd: database, selector: {name: db, namespace: other}, as: db}");
        let e = k.entry("app").unwrap();
        let err = requests(&k, e, &cr()).unwrap_err();
        assert!(
            err.field.ends_with("cross[0].selector.namespace"),
            "{err:?}"
        );
        assert!(
            err.message
                .contains("stays in the CR's own namespace (team-a)"),
            "{err:?}"
        );
        let k = katalog("          - {crd: database, selector: {name: db, namespace: \"{{ .metadata.namespace }}\"}, as: db}");
        assert_eq!(
            requests(&k, k.entry("app").unwrap(), &cr()).unwrap()[0]
                .namespace
                .as_deref(),
            Some("team-a")
        );
    }
}
