//! Deciding, for `plan`: pure functions from what was rendered and what was observed (by
//! [`super::observe`]) to the [`Change`]s shown: field diffs of children and of external
//! resources, a Secret's values and sensitive fields masked, waiting nodes' unknown fields,
//! recorded create intents settled as the provider runtime settles them, and orphaned
//! `status.external` rows. Nothing here reads or writes; every rule is unit-tested below.

use orkestra_engine::apply::Placement;
use orkestra_engine::objects::labels::APPLIED_HASH;
use orkestra_engine::{Child, External, Waiting};
use orkestra_provider::runtime::stale_rows;
use orkestra_provider::{
    Action, Blocked, Declaration, DeletionPolicy, Intent, KindSchema, ManagementPolicy,
    Observation, Owner, Plan, PlanValue, State, StatusRow,
};
use serde_json::{Map, Value};

use super::observe::{DryRun, ExtLook};

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
}

/// The plan for one CR.
#[derive(Debug, Clone, PartialEq)]
pub struct CrPlan {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub changes: Vec<Change>,
}

/// How every `(known after apply: …)` placeholder begins.
pub(super) const PLACEHOLDER_START: &str = "(known after apply: ";

/// Whether a rendered value stands in for one known only after apply.
pub(super) fn is_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(PLACEHOLDER_START),
        Value::Array(a) => a.iter().any(is_unknown),
        Value::Object(m) => m.values().any(is_unknown),
        _ => false,
    }
}

