//! A CR's Kubernetes children: created when missing (onCreate) or server-side applied every cycle
//! (onReconcile / `reconcile: true`), skipping writes that would change nothing. Each synced child
//! carries its readiness, decided by the engine from the live object the API server returned
//! ([`orkestra_engine::readiness`], or the entry's `readyWhen:`). The body written is the
//! engine's ([`orkestra_engine::apply::body`]), the one `plan` dry-runs: namespace, generated
//! Secret keys (kept from the live Secret, else made from the OS's randomness), applied hash.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use orkestra_engine::apply::Placement;
use orkestra_engine::readiness::Readiness;
use orkestra_engine::Child;
use serde_json::Value;

use crate::context::AgentContext;
use crate::discovery::ResolvedApi;
use crate::error::{is_status, Error, KubeContext};

/// The field manager for children (server-side apply), the engine's.
pub use orkestra_engine::apply::FIELD_MANAGER;
/// Annotation holding a hash of what was last applied: a changed Katalog or CR changes it, so a
/// field dropped from the desired object is noticed (and removed by apply) even though the live
/// object still "contains" everything desired.
pub use orkestra_engine::objects::labels::APPLIED_HASH;

/// What happened to one child this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It did not exist and was created.
    Created,
    /// It differed and was server-side applied.
    Updated,
    /// Nothing to do.
    Unchanged,
}

/// One child after a sync.
#[derive(Debug, Clone)]
pub struct Synced {
    /// `deployments`, `services`, ... (the Katalog block it came from).
    pub block: String,
    /// Kind.
    pub kind: String,
    /// `namespace/name` or `name`.
    pub name: String,
    /// The live object (after the write, when there was one).
    pub live: Value,
    /// What was done.
    pub change: Change,
    /// Whether the live object is ready (a Deployment available for its generation, ...).
    pub ready: Readiness,
    /// The Katalog declaration it came from.
    pub source: String,
    /// Generated Secret keys made new by this write (names only, never values).
    pub generated: Vec<String>,
    /// A create-only child that reads another node and no longer matches what it would be
    /// rendered as now (an output it read changed): reported, never rewritten.
    pub drifted: bool,
}

/// Decides a child's readiness from its live object (the entry's `readyWhen:` or the kind's rule).
pub type ReadinessOf<'a> = &'a (dyn Fn(&Child, &Value) -> Readiness + Sync);

/// The Katalog block key of a child from its source path (`...onCreate.deployments[0]` → `deployments`).
pub fn block_of(source: &str) -> String {
    let last = source.rsplit('.').next().unwrap_or(source);
    last.split('[').next().unwrap_or(last).to_string()
}

/// The API of a child, in its namespace when namespaced.
pub fn api_for(
    client: &kube::Client,
    r: &ResolvedApi,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match (r.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &r.resource),
        (true, None) => Api::default_namespaced_with(client.clone(), &r.resource),
        (false, _) => Api::all_with(client.clone(), &r.resource),
    }
}

/// Create or apply every child, in the order given. Stops at the first failure, naming the child.
pub async fn sync(
    ctx: &AgentContext,
    cr_namespace: Option<&str>,
    children: &[&Child],
    ready: ReadinessOf<'_>,
) -> Result<Vec<Synced>, Error> {
    let mut out = Vec::with_capacity(children.len());
    for child in children {
        out.push(sync_one(ctx, cr_namespace, child, ready).await?);
    }
    Ok(out)
}

async fn sync_one(
    ctx: &AgentContext,
    cr_namespace: Option<&str>,
    child: &Child,
    ready: ReadinessOf<'_>,
) -> Result<Synced, Error> {
    let resolved = ctx.apis.resolve(&child.api_version, &child.kind).await?;
    let namespace = child.namespace.as_deref().or(cr_namespace);
    let api = api_for(&ctx.client, &resolved, namespace);
    let shown = match (resolved.namespaced, namespace) {
        (true, Some(ns)) => format!("{ns}/{}", child.name),
        _ => child.name.clone(),
    };
    let what = format!("{} {shown}", child.kind);
    let live = api
        .get_opt(&child.name)
        .await
        .ctx(|| format!("reading {what}"))?;
    let live_json = live.as_ref().map(to_json);
    let placement = if resolved.namespaced {
        Placement::Namespaced(namespace)
    } else {
        Placement::Cluster {
            owner_namespaced: cr_namespace.is_some(),
        }
    };
    // A create-only Secret with `rotateAfter` that is old enough is made again: every generated
    // key anew (the live values are not kept), stamped with when.
    let now = chrono::Utc::now();
    let rotate = child.rotate_after_seconds.is_some_and(|secs| {
        live_json
            .as_ref()
            .is_some_and(|l| orkestra_engine::generate::rotation_due(l, secs, now))
    });
    let kept = live_json.as_ref().filter(|_| !rotate);
    let copied = copy_source(ctx, child, &resolved, &what).await?;
    let (mut desired, generated) =
        orkestra_engine::apply::body(child, placement, kept, copied.as_ref()).map_err(|e| {
            Error::Invalid {
                what: what.clone(),
                message: e.to_string(),
            }
        })?;
    if child.rotate_after_seconds.is_some() && (rotate || live_json.is_none()) {
        orkestra_engine::generate::stamp_generated_at(&mut desired, now);
    }
    let synced = |live: Value, change| Synced {
        block: block_of(&child.source),
        kind: child.kind.clone(),
        name: shown.clone(),
        ready: ready(child, &live),
        live,
        change,
        source: child.source.clone(),
        generated: if change == Change::Unchanged {
            Vec::new()
        } else {
            generated.clone()
        },
        drifted: false,
    };
    if !child.enforce && !rotate {
        if let Some(live) = live_json {
            let drifted = child.reads_others && !contains(&live, &desired);
            return Ok(Synced {
                drifted,
                ..synced(live, Change::Unchanged)
            });
        }
        let obj: DynamicObject = serde_json::from_value(desired).map_err(|e| Error::Invalid {
            what: what.clone(),
            message: e.to_string(),
        })?;
        return match create_strict(&ctx.client, &resolved, namespace, &obj).await {
            Ok(created) => Ok(synced(to_json(&created), Change::Created)),
            Err(e) if is_status(&e, 409) => {
                let live = api
                    .get(&child.name)
                    .await
                    .ctx(|| format!("reading {what}"))?;
                Ok(synced(to_json(&live), Change::Unchanged))
            }
            Err(source) => Err(Error::Kube {
                context: format!("creating {what}"),
                source,
            }),
        };
    }
    if let Some(live) = live_json {
        if contains(&live, &desired) {
            return Ok(synced(live, Change::Unchanged));
        }
    }
    // Strict: a field the kind does not have is an error naming it, not silently dropped.
    let params = PatchParams::apply(FIELD_MANAGER)
        .force()
        .validation_strict();
    let applied = api
        .patch(&child.name, &params, &Patch::Apply(&desired))
        .await
        .ctx(|| format!("applying {what}"))?;
    let change = if live.is_some() {
        Change::Updated
    } else {
        Change::Created
    };
    Ok(synced(to_json(&applied), change))
}

