//! `kubectl orkestra plan -f KATALOG (--cr CR_FILE | KIND/NAME) [-o text|json] [--detailed-exitcode]`:
//! what applying would change, computed without writing anything.
//!
//! Kubernetes children: the engine renders them exactly as the agent does; each is compared with
//! the live object through a server-side dry run (`dryRun=All`: the API server runs admission,
//! defaulting and validation and returns the result without persisting it). External resources:
//! each provider's read-only `observe` and its pure `diff`, the same diff the agent applies.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use orkestra_engine::cr::CrId;
use orkestra_engine::{render, Child, External, Katalog, SourceFile};
use orkestra_provider::{
    Action, Blocked, Declaration, KubeReader, Plan, PlanValue, Provider, ProviderContext,
};
use serde_json::{json, Map, Value};

use crate::kinds;
use crate::kube_client::{connect, explain, is_not_found, runtime, Kube, KubeArgs};
use crate::output::{color_stdout, out, paint};

/// The field manager the agent applies children with; the dry run uses the same, so the
/// result is what the agent's apply would produce.
pub const AGENT_FIELD_MANAGER: &str = "orkestra-agent";

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
}

impl Change {
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
/// references and ownership tags come out as the agent would write them.
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
            if let Some(uid) = live.and_then(|l| l.metadata.uid) {
                cr["metadata"]["uid"] = uid.into();
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
    let desired = render(katalog, entry, cr, &crate::registry::schemas())
        .map_err(|e| anyhow!("{who}: {e}"))?;
    let mut changes = Vec::new();
    for child in &desired.children {
        changes.push(
            plan_child(kube, child)
                .await
                .map_err(|e| anyhow!("{who}: {e:#}"))?,
        );
    }
    for ext in &desired.external {
        changes.push(
            plan_external(kube, katalog, cr, ext, providers)
                .await
                .map_err(|e| anyhow!("{who}: {e:#}"))?,
        );
    }
    Ok(CrPlan {
        kind,
        namespace,
        name,
        changes,
    })
}

async fn plan_child(kube: &Kube, child: &Child) -> anyhow::Result<Change> {
    let (group, version) = child
        .api_version
        .split_once('/')
        .unwrap_or(("", child.api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &child.kind);
    let (ar, caps) = kube::discovery::pinned_kind(&kube.client, &gvk)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 => anyhow!(
                "{} {} is not served by the cluster",
                child.api_version,
                child.kind
            ),
            kube::Error::Discovery(_) => anyhow!(
                "{} {} is not served by the cluster",
                child.api_version,
                child.kind
            ),
            e => explain(
                e,
                &format!("discover {} {}", child.api_version, child.kind),
                &kube.server,
            ),
        })?;
    let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
    let api: Api<DynamicObject> = match (&child.namespace, namespaced) {
        (Some(ns), true) => Api::namespaced_with(kube.client.clone(), ns, &ar),
        _ => Api::all_with(kube.client.clone(), &ar),
    };
    let what = format!("{} {}", child.kind, child.name);
    let mut change = Change {
        action: Action::Noop,
        target: "kubernetes",
        provider: None,
        kind: child.kind.clone(),
        namespace: child.namespace.clone().filter(|_| namespaced),
        name: child.name.clone(),
        diff: Vec::new(),
        notes: Vec::new(),
        blocked: None,
    };
    let live = api
        .get_opt(&child.name)
        .await
        .map_err(|e| explain(e, &format!("get {what}"), &kube.server))?;
    let object: DynamicObject = serde_json::from_value(child.object.clone())
        .with_context(|| format!("{what}: rendered object is not an object"))?;
    let Some(live) = live else {
        change.action = Action::Create;
        let params = PostParams {
            dry_run: true,
            field_manager: Some(AGENT_FIELD_MANAGER.into()),
        };
        match api.create(&params, &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 && s.message.contains("namespace") => {
                change.notes.push(format!(
                    "namespace {} does not exist yet; the server could not validate this object",
                    child.namespace.as_deref().unwrap_or("?")
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
        change.diff = leaves(&normalize(&child.object))
            .into_iter()
            .filter(|(path, _)| !bookkeeping(path))
            .map(|(path, v)| FieldDiff {
                path,
                before: PlanValue::Absent,
                after: PlanValue::Known(v),
                forces_replacement: false,
            })
            .collect();
        return Ok(change);
    };
    if !child.enforce {
        change
            .notes
            .push("exists; created once (onCreate), not enforced on later cycles".into());
        return Ok(change);
    }
    let params = PatchParams::apply(AGENT_FIELD_MANAGER).force().dry_run();
    let live_v = normalize(&serde_json::to_value(&live)?);
    let desired = as_the_agent_applies(
        &child.object,
        child.namespace.as_deref().filter(|_| namespaced),
    );
    match api
        .patch(&child.name, &params, &Patch::Apply(&desired))
        .await
    {
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
            let desired = normalize(&child.object);
            change.diff = diff_values(&live_v, &merge_over(&live_v, &desired))
                .into_iter()
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
    Ok(change)
}

async fn plan_external(
    kube: &Kube,
    katalog: &Katalog,
    cr: &Value,
    ext: &External,
    providers: &[Arc<dyn Provider>],
) -> anyhow::Result<Change> {
    let mut change = Change {
        action: Action::Noop,
        target: "external",
        provider: Some(ext.provider.clone()),
        kind: ext.kind.clone(),
        namespace: None,
        name: ext.name.clone(),
        diff: Vec::new(),
        notes: Vec::new(),
        blocked: None,
    };
    let Some(provider) = providers.iter().find(|p| p.name() == ext.provider) else {
        change.notes.push(format!(
            "provider {:?} is not registered in this build; skipped",
            ext.provider
        ));
        return Ok(change);
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
    let s = |p: &str| {
        cr.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let owner = orkestra_provider::Owner {
        uid: s("/metadata/uid"),
        namespace: s("/metadata/namespace"),
        name: s("/metadata/name"),
        katalog: katalog.name.clone(),
    };
    let decl = Declaration::from_rendered(&ext.provider, kind, &ext.fields, owner)
        .map_err(|e| anyhow!("{e}"))?;
    let ctx = ProviderContext::new(
        format!("plan-{}", decl.name),
        cr.clone(),
        KubeReader::new(kube.client.clone()),
    );
    let obs = provider.observe(&ctx, &decl).await.map_err(|e| {
        anyhow!(
            "{}.{} {:?}: cannot observe: {e}",
            ext.provider,
            ext.kind,
            decl.name
        )
    })?;
    let mut plan = provider.diff(&decl, &obs);
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
    Ok(from_provider_plan(change, &plan))
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

/// The object exactly as the agent server-side applies an enforced child: namespace filled in,
/// then the hash of that object stamped into [`APPLIED_HASH`] by the engine's
/// `stamp_applied_hash`, as the agent does, so a converged child dry-runs to no change.
fn as_the_agent_applies(object: &Value, namespace: Option<&str>) -> Value {
    let mut desired = object.clone();
    if let (Some(ns), Some(meta)) = (
        namespace,
        desired.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        meta.entry("namespace")
            .or_insert_with(|| Value::String(ns.to_string()));
    }
    orkestra_engine::objects::stamp_applied_hash(&mut desired);
    desired
}

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
        PlanValue::Sensitive => json!("(sensitive value)"),
    }
}

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
                o
            })
        })
        .collect();
    let [create, update, replace, delete] = summary(plans);
    json!({"changes": changes, "summary": {"create": create, "update": update, "replace": replace, "delete": delete}})
}

fn shown(v: &PlanValue) -> String {
    match v {
        PlanValue::Known(Value::String(s)) => format!("{s:?}"),
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
            .filter(|c| c.action != Action::Noop || c.blocked.is_some())
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
}
