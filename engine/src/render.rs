//! Rendering: (Katalog entry, CR) → the desired state, in Kubernetes and outside it.
//!
//! This is the function the agent calls on every reconcile and `kubectl orkestra render` calls
//! offline. It is pure: no I/O, no clock.
//!
//! [`walk`] visits the entry's graph ([`crate::graph`]) in order. A node whose every dependency
//! has been [`Seen`] ready is rendered with `.resources.<id>` bound to what was seen; any other
//! node *waits* ([`Waiting`]): it is neither rendered nor written, and no value ever renders empty
//! because its source is not ready (composition.md, rule 3). The agent walks again after each
//! wave of writes, with what the wave observed, until nothing new can be rendered. `plan` walks
//! once with [`Unknown::Placeholder`]: a waiting node is rendered anyway, each unknown value
//! standing as `(known after apply: db.outputs.endpoint)`.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use orkestra_provider_schema::{FieldSchema, KindSchema};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::graph::NodeRef;
use crate::katalog::Generate;
use crate::readiness::{self, Readiness};

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
    pub(crate) fn at(source: &str, e: TvError) -> Self {
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
    /// Its `id`, when it has one.
    pub id: Option<String>,
    /// Keys the agent generates into a Secret's data (kept once made).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generate: Vec<Generate>,
    /// It reads another node: once created, a create-only child that no longer matches what it
    /// reads is reported as drifted, not rewritten (composition.md, rule 7).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reads_others: bool,
    /// A create-only Secret's `rotateAfter`, in seconds: made again once that old (see
    /// [`crate::generate::rotation_due`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_after_seconds: Option<u64>,
    /// A copy: the object (of the same kind) whose data it carries, read when it is written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<CopyFrom>,
}

/// Where a copy's data comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyFrom {
    pub namespace: String,
    pub name: String,
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
    /// Its `id`, when it has one.
    pub id: Option<String>,
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
    /// Nodes that wait for a value not known yet, in graph order.
    pub waiting: Vec<Waiting>,
    /// CR fields `normalize`/`mutation` set before rendering (dotted), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mutated: Vec<String>,
}

impl Desired {
    /// The waiting record of the node written at `source`.
    pub fn waiting_for(&self, source: &str) -> Option<&Waiting> {
        self.waiting.iter().find(|w| w.source == source)
    }
}

/// A node that is not rendered yet, and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// The waiting node (`deployments[web]`).
    pub node: String,
    /// Where it is written.
    pub source: String,
    /// What it waits for (`aws.rds db`).
    pub on: String,
    /// The id of what it waits for.
    pub on_id: String,
    /// Where that one stands (`Creating`, `not created yet`).
    pub on_state: String,
    /// The value it reads from it (`outputs.endpoint`; empty for `after:`).
    pub value: String,
}

impl Waiting {
    /// `deployments[web] waits for aws.rds db (Creating): outputs.endpoint`.
    pub fn message(&self) -> String {
        let mut m = format!("{} waits for {} ({})", self.node, self.on, self.on_state);
        if !self.value.is_empty() {
            m.push_str(": ");
            m.push_str(&self.value);
        }
        m
    }

    /// `db.outputs.endpoint`, what `plan` prints as known after apply.
    pub fn known_after(&self) -> String {
        if self.value.is_empty() {
            self.on_id.clone()
        } else {
            format!("{}.{}", self.on_id, self.value)
        }
    }
}

/// What has been seen of one node: whether it is ready, where it stands, and what
/// `.resources.<id>` exposes of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub ready: bool,
    /// Shown in waiting messages: `Creating`, `Deployment web: 1/3 replicas available`.
    pub state: String,
    /// The live object (a Secret's data decoded), or `{name, id, state, outputs}`.
    pub value: Value,
}

impl Seen {
    /// A Kubernetes child as the API server returned it.
    pub fn child(live: &Value, readiness: &Readiness) -> Self {
        let mut value = live.clone();
        let is_secret = live.get("kind").and_then(Value::as_str) == Some("Secret");
        if let (true, Some(data)) = (
            is_secret,
            value.get_mut("data").and_then(Value::as_object_mut),
        ) {
            for v in data.values_mut() {
                if let Some(decoded) = v
                    .as_str()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                {
                    *v = Value::String(decoded);
                }
            }
        }
        Self {
            ready: readiness.is_ready(),
            state: readiness.message().unwrap_or("ready").to_string(),
            value,
        }
    }

