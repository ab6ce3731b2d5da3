//! `kubectl orkestra plan -f KATALOG (--cr CR_FILE | KIND/NAME) [-o text|json] [--detailed-exitcode]`:
//! what applying would change, computed without writing anything.
//!
//! The CR's graph is walked with the engine's own [`orkestra_engine::walk`], the agent's walk,
//! over what exists (composition.md, rule 4): each node that renders is looked at (a child's live
//! object, a resource's observe) and the graph is walked again with what was seen, until nothing
//! new is. A node that still waits for a value is shown as it renders so far, each unknown value
//! printed as `(known after apply: db.outputs.endpoint)`, without a dry run.
//!
//! Kubernetes children whose inputs are known: the body the agent writes
//! ([`orkestra_engine::apply::body`]) compared with the live object through a server-side dry
//! run (`dryRun=All`: the API server runs admission, defaulting and validation and returns the
//! result without persisting it), with the agent's field manager. External resources: each
//! provider's read-only `observe` and its pure `diff`, the same diff the agent applies. Rows of
//! the CR's `status.external` no rendered resource matches are shown as orphaned (the agent
//! leaves their resources in place). A Secret's values and sensitive provider fields are never
//! shown (`(sensitive)`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use orkestra_engine::apply::FIELD_MANAGER;
use orkestra_engine::cr::CrId;
use orkestra_engine::render::{child_readiness, external_ready};
use orkestra_engine::{
    Child, CrdEntry, Desired, External, Katalog, Observed, Seen, SourceFile, Unknown, Waiting,
};
use orkestra_provider::runtime::stale_rows;
use orkestra_provider::{
    Action, Blocked, Declaration, DeletionPolicy, Intent, KubeReader, ManagementPolicy,
    Observation, Owner, Ownership, Plan, PlanValue, Provider, ProviderContext, ProviderSchema,
    State, StatusRow,
};
use serde_json::{json, Map, Value};

use crate::kinds;
use crate::kube_client::{connect, explain, is_not_found, runtime, Kube, KubeArgs};
use crate::output::{color_stdout, out, paint};

/// Arguments of `plan`.
#[derive(clap::Args)]
pub struct Args {
    /// The Katalog file.
    #[arg(short = 'f', long = "filename", value_name = "KATALOG")]
    katalog: PathBuf,
    /// CR files to plan for (several documents per file are fine).
    #[arg(long = "cr", value_name = "CR_FILE", conflicts_with = "target")]
    crs: Vec<PathBuf>,
    /// A CR in the cluster: KIND/NAME (in -n NAMESPACE).
    #[arg(value_name = "KIND/NAME", required_unless_present = "crs")]
    target: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    #[command(flatten)]
    kube: KubeArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    runtime()?.block_on(run_async(a))
}

/// One field of a change.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDiff {
    pub path: String,
    pub before: PlanValue,
    pub after: PlanValue,
    pub forces_replacement: bool,
}

/// One planned change (or no-op) to one object or external resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub action: Action,
    /// `kubernetes` or `external`.
    pub target: &'static str,
    pub provider: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub diff: Vec<FieldDiff>,
    /// Lines worth showing (`# ...`).
    pub notes: Vec<String>,
    /// Why the action will not be carried out, when it will not.
    pub blocked: Option<String>,
    /// What the node waits for, when a value it reads is not known yet.
    pub waiting: Option<Waiting>,
    /// A `status.external` row no rendered resource matches.
    pub orphaned: bool,
    /// The create intent the resource's row records.
    pub intent: Option<Intent>,
}

impl Change {
    /// A no-op on `kind` `name` (in `namespace`) of `target`, until planning says otherwise.
    fn noop(
        target: &'static str,
        provider: Option<&str>,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Self {
        Self {
            action: Action::Noop,
            target,
            provider: provider.map(str::to_string),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            diff: Vec::new(),
            notes: Vec::new(),
            blocked: None,
            waiting: None,
            orphaned: false,
            intent: None,
        }
    }

    fn address(&self) -> String {
        match (&self.provider, &self.namespace) {
            (Some(p), _) => format!("{p}.{} {:?}", self.kind, self.name),
            (None, Some(ns)) => format!("{} {:?}", self.kind, format!("{ns}/{}", self.name)),
            (None, None) => format!("{} {:?}", self.kind, self.name),
        }
    }
}

/// The plan for one CR.
#[derive(Debug, Clone, PartialEq)]
pub struct CrPlan {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub changes: Vec<Change>,
}

async fn run_async(a: Args) -> anyhow::Result<i32> {
    let linted = crate::katalog_file::read_linted(&a.katalog)?;
    let katalog = &linted.katalog;
    let kube = connect(&a.kube).await?;
    let crs = if a.crs.is_empty() {
        let target = a.target.as_deref().unwrap_or_default();
        vec![live_cr(&kube, katalog, target).await?]
    } else {
        let mut v = Vec::new();
        for p in &a.crs {
            v.extend(file_crs(&kube, katalog, p).await?);
        }
        v
    };
    let providers = crate::registry::providers();
    let mut plans = Vec::new();
    for cr in crs {
        plans.push(plan_cr(&kube, katalog, &cr, &providers).await?);
    }
    let text = if a.output == "json" {
        format!("{}\n", serde_json::to_string_pretty(&to_json(&plans))?)
    } else {
        to_text(&plans, color_stdout())
    };
    out(&text)?;
    let changed = plans
        .iter()
        .flat_map(|p| &p.changes)
        .any(|c| c.action != Action::Noop);
    Ok(if a.detailed_exitcode && changed { 2 } else { 0 })
}

/// `KIND/NAME` from the cluster, resolved against the Katalog's own kinds.
async fn live_cr(kube: &Kube, katalog: &Katalog, target: &str) -> anyhow::Result<Value> {
    let Some((word, name)) = target
        .split_once('/')
        .filter(|(w, n)| !w.is_empty() && !n.is_empty())
    else {
        bail!("{target:?}: expected KIND/NAME (or --cr FILE)");
    };
    let managed = kinds::of_katalog(katalog);
    let kind = kinds::resolve(&managed, word)?;
    let (ar, namespaced) = kinds::served(kube, kind).await?;
    let api: Api<DynamicObject> = if namespaced {
        Api::namespaced_with(kube.client.clone(), &kube.namespace, &ar)
    } else {
        Api::all_with(kube.client.clone(), &ar)
    };
    match api.get(name).await {
        Ok(o) => Ok(serde_json::to_value(o)?),
        Err(e) if is_not_found(&e) => {
            let where_ = if namespaced {
                format!(" in namespace {}", kube.namespace)
            } else {
                String::new()
            };
            bail!(
                "{} {name:?} not found{where_}; create it first or plan from a file with --cr FILE",
                kind.api.kind
            )
        }
        Err(e) => Err(explain(
            e,
            &format!("get {} {name}", kind.api.kind),
            &kube.server,
        )),
    }
}

/// The CRs of a file. When the same CR exists in the cluster its uid is taken over, so owner
/// references and ownership tags come out as the agent would write them, and so is its status
/// (the rows the agent recorded).
async fn file_crs(
    kube: &Kube,
    katalog: &Katalog,
    path: &std::path::Path,
) -> anyhow::Result<Vec<Value>> {
    let f = SourceFile::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (docs, diags) = f.documents();
    if let Some(d) = diags.first() {
        bail!("{}", d.render(Some(&f)).trim_end());
    }
    let mut out = Vec::new();
    for doc in docs {
        let mut cr = doc.value;
        let entry = orkestra_engine::cr::resolve(katalog, &mut cr, &kube.namespace)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.name))?;
        let CrId { kind, name, .. } = CrId::of(&cr);
        let mk = kinds::ManagedKind {
            api: entry.api.clone(),
            katalog: katalog.name.clone(),
        };
        if let Ok((ar, namespaced)) = kinds::served(kube, &mk).await {
            let api: Api<DynamicObject> =
                match cr.pointer("/metadata/namespace").and_then(Value::as_str) {
                    Some(ns) if namespaced => Api::namespaced_with(kube.client.clone(), ns, &ar),
                    _ => Api::all_with(kube.client.clone(), &ar),
                };
            let live = api
                .get_opt(&name)
                .await
                .map_err(|e| explain(e, &format!("get {kind} {name}"), &kube.server))?;
            if let Some(live) = live {
                if let Some(uid) = live.metadata.uid {
                    cr["metadata"]["uid"] = uid.into();
                }
                // Its status rows: what the agent recorded (orphaned rows, create intents).
                if let Some(status) = live.data.get("status") {
                    cr["status"] = status.clone();
                }
            }
        }
        out.push(cr);
    }
    Ok(out)
}

