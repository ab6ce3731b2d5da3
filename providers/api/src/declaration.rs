//! What a provider is asked to make true: one item of a Katalog provider block, rendered.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ProviderError;
use crate::ownership::Owner;
use crate::schema::KindSchema;

/// What happens to the external resource when the CR is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletionPolicy {
    /// Delete what this CR created (the default).
    #[default]
    Delete,
    /// Leave the resource in place and forget it.
    Orphan,
}

/// Whether the provider may change the external resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManagementPolicy {
    /// Create, update and delete (the default).
    #[default]
    Manage,
    /// Only read: report state and drift, never create, change or delete.
    Observe,
}

/// Fields every kind accepts that steer the runtime rather than describe the resource; they are
/// taken out of [`Declaration::fields`].
pub const POLICY_FIELDS: &[&str] = &["deletionPolicy", "managementPolicy", "adopt"];

/// One declared external resource: an item of a provider block after templates were rendered,
/// `when`/`or` filters applied and values coerced to the kind's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    /// Provider block (`aws`).
    pub provider: String,
    /// Kind (`s3`, `rds`).
    pub kind: String,
    /// The resource's name: the value of the kind's name field (bucket, identifier).
    pub name: String,
    /// Resource fields as declared (policies removed), typed per the schema.
    pub fields: Map<String, Value>,
    /// What happens on CR deletion.
    pub deletion_policy: DeletionPolicy,
    /// May the provider change the resource.
    pub management_policy: ManagementPolicy,
    /// Take over an existing resource that carries no owner tags.
    pub adopt: bool,
    /// The CR the resource belongs to (becomes ownership tags).
    pub owner: Owner,
}