/// A copy's source as it is now (read each cycle: the copy follows it), `None` for a child that
/// is no copy. A missing source is an error naming it, never its values.
async fn copy_source(
    ctx: &AgentContext,
    child: &Child,
    resolved: &ResolvedApi,
    what: &str,
) -> Result<Option<Value>, Error> {
    let Some(from) = &child.copy_from else {
        return Ok(None);
    };
    let source = Api::<DynamicObject>::namespaced_with(
        ctx.client.clone(),
        &from.namespace,
        &resolved.resource,
    )
    .get_opt(&from.name)
    .await
    .ctx(|| {
        format!(
            "reading {} {}/{}, the source of {what}",
            child.kind, from.namespace, from.name
        )
    })?;
    match source {
        Some(s) => Ok(Some(to_json(&s))),
        None => Err(Error::Invalid {
            what: what.to_string(),
            message: format!(
                "it copies {} {}/{}, which does not exist",
                child.kind, from.namespace, from.name
            ),
        }),
    }
}

/// Create `obj` with the agent's field manager and strict field validation (kube's
/// `PostParams` has no `fieldValidation`, so the query gets it here).
async fn create_strict(
    client: &kube::Client,
    r: &ResolvedApi,
    namespace: Option<&str>,
    obj: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    let url = <DynamicObject as kube::Resource>::url_path(
        &r.resource,
        namespace.filter(|_| r.namespaced),
    );
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let body = serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?;
    let mut req = kube::core::Request::new(url)
        .create(&params, body)
        .map_err(kube::Error::BuildRequest)?;
    let uri = req.uri().to_string();
    let sep = if uri.contains('?') { '&' } else { '?' };
    let strict = format!("{uri}{sep}fieldValidation=Strict");
    *req.uri_mut() = strict.parse().map_err(|_| {
        kube::Error::BuildRequest(kube::core::request::Error::Validation(format!(
            "not a URI: {strict}"
        )))
    })?;
    client.request::<DynamicObject>(req).await
}

fn to_json(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

/// Whether `live` already has every field of `desired` with the same value (the server may add
/// defaults and other managers' fields). Lists must match element by element.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => contains(lv, dv),
            None => dv.is_null(),
        }),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (Value::Number(l), Value::Number(d)) => l.as_f64() == d.as_f64(),
        // An int-or-string field (targetPort) may come back in the other spelling.
        (Value::Number(l), Value::String(d)) | (Value::String(d), Value::Number(l)) => {
            l.to_string() == *d
        }
        (l, d) => l == d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_with_defaults_contains_desired_but_drift_does_not() {
        let desired = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let live = json!({"spec": {"replicas": 2, "progressDeadlineSeconds": 600,
            "template": {"spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "IfNotPresent"}]}}}});
        assert!(contains(&live, &desired));
        let drifted = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        assert!(!contains(&drifted, &desired));
        let extra = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}}});
        assert!(!contains(&extra, &desired));
    }

    #[test]
    fn block_keys_come_from_the_source_path() {
        assert_eq!(
            block_of("spec.crds.website.operatorBox.onCreate.deployments[0]"),
            "deployments"
        );
        assert_eq!(
            block_of("spec.crds[0].operatorBox.onReconcile.configMaps[2]"),
            "configMaps"
        );
    }

    #[test]
    fn the_hash_changes_with_the_object() {
        let mut a = json!({"metadata": {"name": "x"}, "data": {"k": "1"}});
        let mut b = json!({"metadata": {"name": "x"}, "data": {"k": "2"}});
        orkestra_engine::objects::stamp_applied_hash(&mut a);
        orkestra_engine::objects::stamp_applied_hash(&mut b);
        assert_ne!(
            a["metadata"]["annotations"][APPLIED_HASH],
            b["metadata"]["annotations"][APPLIED_HASH]
        );
    }
}
