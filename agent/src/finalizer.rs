//! The `orkestra.orkspace.io/cleanup` finalizer: added before anything is created, removed only
//! after every deletion step finished.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

use crate::error::{is_status, Error, KubeContext};

/// The finalizer's name.
pub const FINALIZER: &str = "orkestra.orkspace.io/cleanup";

/// Whether `obj` carries the finalizer.
pub fn has(obj: &DynamicObject) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// Add the finalizer. `Ok(None)` when the object changed meanwhile (try again with the new one).
pub async fn add(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
) -> Result<Option<DynamicObject>, Error> {
    let mut list = obj.metadata.finalizers.clone().unwrap_or_default();
    list.push(FINALIZER.to_string());
    patch(api, obj, list, "adding").await
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
    // resourceVersion in a merge patch is a precondition: a concurrent change answers 409
    // instead of one writer's finalizer list silently replacing the other's.
    let body = json!({"metadata": {"finalizers": finalizers, "resourceVersion": obj.metadata.resource_version}});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(e) if is_status(&e, 409) => Ok(None),
        // Already gone: nothing left to finalize.
        Err(e) if is_status(&e, 404) && verb == "removing" => Ok(Some(obj.clone())),
        Err(e) => Err(e).ctx(|| format!("{verb} finalizer {FINALIZER} on {name}")),
    }
}