impl Declaration {
    /// Build a declaration from a rendered item, checking it against the kind's schema: unknown
    /// fields, missing required fields, values that do not coerce to the field's type and values
    /// a validator rejects are errors naming the field.
    pub fn from_rendered(
        provider: &str,
        kind: &KindSchema,
        item: &Map<String, Value>,
        owner: Owner,
    ) -> Result<Self, ProviderError> {
        // The raw name, to name the resource in errors found before the name is checked.
        let raw_name = item
            .get(kind.name_field)
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut fields = Map::new();
        for (key, value) in item {
            let Some(schema) = kind.field(key) else {
                return Err(ProviderError::invalid_field(key, "unknown field")
                    .for_target(provider, kind.name, raw_name));
            };
            // A template that rendered to nothing means "not set" (upstream behaviour); a required
            // field that ends up empty is reported below.
            if value.is_null() || value.as_str() == Some("") {
                continue;
            }
            let coerced = coerce_field(schema, value).map_err(|m| {
                ProviderError::invalid_field(key, m).for_target(provider, kind.name, raw_name)
            })?;
            fields.insert(key.clone(), coerced);
        }
        let name = fields
            .get(kind.name_field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for f in kind.fields.iter().filter(|f| f.required) {
            if !fields.contains_key(f.name) {
                return Err(ProviderError::invalid_field(
                    f.name,
                    "is required but empty or missing",
                )
                .for_target(provider, kind.name, &name));
            }
        }
        let deletion_policy = match fields
            .remove("deletionPolicy")
            .as_ref()
            .and_then(Value::as_str)
        {
            None | Some("Delete") => DeletionPolicy::Delete,
            Some("Orphan") => DeletionPolicy::Orphan,
            Some(other) => {
                return Err(ProviderError::invalid_field(
                    "deletionPolicy",
                    format!("{other:?} is not Delete or Orphan"),
                )
                .for_target(provider, kind.name, &name))
            }
        };
        let management_policy = match fields
            .remove("managementPolicy")
            .as_ref()
            .and_then(Value::as_str)
        {
            None | Some("Manage") => ManagementPolicy::Manage,
            Some("Observe") => ManagementPolicy::Observe,
            Some(other) => {
                return Err(ProviderError::invalid_field(
                    "managementPolicy",
                    format!("{other:?} is not Manage or Observe"),
                )
                .for_target(provider, kind.name, &name))
            }
        };
        let adopt = fields
            .remove("adopt")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        Ok(Self {
            provider: provider.to_string(),
            kind: kind.name.to_string(),
            name,
            fields,
            deletion_policy,
            management_policy,
            adopt,
            owner,
        })
    }

    /// A declared string field.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// A declared boolean field, or `default` when not declared.
    pub fn bool_or(&self, field: &str, default: bool) -> bool {
        self.fields
            .get(field)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }

    /// A declared integer field.
    pub fn int(&self, field: &str) -> Option<i64> {
        self.fields.get(field).and_then(Value::as_i64)
    }

    /// Declared `tags`, if any.
    pub fn tags(&self) -> Option<std::collections::BTreeMap<String, String>> {
        self.fields.get("tags").and_then(Value::as_object).map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
    }

    /// Attach this declaration's identity to an error.
    pub fn err(&self, e: ProviderError) -> ProviderError {
        e.for_target(&self.provider, &self.kind, &self.name)
    }

    /// Deleting the CR leaves this resource in place.
    pub fn keeps_on_delete(&self) -> bool {
        self.deletion_policy == DeletionPolicy::Orphan
            || self.management_policy == ManagementPolicy::Observe
    }

    /// The least a status row says about its resource, as a declaration: the name field only,
    /// the row's deletion policy, `owner` as the owner. For looking at (or deleting) a resource
    /// whose full declaration is not available, e.g. when the Katalog no longer renders for the
    /// CR. Every other field takes the provider's defaults (region discovery, default credentials).
    pub fn from_row(row: &crate::status::StatusRow, kind: &KindSchema, owner: Owner) -> Self {
        let mut fields = Map::new();
        fields.insert(kind.name_field.to_string(), Value::String(row.name.clone()));
        Self {
            provider: row.provider.clone(),
            kind: row.kind.clone(),
            name: row.name.clone(),
            fields,
            deletion_policy: row.deletion_policy.unwrap_or_default(),
            management_policy: ManagementPolicy::default(),
            adopt: false,
            owner,
        }
    }
}

impl Declaration {
    /// [`Declaration::from_row`] plus every rendered field that is valid on its own (a
    /// connection, a region), for deleting a resource whose declaration no longer renders whole:
    /// what is missing takes the provider's defaults, what rendered is not thrown away.
    pub fn from_row_with(
        row: &crate::status::StatusRow,
        kind: &KindSchema,
        rendered: &Map<String, Value>,
        owner: Owner,
    ) -> Self {
        let mut d = Self::from_row(row, kind, owner);
        for (key, value) in rendered {
            if key == kind.name_field || value.is_null() || value.as_str() == Some("") {
                continue;
            }
            let Some(schema) = kind.field(key) else {
                continue;
            };
            if let Ok(v) = coerce_field(schema, value) {
                d.fields.insert(key.clone(), v);
            }
        }
        // The policies are the declaration's, not fields a provider reads.
        for policy in ["deletionPolicy", "managementPolicy", "adopt"] {
            d.fields.remove(policy);
        }
        d
    }
}

fn coerce_field(schema: &crate::schema::FieldSchema, value: &Value) -> Result<Value, String> {
    let mut v = schema.ty.coerce(value)?;
    if let (crate::schema::FieldType::Object, Value::Object(map)) = (schema.ty, &mut v) {
        if !schema.children.is_empty() {
            let mut out = Map::new();
            for (k, child_value) in map.iter() {
                let child = schema
                    .children
                    .iter()
                    .find(|c| c.name == k)
                    .ok_or_else(|| format!("unknown field {k:?}"))?;
                out.insert(
                    k.clone(),
                    coerce_field(child, child_value).map_err(|m| format!("{k}: {m}"))?,
                );
            }
            for c in schema.children.iter().filter(|c| c.required) {
                if !out.contains_key(c.name) {
                    return Err(format!("{} is required", c.name));
                }
            }
            v = Value::Object(out);
        }
    }
    for validator in &schema.validators {
        validator.check(&v)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FieldSchema, FieldType, Validator};
    use serde_json::json;

    fn kind() -> KindSchema {
        KindSchema {
            name: "s3",
            name_field: "bucket",
            fields: vec![
                FieldSchema::new("bucket", FieldType::String).required(),
                FieldSchema::new("versioning", FieldType::Boolean),
                FieldSchema::new("size", FieldType::Integer).validate(Validator::Range(1, 10)),
                FieldSchema::new("deletionPolicy", FieldType::String),
                FieldSchema::new("managementPolicy", FieldType::String),
                FieldSchema::new("adopt", FieldType::Boolean),
                FieldSchema::new("credentials", FieldType::Object).children(vec![
                    FieldSchema::new("secretName", FieldType::String).required(),
                ]),
            ],
            outputs: Vec::new(),
        }
    }

    fn item(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn coerces_and_extracts_policies() {
        let d = Declaration::from_rendered(
            "aws",
            &kind(),
            &item(json!({"bucket": "b1", "versioning": "true", "size": "3",
                         "deletionPolicy": "Orphan", "managementPolicy": "Observe", "adopt": "true"})),
            Owner::default(),
        )
        .unwrap();
        assert_eq!(d.name, "b1");
        assert_eq!(d.fields.get("versioning"), Some(&json!(true)));
        assert_eq!(d.fields.get("size"), Some(&json!(3)));
        assert_eq!(d.deletion_policy, DeletionPolicy::Orphan);
        assert_eq!(d.management_policy, ManagementPolicy::Observe);
        assert!(d.adopt);
        assert!(!d.fields.contains_key("adopt"));
    }

    #[test]
    fn a_row_keeps_the_rendered_fields_that_are_valid_alone() {
        let row = crate::status::StatusRow {
            provider: "aws".into(),
            kind: "s3".into(),
            name: "recorded".into(),
            id: None,
            state: crate::State::Ready,
            message: String::new(),
            last_sync_time: String::new(),
            outputs: Map::new(),
            intent: None,
            deletion_policy: Some(DeletionPolicy::Orphan),
        };
        // The required credentials.secretName is missing, so the whole does not build.
        let rendered = item(json!({"bucket": "other", "versioning": "true", "size": "x",
                                   "credentials": {}, "deletionPolicy": "Delete", "colour": 1}));
        assert!(Declaration::from_rendered("aws", &kind(), &rendered, Owner::default()).is_err());
        let d = Declaration::from_row_with(&row, &kind(), &rendered, Owner::default());
        assert_eq!(d.name, "recorded");
        assert_eq!(d.str("bucket"), Some("recorded"));
        assert_eq!(d.fields.get("versioning"), Some(&json!(true)));
        for dropped in ["size", "credentials", "deletionPolicy", "colour"] {
            assert!(!d.fields.contains_key(dropped), "{dropped}: {:?}", d.fields);
        }
        assert_eq!(d.deletion_policy, DeletionPolicy::Orphan);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"bucket": "b", "colour": "red"}),
                "field colour: unknown field",
            ),
            (json!({"bucket": ""}), "field bucket: is required"),
            (
                json!({"bucket": "b", "size": "x"}),
                "field size: expected an integer",
            ),
            (
                json!({"bucket": "b", "size": 11}),
                "field size: 11 is outside 1..=10",
            ),
            (
                json!({"bucket": "b", "credentials": {}}),
                "field credentials: secretName is required",
            ),
            (
                json!({"bucket": "b", "credentials": {"secretname": "x"}}),
                "unknown field \"secretname\"",
            ),
            (
                json!({"bucket": "b", "deletionPolicy": "Keep"}),
                "field deletionPolicy",
            ),
        ];
        for (input, want) in cases {
            let e =
                Declaration::from_rendered("aws", &kind(), &item(input.clone()), Owner::default())
                    .unwrap_err();
            assert!(e.to_string().contains(want), "{input}: {e}");
        }
    }
}