    /// An external resource from its status row.
    pub fn external(
        name: &str,
        id: Option<&str>,
        state: &str,
        outputs: &Map<String, Value>,
        ready: bool,
    ) -> Self {
        let mut v = Map::new();
        v.insert("name".into(), name.into());
        v.insert("id".into(), id.map_or(Value::Null, Value::from));
        v.insert("state".into(), state.into());
        v.insert("outputs".into(), Value::Object(outputs.clone()));
        Self {
            ready,
            state: state.to_string(),
            value: Value::Object(v),
        }
    }
}

/// What has been seen, by node source.
pub type Observed = HashMap<String, Seen>;

/// What a walk does with a node whose inputs are not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Leave it out (the agent: it is neither created nor changed).
    Wait,
    /// Render it with each unknown value as `(known after apply: ...)` (`plan`).
    Placeholder,
}

/// What a `plan` shows for a value that depends on an unknown output.
pub fn known_after_apply(what: &str) -> String {
    format!("(known after apply: {what})")
}

/// Whether a rendered value stands in for an unknown one.
/// Whether `v` holds a value not known yet (a `(known after apply: …)` placeholder) anywhere.
pub fn has_placeholder(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("(known after apply: "),
        Value::Array(a) => a.iter().any(has_placeholder),
        Value::Object(m) => m.values().any(has_placeholder),
        _ => false,
    }
}

/// The readiness of the child written at `source`: its `readyWhen:` on the live object when it
/// has one, the kind's default rule otherwise.
pub fn child_readiness(
    katalog: &Katalog,
    entry: &CrdEntry,
    source: &str,
    kind: &str,
    live: &Value,
) -> Readiness {
    let Some(k) = entry.kube.iter().find(|k| k.source == source) else {
        return readiness::of(kind, live);
    };
    if k.ready_when.is_empty() {
        return readiness::of(kind, live);
    }
    let name = live
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match k.ready_when.holds(&katalog.templates, &Scope::new(live)) {
        Ok(true) => Readiness::Ready,
        Ok(false) => Readiness::NotReady {
            message: format!("{kind} {name}: its readyWhen does not hold yet"),
        },
        Err(e) => Readiness::NotReady {
            message: format!("{kind} {name}: readyWhen: {}", e.message),
        },
    }
}

/// Whether the external resource written at `source` is ready: its `readyWhen:` on
/// `{name, id, state, outputs}` when it has one, else whether its row is Ready.
pub fn external_ready(
    katalog: &Katalog,
    entry: &CrdEntry,
    source: &str,
    seen: &Seen,
    row_ready: bool,
) -> bool {
    match entry.external.iter().find(|x| x.source == source) {
        Some(x) if !x.ready_when.is_empty() => x
            .ready_when
            .holds(&katalog.templates, &Scope::new(&seen.value))
            .unwrap_or(false),
        _ => row_ready,
    }
}

/// Render the desired state of `cr` under `entry` with nothing observed yet: nodes that read
/// another node wait. `provider_schemas` coerce and validate external fields (the same schemas
/// lint uses); unknown providers pass fields through.
pub fn render(
    katalog: &Katalog,
    entry: &CrdEntry,
    cr: &Value,
    provider_schemas: &[orkestra_provider_schema::ProviderSchema],
) -> Result<Desired, RenderError> {
    walk(
        katalog,
        entry,
        cr,
        provider_schemas,
        &Observed::new(),
        Unknown::Wait,
    )
}