async fn plan_cr(
    kube: &Kube,
    katalog: &Katalog,
    cr: &Value,
    providers: &[Arc<dyn Provider>],
) -> anyhow::Result<CrPlan> {
    let api_version = cr
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = cr
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = cr
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = cr
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let entry = katalog.entry_for(api_version, &kind).ok_or_else(|| {
        anyhow!(
            "{api_version} {kind} is not handled by Katalog {}",
            katalog.name
        )
    })?;
    let who = format!(
        "{kind} {}{name}",
        namespace
            .as_deref()
            .map(|n| format!("{n}/"))
            .unwrap_or_default()
    );
    let mut planner = Planner {
        kube,
        katalog,
        entry,
        cr,
        providers,
        schemas: crate::registry::schemas(),
        owner: Owner::of_cr(cr, &katalog.name),
        rows: orkestra_provider::journal::rows_of(cr),
        cr_namespace: namespace.clone(),
        children: HashMap::new(),
        externals: HashMap::new(),
    };
    let desired = planner
        .walk_what_exists()
        .await
        .map_err(|e| anyhow!("{who}: {e:#}"))?;
    let mut changes = Vec::new();
    for child in &desired.children {
        changes.push(
            planner
                .plan_child(child, desired.waiting_for(&child.source))
                .await
                .map_err(|e| anyhow!("{who}: {e:#}"))?,
        );
    }
    for ext in &desired.external {
        changes.push(
            planner
                .plan_external(ext, desired.waiting_for(&ext.source))
                .await
                .map_err(|e| anyhow!("{who}: {e:#}"))?,
        );
    }
    changes.extend(planner.orphaned_rows(&desired.external).await);
    Ok(CrPlan {
        kind,
        namespace,
        name,
        changes,
    })
}

/// What was looked at of one child: where it is written and the live object, if any.
#[derive(Clone)]
struct ChildLook {
    api: Api<DynamicObject>,
    /// The namespace it is written in (`None` for a cluster-scoped kind).
    namespace: Option<String>,
    live: Option<Value>,
}

/// What was looked at of one external resource.
enum ExtLook {
    /// Its provider is not in this build.
    Unregistered,
    /// It waits and its name is not known yet: there is nothing to look up.
    Unnamed,
    /// The provider's read-only observe.
    Observed {
        provider: Arc<dyn Provider>,
        decl: Box<Declaration>,
        obs: Box<Observation>,
        /// The create intent its status row records.
        intent: Option<Intent>,
    },
}

/// One CR's plan in the making: the graph walked over what exists, each node looked at once.
struct Planner<'a> {
    kube: &'a Kube,
    katalog: &'a Katalog,
    entry: &'a CrdEntry,
    cr: &'a Value,
    providers: &'a [Arc<dyn Provider>],
    schemas: Vec<ProviderSchema>,
    owner: Owner,
    /// The CR's `status.external` rows (none for a CR not created yet).
    rows: Vec<StatusRow>,
    cr_namespace: Option<String>,
    /// By node source.
    children: HashMap<String, ChildLook>,
    /// By node source.
    externals: HashMap<String, ExtLook>,
}

