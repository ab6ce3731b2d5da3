//! The Katalog model: what one Katalog file means, independent of how it was spelled.
//!
//! Both spellings of katalog.md (map-form and list-form `spec.crds`, provider blocks inside hooks
//! or under `operatorBox.providers`) load into these types; see [`crate::load`].

use std::time::Duration;

use crate::blocks::KubeBlock;
use crate::condition::Conditions;
use crate::graph::Graph;
use crate::template::TemplateSet;
use crate::value::Tv;

/// A loaded, compiled Katalog.
#[derive(Debug)]
pub struct Katalog {
    /// `metadata.name`.
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    /// The file it came from (for messages).
    pub file: String,
    /// Providers the Katalog declares it needs.
    pub providers: Vec<ProviderRequirement>,
    pub entries: Vec<CrdEntry>,
    /// User-defined notes (`notes:`), included files resolved, in the order they apply.
    pub notes: Vec<Note>,
    pub(crate) templates: TemplateSet,
}

/// One user-defined note: `{{ NAME }}` in a template stands for `expression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub name: String,
    /// A template of its own (text and expressions over the CR).
    pub expression: String,
    /// Upstream's `shadow: true`: the note replaces a function of the same name.
    pub shadow: bool,
}

impl Katalog {
    /// The entry that handles CRs of `apiVersion`/`kind`.
    pub fn entry_for(&self, api_version: &str, kind: &str) -> Option<&CrdEntry> {
        self.entries
            .iter()
            .find(|e| e.api.api_version() == api_version && e.api.kind == kind)
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&CrdEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The compiled templates all entries render with.
    pub fn templates(&self) -> &TemplateSet {
        &self.templates
    }
}

/// `providers: [{name: aws, required: true}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequirement {
    pub name: String,
    pub required: bool,
}

/// Whether CRs of an entry live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// `apiTypes`: the CRD an entry turns into an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTypes {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub scope: Scope,
}

impl ApiTypes {
    /// `group/version`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
    /// `plural.group`, the CRD's name.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// How an entry's controller runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciler {
    /// Use the generic reconciler (the only one today).
    pub default: bool,
    /// Concurrent reconciles.
    pub workers: u16,
    /// Periodic re-reconcile of every CR.
    pub resync: Duration,
}

impl Default for Reconciler {
    fn default() -> Self {
        Self {
            default: true,
            workers: 2,
            resync: Duration::from_secs(300),
        }
    }
}

/// Which hook an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    OnCreate,
    OnReconcile,
    OnDelete,
}

impl HookKind {
    pub fn key(self) -> &'static str {
        match self {
            HookKind::OnCreate => "onCreate",
            HookKind::OnReconcile => "onReconcile",
            HookKind::OnDelete => "onDelete",
        }
    }
}

/// One CRD entry of `spec.crds`.
#[derive(Debug, Clone)]
pub struct CrdEntry {
    pub name: String,
    pub api: ApiTypes,
    /// The CR's openAPIV3Schema, when the Katalog gives one.
    pub schema: Option<serde_json::Value>,
    pub reconciler: Reconciler,
    /// Kubernetes entries of all hooks, in the order written.
    pub kube: Vec<KubeEntry>,
    /// Provider items of all hooks and of `operatorBox.providers`, in the order written.
    pub external: Vec<ProviderItem>,
    pub status: Vec<StatusField>,
    /// The entry's declarations as one graph: who reads whose outputs, in which order they
    /// are rendered (see [`crate::graph`]).
    pub graph: Graph,
    /// The CRD read from `crdFile` (installed as it is, instead of one generated from apiTypes).
    pub crd_file: Option<serde_json::Value>,
    /// `validation.rules` (or `admission.validation.rules`): CEL rules in the CRD, enforced by
    /// the API server (see [`crate::validation`]).
    pub validation: Vec<crate::validation::Rule>,
    /// `normalize` then `mutation.rules`: fields the CR is given before rendering (see
    /// [`crate::mutation`]).
    pub mutations: Vec<crate::mutation::Mutation>,
    /// `allowedNamespaces`: when not empty, CRs in other namespaces are refused, not reconciled.
    pub allowed_namespaces: Vec<String>,
    /// `dependsOn`: entries of the same Katalog whose controllers must be started (or healthy)
    /// before this entry's controller starts (upstream orders controllers, not CRs).
    pub depends_on: Vec<Dependency>,
    /// `operatorBox.cross`: other CRs its templates read under `.cross` (see [`crate::cross`]).
    pub cross: Vec<crate::cross::CrossRead>,
}

