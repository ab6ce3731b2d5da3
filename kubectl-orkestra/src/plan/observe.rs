//! Reading, for `plan`: the CRs (from the cluster or from files, with the status the agent
//! recorded), each child's live object and the API server's answer to a dry run of the agent's
//! write, each external resource's read-only provider observe, and the CR's graph walked over
//! what exists. Nothing here writes; what the looks mean is [`super::decide`]'s.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use orkestra_engine::apply::{Placement, FIELD_MANAGER};
use orkestra_engine::cr::CrId;
use orkestra_engine::render::{child_readiness, external_ready};
use orkestra_engine::{
    Child, CrdEntry, Desired, External, Katalog, Observed, Seen, SourceFile, Unknown,
};
use orkestra_provider::{
    Declaration, DeletionPolicy, Intent, KindSchema, KubeReader, ManagementPolicy, Observation,
    Owner, Provider, ProviderContext, ProviderSchema, State, StatusRow,
};
use serde_json::{Map, Value};

use super::decide::{by_name, is_unknown, state_after_pass, PLACEHOLDER_START};
use crate::kinds;
use crate::kube_client::{explain, is_not_found, Kube};

/// `KIND/NAME` from the cluster, resolved against the Katalog's own kinds.
pub(super) async fn live_cr(kube: &Kube, katalog: &Katalog, target: &str) -> anyhow::Result<Value> {
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
pub(super) async fn file_crs(
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
            origin: None,
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
        if let Some(with) = cross_reads(kube, katalog, entry, &cr).await? {
            cr = with;
        }
        out.push(cr);
    }
    Ok(out)
}

/// The CR with `.cross` filled as the agent fills it (the same requests, the same tree, from
/// the engine), or `None` when its entry reads no other CR.
async fn cross_reads(
    kube: &Kube,
    katalog: &Katalog,
    entry: &orkestra_engine::CrdEntry,
    cr: &Value,
) -> anyhow::Result<Option<Value>> {
    if entry.cross.is_empty() {
        return Ok(None);
    }
    let requests = orkestra_engine::cross::requests(katalog, entry, cr)
        .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
    let mut found = Vec::new();
    for r in &requests {
        let mk = kinds::ManagedKind {
            api: r.api.clone(),
            katalog: katalog.name.clone(),
            origin: None,
        };
        // A kind not served yet has no CRs to find.
        let Ok((ar, namespaced)) = kinds::served(kube, &mk).await else {
            found.push(Vec::new());
            continue;
        };
        let api: Api<DynamicObject> = match &r.namespace {
            Some(ns) if namespaced => Api::namespaced_with(kube.client.clone(), ns, &ar),
            _ => Api::all_with(kube.client.clone(), &ar),
        };
        let what = format!("cross read {} ({})", r.alias, r.api.kind);
        let objects = match &r.name {
            Some(name) => api
                .get_opt(name)
                .await
                .map_err(|e| explain(e, &format!("{what} {name}"), &kube.server))?
                .into_iter()
                .collect(),
            None => {
                let params = kube::api::ListParams::default()
                    .labels(&r.label_selector())
                    .limit(r.list_limit());
                api.list(&params)
                    .await
                    .map_err(|e| explain(e, &what, &kube.server))?
                    .items
            }
        };
        found.push(objects);
    }
    Ok(Some(orkestra_engine::cross::with_found(
        cr, &requests, &found,
    )))
}

/// What was looked at of one child: where it is written and the live object, if any.
#[derive(Clone)]
pub(super) struct ChildLook {
    api: Api<DynamicObject>,
    /// The namespace it is written in (`None` for a cluster-scoped kind).
    pub(super) namespace: Option<String>,
    /// Its kind is namespaced (discovery's answer).
    namespaced: bool,
    /// Its CR lives in a namespace.
    owner_namespaced: bool,
    pub(super) live: Option<Value>,
    /// A copy's source (what its data will be).
    pub(super) copied: Option<Value>,
}