impl Planner<'_> {
    /// Walk the graph as the agent does (composition.md, rule 4): render with what has been
    /// seen, look at every node that rendered without waiting (a child's live object, a
    /// resource's observe), and walk again with what exists, until nothing new is seen. A node
    /// that still waits is rendered with `(known after apply: …)` placeholders.
    async fn walk_what_exists(&mut self) -> anyhow::Result<Desired> {
        let mut observed = Observed::new();
        // Each pass that sees something new lets at least one more node render, so the walk
        // settles within one pass per node.
        for _ in 0..=self.entry.graph.nodes.len() {
            let desired = self.walk(&observed)?;
            let seen_before = observed.len();
            for child in &desired.children {
                if desired.waiting_for(&child.source).is_some()
                    || observed.contains_key(&child.source)
                {
                    continue;
                }
                if let Some(live) = self.child_look(child).await?.live {
                    let readiness = child_readiness(
                        self.katalog,
                        self.entry,
                        &child.source,
                        &child.kind,
                        &live,
                    );
                    observed.insert(child.source.clone(), Seen::child(&live, &readiness));
                }
            }
            for ext in &desired.external {
                if desired.waiting_for(&ext.source).is_some() || observed.contains_key(&ext.source)
                {
                    continue;
                }
                if let Some(seen) = self.external_seen(ext).await? {
                    observed.insert(ext.source.clone(), seen);
                }
            }
            if observed.len() == seen_before {
                return Ok(desired);
            }
        }
        self.walk(&observed)
    }

    fn walk(&self, observed: &Observed) -> anyhow::Result<Desired> {
        orkestra_engine::walk(
            self.katalog,
            self.entry,
            self.cr,
            &self.schemas,
            observed,
            Unknown::Placeholder,
        )
        .map_err(|e| anyhow!("{e}"))
    }

    async fn child_look(&mut self, child: &Child) -> anyhow::Result<ChildLook> {
        if let Some(look) = self.children.get(&child.source) {
            return Ok(look.clone());
        }
        let look = look_child(self.kube, child, self.cr_namespace.as_deref()).await?;
        self.children.insert(child.source.clone(), look.clone());
        Ok(look)
    }

    async fn external_look(&mut self, ext: &External, waiting: bool) -> anyhow::Result<&ExtLook> {
        if !self.externals.contains_key(&ext.source) {
            let look = self.observe_external(ext, waiting).await?;
            self.externals.insert(ext.source.clone(), look);
        }
        Ok(&self.externals[&ext.source])
    }

    /// What `.resources.<id>` sees of an external resource that exists: its name, id, the state
    /// its row would show after this pass, and its outputs.
    async fn external_seen(&mut self, ext: &External) -> anyhow::Result<Option<Seen>> {
        let ExtLook::Observed {
            provider,
            decl,
            obs,
            ..
        } = self.external_look(ext, false).await?
        else {
            return Ok(None);
        };
        if !obs.exists {
            return Ok(None);
        }
        let state = state_after_pass(obs, &provider.diff(decl, obs));
        let seen = Seen::external(
            &decl.name,
            obs.id.as_deref(),
            &format!("{state:?}"),
            &obs.outputs,
            false,
        );
        let ready = external_ready(
            self.katalog,
            self.entry,
            &ext.source,
            &seen,
            state == State::Ready,
        );
        Ok(Some(Seen { ready, ..seen }))
    }

    /// The provider's read-only observe of `ext`. A waiting resource is looked up with what is
    /// known of it (its name at least); its other values are shown as they render.
    async fn observe_external(&self, ext: &External, waiting: bool) -> anyhow::Result<ExtLook> {
        let Some(provider) = self.providers.iter().find(|p| p.name() == ext.provider) else {
            return Ok(ExtLook::Unregistered);
        };
        let schema = provider.schema();
        let kind = schema.kind(&ext.kind).ok_or_else(|| {
            anyhow!(
                "{}.{}: provider {} has no kind {:?}",
                ext.provider,
                ext.kind,
                ext.provider,
                ext.kind
            )
        })?;
        if waiting && (ext.name.is_empty() || is_unknown(&Value::String(ext.name.clone()))) {
            return Ok(ExtLook::Unnamed);
        }
        let known: Map<String, Value> = ext
            .fields
            .iter()
            .filter(|(_, v)| !is_unknown(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let decl = match Declaration::from_rendered(&ext.provider, kind, &known, self.owner.clone())
        {
            Ok(d) => d,
            // A required value is not known yet: look the resource up by its name alone.
            Err(_) if waiting => by_name(ext, kind.name_field, self.owner.clone()),
            Err(e) => return Err(anyhow!("{e}")),
        };
        let ctx = ProviderContext::new(
            format!("plan-{}", decl.name),
            self.cr.clone(),
            KubeReader::new(self.kube.client.clone()),
        );
        let obs = provider.observe(&ctx, &decl).await.map_err(|e| {
            anyhow!(
                "{}.{} {:?}: cannot observe: {e}",
                ext.provider,
                ext.kind,
                decl.name
            )
        })?;
        let intent = self
            .rows
            .iter()
            .find(|r| r.provider == decl.provider && r.kind == decl.kind && r.name == decl.name)
            .and_then(|r| r.intent);
        Ok(ExtLook::Observed {
            provider: provider.clone(),
            decl: Box::new(decl),
            obs: Box::new(obs),
            intent,
        })
    }

    /// The change to one child. A waiting child is shown as it renders so far, without a dry
    /// run (its placeholders would not validate); any other is dry-run with the body the agent
    /// writes ([`orkestra_engine::apply::body`]) and the agent's field manager.
    async fn plan_child(
        &mut self,
        child: &Child,
        waiting: Option<&Waiting>,
    ) -> anyhow::Result<Change> {
        let look = self.child_look(child).await?;
        let mut change = Change {
            waiting: waiting.cloned(),
            ..Change::noop(
                "kubernetes",
                None,
                &child.kind,
                look.namespace.as_deref(),
                &child.name,
            )
        };
        let what = format!("{} {}", child.kind, child.name);
        let (body, made) =
            orkestra_engine::apply::body(child, look.namespace.as_deref(), look.live.as_ref())
                .map_err(|e| anyhow!("{what}: {e}"))?;
        if !made.is_empty() {
            change.notes.push(format!(
                "generates {} (made once and kept; never shown)",
                made.join(", ")
            ));
        }
        match waiting {
            Some(w) => plan_waiting_child(&mut change, child, &body, look.live.as_ref(), w),
            None => dry_run_child(self.kube, &mut change, child, &body, &look).await?,
        }
        mask_secret_values(&mut change);
        Ok(change)
    }

    async fn plan_external(
        &mut self,
        ext: &External,
        waiting: Option<&Waiting>,
    ) -> anyhow::Result<Change> {
        let change = Change {
            waiting: waiting.cloned(),
            ..Change::noop("external", Some(&ext.provider), &ext.kind, None, &ext.name)
        };
        // Its kind's schema, owned: the looks below borrow the planner.
        let schema = self
            .schemas
            .iter()
            .find(|s| s.name == ext.provider)
            .and_then(|s| s.kind(&ext.kind))
            .cloned();
        let sensitive = |field: &str| {
            schema
                .as_ref()
                .and_then(|k| k.field(field))
                .is_some_and(|f| f.sensitive)
        };
        let mut change = match self.external_look(ext, waiting.is_some()).await? {
            ExtLook::Unregistered => {
                let mut change = change;
                change.notes.push(format!(
                    "provider {:?} is not registered in this build; skipped",
                    ext.provider
                ));
                return Ok(change);
            }
            ExtLook::Unnamed => {
                let mut change = change;
                change.action = Action::Create;
                change.diff = unknown_fields(ext, &Map::new(), None);
                change
                    .notes
                    .push("its name is not known yet, so nothing is looked up".into());
                change
            }
            ExtLook::Observed {
                provider,
                decl,
                obs,
                intent,
            } => {
                let mut obs = (**obs).clone();
                let settled = settle_intent(&mut obs, *intent);
                let mut plan = provider.diff(decl, &obs);
                if decl.owner.uid.is_empty() {
                    // A CR not created yet has no uid: its ownership tag is only known after apply.
                    for c in plan
                        .changes
                        .iter_mut()
                        .filter(|c| c.path.ends_with("owner-uid"))
                    {
                        c.after = PlanValue::Unknown;
                    }
                }
                let mut change = from_provider_plan(change, &plan);
                change.intent = *intent;
                change.notes.extend(settled);
                if waiting.is_some() {
                    let mut more = unknown_fields(ext, &decl.fields, Some(&obs));
                    more.retain(|d| !change.diff.iter().any(|c| c.path == d.path));
                    if obs.exists && change.action == Action::Noop && !more.is_empty() {
                        change.action = Action::Update;
                    }
                    change.diff.extend(more);
                }
                change
            }
        };
        // Whatever the provider's diff does, a field its schema marks sensitive is never shown.
        for d in change
            .diff
            .iter_mut()
            .filter(|d| sensitive(d.path.split(['.', '[']).next().unwrap_or_default()))
        {
            mask(&mut d.before);
            mask(&mut d.after);
        }
        if let Some(w) = waiting {
            change.notes.push(waiting_note(w, false));
        }
        Ok(change)
    }

    /// The CR's `status.external` rows that no rendered resource matches (same provider, kind
    /// and name), found by the provider runtime's own rule ([`stale_rows`]). The agent never
    /// deletes such a resource: each is planned as a no-op marked orphaned, with the row's
    /// reason, or saying its resource is gone already (the agent then drops the row).
    async fn orphaned_rows(&self, rendered: &[External]) -> Vec<Change> {
        let declared: Vec<Declaration> = rendered
            .iter()
            .map(|x| by_name(x, "", self.owner.clone()))
            .collect();
        let mut out = Vec::new();
        for row in stale_rows(&declared, &self.rows) {
            let note = match self.row_resource_exists(&row).await {
                Ok(Some(true)) => row.message.clone(),
                Ok(Some(false)) => {
                    "no longer declared, and its resource is gone: the agent drops the row".into()
                }
                Ok(None) => format!(
                    "{}; provider {} kind {} is not in this build, so whether it still exists is not known",
                    row.message, row.provider, row.kind
                ),
                Err(e) => format!(
                    "{}; whether it still exists is not known: {e}",
                    row.message
                ),
            };
            out.push(Change {
                notes: vec![note],
                orphaned: true,
                intent: row.intent,
                ..Change::noop("external", Some(&row.provider), &row.kind, None, &row.name)
            });
        }
        out
    }

    /// Whether the resource of a row still exists (read only; `None`: its provider or kind is
    /// not in this build).
    async fn row_resource_exists(&self, row: &StatusRow) -> anyhow::Result<Option<bool>> {
        let Some(provider) = self.providers.iter().find(|p| p.name() == row.provider) else {
            return Ok(None);
        };
        let schema = provider.schema();
        let Some(kind) = schema.kind(&row.kind) else {
            return Ok(None);
        };
        let decl = Declaration {
            deletion_policy: DeletionPolicy::Orphan,
            management_policy: ManagementPolicy::Observe,
            ..Declaration::from_row(row, kind, self.owner.clone())
        };
        let ctx = ProviderContext::new(
            format!("plan-{}", decl.name),
            self.cr.clone(),
            KubeReader::new(self.kube.client.clone()),
        );
        let obs = provider
            .observe(&ctx, &decl)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Some(obs.exists))
    }
}

