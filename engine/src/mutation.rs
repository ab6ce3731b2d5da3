//! `normalize` and `mutation` (upstream Orkestra's): values the CR is given before anything is
//! rendered from it. `normalize` rewrites fields first, then each mutation rule sets its field
//! (`default`: only when it is absent or empty; `override`: always), in the order written, each
//! seeing the ones before it. The CR in the API server is never changed: the agent renders (and
//! `render`/`plan` show) the mutated CR, and the agent lists the fields set in the CR's status.

use serde_json::{Map, Value};

use crate::condition::Conditions;
use crate::katalog::Katalog;
use crate::template::functions::is_empty;
use crate::template::Scope;
use crate::value::Tv;

/// How a rule's value is converted before it is set (`valueType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    Int,
    Float,
    Bool,
}

impl ValueType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => ValueType::String,
            "int" | "integer" => ValueType::Int,
            "float" | "number" => ValueType::Float,
            "bool" | "boolean" => ValueType::Bool,
            _ => return None,
        })
    }

    fn convert(self, v: Value) -> Result<Value, String> {
        let text = crate::template::functions::to_text(&v);
        let t = text.trim();
        Ok(match self {
            ValueType::String => Value::String(text),
            ValueType::Int => t
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("{t:?} is not an integer"))?,
            ValueType::Float => t
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("{t:?} is not a number"))?,
            ValueType::Bool => match t {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(format!("{t:?} is not true or false")),
            },
        })
    }
}

/// When a rule sets its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `normalize`: rewritten when the CR has it.
    Normalize,
    /// `default`: set when absent or empty.
    Default,
    /// `override`: always set.
    Override,
}

/// One field set before rendering.
#[derive(Debug, Clone)]
pub struct Mutation {
    /// Where it is written, e.g. `spec.crds.app.mutation.rules[0]`.
    pub source: String,
    /// The CR field, as steps (`spec`, `replicas`).
    pub field: Vec<String>,
    pub value: Tv,
    pub mode: Mode,
    pub value_type: Option<ValueType>,
    pub conditions: Conditions,
}

/// Why a mutation failed: its source and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct MutationError {
    pub field: String,
    pub message: String,
}

/// `cr` with `mutations` applied, and the fields they set (dotted), in order.
pub fn apply(
    katalog: &Katalog,
    mutations: &[Mutation],
    cr: &Value,
) -> Result<(Value, Vec<String>), MutationError> {
    let mut cr = cr.clone();
    let mut set = Vec::new();
    for m in mutations {
        let scope = Scope::new(&cr);
        let err = |message: String| MutationError {
            field: m.source.clone(),
            message,
        };
        if !m.conditions.is_empty()
            && !m
                .conditions
                .holds(&katalog.templates, &scope)
                .map_err(|e| err(e.message))?
        {
            continue;
        }
        let now = lookup(&cr, &m.field);
        let skip = match m.mode {
            Mode::Normalize => now.is_null(),
            Mode::Default => !is_empty(now),
            Mode::Override => false,
        };
        if skip {
            continue;
        }
        let mut v = m
            .value
            .render(&katalog.templates, &scope)
            .map_err(|e| err(e.message))?;
        if let Some(t) = m.value_type {
            v = t.convert(v).map_err(err)?;
        }
        if lookup(&cr, &m.field) != &v {
            write(&mut cr, &m.field, v).map_err(err)?;
            let name = m.field.join(".");
            if !set.contains(&name) {
                set.push(name);
            }
        }
    }
    Ok((cr, set))
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    static NULL: Value = Value::Null;
    path.iter()
        .try_fold(v, |cur, step| cur.get(step))
        .unwrap_or(&NULL)
}

fn write(v: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("the field is empty".into());
    };
    let mut cur = v;
    for step in parents {
        let m = cur
            .as_object_mut()
            .ok_or_else(|| format!("{} is not a mapping", path.join(".")))?;
        cur = m
            .entry(step.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
    }
    cur.as_object_mut()
        .ok_or_else(|| format!("the parent of {} is not a mapping", path.join(".")))?
        .insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_document;
    use crate::source::SourceFile;
    use serde_json::json;

    fn katalog(rules: &str) -> Katalog {
        let text = format!(
            "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {{name: k}}\nspec:\n  crds:\n    app:\n      apiTypes: {{group: demo.example.io, version: v1, kind: App}}\n{rules}      operatorBox: {{onCreate: {{}}}}\n"
        );
        let f = SourceFile::new("k.yaml", text);
        let (docs, _) = f.documents();
        let l = load_document(&f, &docs[0], &[]);
        l.katalog.unwrap_or_else(|| panic!("{:#?}", l.diagnostics))
    }

    #[test]
    fn normalize_then_mutations_in_order_default_only_when_empty() {
        let k = katalog(concat!(
            "      normalize:\n        spec:\n          image: \"{{ trimSpace .spec.image }}\"\n",
            "      mutation:\n        mutateFirst: true\n        rules:\n",
            "          - {field: spec.replicas, default: \"2\", valueType: int}\n",
            "          - {field: spec.tier, default: web}\n",
            "          - {field: spec.label, override: \"{{ .spec.tier }}-{{ .spec.replicas }}\"}\n",
            "          - {field: spec.debug, override: \"true\", valueType: bool, when: [{field: spec.tier, equals: dev}]}\n",
        ));
        let e = &k.entries[0];
        let cr = json!({"spec": {"image": "  nginx ", "tier": "", "replicas": 5}});
        let (out, set) = apply(&k, &e.mutations, &cr).unwrap();
        assert_eq!(
            out["spec"],
            json!({"image": "nginx", "replicas": 5, "tier": "web", "label": "web-5"})
        );
        assert_eq!(set, ["spec.image", "spec.tier", "spec.label"]);
        let (out, set) = apply(
            &k,
            &e.mutations,
            &json!({"spec": {"image": "x", "tier": "dev"}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], json!(2));
        assert_eq!(out["spec"]["debug"], json!(true));
        assert_eq!(set, ["spec.replicas", "spec.label", "spec.debug"]);
    }

    #[test]
    fn a_value_that_does_not_convert_names_the_rule() {
        let k = katalog("      mutation:\n        rules:\n          - {field: spec.n, override: \"{{ .spec.s }}\", valueType: int}\n");
        let e = apply(&k, &k.entries[0].mutations, &json!({"spec": {"s": "many"}})).unwrap_err();
        assert_eq!(e.field, "spec.crds.app.mutation.rules[0]");
        assert!(e.message.contains("not an integer"), "{}", e.message);
    }
}