impl ChildLook {
    /// Where the agent writes it: the placement its body is made for.
    pub(super) fn placement(&self) -> Placement<'_> {
        if self.namespaced {
            Placement::Namespaced(self.namespace.as_deref())
        } else {
            Placement::Cluster {
                owner_namespaced: self.owner_namespaced,
            }
        }
    }
}

/// What was looked at of one external resource.
pub(super) enum ExtLook {
    /// Its provider is not in this build.
    Unregistered,
    /// It waits and its name is not known yet: there is nothing to look up.
    Unnamed,
    /// It waits, and its provider cannot look it up before what it waits for exists (the
    /// server it lives on, say, is the endpoint of a database not created yet).
    Unobservable {
        /// The provider's answer.
        reason: String,
    },
    /// The provider's read-only observe.
    Observed {
        provider: Arc<dyn Provider>,
        decl: Box<Declaration>,
        obs: Box<Observation>,
        /// The create intent its status row records.
        intent: Option<Intent>,
    },
}

/// The API server's answer to a server-side dry run of the agent's write of a child.
pub(super) enum DryRun {
    /// No live object: the create would be accepted.
    Created,
    /// No live object, and the namespace it goes in does not exist yet, so the server could
    /// not validate it.
    NoNamespace,
    /// A create-only child (onCreate) that exists: nothing is sent, the agent leaves it.
    NotEnforced,
    /// The live object as the server would have it after the agent's apply.
    Applied(Value),
    /// The server refuses an in-place change (an immutable field): its message.
    Immutable(String),
}

/// One CR's plan in the making: the graph walked over what exists, each node looked at once.
pub(super) struct Planner<'a> {
    kube: &'a Kube,
    katalog: &'a Katalog,
    entry: &'a CrdEntry,
    cr: &'a Value,
    providers: &'a [Arc<dyn Provider>],
    schemas: Vec<ProviderSchema>,
    /// The CR as owner of what it renders.
    pub(super) owner: Owner,
    /// The CR's `status.external` rows (none for a CR not created yet).
    pub(super) rows: Vec<StatusRow>,
    cr_namespace: Option<String>,
    /// By node source.
    children: HashMap<String, ChildLook>,
    /// By node source.
    externals: HashMap<String, ExtLook>,
}

impl<'a> Planner<'a> {
    /// A planner of `cr` (in `cr_namespace`), an instance of `entry` of `katalog`, nothing
    /// looked at yet.
    pub(super) fn new(
        kube: &'a Kube,
        katalog: &'a Katalog,
        entry: &'a CrdEntry,
        cr: &'a Value,
        providers: &'a [Arc<dyn Provider>],
        cr_namespace: Option<String>,
    ) -> Self {
        Self {
            kube,
            katalog,
            entry,
            cr,
            providers,
            schemas: crate::registry::schemas(),
            owner: Owner::of_cr(cr, &katalog.name),
            rows: orkestra_provider::journal::rows_of(cr),
            cr_namespace,
            children: HashMap::new(),
            externals: HashMap::new(),
        }
    }
}