/// Walk the entry's graph for `cr` with what has been `observed`: every node whose inputs are
/// known is rendered; the others wait, or, with [`Unknown::Placeholder`], are rendered with
/// placeholders and listed as waiting too.
pub fn walk(
    katalog: &Katalog,
    entry: &CrdEntry,
    cr: &Value,
    provider_schemas: &[orkestra_provider_schema::ProviderSchema],
    observed: &Observed,
    unknown: Unknown,
) -> Result<Desired, RenderError> {
    let (cr, mutated) = mutated_cr(katalog, entry, cr)?;
    let cr: &Value = &cr;
    let base = Scope::new(cr);
    let owner = Owner::of(cr, &katalog.name);
    let graph = &entry.graph;
    let mut out = Desired {
        mutated,
        ..Desired::default()
    };
    let mut skipped: HashSet<usize> = HashSet::new();
    let mut waiting: HashSet<usize> = HashSet::new();
    for &n in &graph.order {
        let node = &graph.nodes[n];
        // What a node reads from a node its `when` left out is not there to read: like kro's
        // includeWhen, the dependent is left out too (rather than waiting for ever).
        if node.deps.iter().any(|d| skipped.contains(&d.on)) {
            skipped.insert(n);
            continue;
        }
        let mut blocked: Option<Waiting> = None;
        let mut resources = Map::new();
        for dep in &node.deps {
            let dn = &graph.nodes[dep.on];
            let id = dn.id.clone().unwrap_or_default();
            let seen = observed.get(&dn.source);
            let on_state = match seen {
                Some(s) if s.ready => {
                    let found = !dep.path.is_empty()
                        && lookup(&s.value, &dep.path).is_none_or(Value::is_null);
                    resources.insert(id.clone(), s.value.clone());
                    found.then(|| "ready, but the value is not set".to_string())
                }
                Some(s) => Some(s.state.clone()),
                None if waiting.contains(&dep.on) => Some(WAITING_ITSELF.to_string()),
                None => Some("not created yet".to_string()),
            };
            let Some(on_state) = on_state else { continue };
            if unknown == Unknown::Placeholder && !dep.path.is_empty() {
                set_placeholder(&mut resources, &id, &dep.path);
            }
            // Name the cause: a node that is there but not ready, before one that waits itself.
            if blocked
                .as_ref()
                .is_none_or(|b| b.on_state == WAITING_ITSELF && on_state != WAITING_ITSELF)
            {
                blocked = Some(Waiting {
                    node: node.label.clone(),
                    source: node.source.clone(),
                    on: dn.label.clone(),
                    on_id: id,
                    on_state,
                    value: dep.value(),
                });
            }
        }
        if let Some(w) = &blocked {
            waiting.insert(n);
            if unknown == Unknown::Wait {
                out.waiting.push(w.clone());
                continue;
            }
        }
        let scoped;
        let scope = if node.deps.is_empty() {
            &base
        } else {
            let mut root = cr.clone();
            if let Value::Object(m) = &mut root {
                m.insert("resources".into(), Value::Object(resources));
            }
            scoped = Scope::new(&root);
            &scoped
        };
        match node.node {
            NodeRef::Kube(i) => {
                let k = &entry.kube[i];
                if !holds(katalog, &k.conditions, scope, &k.source)? {
                    skipped.insert(n);
                    continue;
                }
                let made = match (&k.for_each, &k.copy) {
                    (_, Some(c)) => render_copies(katalog, k, c, scope, &owner, blocked.is_some())?,
                    (None, None) => {
                        vec![render_child(katalog, k, scope, &owner, blocked.is_some())?]
                    }
                    (Some(f), None) => {
                        render_for_each(katalog, k, f, scope, &owner, blocked.is_some())?
                    }
                };
                for mut child in made {
                    child.reads_others = !node.deps.is_empty();
                    if k.hook == HookKind::OnDelete {
                        out.on_delete.push(child);
                    } else if let Some(existing) = out.children.iter_mut().find(|c| {
                        c.kind == child.kind
                            && c.name == child.name
                            && c.namespace == child.namespace
                    }) {
                        // The same object in onCreate and onReconcile: enforcing wins.
                        if child.enforce {
                            *existing = child;
                        }
                    } else {
                        out.children.push(child);
                    }
                }
            }
            NodeRef::External(i) => {
                let item = &entry.external[i];
                if !holds(katalog, &item.conditions, scope, &item.source)? {
                    skipped.insert(n);
                    continue;
                }
                let schema = provider_schemas
                    .iter()
                    .find(|s| s.name == item.provider)
                    .and_then(|s| s.kind(&item.kind));
                out.external.push(render_external(
                    katalog,
                    item,
                    scope,
                    schema,
                    blocked.is_some(),
                )?);
            }
        }
        if let Some(w) = blocked {
            out.waiting.push(w);
        }
    }
    Ok(out)
}

