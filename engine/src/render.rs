//! Rendering: (Katalog entry, CR) → the desired state, in Kubernetes and outside it.
//!
//! This is the function the agent calls on every reconcile and `kubectl orkestra render` calls
//! offline. It is pure: no I/O, no clock.

use orkestra_provider_schema::{FieldSchema, KindSchema};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::blocks::KubeBlock;
use crate::katalog::{CrdEntry, HookKind, Katalog, KubeEntry, ProviderItem};
use crate::objects::{self, Owner};
use crate::template::Scope;
use crate::value::TvError;

/// A reconcile-time error in a Katalog entry, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RenderError {
    /// Where in the Katalog, e.g. `spec.crds[0].operatorBox.onCreate.deployments[0].replicas`.
    pub field: String,
    pub message: String,
}

impl RenderError {
    fn at(source: &str, e: TvError) -> Self {
        let field = if e.path.is_empty() {
            source.to_string()
        } else {
            format!("{source}.{}", e.path)
        };
        Self {
            field,
            message: e.message,
        }
    }
}

/// One Kubernetes object the CR should have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Child {
    pub hook: HookKindName,
    /// Server-side applied every cycle (otherwise created if missing).
    pub enforce: bool,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub object: Value,
    /// The Katalog entry it came from.
    pub source: String,
}

/// The hook name, serializable.
pub type HookKindName = &'static str;

/// One external resource the CR should have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct External {
    pub provider: String,
    pub kind: String,
    pub name: String,
    pub fields: Map<String, Value>,
    pub source: String,
    /// False when the provider is not registered (the runtime skips and reports it).
    pub registered: bool,
}

/// Everything a CR should have.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Desired {
    /// onCreate and onReconcile children, in Katalog order.
    pub children: Vec<Child>,
    /// onDelete children (one-shot jobs run before cleanup).
    pub on_delete: Vec<Child>,
    /// External resources, in Katalog order.
    pub external: Vec<External>,
}

/// Render the desired state of `cr` under `entry`. `provider_schemas` coerce and validate
/// external fields (the same schemas lint uses); unknown providers pass fields through.
pub fn render(
    katalog: &Katalog,
    entry: &CrdEntry,
    cr: &Value,
    provider_schemas: &[orkestra_provider_schema::ProviderSchema],
) -> Result<Desired, RenderError> {
    let scope = Scope::new(cr);
    let owner = Owner::of(cr, &katalog.name);
    let mut out = Desired::default();
    for k in &entry.kube {
        if !holds(katalog, &k.conditions, &scope, &k.source)? {
            continue;
        }
        let child = render_child(katalog, k, &scope, &owner)?;
        if k.hook == HookKind::OnDelete {
            out.on_delete.push(child);
        } else if let Some(existing) = out.children.iter_mut().find(|c| {
            c.kind == child.kind && c.name == child.name && c.namespace == child.namespace
        }) {
            // The same object in onCreate and onReconcile: enforcing wins.
            if child.enforce {
                *existing = child;
            }
        } else {
            out.children.push(child);
        }
    }
    for item in &entry.external {
        if !holds(katalog, &item.conditions, &scope, &item.source)? {
            continue;
        }
        let schema = provider_schemas
            .iter()
            .find(|s| s.name == item.provider)
            .and_then(|s| s.kind(&item.kind));
        out.external
            .push(render_external(katalog, item, &scope, schema)?);
    }
    Ok(out)
}

fn holds(
    katalog: &Katalog,
    c: &crate::condition::Conditions,
    scope: &Scope,
    source: &str,
) -> Result<bool, RenderError> {
    if c.is_empty() {
        return Ok(true);
    }
    c.holds(&katalog.templates, scope)
        .map_err(|e| RenderError::at(&format!("{source}.when"), e))
}

