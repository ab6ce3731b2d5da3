//! Provider schemas: what a provider accepts in a Katalog block, and what each kind's resources
//! expose, described as data.
//!
//! Lint uses a schema to report unknown kinds and fields, missing required fields and literal values
//! the provider would reject. The same schema is applied to rendered values at reconcile time, so a
//! value that only becomes invalid after templating is caught before any external call. This crate
//! is separate from the provider runtime so the engine (and lint) need no async or cloud code.
//!
//! Each kind also declares its outputs ([`OutputSchema`]): the values its resource exposes to other
//! declarations as `.resources.<id>.outputs.<name>`, each with a type and a flag saying whether
//! it is sensitive. The provider fills exactly these into a Ready row; lint uses them to check
//! references to outputs before anything runs.
#![forbid(unsafe_code)]

use serde_json::Value;

/// Everything a provider accepts under its block key (e.g. `aws:`).
#[derive(Debug, Clone)]
pub struct ProviderSchema {
    /// Block key in a Katalog (`aws`, `database`).
    pub name: &'static str,
    /// The kinds an item may declare (`s3`, `rds`).
    pub kinds: Vec<KindSchema>,
}

impl ProviderSchema {
    /// The kind named `name`, if the provider has one.
    pub fn kind(&self, name: &str) -> Option<&KindSchema> {
        self.kinds.iter().find(|k| k.name == name)
    }
}

/// One kind of external resource: its fields and its outputs.
#[derive(Debug, Clone)]
pub struct KindSchema {
    /// The key naming the kind in an item (`s3`, `rds`).
    pub name: &'static str,
    /// The field whose value names the resource (used in status rows and plans).
    pub name_field: &'static str,
    /// The fields an item of this kind may set.
    pub fields: Vec<FieldSchema>,
    /// The values a resource of this kind exposes once Ready, in the order they are documented.
    pub outputs: Vec<OutputSchema>,
}

impl KindSchema {
    /// The field named `name`, if the kind has one.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The output named `name`, if the kind declares one.
    pub fn output(&self, name: &str) -> Option<&OutputSchema> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// One value a kind's resource exposes to other declarations (`.resources.<id>.outputs.<name>`).
#[derive(Debug, Clone)]
pub struct OutputSchema {
    /// The output's name, as written after `.outputs.`.
    pub name: &'static str,
    /// The JSON type the value has in a Ready row.
    pub ty: FieldType,
    /// The value is secret-bearing: it may only flow into a Secret through composition, and never
    /// appears in a status row, a log or an event.
    pub sensitive: bool,
    /// What the value is, for documentation and diagnostics.
    pub description: &'static str,
}

impl OutputSchema {
    /// A non-sensitive output.
    pub fn new(name: &'static str, ty: FieldType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            sensitive: false,
            description,
        }
    }

    /// Mark the output sensitive: a secret-bearing value kept out of status rows.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
}

/// One field of a kind.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    /// The key in an item.
    pub name: &'static str,
    /// The JSON type the value takes after rendering.
    pub ty: FieldType,
    /// An item must set the field.
    pub required: bool,
    /// Changing the field on an existing resource requires replacing it.
    pub immutable: bool,
    /// The value is secret-bearing (never logged or shown).
    pub sensitive: bool,
    /// Checks on the value, in order.
    pub validators: Vec<Validator>,
    /// Nested fields for [`FieldType::Object`]; empty means free-form.
    pub children: Vec<FieldSchema>,
}

impl FieldSchema {
    /// An optional, mutable, non-sensitive field with no validators.
    pub fn new(name: &'static str, ty: FieldType) -> Self {
        Self {
            name,
            ty,
            required: false,
            immutable: false,
            sensitive: false,
            validators: Vec::new(),
            children: Vec::new(),
        }
    }
    /// Mark the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Mark the field immutable (a change requires replacement).
    pub fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
    /// Mark the field secret-bearing.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// Add a validator.
    pub fn validate(mut self, v: Validator) -> Self {
        self.validators.push(v);
        self
    }
    /// Set the nested fields of an object field.
    pub fn children(mut self, c: Vec<FieldSchema>) -> Self {
        self.children = c;
        self
    }
}