impl Planner<'_> {
    /// Walk the graph as the agent does (composition.md, rule 4): render with what has been
    /// seen, look at every node that rendered without waiting (a child's live object, a
    /// resource's observe), and walk again with what exists, until nothing new is seen. A node
    /// that still waits is rendered with `(known after apply: …)` placeholders.
    pub(super) async fn walk_what_exists(&mut self) -> anyhow::Result<Desired> {
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

    /// The look at `child`, taken once.
    pub(super) async fn child_look(&mut self, child: &Child) -> anyhow::Result<ChildLook> {
        if let Some(look) = self.children.get(&child.source) {
            return Ok(look.clone());
        }
        let look = look_child(self.kube, child, self.cr_namespace.as_deref()).await?;
        self.children.insert(child.source.clone(), look.clone());
        Ok(look)
    }

    /// The look at `ext` (`waiting`: some of its values are not known yet), taken once.
    pub(super) async fn external_look(
        &mut self,
        ext: &External,
        waiting: bool,
    ) -> anyhow::Result<&ExtLook> {
        if !self.externals.contains_key(&ext.source) {
            let look = self.observe_external(ext, waiting).await?;
            self.externals.insert(ext.source.clone(), look);
        }
        Ok(&self.externals[&ext.source])
    }

    /// The schema of `ext`'s kind, if its provider is in this build.
    pub(super) fn kind_schema(&self, ext: &External) -> Option<KindSchema> {
        self.schemas
            .iter()
            .find(|s| s.name == ext.provider)
            .and_then(|s| s.kind(&ext.kind))
            .cloned()
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
            KubeReader::new(self.kube.client.clone(), &self.owner.namespace),
        );
        let obs = match provider.observe(&ctx, &decl).await {
            Ok(obs) => obs,
            Err(e) if waiting => {
                return Ok(ExtLook::Unobservable {
                    reason: e.to_string(),
                })
            }
            Err(e) => {
                return Err(anyhow!(
                    "{}.{} {:?}: cannot observe: {e}",
                    ext.provider,
                    ext.kind,
                    decl.name
                ))
            }
        };
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

    /// Whether the resource of a row still exists (read only; `None`: its provider or kind is
    /// not in this build).
    pub(super) async fn row_resource_exists(
        &self,
        row: &StatusRow,
    ) -> anyhow::Result<Option<bool>> {
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
            KubeReader::new(self.kube.client.clone(), &self.owner.namespace),
        );
        let obs = provider
            .observe(&ctx, &decl)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Some(obs.exists))
    }

    /// A child whose inputs are known: the API server's own answer to the agent's write, by a
    /// server-side dry run of `body` with the agent's field manager (a create when `look` found
    /// no live object, a forced apply otherwise). A create-only child that exists is not sent.
    pub(super) async fn dry_run_child(
        &self,
        child: &Child,
        body: &Value,
        look: &ChildLook,
    ) -> anyhow::Result<DryRun> {
        let kube = self.kube;
        let what = format!("{} {}", child.kind, child.name);
        let api = &look.api;
        if look.live.is_none() {
            let object: DynamicObject = serde_json::from_value(body.clone())
                .with_context(|| format!("{what}: rendered object is not an object"))?;
            let params = PostParams {
                dry_run: true,
                field_manager: Some(FIELD_MANAGER.into()),
            };
            return match api.create(&params, &object).await {
                Ok(_) => Ok(DryRun::Created),
                Err(kube::Error::Api(s)) if s.code == 404 && s.message.contains("namespace") => {
                    Ok(DryRun::NoNamespace)
                }
                Err(e) => Err(explain(
                    e,
                    &format!("{what} would be rejected by the API server"),
                    &kube.server,
                )),
            };
        }
        if !child.enforce {
            return Ok(DryRun::NotEnforced);
        }
        let params = PatchParams::apply(FIELD_MANAGER)
            .force()
            .dry_run()
            .validation_strict();
        match api.patch(&child.name, &params, &Patch::Apply(body)).await {
            Ok(result) => Ok(DryRun::Applied(serde_json::to_value(&result)?)),
            Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("immutable") => {
                Ok(DryRun::Immutable(s.message))
            }
            Err(e) => Err(explain(
                e,
                &format!("{what} would be rejected by the API server"),
                &kube.server,
            )),
        }
    }
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
    // A copy's source, as the agent reads it when it writes the copy.
    let copied = match &child.copy_from {
        None => None,
        Some(from) => {
            let source =
                Api::<DynamicObject>::namespaced_with(kube.client.clone(), &from.namespace, &ar)
                    .get_opt(&from.name)
                    .await
                    .map_err(|e| {
                        explain(
                            e,
                            &format!(
                                "get {} {}/{} (copied into {})",
                                child.kind, from.namespace, from.name, child.name
                            ),
                            &kube.server,
                        )
                    })?;
            match source {
                Some(o) => Some(serde_json::to_value(o).unwrap_or(Value::Null)),
                None => bail!(
                    "{} {} copies {} {}/{}, which does not exist",
                    child.kind,
                    child.name,
                    child.kind,
                    from.namespace,
                    from.name
                ),
            }
        }
    };
    Ok(ChildLook {
        api,
        namespace,
        namespaced,
        owner_namespaced: cr_namespace.is_some(),
        live,
        copied,
    })
}