/// A declaration of `ext` by its name alone (`name_field`, when given, set to it).
fn by_name(ext: &External, name_field: &str, owner: Owner) -> Declaration {
    let mut fields = Map::new();
    if !name_field.is_empty() {
        fields.insert(name_field.to_string(), Value::String(ext.name.clone()));
    }
    Declaration {
        provider: ext.provider.clone(),
        kind: ext.kind.clone(),
        name: ext.name.clone(),
        fields,
        deletion_policy: DeletionPolicy::default(),
        management_policy: ManagementPolicy::default(),
        adopt: false,
        owner,
    }
}

/// Whether a rendered value stands in for one known only after apply.
fn is_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(PLACEHOLDER_START),
        Value::Array(a) => a.iter().any(is_unknown),
        Value::Object(m) => m.values().any(is_unknown),
        _ => false,
    }
}

/// How every `(known after apply: …)` placeholder begins.
const PLACEHOLDER_START: &str = "(known after apply: ";

/// The fields of a waiting `ext` that `declared` lacks (those known only after apply, or all of
/// them when the declaration could not be made), as changes from what `obs` saw (sensitive ones
/// are masked by the caller).
fn unknown_fields(
    ext: &External,
    declared: &Map<String, Value>,
    obs: Option<&Observation>,
) -> Vec<FieldDiff> {
    ext.fields
        .iter()
        .filter(|(k, _)| !declared.contains_key(*k))
        .filter(|(k, _)| !matches!(k.as_str(), "deletionPolicy" | "managementPolicy" | "adopt"))
        .filter_map(|(k, v)| {
            let before = match obs {
                Some(o) if o.exists => PlanValue::from_option(o.fields.get(k)),
                _ => PlanValue::Absent,
            };
            let after = PlanValue::Known(v.clone());
            if before == after {
                return None;
            }
            Some(FieldDiff {
                path: k.clone(),
                before,
                after,
                forces_replacement: false,
            })
        })
        .collect()
}

/// A recorded create intent applied to a fresh observation, as the provider runtime applies it
/// on the agent's next pass: a resource without owner tags is that create's and is claimed (the
/// diff then adds the tags); a resource with owner tags settles the intent; no resource means
/// the recorded create is still to be made, once.
fn settle_intent(obs: &mut Observation, intent: Option<Intent>) -> Option<String> {
    intent?;
    if !obs.exists {
        return Some(
            "a create is recorded for it (status.external intent: Create): the agent's next pass makes that one create, not a second".into(),
        );
    }
    Some(match obs.ownership {
        Ownership::Unowned => {
            obs.ownership = Ownership::Ours;
            "claimed: created by this resource's own interrupted create (intent recorded in status); owner tags will be added".into()
        }
        Ownership::Ours | Ownership::Foreign { .. } => {
            "its recorded create intent is settled (it carries owner tags); the agent clears it on its next pass".into()
        }
    })
}

/// The state the row of a resource that exists shows once the agent's pass over it is done,
/// from its observation and plan: only a resource with nothing left to do is Ready (an update
/// may change the outputs its dependents read).
fn state_after_pass(obs: &Observation, plan: &Plan) -> State {
    if obs.busy {
        return match obs.status.as_deref().unwrap_or_default() {
            s if s.contains("creat") => State::Creating,
            s if s.contains("delet") => State::Deleting,
            _ => State::Updating,
        };
    }
    match &plan.blocked {
        Some(Blocked::Conflict(_)) => State::Conflict,
        Some(Blocked::ReplacementRequired) => State::Error,
        Some(Blocked::Busy(_)) => State::Updating,
        Some(Blocked::ObserveOnly) => State::Ready,
        None if plan.action == Action::Noop => State::Ready,
        None => State::Updating,
    }
}

/// The note of a waiting node: what it waits for (composition.md, rule 3: until that is known
/// it is neither created nor changed, and a child is not dry-run).
fn waiting_note(w: &Waiting, child: bool) -> String {
    let until = if child {
        "neither created nor changed until then, so not dry-run"
    } else {
        "neither created nor changed until then"
    };
    format!("{}; {until}", w.message())
}

