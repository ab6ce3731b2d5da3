//! The `orkestra.orkspace.io/cleanup` finalizer: added before anything is created that owner
//! references cannot clean up (an external resource, a cluster-scoped child), and in any case
//! within the CR's first reconcile; removed only after every deletion step finished.

use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams};
use serde_json::json;

use crate::error::{is_status, Error, KubeContext};

/// The finalizer's name.
pub const FINALIZER: &str = "orkestra.orkspace.io/cleanup";

/// Whether `obj` carries the finalizer.
pub fn has(obj: &DynamicObject) -> bool {
    in_meta(&obj.metadata)
}

/// Whether metadata `meta` lists the finalizer.
pub fn in_meta(meta: &ObjectMeta) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// Add the finalizer. `Ok(None)` when the object changed meanwhile (try again with the new one).
pub async fn add(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
) -> Result<Option<DynamicObject>, Error> {
    add_to(api, &obj.metadata, None).await
}

/// Add the finalizer to the object of `meta` and, in the same request, set the annotation
/// `note` (key, value) when given. `Ok(None)` when the object changed meanwhile.
pub async fn add_to(
    api: &Api<DynamicObject>,
    meta: &ObjectMeta,
    note: Option<(&str, String)>,
) -> Result<Option<DynamicObject>, Error> {
    let mut list = meta.finalizers.clone().unwrap_or_default();
    list.push(FINALIZER.to_string());
    let name = meta.name.clone().unwrap_or_default();
    let mut body =
        json!({"metadata": {"finalizers": list, "resourceVersion": meta.resource_version}});
    if let Some((key, value)) = note {
        body["metadata"]["annotations"] = json!({ key: value });
    }
    send(api, &name, &body)
        .await
        .ctx(|| format!("adding finalizer {FINALIZER} on {name}"))
}

/// Remove the finalizer. `Ok(None)` when the object changed meanwhile.
pub async fn remove(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
) -> Result<Option<DynamicObject>, Error> {
    let list: Vec<String> = obj
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    patch(api, obj, list, "removing").await
}

async fn patch(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    finalizers: Vec<String>,
    verb: &str,
) -> Result<Option<DynamicObject>, Error> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let body = json!({"metadata": {"finalizers": finalizers, "resourceVersion": obj.metadata.resource_version}});
    match send(api, &name, &body).await {
        // Already gone: nothing left to finalize.
        Err(e) if is_status(&e, 404) => Ok(Some(obj.clone())),
        other => other.ctx(|| format!("{verb} finalizer {FINALIZER} on {name}")),
    }
}

/// Send a merge patch of the finalizer list. resourceVersion in it is a precondition: a
/// concurrent change answers 409 (`Ok(None)`) instead of one writer's finalizer list silently
/// replacing the other's.
async fn send(
    api: &Api<DynamicObject>,
    name: &str,
    body: &serde_json::Value,
) -> Result<Option<DynamicObject>, kube::Error> {
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(body))
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(e) if is_status(&e, 409) => Ok(None),
        Err(e) => Err(e),
    }
}
