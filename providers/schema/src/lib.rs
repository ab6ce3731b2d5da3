//! Provider schemas: what a provider accepts in a Katalog block, described as data.
//!
//! Lint uses a schema to report unknown kinds and fields, missing required fields and literal values
//! the provider would reject. The same schema is applied to rendered values at reconcile time, so a
//! value that only becomes invalid after templating is caught before any external call. This crate
//! is separate from the provider runtime so the engine (and lint) need no async or cloud code.
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

/// One kind of external resource and its fields.
#[derive(Debug, Clone)]
pub struct KindSchema {
    pub name: &'static str,
    /// The field whose value names the resource (used in status rows and plans).
    pub name_field: &'static str,
    pub fields: Vec<FieldSchema>,
}

impl KindSchema {
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One field of a kind.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    pub name: &'static str,
    pub ty: FieldType,
    pub required: bool,
    /// Changing the field on an existing resource requires replacing it.
    pub immutable: bool,
    /// The value is secret-bearing (never logged or shown).
    pub sensitive: bool,
    pub validators: Vec<Validator>,
    /// Nested fields for [`FieldType::Object`]; empty means free-form.
    pub children: Vec<FieldSchema>,
}

impl FieldSchema {
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
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn validate(mut self, v: Validator) -> Self {
        self.validators.push(v);
        self
    }
    pub fn children(mut self, c: Vec<FieldSchema>) -> Self {
        self.children = c;
        self
    }
}

/// The JSON type a field takes after rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Boolean,
    /// A map of strings to strings (tags).
    StringMap,
    /// A list of anything.
    List,
    Object,
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
        }
    }
}