/// Discover a child's kind and read the live object (read only). A name not known yet is not
/// looked up.
async fn look_child(
    kube: &Kube,
    child: &Child,
    cr_namespace: Option<&str>,
) -> anyhow::Result<ChildLook> {
    let (group, version) = child
        .api_version
        .split_once('/')
        .unwrap_or(("", child.api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &child.kind);
    let not_served = || {
        anyhow!(
            "{} {} is not served by the cluster",
            child.api_version,
            child.kind
        )
    };
    let (ar, caps) = kube::discovery::pinned_kind(&kube.client, &gvk)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 => not_served(),
            kube::Error::Discovery(_) => not_served(),
            e => explain(
                e,
                &format!("discover {} {}", child.api_version, child.kind),
                &kube.server,
            ),
        })?;
    let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
    let namespace = child
        .namespace
        .as_deref()
        .or(cr_namespace)
        .filter(|_| namespaced)
        .map(str::to_string);
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(kube.client.clone(), ns, &ar),
        None => Api::all_with(kube.client.clone(), &ar),
    };
    let live = if child.name.contains(PLACEHOLDER_START) {
        None
    } else {
        api.get_opt(&child.name)
            .await
            .map_err(|e| {
                explain(
                    e,
                    &format!("get {} {}", child.kind, child.name),
                    &kube.server,
                )
            })?
            .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
    };
    Ok(ChildLook {
        api,
        namespace,
        live,
    })
}

/// The note of a create-only child that exists: the agent leaves it as it is.
const CREATED_ONCE: &str = "exists; created once (onCreate), not enforced on later cycles";

/// Every field of an object to be created (`desired`, normalized), but the bookkeeping ones.
fn created_fields(desired: &Value) -> Vec<FieldDiff> {
    leaves(desired)
        .into_iter()
        .filter(|(path, _)| !bookkeeping(path))
        .map(|(path, v)| FieldDiff {
            path,
            before: PlanValue::Absent,
            after: PlanValue::Known(v),
            forces_replacement: false,
        })
        .collect()
}

/// A waiting child: created with what renders so far, or updated where that differs from the
/// live object; no dry run.
fn plan_waiting_child(
    change: &mut Change,
    child: &Child,
    body: &Value,
    live: Option<&Value>,
    w: &Waiting,
) {
    let desired = normalize(body);
    match live {
        None => {
            change.action = Action::Create;
            change.diff = created_fields(&desired);
        }
        Some(_) if !child.enforce => change.notes.push(CREATED_ONCE.into()),
        Some(live) => {
            change.diff = changed_leaves(&normalize(live), &desired)
                .into_iter()
                .filter(|d| !bookkeeping(&d.path))
                .collect();
            if !change.diff.is_empty() {
                change.action = Action::Update;
            }
        }
    }
    change.notes.push(waiting_note(w, true));
}

/// A child whose inputs are known: the API server's own answer to the agent's write, by a
/// server-side dry run of `body` with the agent's field manager.
async fn dry_run_child(
    kube: &Kube,
    change: &mut Change,
    child: &Child,
    body: &Value,
    look: &ChildLook,
) -> anyhow::Result<()> {
    let what = format!("{} {}", child.kind, child.name);
    let api = &look.api;
    let Some(live) = &look.live else {
        change.action = Action::Create;
        let object: DynamicObject = serde_json::from_value(body.clone())
            .with_context(|| format!("{what}: rendered object is not an object"))?;
        let params = PostParams {
            dry_run: true,
            field_manager: Some(FIELD_MANAGER.into()),
        };
        match api.create(&params, &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 && s.message.contains("namespace") => {
                change.notes.push(format!(
                    "namespace {} does not exist yet; the server could not validate this object",
                    look.namespace.as_deref().unwrap_or("?")
                ))
            }
            Err(e) => {
                return Err(explain(
                    e,
                    &format!("{what} would be rejected by the API server"),
                    &kube.server,
                ))
            }
        }
        change.diff = created_fields(&normalize(body));
        return Ok(());
    };
    if !child.enforce {
        change.notes.push(CREATED_ONCE.into());
        return Ok(());
    }
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    let live_v = normalize(live);
    match api.patch(&child.name, &params, &Patch::Apply(body)).await {
        Ok(result) => {
            let after = normalize(&serde_json::to_value(&result)?);
            change.diff = diff_values(&live_v, &after)
                .into_iter()
                .filter(|d| !bookkeeping(&d.path))
                .collect();
            if !change.diff.is_empty() {
                change.action = Action::Update;
            }
        }
        Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("immutable") => {
            change.action = Action::Replace;
            change.diff = diff_values(&live_v, &merge_over(&live_v, &normalize(body)))
                .into_iter()
                .filter(|d| !bookkeeping(&d.path))
                .map(|mut d| {
                    d.forces_replacement = true;
                    d
                })
                .collect();
            change.notes.push(format!(
                "the API server refuses an in-place change: {}",
                s.message
            ));
            change.blocked = Some("the agent does not replace Kubernetes objects; delete the object to let it be recreated".into());
        }
        Err(e) => {
            return Err(explain(
                e,
                &format!("{what} would be rejected by the API server"),
                &kube.server,
            ))
        }
    }
    Ok(())
}

/// A Secret's values (`data`, `stringData`: given, generated, or composed from other nodes)
/// never reach plan output: each shows as `(sensitive)`.
fn mask_secret_values(change: &mut Change) {
    if change.target != "kubernetes" || change.kind != "Secret" {
        return;
    }
    for d in &mut change.diff {
        let secret = ["data", "stringData"].iter().any(|k| {
            d.path
                .strip_prefix(k)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        });
        if secret {
            mask(&mut d.before);
            mask(&mut d.after);
        }
    }
}

fn mask(v: &mut PlanValue) {
    if *v != PlanValue::Absent {
        *v = PlanValue::Sensitive;
    }
}

fn from_provider_plan(mut change: Change, plan: &Plan) -> Change {
    change.action = plan.action;
    change.name = plan.name.clone();
    change.diff = plan
        .changes
        .iter()
        .map(|c| FieldDiff {
            path: c.path.clone(),
            before: c.before.clone(),
            after: c.after.clone(),
            forces_replacement: c.forces_replacement || plan.requires_replacement.contains(&c.path),
        })
        .collect();
    change.notes = plan.notes.clone();
    change.blocked = plan.blocked.as_ref().map(|b| match b {
        Blocked::Conflict(m) => format!("conflict: {m}"),
        Blocked::ObserveOnly => "managementPolicy is Observe (read only)".to_string(),
        Blocked::ReplacementRequired => {
            "replacement is never done automatically; recreate the resource under a new name"
                .to_string()
        }
        Blocked::Busy(m) => format!("waiting: {m}"),
    });
    change
}