/// One `dependsOn` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The other entry's name.
    pub entry: String,
    pub condition: DependencyCondition,
}

/// When a dependency lets its dependents start (upstream's conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyCondition {
    /// Its controller watches and reconciles (its CRD is served).
    Started,
    /// Started, and none of its CRs is failing.
    Healthy,
}

impl DependencyCondition {
    /// `started` / `healthy`, as written.
    pub fn word(self) -> &'static str {
        match self {
            DependencyCondition::Started => "started",
            DependencyCondition::Healthy => "healthy",
        }
    }
}

impl CrdEntry {
    /// Why a CR in `namespace` is refused (`allowedNamespaces` does not list it), if it is.
    pub fn refuses_namespace(&self, namespace: Option<&str>) -> Option<String> {
        let ns = namespace?;
        if self.allowed_namespaces.is_empty() || self.allowed_namespaces.iter().any(|a| a == ns) {
            return None;
        }
        Some(format!(
            "namespace {ns} is not in this entry's allowedNamespaces ({}); nothing is created for this CR",
            self.allowed_namespaces.join(", ")
        ))
    }
}

/// One entry of a Kubernetes block (`deployments[0]`).
#[derive(Debug, Clone)]
pub struct KubeEntry {
    pub hook: HookKind,
    pub block: KubeBlock,
    /// Where it is written, e.g. `spec.crds[0].operatorBox.onCreate.deployments[0]`.
    pub source: String,
    /// Its fields, compiled (control keys removed).
    pub fields: Tv,
    /// Enforced every cycle (onReconcile, or `reconcile: true`).
    pub enforce: bool,
    pub conditions: Conditions,
    /// `id:`, the name other declarations reach it by (`.resources.<id>`).
    pub id: Option<String>,
    /// `readyWhen:` conditions on the live object, replacing the kind's default readiness.
    pub ready_when: Conditions,
    /// `generate:` on a Secret: keys made once from the operating system's randomness.
    pub generate: Vec<Generate>,
    /// `forEach:`: one object per element of a CR list or map.
    pub for_each: Option<ForEach>,
    /// `rotateAfter:` on a create-only Secret: how old it may get before it is made again.
    pub rotate_after: Option<Duration>,
    /// `fromSecret`/`fromConfigMap` + `fromNamespace` (+ `toNamespaces`): a copy of another
    /// namespace's object, kept in sync every cycle.
    pub copy: Option<CopyBlock>,
}

/// Upstream's copy blocks. The source is written out in the Katalog (never templated), so a CR
/// cannot pick which Secret of which namespace is copied; a namespaced CR's copies go into its
/// own namespace only.
#[derive(Debug, Clone)]
pub struct CopyBlock {
    pub from_namespace: String,
    pub from_name: String,
    /// `toNamespaces`: names or templates (one may render a list); `None`: the CR's namespace.
    pub to: Option<crate::value::Tv>,
}

/// The most namespaces one copy block writes into.
pub const MAX_COPY_TARGETS: usize = 256;

/// `forEach: {field, as}` on a Kubernetes entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForEach {
    /// The CR field whose elements are iterated (`spec`, `items`).
    pub field: Vec<String>,
    /// The name each element is bound to beside `item`.
    pub name: String,
}

/// The most objects one `forEach` may make (an error beyond it, so no CR makes rendering
/// unbounded).
pub const MAX_FOR_EACH: usize = 256;

/// One key of a Secret's `generate:` (`password: {length: 32}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Generate {
    /// The key in the Secret's data.
    pub key: String,
    /// How many characters.
    pub length: usize,
    /// The characters to draw from.
    pub alphabet: String,
}

/// One item of a provider block (`aws: [- s3: {...}]`).
#[derive(Debug, Clone)]
pub struct ProviderItem {
    pub hook: HookKind,
    pub provider: String,
    pub kind: String,
    pub source: String,
    pub fields: Tv,
    pub conditions: Conditions,
    /// The provider was registered when the Katalog loaded.
    pub registered: bool,
    /// `id:`, the name other declarations reach it by (`.resources.<id>`).
    pub id: Option<String>,
    /// `readyWhen:` conditions on `{name, id, state, outputs}`, replacing "the row is Ready".
    pub ready_when: Conditions,
}

/// `status.fields[i]`.
#[derive(Debug, Clone)]
pub struct StatusField {
    /// Dotted path under `.status` (a leading `status.` is dropped).
    pub path: String,
    pub value: Tv,
    pub conditions: Conditions,
    /// Upstream's `clearOnFalse`: when the conditions do not hold, the field is cleared (null)
    /// rather than left out.
    pub clear_on_false: bool,
}