/// A declaration of `ext` by its name alone (`name_field`, when given, set to it).
pub(super) fn by_name(ext: &External, name_field: &str, owner: Owner) -> Declaration {
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

/// A child's change before its diff is known (a no-op on it, with what generating its body
/// made), and the body the agent writes ([`orkestra_engine::apply::body`]) at `placement` over
/// `live` (a copy with its source's data, `copied`); `namespace` is the one it is shown in.
pub(super) fn child_change(
    child: &Child,
    namespace: Option<&str>,
    placement: Placement<'_>,
    live: Option<&Value>,
    copied: Option<&Value>,
    waiting: Option<&Waiting>,
) -> anyhow::Result<(Change, Value)> {
    let mut change = Change {
        waiting: waiting.cloned(),
        ..Change::noop("kubernetes", None, &child.kind, namespace, &child.name)
    };
    let what = format!("{} {}", child.kind, child.name);
    let (body, made) = orkestra_engine::apply::body(child, placement, live, copied)
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if !made.is_empty() {
        change.notes.push(format!(
            "generates {} (made once and kept; never shown)",
            made.join(", ")
        ));
    }
    Ok((change, body))
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
pub(super) fn plan_waiting_child(
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

/// A child whose inputs are known, from the API server's `answer` to a dry run of the agent's
/// write of `body` in `namespace` over `live`.
pub(super) fn dry_run_change(
    change: &mut Change,
    body: &Value,
    namespace: Option<&str>,
    live: Option<&Value>,
    answer: DryRun,
) {
    let live_v = live.map(normalize).unwrap_or(Value::Null);
    match answer {
        DryRun::Created | DryRun::NoNamespace => {
            change.action = Action::Create;
            if let DryRun::NoNamespace = answer {
                change.notes.push(format!(
                    "namespace {} does not exist yet; the server could not validate this object",
                    namespace.unwrap_or("?")
                ));
            }
            change.diff = created_fields(&normalize(body));
        }
        DryRun::NotEnforced => change.notes.push(CREATED_ONCE.into()),
        DryRun::Applied(result) => {
            let after = normalize(&result);
            change.diff = diff_values(&live_v, &after)
                .into_iter()
                .filter(|d| !bookkeeping(&d.path))
                .collect();
            if !change.diff.is_empty() {
                change.action = Action::Update;
            }
        }
        DryRun::Immutable(message) => {
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
                "the API server refuses an in-place change: {message}"
            ));
            change.blocked = Some("the agent does not replace Kubernetes objects; delete the object to let it be recreated".into());
        }
    }
}

/// A Secret's values (`data`, `stringData`: given, generated, or composed from other nodes)
/// never reach plan output: each shows as `(sensitive)`.
pub(super) fn mask_secret_values(change: &mut Change) {
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

/// The change to one external resource (`waiting`: what it waits for) from what was looked at
/// of it: its provider's pure diff over the observe, with the create intent its row records
/// settled; a field `schema` (its kind's) marks sensitive is never shown.
pub(super) fn external_change(
    ext: &External,
    waiting: Option<&Waiting>,
    look: &ExtLook,
    schema: Option<&KindSchema>,
) -> Change {
    let change = Change {
        waiting: waiting.cloned(),
        ..Change::noop("external", Some(&ext.provider), &ext.kind, None, &ext.name)
    };
    let sensitive = |field: &str| {
        schema
            .and_then(|k| k.field(field))
            .is_some_and(|f| f.sensitive)
    };
    let mut change = match look {
        ExtLook::Unregistered => {
            let mut change = change;
            change.notes.push(format!(
                "provider {:?} is not registered in this build; skipped",
                ext.provider
            ));
            return change;
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
        ExtLook::Unobservable { reason } => {
            let mut change = change;
            change.action = Action::Create;
            change.diff = unknown_fields(ext, &Map::new(), None);
            change.notes.push(format!(
                "it cannot be looked up before what it waits for exists ({reason})"
            ));
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
    change
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
    change.blocked = plan.blocked.as_ref().map(Blocked::describe);
    change
}

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
    let mut left = intent;
    let notes = obs.notes.len();
    orkestra_provider::runtime::settle_intent(obs, &mut left);
    Some(if left.is_some() {
        // Claimed: the runtime's own note says so.
        obs.notes
            .drain(notes..)
            .next()
            .unwrap_or_else(|| "claimed by its recorded create intent".into())
    } else {
        "its recorded create intent is settled (it carries owner tags); the agent clears it on its next pass".into()
    })
}

/// The state the row of a resource that exists shows once the agent's pass over it is done,
/// from its observation and plan: only a resource with nothing left to do is Ready (an update
/// may change the outputs its dependents read).
pub(super) fn state_after_pass(obs: &Observation, plan: &Plan) -> State {
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
pub(super) fn waiting_note(w: &Waiting, child: bool) -> String {
    let until = if child {
        "neither created nor changed until then, so not dry-run"
    } else {
        "neither created nor changed until then"
    };
    format!("{}; {until}", w.message())
}

/// The CR's `status.external` rows (`rows`) that no `rendered` resource matches (same
/// provider, kind and name), found by the provider runtime's own rule ([`stale_rows`]).
pub(super) fn orphaned(rendered: &[External], owner: &Owner, rows: &[StatusRow]) -> Vec<StatusRow> {
    let declared: Vec<Declaration> = rendered
        .iter()
        .map(|x| by_name(x, "", owner.clone()))
        .collect();
    stale_rows(&declared, rows)
}

/// An orphaned row's change, given whether its resource still `exists` (`None`: its provider
/// or kind is not in this build). The agent never deletes such a resource: it is a no-op
/// marked orphaned, with the row's reason, or saying its resource is gone already (the agent
/// then drops the row).
pub(super) fn orphaned_change(row: &StatusRow, exists: anyhow::Result<Option<bool>>) -> Change {
    let note = match exists {
        Ok(Some(true)) => row.message.clone(),
        Ok(Some(false)) => {
            "no longer declared, and its resource is gone: the agent drops the row".into()
        }
        Ok(None) => format!(
            "{}; provider {} kind {} is not in this build, so whether it still exists is not known",
            row.message, row.provider, row.kind
        ),
        Err(e) => format!("{}; whether it still exists is not known: {e}", row.message),
    };
    Change {
        notes: vec![note],
        orphaned: true,
        intent: row.intent,
        ..Change::noop("external", Some(&row.provider), &row.kind, None, &row.name)
    }
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

/// Changes, plans and diffs to test with (here and in [`super::print`]'s tests).
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// A create of `kind` "x" in namespace "ns" of `target`.
    pub(in crate::plan) fn change(kind: &str, target: &'static str) -> Change {
        Change {
            action: Action::Create,
            ..Change::noop(target, None, kind, Some("ns"), "x")
        }
    }

    /// One CR's plan of `changes`.
    pub(in crate::plan) fn one_cr(changes: Vec<Change>) -> Vec<CrPlan> {
        vec![CrPlan {
            kind: "App".into(),
            namespace: Some("ns".into()),
            name: "a".into(),
            changes,
        }]
    }

    /// A change of `path` from `before` to `after`.
    pub(in crate::plan) fn diff(path: &str, before: PlanValue, after: PlanValue) -> FieldDiff {
        FieldDiff {
            path: path.into(),
            before,
            after,
            forces_replacement: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{change, diff, one_cr};
    use super::*;
    use crate::plan::print::{to_json, to_text};
    use orkestra_provider::Ownership;
    use serde_json::json;

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

    #[test]
    fn the_api_servers_dry_run_answer_becomes_the_childs_change() {
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns"}, "spec": {"replicas": 4}});
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7"},
            "spec": {"replicas": 1, "paused": false}, "status": {"replicas": 1}});
        // The change made of `answer` to the write over `live`.
        let answered = |live: Option<&Value>, answer: DryRun| {
            let mut c = Change {
                action: Action::Noop,
                ..change("Deployment", "kubernetes")
            };
            dry_run_change(&mut c, &body, Some("ns"), live, answer);
            c
        };

        let c = answered(None, DryRun::Created);
        assert_eq!(c.action, Action::Create);
        let replicas = |before, after| vec![diff("spec.replicas", before, after)];
        assert_eq!(
            c.diff,
            replicas(PlanValue::Absent, PlanValue::Known(json!(4)))
        );
        assert!(c.notes.is_empty(), "{:?}", c.notes);

        let c = answered(None, DryRun::NoNamespace);
        assert_eq!(c.action, Action::Create);
        let note = &c.notes[0];
        assert!(
            note.starts_with("namespace ns does not exist yet"),
            "{note}"
        );

        let c = answered(Some(&live), DryRun::NotEnforced);
        assert_eq!((c.action, c.diff.len()), (Action::Noop, 0));
        assert_eq!(c.notes, vec![CREATED_ONCE.to_string()]);

        let mut after = live.clone();
        after["spec"]["replicas"] = json!(4);
        after["metadata"]["resourceVersion"] = json!("8");
        let c = answered(Some(&live), DryRun::Applied(after));
        assert_eq!(c.action, Action::Update);
        let one_to_four = replicas(PlanValue::Known(json!(1)), PlanValue::Known(json!(4)));
        assert_eq!(c.diff, one_to_four);
        let c = answered(Some(&live), DryRun::Applied(live.clone()));
        assert_eq!((c.action, c.diff.len()), (Action::Noop, 0));

        let c = answered(Some(&live), DryRun::Immutable("field is immutable".into()));
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.diff.len(), 1, "{:?}", c.diff);
        assert!(c.diff[0].forces_replacement);
        assert!(c.blocked.as_deref().unwrap().contains("does not replace"));
        let note = &c.notes[0];
        assert!(note.ends_with(": field is immutable"), "{note}");
    }

    #[test]
    fn rows_no_rendered_resource_matches_are_orphaned_and_say_what_became_of_them() {
        let row = |name: &str| StatusRow {
            provider: "aws".into(),
            kind: "s3".into(),
            name: name.into(),
            id: None,
            state: State::Ready,
            message: "no longer declared: left in place".into(),
            last_sync_time: String::new(),
            outputs: Map::new(),
            intent: None,
            deletion_policy: None,
        };
        let kept = External {
            provider: "aws".into(),
            kind: "s3".into(),
            name: "kept".into(),
            fields: Map::new(),
            source: "s".into(),
            registered: true,
            id: None,
        };
        let owner = Owner::of_cr(&json!({"metadata": {"name": "a", "uid": "u"}}), "k");
        let rows = [row("kept"), row("gone")];
        let stale = orphaned(&[kept], &owner, &rows);
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert_eq!(stale[0].name, "gone");

        let c = orphaned_change(&stale[0], Ok(Some(true)));
        assert!(c.orphaned);
        assert_eq!(c.action, Action::Noop);
        assert_eq!(c.provider.as_deref(), Some("aws"));
        // The row's reason, as the runtime's rule gives it.
        assert_eq!(c.notes, vec![stale[0].message.clone()]);
        assert!(c.notes[0].starts_with("no longer declared: left in place"));
        let c = orphaned_change(&stale[0], Ok(Some(false)));
        assert!(
            c.notes[0].contains("the agent drops the row"),
            "{:?}",
            c.notes
        );
        let c = orphaned_change(&stale[0], Ok(None));
        assert!(c.notes[0].contains("is not in this build"), "{:?}", c.notes);
        let c = orphaned_change(&stale[0], Err(anyhow::anyhow!("timeout")));
        assert!(
            c.notes[0].ends_with("whether it still exists is not known: timeout"),
            "{:?}",
            c.notes
        );
    }
}