/// Drop what the server owns and what is never desired state: status, server-set metadata.
fn normalize(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "managedFields",
                "resourceVersion",
                "generation",
                "uid",
                "creationTimestamp",
                "selfLink",
            ] {
                meta.remove(k);
            }
        }
    }
    v
}

use orkestra_engine::objects::labels::APPLIED_HASH;

/// Fields that say nothing the header does not (type, name, namespace) or that only record
/// ownership and the agent's bookkeeping; hidden from field lists.
fn bookkeeping(path: &str) -> bool {
    matches!(
        path,
        "apiVersion" | "kind" | "metadata.name" | "metadata.namespace"
    ) || path.starts_with("metadata.ownerReferences")
        || path.contains(".labels[\"orkestra.orkspace.io/owner-")
        || path == format!("metadata.annotations[{APPLIED_HASH:?}]")
}

/// `live` with every leaf of `desired` written over it (for showing a refused change).
fn merge_over(live: &Value, desired: &Value) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            let mut out = l.clone();
            for (k, dv) in d {
                let merged = l.get(k).map_or_else(|| dv.clone(), |lv| merge_over(lv, dv));
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, d) => d.clone(),
    }
}

/// Leaves of a JSON tree, `a.b[0].c` → value. Empty maps and lists are leaves.
fn leaves(v: &Value) -> Vec<(String, Value)> {
    fn walk(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    let key = if k
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        k.clone()
                    } else {
                        format!("[{k:?}]")
                    };
                    let p = if at.is_empty() {
                        key
                    } else if key.starts_with('[') {
                        format!("{at}{key}")
                    } else {
                        format!("{at}.{key}")
                    };
                    walk(x, p, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{at}[{i}]"), out);
                }
            }
            _ => out.push((at, v.clone())),
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// Field-by-field differences between two objects.
fn diff_values(before: &Value, after: &Value) -> Vec<FieldDiff> {
    let b: Map<String, Value> = leaves(before).into_iter().collect();
    let a: Map<String, Value> = leaves(after).into_iter().collect();
    let mut out = Vec::new();
    for (path, av) in &a {
        match b.get(path) {
            Some(bv) if bv == av => {}
            bv => out.push(FieldDiff {
                path: path.clone(),
                before: PlanValue::from_option(bv),
                after: PlanValue::Known(av.clone()),
                forces_replacement: false,
            }),
        }
    }
    for (path, bv) in &b {
        if !a.contains_key(path) {
            out.push(FieldDiff {
                path: path.clone(),
                before: PlanValue::Known(bv.clone()),
                after: PlanValue::Absent,
                forces_replacement: false,
            });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

/// The leaves of `desired` that `live` does not already hold (a change shown without a dry run:
/// nothing the server would default is compared).
fn changed_leaves(live: &Value, desired: &Value) -> Vec<FieldDiff> {
    let l: Map<String, Value> = leaves(live).into_iter().collect();
    leaves(desired)
        .into_iter()
        .filter(|(path, v)| l.get(path) != Some(v))
        .map(|(path, v)| FieldDiff {
            before: PlanValue::from_option(l.get(&path)),
            after: PlanValue::Known(v),
            path,
            forces_replacement: false,
        })
        .collect()
}

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Noop => "noop",
    }
}

fn value_json(v: &PlanValue) -> Value {
    match v {
        PlanValue::Absent => Value::Null,
        PlanValue::Known(v) => v.clone(),
        PlanValue::Unknown => json!("(known after apply)"),
        PlanValue::Sensitive => json!(SENSITIVE),
    }
}

/// What plan prints for a value it never shows (composition.md, rule 5).
pub const SENSITIVE: &str = "(sensitive)";

fn summary(plans: &[CrPlan]) -> [usize; 4] {
    let mut s = [0; 4];
    for c in plans.iter().flat_map(|p| &p.changes) {
        match c.action {
            Action::Create => s[0] += 1,
            Action::Update => s[1] += 1,
            Action::Replace => s[2] += 1,
            Action::Delete => s[3] += 1,
            Action::Noop => {}
        }
    }
    s
}

/// The JSON of cli.md: `{"changes":[…],"summary":{…}}`.
pub fn to_json(plans: &[CrPlan]) -> Value {
    let changes: Vec<Value> = plans
        .iter()
        .flat_map(|p| {
            p.changes.iter().map(move |c| {
                let mut o = json!({
                    "action": action_word(c.action),
                    "target": c.target,
                    "provider": c.provider,
                    "kind": c.kind,
                    "name": c.name,
                    "diff": c.diff.iter().map(|d| {
                        let mut f = json!({"path": d.path, "before": value_json(&d.before), "after": value_json(&d.after)});
                        if d.forces_replacement {
                            f["forcesReplacement"] = json!(true);
                        }
                        f
                    }).collect::<Vec<_>>(),
                    "cr": {"kind": p.kind, "namespace": p.namespace, "name": p.name},
                });
                if let Some(ns) = &c.namespace {
                    o["namespace"] = json!(ns);
                }
                if let Some(b) = &c.blocked {
                    o["blocked"] = json!(b);
                }
                if !c.notes.is_empty() {
                    o["notes"] = json!(c.notes);
                }
                if let Some(w) = &c.waiting {
                    o["waiting"] = crate::render::waiting_json(w);
                }
                if c.orphaned {
                    o["orphaned"] = json!(true);
                }
                if let Some(i) = c.intent {
                    o["intent"] = json!(i);
                }
                o
            })
        })
        .collect();
    let [create, update, replace, delete] = summary(plans);
    json!({"changes": changes, "summary": {"create": create, "update": update, "replace": replace, "delete": delete}})
}

/// A value as text: strings quoted, except a whole `(known after apply: …)` placeholder, which
/// is printed as it is (like terraform's `(known after apply)`).
fn shown(v: &PlanValue) -> String {
    match v {
        PlanValue::Known(Value::String(s))
            if s.starts_with(PLACEHOLDER_START)
                && s.ends_with(')')
                && s.matches(PLACEHOLDER_START).count() == 1 =>
        {
            s.clone()
        }
        PlanValue::Known(Value::String(s)) => format!("{s:?}"),
        PlanValue::Sensitive => SENSITIVE.to_string(),
        other => other.to_string(),
    }
}

/// Terraform-style text.
pub fn to_text(plans: &[CrPlan], color: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let [create, update, replace, delete] = summary(plans);
    for p in plans {
        let who = format!(
            "{} {}{}",
            p.kind,
            p.namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            p.name
        );
        let visible: Vec<&Change> = p
            .changes
            .iter()
            .filter(|c| c.action != Action::Noop || c.blocked.is_some() || c.orphaned)
            .collect();
        if visible.is_empty() {
            let _ = writeln!(
                out,
                "{who}: no changes; the cluster and the external systems match the Katalog.\n"
            );
            continue;
        }
        let _ = writeln!(out, "{who}:\n");
        for c in visible {
            let (sym, headline, code) = match c.action {
                Action::Create => ("+", "will be created", "32"),
                Action::Update => ("~", "will be updated in place", "33"),
                Action::Replace => ("-/+", "must be replaced", "31"),
                Action::Delete => ("-", "will be destroyed", "31"),
                Action::Noop => (" ", "is up to date", "0"),
            };
            let headline = if c.orphaned {
                "is no longer declared (orphaned row in status.external)"
            } else {
                headline
            };
            let _ = writeln!(out, "  # {} {headline}", c.address());
            if let Some(b) = &c.blocked {
                let _ = writeln!(out, "  # not applied: {b}");
            }
            for n in &c.notes {
                let _ = writeln!(out, "  # {n}");
            }
            if !c.diff.is_empty() {
                let _ = writeln!(out, "  {} {} {{", paint(sym, code, color), c.address());
                let width = c.diff.iter().map(|d| d.path.len()).max().unwrap_or(0);
                for d in &c.diff {
                    let (s, text, code) = match (&d.before, &d.after) {
                        (PlanValue::Absent, after) => ("+", shown(after), "32"),
                        (before, PlanValue::Absent) => {
                            ("-", format!("{} -> null", shown(before)), "31")
                        }
                        (before, after) => {
                            ("~", format!("{} -> {}", shown(before), shown(after)), "33")
                        }
                    };
                    let forces = if d.forces_replacement {
                        paint(" # forces replacement", "31", color)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "      {} {:width$} = {text}{forces}",
                        paint(s, code, color),
                        d.path
                    );
                }
                let _ = writeln!(out, "    }}");
            }
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "Plan: {create} to create, {update} to update, {replace} to replace, {delete} to delete."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_of_nested_values() {
        let before = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "a"}]}}}, "x": 1});
        let after = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "a"}]}}}});
        let d = diff_values(&before, &after);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].path, "spec.replicas");
        assert_eq!(d[1].path, "x");
        assert_eq!(d[1].after, PlanValue::Absent);
        let l = leaves(&json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}}));
        assert_eq!(l[0].0, "metadata.labels[\"app.kubernetes.io/name\"]");
    }

    #[test]
    fn text_has_terraform_summary() {
        let plans = vec![CrPlan {
            kind: "Website".into(),
            namespace: Some("ns".into()),
            name: "blog".into(),
            changes: vec![Change {
                action: Action::Replace,
                target: "external",
                provider: Some("aws".into()),
                kind: "s3".into(),
                namespace: None,
                name: "b".into(),
                diff: vec![
                    FieldDiff {
                        path: "region".into(),
                        before: PlanValue::Known(json!("eu-west-1")),
                        after: PlanValue::Known(json!("us-east-1")),
                        forces_replacement: true,
                    },
                    FieldDiff {
                        path: "arn".into(),
                        before: PlanValue::Absent,
                        after: PlanValue::Unknown,
                        forces_replacement: false,
                    },
                ],
                notes: vec![],
                blocked: None,
                waiting: None,
                orphaned: false,
                intent: None,
            }],
        }];
        let t = to_text(&plans, false);
        assert!(t.contains("-/+ aws.s3 \"b\" {"), "{t}");
        assert!(
            t.contains("~ region = \"eu-west-1\" -> \"us-east-1\" # forces replacement"),
            "{t}"
        );
        assert!(t.contains("+ arn    = (known after apply)"), "{t}");
        assert!(
            t.ends_with("Plan: 0 to create, 0 to update, 1 to replace, 0 to delete.\n"),
            "{t}"
        );
        let j = to_json(&plans);
        assert_eq!(j["summary"]["replace"], 1);
        assert_eq!(j["changes"][0]["diff"][1]["after"], "(known after apply)");
    }

    fn change(kind: &str, target: &'static str) -> Change {
        Change {
            action: Action::Create,
            ..Change::noop(target, None, kind, Some("ns"), "x")
        }
    }

    /// One CR's plan of `changes`.
    fn one_cr(changes: Vec<Change>) -> Vec<CrPlan> {
        vec![CrPlan {
            kind: "App".into(),
            namespace: Some("ns".into()),
            name: "a".into(),
            changes,
        }]
    }

    fn diff(path: &str, before: PlanValue, after: PlanValue) -> FieldDiff {
        FieldDiff {
            path: path.into(),
            before,
            after,
            forces_replacement: false,
        }
    }

    #[test]
    fn secret_values_are_masked_and_other_fields_are_not() {
        let mut c = change("Secret", "kubernetes");
        c.diff = vec![
            diff(
                "data.password",
                PlanValue::Absent,
                PlanValue::Known(json!("czNjcjN0")),
            ),
            diff(
                "data[\"tls.key\"]",
                PlanValue::Known(json!("a")),
                PlanValue::Known(json!("b")),
            ),
            diff(
                "stringData.url",
                PlanValue::Absent,
                PlanValue::Known(json!("postgres://app:pw@h/app")),
            ),
            diff(
                "metadata.labels.app",
                PlanValue::Absent,
                PlanValue::Known(json!("web")),
            ),
            diff(
                "dataFormat",
                PlanValue::Absent,
                PlanValue::Known(json!("kept")),
            ),
        ];
        mask_secret_values(&mut c);
        assert_eq!(c.diff[0].before, PlanValue::Absent);
        assert_eq!(c.diff[0].after, PlanValue::Sensitive);
        assert_eq!(c.diff[1].before, PlanValue::Sensitive);
        assert_eq!(c.diff[2].after, PlanValue::Sensitive);
        assert_eq!(c.diff[3].after, PlanValue::Known(json!("web")));
        assert_eq!(c.diff[4].after, PlanValue::Known(json!("kept")));
        let plans = one_cr(vec![c.clone()]);
        let text = to_text(&plans, false);
        assert!(
            text.contains("+ data.password") && text.contains("= (sensitive)"),
            "{text}"
        );
        assert!(
            !text.contains("czNjcjN0") && !text.contains("pw@"),
            "{text}"
        );
        let j = to_json(&plans).to_string();
        assert!(j.contains("\"(sensitive)\"") && !j.contains("pw@"), "{j}");
        // A ConfigMap's data is not a Secret's.
        let mut cm = change("ConfigMap", "kubernetes");
        cm.diff = vec![diff(
            "data.size",
            PlanValue::Absent,
            PlanValue::Known(json!("1")),
        )];
        mask_secret_values(&mut cm);
        assert_eq!(cm.diff[0].after, PlanValue::Known(json!("1")));
    }

    #[test]
    fn placeholders_print_as_they_are_and_waiting_nodes_say_so() {
        let w = Waiting {
            node: "deployments[web]".into(),
            source: "s".into(),
            on: "aws.rds db".into(),
            on_id: "db".into(),
            on_state: "Creating".into(),
            value: "outputs.endpoint".into(),
        };
        let placeholder = orkestra_engine::render::known_after_apply(&w.known_after());
        let mut c = change("Deployment", "kubernetes");
        c.diff = vec![
            diff(
                "spec.env[0].value",
                PlanValue::Absent,
                PlanValue::Known(json!(placeholder)),
            ),
            diff(
                "spec.env[1].value",
                PlanValue::Absent,
                PlanValue::Known(json!(format!("http://{placeholder}:80"))),
            ),
        ];
        c.notes.push(waiting_note(&w, true));
        c.waiting = Some(w);
        let plans = one_cr(vec![c]);
        let text = to_text(&plans, false);
        assert!(
            text.contains("+ spec.env[0].value = (known after apply: db.outputs.endpoint)\n"),
            "{text}"
        );
        assert!(
            text.contains("= \"http://(known after apply: db.outputs.endpoint):80\""),
            "{text}"
        );
        assert!(
            text.contains("# deployments[web] waits for aws.rds db (Creating): outputs.endpoint; neither created nor changed until then, so not dry-run"),
            "{text}"
        );
        let j = to_json(&plans);
        let c = &j["changes"][0];
        assert_eq!(
            c["diff"][0]["after"],
            "(known after apply: db.outputs.endpoint)"
        );
        assert_eq!(
            c["waiting"],
            json!({"node": "deployments[web]", "waitsFor": "aws.rds db", "state": "Creating", "value": "outputs.endpoint"})
        );
        assert_eq!(j["summary"]["create"], 1);
    }

    #[test]
    fn orphaned_rows_are_shown_but_change_nothing() {
        let mut c = change("s3", "external");
        c.action = Action::Noop;
        c.provider = Some("aws".into());
        c.namespace = None;
        c.orphaned = true;
        c.notes.push("no longer declared: left in place".into());
        let plans = one_cr(vec![c]);
        let text = to_text(&plans, false);
        assert!(
            text.contains("# aws.s3 \"x\" is no longer declared (orphaned row in status.external)\n  # no longer declared: left in place\n"),
            "{text}"
        );
        assert!(text.ends_with("Plan: 0 to create, 0 to update, 0 to replace, 0 to delete.\n"));
        let j = to_json(&plans);
        assert_eq!(j["changes"][0]["action"], "noop");
        assert_eq!(j["changes"][0]["orphaned"], true);
        assert_eq!(j["summary"]["delete"], 0);
    }

    #[test]
    fn a_recorded_create_intent_is_settled_as_the_runtime_settles_it() {
        let absent = Observation::absent();
        let mut obs = absent.clone();
        assert_eq!(settle_intent(&mut obs, None), None);
        let note = settle_intent(&mut obs, Some(Intent::Create)).unwrap();
        assert!(note.contains("not a second"), "{note}");
        let mut unowned = Observation {
            exists: true,
            ..Observation::absent()
        };
        let note = settle_intent(&mut unowned, Some(Intent::Create)).unwrap();
        assert!(note.starts_with("claimed"), "{note}");
        assert_eq!(unowned.ownership, Ownership::Ours);
        let mut ours = Observation {
            exists: true,
            ownership: Ownership::Ours,
            ..Observation::absent()
        };
        assert!(settle_intent(&mut ours, Some(Intent::Create))
            .unwrap()
            .contains("settled"));
        // Without an intent a resource without owner tags stays someone else's to judge.
        let mut plain = Observation {
            exists: true,
            ..Observation::absent()
        };
        assert_eq!(settle_intent(&mut plain, None), None);
        assert_eq!(plain.ownership, Ownership::Unowned);
    }

    #[test]
    fn only_a_resource_with_nothing_left_to_do_is_ready_for_its_dependents() {
        let obs = Observation {
            exists: true,
            ownership: Ownership::Ours,
            ..Observation::absent()
        };
        let plan = |action, blocked| Plan {
            blocked,
            ..Plan::new("aws", "rds", "db", action)
        };
        assert_eq!(
            state_after_pass(&obs, &plan(Action::Noop, None)),
            State::Ready
        );
        assert_eq!(
            state_after_pass(&obs, &plan(Action::Update, None)),
            State::Updating
        );
        assert_eq!(
            state_after_pass(
                &obs,
                &plan(Action::Noop, Some(Blocked::Conflict("x".into())))
            ),
            State::Conflict
        );
        assert_eq!(
            state_after_pass(&obs, &plan(Action::Update, Some(Blocked::ObserveOnly))),
            State::Ready
        );
        let creating = Observation {
            busy: true,
            status: Some("creating".into()),
            ..obs.clone()
        };
        assert_eq!(
            state_after_pass(&creating, &plan(Action::Noop, None)),
            State::Creating
        );
    }

    #[test]
    fn unknown_values_are_found_anywhere_in_a_value() {
        assert!(is_unknown(
            &json!({"name": "(known after apply: pw.metadata.name)"})
        ));
        assert!(is_unknown(&json!([
            "a",
            "x (known after apply: db.outputs.port)"
        ])));
        assert!(!is_unknown(&json!({"name": "known", "n": 3})));
    }

    #[test]
    fn changed_leaves_compare_only_what_is_desired() {
        let live = json!({"spec": {"replicas": 2, "image": "a", "defaulted": true}});
        let desired = json!({"spec": {"replicas": 2, "image": "(known after apply: x.y)"}});
        let d = changed_leaves(&live, &desired);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].path, "spec.image");
        assert_eq!(d[0].before, PlanValue::Known(json!("a")));
    }

    #[test]
    fn a_waiting_resource_shows_the_fields_it_could_not_declare_yet() {
        let fields = json!({
            "identifier": "db",
            "masterPasswordSecret": {"name": "(known after apply: pw.metadata.name)", "key": "password"},
            "deletionPolicy": "Orphan",
        });
        let ext = External {
            provider: "aws".into(),
            kind: "rds".into(),
            name: "db".into(),
            fields: fields.as_object().unwrap().clone(),
            source: "s".into(),
            registered: true,
            id: Some("db".into()),
        };
        let declared = json!({"identifier": "db"}).as_object().unwrap().clone();
        let d = unknown_fields(&ext, &declared, None);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].path, "masterPasswordSecret");
        assert_eq!(d[0].before, PlanValue::Absent);
        // Observed with that very value: nothing to show.
        let obs = Observation {
            exists: true,
            fields: json!({"masterPasswordSecret": fields["masterPasswordSecret"]})
                .as_object()
                .unwrap()
                .clone(),
            ..Observation::absent()
        };
        assert!(unknown_fields(&ext, &declared, Some(&obs)).is_empty());
    }
}