/// Render a field map and convert each field to its schema type.
fn typed_fields(
    katalog: &Katalog,
    fields: &crate::value::Tv,
    scope: &Scope,
    schema: &[FieldSchema],
    source: &str,
) -> Result<Map<String, Value>, RenderError> {
    let rendered = fields
        .render(&katalog.templates, scope)
        .map_err(|e| RenderError::at(source, e))?;
    let Value::Object(m) = rendered else {
        return Err(RenderError {
            field: source.into(),
            message: "expected a mapping".into(),
        });
    };
    let mut out = Map::with_capacity(m.len());
    for (k, v) in m {
        // A template that rendered nothing means "not set" (upstream behaviour).
        if v.is_null() || v.as_str() == Some("") {
            continue;
        }
        let Some(f) = schema.iter().find(|f| f.name == k) else {
            out.insert(k, v);
            continue;
        };
        let v = f.ty.coerce(&v).map_err(|message| RenderError {
            field: format!("{source}.{k}"),
            message: if f.sensitive {
                "value has the wrong type".to_string()
            } else {
                message
            },
        })?;
        for val in &f.validators {
            val.check(&v).map_err(|message| RenderError {
                field: format!("{source}.{k}"),
                message,
            })?;
        }
        out.insert(k, v);
    }
    for f in schema.iter().filter(|f| f.required) {
        if !out.contains_key(f.name) {
            return Err(RenderError {
                field: format!("{source}.{}", f.name),
                message: format!("required field `{}` is empty after rendering", f.name),
            });
        }
    }
    Ok(out)
}

fn render_child(
    katalog: &Katalog,
    k: &KubeEntry,
    scope: &Scope,
    owner: &Owner,
) -> Result<Child, RenderError> {
    let fields = typed_fields(katalog, &k.fields, scope, k.block.fields(), &k.source)?;
    let object = objects::build(k.block, &fields, owner);
    let api_version = object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if k.block == KubeBlock::Custom {
        crate::blocks::dns_name(&name).map_err(|message| RenderError {
            field: format!("{}.metadata.name", k.source),
            message,
        })?;
    }
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(String::from);
    Ok(Child {
        hook: k.hook.key(),
        enforce: k.enforce,
        api_version,
        kind,
        name,
        namespace,
        object,
        source: k.source.clone(),
    })
}

fn render_external(
    katalog: &Katalog,
    item: &ProviderItem,
    scope: &Scope,
    schema: Option<&KindSchema>,
) -> Result<External, RenderError> {
    let fields = match schema {
        Some(s) => typed_fields(katalog, &item.fields, scope, &s.fields, &item.source)?,
        None => match item
            .fields
            .render(&katalog.templates, scope)
            .map_err(|e| RenderError::at(&item.source, e))?
        {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    };
    let name_field = schema.map(|s| s.name_field).unwrap_or("name");
    let name = fields
        .get(name_field)
        .map(crate::template::functions::to_text)
        .unwrap_or_default();
    Ok(External {
        provider: item.provider.clone(),
        kind: item.kind.clone(),
        name,
        fields,
        source: item.source.clone(),
        registered: item.registered,
    })
}

/// Render `status.fields` against the CR plus `children` (live child objects by block and name).
pub fn render_status(
    katalog: &Katalog,
    entry: &CrdEntry,
    cr: &Value,
    children: &Value,
) -> Result<Map<String, Value>, RenderError> {
    let mut root = cr.clone();
    if let Value::Object(m) = &mut root {
        m.insert("children".into(), children.clone());
    }
    let scope = Scope::new(&root);
    let mut out = Map::new();
    for (i, f) in entry.status.iter().enumerate() {
        let source = format!("status.fields[{i}]");
        if !holds(katalog, &f.conditions, &scope, &source)? {
            continue;
        }
        let v = f
            .value
            .render(&katalog.templates, &scope)
            .map_err(|e| RenderError::at(&source, e))?;
        set_path(&mut out, &f.path, v);
    }
    Ok(out)
}

fn set_path(m: &mut Map<String, Value>, path: &str, v: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = m;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_string(), v);
            return;
        }
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        cur = next.as_object_mut().expect("made an object");
    }
}