/// The objects of a `forEach` entry: one per element of the CR's list (or `{key, value}` per
/// entry of its map, by key), each rendered with `.item` and `.<as>` bound to the element.
fn render_for_each(
    katalog: &Katalog,
    k: &KubeEntry,
    f: &crate::katalog::ForEach,
    scope: &Scope,
    owner: &Owner,
    placeholders: bool,
) -> Result<Vec<Child>, RenderError> {
    let root = scope.data();
    let items: Vec<Value> = match lookup(root, &f.field) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(key, value)| serde_json::json!({"key": key, "value": value}))
            .collect(),
        Some(_) => {
            return Err(RenderError {
                field: format!("{}.forEach", k.source),
                message: format!(".{} is not a list or a map", f.field.join(".")),
            })
        }
    };
    if items.len() > crate::katalog::MAX_FOR_EACH {
        return Err(RenderError {
            field: format!("{}.forEach", k.source),
            message: format!(
                ".{} has {} elements, over the limit of {}",
                f.field.join("."),
                items.len(),
                crate::katalog::MAX_FOR_EACH
            ),
        });
    }
    let mut out: Vec<Child> = Vec::with_capacity(items.len());
    for item in items {
        let mut bound = root.clone();
        if let Value::Object(m) = &mut bound {
            m.insert("item".into(), item.clone());
            m.insert(f.name.clone(), item);
        }
        let child = render_child(katalog, k, &Scope::new(&bound), owner, placeholders)?;
        if out
            .iter()
            .any(|c| c.name == child.name && c.kind == child.kind)
        {
            return Err(RenderError {
                field: format!("{}.name", k.source),
                message: format!(
                    "forEach makes two {} named {}; put `.{}` in the name",
                    child.kind, child.name, f.name
                ),
            });
        }
        out.push(child);
    }
    Ok(out)
}

/// A copy block's children: one per target namespace, each naming its source for the agent to
/// read (`copy_from`). A namespaced CR's copies go into its own namespace only; a
/// cluster-scoped CR names where they go.
fn render_copies(
    katalog: &Katalog,
    k: &KubeEntry,
    c: &crate::katalog::CopyBlock,
    scope: &Scope,
    owner: &Owner,
    placeholders: bool,
) -> Result<Vec<Child>, RenderError> {
    let field = format!("{}.toNamespaces", k.source);
    let own = scope
        .data()
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut targets: Vec<String> = Vec::new();
    match &c.to {
        None => targets.extend(own.clone()),
        Some(tv) => {
            let v = tv
                .render(&katalog.templates, scope)
                .map_err(|e| RenderError::at(&field, e))?;
            let mut push = |v: &Value| match v {
                Value::String(s) if !s.trim().is_empty() => targets.push(s.trim().to_string()),
                _ => {}
            };
            match &v {
                Value::Array(items) => items.iter().for_each(|i| match i {
                    Value::Array(inner) => inner.iter().for_each(&mut push),
                    other => push(other),
                }),
                other => push(other),
            }
        }
    }
    targets.sort();
    targets.dedup();
    if targets.is_empty() {
        return Err(RenderError {
            field,
            message: "renders no namespace to copy into".into(),
        });
    }
    if targets.len() > crate::katalog::MAX_COPY_TARGETS {
        return Err(RenderError {
            field,
            message: format!(
                "renders {} namespaces, over the limit of {}",
                targets.len(),
                crate::katalog::MAX_COPY_TARGETS
            ),
        });
    }
    if let (Some(own), Some(other)) = (&own, targets.iter().find(|t| Some(*t) != own.as_ref())) {
        return Err(RenderError {
            field,
            message: format!("renders namespace {other:?}: a namespaced CR's copies go into its own namespace ({own}); copies into other namespaces come from a cluster-scoped CR"),
        });
    }
    // Rendered once; the copies differ only in their namespace.
    let mut copy = render_child(katalog, k, scope, owner, placeholders)?;
    copy.copy_from = Some(CopyFrom {
        namespace: c.from_namespace.clone(),
        name: c.from_name.clone(),
    });
    Ok(targets
        .into_iter()
        .map(|ns| {
            let mut child = copy.clone();
            child.object["metadata"]["namespace"] = Value::String(ns.clone());
            child.namespace = Some(ns);
            child
        })
        .collect())
}

/// The state a waiting message gives a node that waits itself.
const WAITING_ITSELF: &str = "waiting itself";

