//! The ValidatingAdmissionPolicies `apply` installs for an entry's `validation` rules that its
//! CRD does not carry (`warn` rules; every rule of a `crdFile` CRD or of an existing CRD that is
//! not orkestra's): what they are is the engine's ([`orkestra_engine::validation`]), this module
//! only writes them. A policy the Katalog no longer needs is deleted, if orkestra made it.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::Resource;
use orkestra_engine::validation::{admission_policies, Policy};
use orkestra_engine::CrdEntry;
use serde::de::DeserializeOwned;

use crate::katalog_object as ko;
use crate::kube_client::{explain, Kube};

/// Bring the entry's policies and bindings to what its rules need. `crd_holds_deny`: the CRD
/// `apply` wrote carries the `deny` rules itself.
pub async fn ensure_policies(
    kube: &Kube,
    entry: &CrdEntry,
    katalog: &str,
    crd_holds_deny: bool,
) -> anyhow::Result<()> {
    for policy in admission_policies(entry, katalog, crd_holds_deny) {
        match &policy.objects {
            Some([p, b]) => {
                apply_one::<ValidatingAdmissionPolicy>(kube, &policy, p).await?;
                apply_one::<ValidatingAdmissionPolicyBinding>(kube, &policy, b).await?;
                eprintln!(
                    "validatingadmissionpolicy.admissionregistration.k8s.io/{} applied ({} rule(s), {:?})",
                    policy.name,
                    p["spec"]["validations"].as_array().map_or(0, Vec::len),
                    policy.action
                );
            }
            None => {
                // Binding first: a policy without its binding enforces nothing.
                remove_stale::<ValidatingAdmissionPolicyBinding>(kube, &policy.name).await?;
                remove_stale::<ValidatingAdmissionPolicy>(kube, &policy.name).await?;
            }
        }
    }
    Ok(())
}

/// The two cluster-scoped kinds this module writes.
trait ClusterObject:
    Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> ClusterObject for K where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
{
}

async fn apply_one<K: ClusterObject>(
    kube: &Kube,
    policy: &Policy,
    object: &serde_json::Value,
) -> anyhow::Result<()> {
    let api: Api<K> = Api::all(kube.client.clone());
    let kind = K::kind(&()).to_lowercase();
    api.patch(
        &policy.name,
        &PatchParams::apply(ko::FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|e| explain(e, &format!("apply {kind} {}", policy.name), &kube.server))?;
    Ok(())
}

/// Delete `name` when it exists and orkestra made it (a user's object of the same name stays).
async fn remove_stale<K: ClusterObject>(kube: &Kube, name: &str) -> anyhow::Result<()> {
    let api: Api<K> = Api::all(kube.client.clone());
    let kind = K::kind(&()).to_lowercase();
    let existing = api
        .get_opt(name)
        .await
        .map_err(|e| explain(e, &format!("get {kind} {name}"), &kube.server))?;
    let ours = existing.is_some_and(|o| {
        o.meta().labels.as_ref().is_some_and(|l| {
            l.get("app.kubernetes.io/managed-by").map(String::as_str) == Some("orkestra")
        })
    });
    if ours {
        api.delete(name, &DeleteParams::default())
            .await
            .map_err(|e| explain(e, &format!("delete {kind} {name}"), &kube.server))?;
        eprintln!("{kind}.admissionregistration.k8s.io/{name} deleted (no rule needs it)");
    }
    Ok(())
}