/// The JSON type a field takes after rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A string.
    String,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A map of strings to strings (tags).
    StringMap,
    /// A list of anything.
    List,
    /// A mapping, with [`FieldSchema::children`] when its keys are known.
    Object,
    /// Anything, unchecked.
    Any,
}

impl FieldType {
    /// Human name used in diagnostics, with its article ("an integer").
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Integer => "an integer",
            FieldType::Boolean => "true or false",
            FieldType::StringMap => "a map of strings",
            FieldType::List => "a list",
            FieldType::Object => "a mapping",
            FieldType::Any => "any value",
        }
    }

    /// Convert a rendered value to this type the way the Kubernetes boundary does
    /// (`"3"` becomes `3` for an integer), or say why it cannot.
    pub fn coerce(self, v: &Value) -> Result<Value, String> {
        match (self, v) {
            (FieldType::Any, v) => Ok(v.clone()),
            (FieldType::String, Value::String(_)) => Ok(v.clone()),
            (FieldType::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
            (FieldType::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
            (FieldType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            (FieldType::Integer, Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("expected an integer, got {s:?}")),
            (FieldType::Boolean, Value::Bool(_)) => Ok(v.clone()),
            (FieldType::Boolean, Value::String(s)) => match s.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(format!("expected true or false, got {s:?}")),
            },
            (FieldType::StringMap, Value::Object(m)) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    // A template that rendered nothing is an empty value, as in upstream.
                    if v.is_null() {
                        out.insert(k.clone(), Value::String(String::new()));
                        continue;
                    }
                    let s = FieldType::String
                        .coerce(v)
                        .map_err(|_| format!("value of key {k:?} must be a string"))?;
                    out.insert(k.clone(), s);
                }
                Ok(Value::Object(out))
            }
            (FieldType::Object, Value::Object(_)) => Ok(v.clone()),
            (FieldType::List, Value::Array(_)) => Ok(v.clone()),
            (t, v) => Err(format!("expected {}, got {}", t.describe(), json_type(v))),
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// A check on a literal (or rendered) value. Returns a message a user can act on.
#[derive(Debug, Clone)]
pub enum Validator {
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
    /// An integer in a closed range.
    Range(i64, i64),
    /// A custom rule with a name for diagnostics.
    Rule(fn(&str) -> Result<(), String>),
    /// A rule over a whole value (a map or a list: an IAM policy document's grammar). Lint runs
    /// it when the value has no template in it; render, plan and the agent once it is rendered.
    Value(fn(&Value) -> Result<(), String>),
}

impl Validator {
    /// Check `v`; `Err` carries a message naming the broken rule.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        match self {
            Validator::OneOf(allowed) => match v.as_str() {
                Some(s) if allowed.contains(&s) => Ok(()),
                Some(s) => Err(format!("{s:?} is not one of {}", allowed.join(", "))),
                None => Ok(()),
            },
            Validator::Range(lo, hi) => match v.as_i64() {
                Some(n) if n < *lo || n > *hi => Err(format!("{n} is outside {lo}..={hi}")),
                _ => Ok(()),
            },
            Validator::Rule(f) => match v.as_str() {
                Some(s) => f(s),
                None => Ok(()),
            },
            Validator::Value(f) => f(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> KindSchema {
        KindSchema {
            name: "queue",
            name_field: "name",
            fields: vec![FieldSchema::new("name", FieldType::String).required()],
            outputs: vec![
                OutputSchema::new("url", FieldType::String, "the queue's URL"),
                OutputSchema::new("size", FieldType::Integer, "messages waiting"),
                OutputSchema::new("key", FieldType::String, "an access key").sensitive(),
            ],
        }
    }

    #[test]
    fn output_finds_a_declared_output_by_name() {
        let k = kind();
        let url = k.output("url").expect("url is declared");
        assert_eq!(url.ty, FieldType::String);
        assert!(!url.sensitive);
        assert_eq!(url.description, "the queue's URL");
        assert_eq!(k.output("size").map(|o| o.ty), Some(FieldType::Integer));
        assert!(k.output("key").is_some_and(|o| o.sensitive));
    }

    #[test]
    fn output_is_none_for_an_undeclared_name_or_a_field() {
        let k = kind();
        assert!(k.output("arn").is_none());
        assert!(k.output("URL").is_none(), "names are case-sensitive");
        // A field is not an output.
        assert!(k.field("name").is_some());
        assert!(k.output("name").is_none());
    }
}