fn lookup<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Put `(known after apply: id.path)` at `resources.id.path`.
fn set_placeholder(resources: &mut Map<String, Value>, id: &str, path: &[String]) {
    let mut cur = resources
        .entry(id.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    for (i, seg) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let m = cur.as_object_mut().expect("made an object");
        if i + 1 == path.len() {
            m.insert(
                seg.clone(),
                Value::String(known_after_apply(&format!("{id}.{}", path.join(".")))),
            );
            return;
        }
        cur = m
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
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
    placeholders: bool,
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
        // A value not known yet (plan) keeps its placeholder: it has no type to check.
        if placeholders && has_placeholder(&v) {
            out.insert(k, v);
            continue;
        }
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
    placeholders: bool,
) -> Result<Child, RenderError> {
    let fields = typed_fields(
        katalog,
        &k.fields,
        scope,
        k.block.fields(),
        &k.source,
        placeholders,
    )?;
    let object = objects::build(k.block, &fields, owner, &objects::Scopes::of(katalog));
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
        id: k.id.clone(),
        generate: k.generate.clone(),
        reads_others: false,
        rotate_after_seconds: k.rotate_after.map(|d| d.as_secs()),
        copy_from: None,
    })
}

fn render_external(
    katalog: &Katalog,
    item: &ProviderItem,
    scope: &Scope,
    schema: Option<&KindSchema>,
    placeholders: bool,
) -> Result<External, RenderError> {
    let fields = match schema {
        Some(s) => typed_fields(
            katalog,
            &item.fields,
            scope,
            &s.fields,
            &item.source,
            placeholders,
        )?,
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
        id: item.id.clone(),
    })
}

/// Render `status.fields` against the CR plus `children` (live child objects by block and name)
/// and `.resources.<id>` (what was `observed` of each node with an id).
/// The `.children` status fields read: per block a map by name (`.children.deployments.web`),
/// and upstream Orkestra's singular spellings for the first child of a block
/// (`.children.deployment`, `.children.configMap`, and `.children.configmap`).
pub fn children_value<'a>(children: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Value {
    let mut out = Map::new();
    for (block, live) in children {
        let name = live
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let by_name = out
            .entry(block.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = by_name.as_object_mut() {
            m.insert(name.clone(), live.clone());
        }
        if block == "custom" {
            // Upstream's plural spelling of the same map.
            let customs = out
                .entry("customs".to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(m) = customs.as_object_mut() {
                m.insert(name.clone(), live.clone());
            }
        }
        let singular = match block {
            "ingresses" => Some("ingress".to_string()),
            "custom" => None,
            b => b.strip_suffix('s').map(str::to_string),
        };
        if let Some(one) = singular {
            let lower = one.to_lowercase();
            for key in [one, lower] {
                out.entry(key).or_insert_with(|| live.clone());
            }
        }
    }
    Value::Object(out)
}

/// `cr` as the entry's `normalize` and `mutation` rules leave it, and the fields they set.
pub fn mutated_cr<'a>(
    katalog: &Katalog,
    entry: &CrdEntry,
    cr: &'a Value,
) -> Result<(std::borrow::Cow<'a, Value>, Vec<String>), RenderError> {
    if entry.mutations.is_empty() {
        return Ok((std::borrow::Cow::Borrowed(cr), Vec::new()));
    }
    crate::mutation::apply(katalog, &entry.mutations, cr)
        .map(|(v, set)| (std::borrow::Cow::Owned(v), set))
        .map_err(|e| RenderError {
            field: e.field,
            message: e.message,
        })
}

pub fn render_status(
    katalog: &Katalog,
    entry: &CrdEntry,
    cr: &Value,
    children: &Value,
    observed: &Observed,
) -> Result<Map<String, Value>, RenderError> {
    let mut root = mutated_cr(katalog, entry, cr)?.0.into_owned();
    let resources: Map<String, Value> = entry
        .graph
        .nodes
        .iter()
        .filter_map(|n| Some((n.id.clone()?, observed.get(&n.source)?.value.clone())))
        .collect();
    if let Value::Object(m) = &mut root {
        m.insert("children".into(), children.clone());
        m.insert("resources".into(), Value::Object(resources));
    }
    let scope = Scope::new(&root);
    let mut out = Map::new();
    for (i, f) in entry.status.iter().enumerate() {
        let source = format!("status.fields[{i}]");
        if !holds(katalog, &f.conditions, &scope, &source)? {
            if f.clear_on_false {
                set_path(&mut out, &f.path, Value::Null);
            }
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
