//! The Katalog as a cluster object (`katalogs.orkestra.orkspace.io/v1`, cluster-scoped), the
//! per-Katalog RBAC `apply` generates for the agent, and what the agent reports on its status.

use std::collections::BTreeSet;

use kube::discovery::ApiResource;
use orkestra_engine::blocks::KubeBlock;
use orkestra_engine::Katalog;
use serde_json::{json, Map, Value};

/// API group of Katalog objects.
pub const GROUP: &str = "orkestra.orkspace.io";
/// Name of the Katalog CRD.
pub const CRD_NAME: &str = "katalogs.orkestra.orkspace.io";
/// Field manager of everything `apply` writes.
pub const FIELD_MANAGER: &str = "kubectl-orkestra-apply";
/// The agent's ServiceAccount the generated RBAC binds to.
pub const AGENT_SERVICE_ACCOUNT: &str = "orkestra-agent";
/// The agent's namespace.
pub const AGENT_NAMESPACE: &str = "orkestra-system";
/// Annotations that carry `metadata.description` and `metadata.version` of the file (Kubernetes
/// metadata has no such fields; the engine reads them back from here too).
pub const ANNOTATION_DESCRIPTION: &str = "orkestra.orkspace.io/description";
/// See [`ANNOTATION_DESCRIPTION`].
pub const ANNOTATION_VERSION: &str = "orkestra.orkspace.io/version";

/// The Katalog kind's API resource.
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: "v1".into(),
        api_version: format!("{GROUP}/v1"),
        kind: "Katalog".into(),
        plural: "katalogs".into(),
    }
}

/// The object `apply` writes for a Katalog document read from a file: the file's `spec` as is
/// (a root-level `providers` list moves into `spec.providers`, which the engine reads too), and
/// metadata reduced to what Kubernetes keeps.
pub fn to_object(doc: &Value) -> Value {
    let meta = doc
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out_meta = Map::new();
    out_meta.insert(
        "name".into(),
        meta.get("name").cloned().unwrap_or(Value::Null),
    );
    let mut labels = meta
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert("app.kubernetes.io/managed-by".into(), json!("orkestra"));
    out_meta.insert("labels".into(), Value::Object(labels));
    let mut annotations = meta
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, ann) in [
        ("description", ANNOTATION_DESCRIPTION),
        ("version", ANNOTATION_VERSION),
    ] {
        if let Some(v) = meta.get(key).filter(|v| !v.is_null()) {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            annotations.insert(ann.into(), Value::String(text));
        }
    }
    if !annotations.is_empty() {
        out_meta.insert("annotations".into(), Value::Object(annotations));
    }
    let mut spec = doc
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(p) = doc.get("providers") {
        spec.entry("providers").or_insert_with(|| p.clone());
    }
    json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "Katalog",
        "metadata": out_meta,
        "spec": spec,
    })
}

/// Annotation on a Katalog object applied from a registry: the `oci://` reference as given.
pub const ANNOTATION_SOURCE: &str = "orkestra.orkspace.io/source";
/// Annotation on a Katalog object applied from a registry: the manifest digest the reference
/// resolved to when it was applied (what runs).
pub const ANNOTATION_DIGEST: &str = "orkestra.orkspace.io/digest";

/// Where a Katalog object came from, when it came from a registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// `oci://host/repo:tag` as given to `apply -f`.
    pub source: String,
    /// `sha256:…` it resolved to.
    pub digest: String,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.source.contains('@') {
            write!(f, "{}", self.source)
        } else {
            write!(f, "{}@{}", self.source, self.digest)
        }
    }
}

/// Record `origin` on an object made by [`to_object`].
pub fn set_origin(object: &mut Value, origin: &Origin) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(ANNOTATION_SOURCE.into(), json!(origin.source));
        a.insert(ANNOTATION_DIGEST.into(), json!(origin.digest));
    }
}

/// The origin recorded on a Katalog object, if it was applied from a registry.
pub fn origin_of(object: &Value) -> Option<Origin> {
    let a = object.pointer("/metadata/annotations")?;
    Some(Origin {
        source: a.get(ANNOTATION_SOURCE)?.as_str()?.to_string(),
        digest: a.get(ANNOTATION_DIGEST)?.as_str()?.to_string(),
    })
}

/// One kind an agent needs rights on: API group and plural resource name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupResource {
    /// `""` for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

/// The built-in kinds a Kubernetes block stands for.
pub fn block_resource(block: KubeBlock) -> Option<GroupResource> {
    let (group, resource) = match block {
        KubeBlock::Deployments => ("apps", "deployments"),
        KubeBlock::StatefulSets => ("apps", "statefulsets"),
        KubeBlock::Services => ("", "services"),
        KubeBlock::ConfigMaps => ("", "configmaps"),
        KubeBlock::Secrets => ("", "secrets"),
        KubeBlock::ServiceAccounts => ("", "serviceaccounts"),
        KubeBlock::PersistentVolumeClaims => ("", "persistentvolumeclaims"),
        KubeBlock::Jobs => ("batch", "jobs"),
        KubeBlock::CronJobs => ("batch", "cronjobs"),
        KubeBlock::Ingresses => ("networking.k8s.io", "ingresses"),
        KubeBlock::Custom => return None,
    };
    Some(GroupResource {
        group: group.into(),
        resource: resource.into(),
    })
}

/// `apiVersion`/`kind` of each `custom` block whose type is written literally.
pub fn custom_kinds(katalog: &Katalog) -> Vec<(String, String)> {
    let mut out = BTreeSet::new();
    for e in &katalog.entries {
        for k in e.kube.iter().filter(|k| k.block == KubeBlock::Custom) {
            let lit = |key: &str| {
                k.fields
                    .get(key)
                    .and_then(|v| v.literal())
                    .and_then(|v| v.as_str().map(str::to_string))
            };
            if let (Some(av), Some(kind)) = (lit("apiVersion"), lit("kind")) {
                out.insert((av, kind));
            }
        }
    }
    out.into_iter().collect()
}

/// Name of the generated ClusterRole and ClusterRoleBinding.
pub fn rbac_name(katalog: &str) -> String {
    format!("orkestra-katalog-{katalog}")
}

/// The ClusterRole granting the agent exactly what `katalog` touches: its CRs (and their status
/// and finalizers) and every child kind it declares; `custom` are the resolved custom kinds.
pub fn cluster_role(katalog: &Katalog, custom: &[GroupResource]) -> Value {
    let mut rules = Vec::new();
    for e in &katalog.entries {
        rules.push(json!({
            "apiGroups": [e.api.group], "resources": [e.api.plural],
            "verbs": ["get", "list", "watch", "update", "patch"],
        }));
        rules.push(json!({
            "apiGroups": [e.api.group], "resources": [format!("{}/status", e.api.plural)],
            "verbs": ["get", "update", "patch"],
        }));
        rules.push(json!({
            "apiGroups": [e.api.group], "resources": [format!("{}/finalizers", e.api.plural)],
            "verbs": ["update"],
        }));
    }
    let mut children: BTreeSet<GroupResource> = katalog
        .entries
        .iter()
        .flat_map(|e| e.kube.iter().filter_map(|k| block_resource(k.block)))
        .collect();
    children.extend(custom.iter().cloned());
    for c in children {
        rules.push(json!({
            "apiGroups": [c.group], "resources": [c.resource],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }));
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": rbac_name(&katalog.name), "labels": managed_labels(&katalog.name)},
        "rules": rules,
    })
}

/// The binding of [`cluster_role`] to the agent's ServiceAccount.
pub fn cluster_role_binding(katalog: &str, agent_namespace: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": rbac_name(katalog), "labels": managed_labels(katalog)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": rbac_name(katalog)},
        "subjects": [{"kind": "ServiceAccount", "name": AGENT_SERVICE_ACCOUNT, "namespace": agent_namespace}],
    })
}

fn managed_labels(katalog: &str) -> Value {
    json!({
        "app.kubernetes.io/managed-by": "orkestra",
        "orkestra.orkspace.io/katalog": orkestra_engine::objects::label_value(katalog),
    })
}

/// What the agent says on a Katalog's status about one CRD entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryState {
    /// Entry name.
    pub name: String,
    /// Its controller runs.
    pub running: bool,
    /// It cannot run until someone acts (another Katalog owns the kind: `Conflict`).
    pub failed: bool,
    /// Why not, when it does not.
    pub message: String,
}

/// What the agent says on a Katalog's status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KatalogState {
    /// `Some(false)` when refused, `None` while the agent has not looked at this generation.
    pub accepted: Option<bool>,
    /// The reason when refused.
    pub message: String,
    /// Per entry.
    pub entries: Vec<EntryState>,
}

/// Read the agent's report from a Katalog object. Tolerant about spelling, since this is a
/// contract with the agent: `status.accepted` (bool) or an `Accepted` condition; entries under
/// `status.entries` or `status.crds` (a list with `name`, or a map by name) with `running` (bool)
/// or `controller`/`state`/`phase` `Running` (`Conflict` is a failure), and `message`/`reason`. A status for an older generation
/// (`status.observedGeneration` < `metadata.generation`) counts as no answer yet.
pub fn katalog_state(obj: &Value) -> KatalogState {
    let mut st = KatalogState::default();
    let Some(status) = obj.get("status").filter(|s| s.is_object()) else {
        return st;
    };
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = status.get("observedGeneration").and_then(Value::as_i64);
    if let (Some(g), Some(o)) = (generation, observed) {
        if o < g {
            return st;
        }
    }
    let accepted_condition = status
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Accepted"))
        });
    st.accepted = status.get("accepted").and_then(Value::as_bool).or_else(|| {
        accepted_condition
            .and_then(|c| c.get("status").and_then(Value::as_str))
            .map(|s| s == "True")
    });
    st.message = text_of(status, &["message", "reason"])
        .or_else(|| accepted_condition.and_then(|c| text_of(c, &["message", "reason"])))
        .unwrap_or_default();
    if let Some(diags) = status.get("diagnostics").and_then(Value::as_array) {
        let lines: Vec<String> = diags
            .iter()
            .map(|d| {
                d.get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| d.to_string(), str::to_string)
            })
            .collect();
        if !lines.is_empty() && st.message.is_empty() {
            st.message = lines.join("; ");
        }
    }
    let entries = status.get("entries").or_else(|| status.get("crds"));
    let list: Vec<(String, &Value)> = match entries {
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| {
                (
                    e.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    e,
                )
            })
            .collect(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => Vec::new(),
    };
    for (name, e) in list {
        let word = ["controller", "state", "phase"]
            .iter()
            .find_map(|k| e.get(*k).and_then(Value::as_str));
        let running = e
            .get("running")
            .and_then(Value::as_bool)
            .unwrap_or(matches!(word, Some("Running" | "running")));
        let failed = matches!(word, Some("Conflict" | "Failed" | "Error"));
        let message = text_of(e, &["message", "reason"])
            .or_else(|| word.map(str::to_string))
            .unwrap_or_default();
        st.entries.push(EntryState {
            name,
            running,
            failed,
            message,
        });
    }
    st
}

fn text_of(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        v.get(*k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keeps_only_what_kubernetes_has() {
        let doc = json!({"apiVersion": "orkestra.orkspace.io/v1", "kind": "Katalog",
            "metadata": {"name": "w", "description": "d", "version": "0.1.0"},
            "providers": [{"name": "aws"}], "spec": {"crds": {}}});
        let o = to_object(&doc);
        assert_eq!(o["metadata"]["annotations"][ANNOTATION_DESCRIPTION], "d");
        assert_eq!(o["metadata"]["annotations"][ANNOTATION_VERSION], "0.1.0");
        assert!(o["metadata"].get("description").is_none());
        assert_eq!(o["spec"]["providers"][0]["name"], "aws");
    }

    #[test]
    fn reads_agent_status_in_both_spellings() {
        let a = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "accepted": false,
            "message": "spec.crds.web: unknown field", "entries": [{"name": "web", "running": false}]}});
        let s = katalog_state(&a);
        assert_eq!(s.accepted, Some(false));
        assert_eq!(s.message, "spec.crds.web: unknown field");
        let b = json!({"status": {"conditions": [{"type": "Accepted", "status": "True"}],
            "crds": {"web": {"state": "Running"}}}});
        let s = katalog_state(&b);
        assert_eq!(s.accepted, Some(true));
        assert_eq!(
            s.entries,
            vec![EntryState {
                name: "web".into(),
                running: true,
                failed: false,
                message: "Running".into()
            }]
        );
        // The agent's own spelling (agent/src/supervisor.rs).
        let c = json!({"status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Loaded"}],
            "crds": [{"name": "web", "controller": "Conflict", "message": "websites owned by katalog other"}]}});
        let s = katalog_state(&c);
        assert!(s.entries[0].failed && !s.entries[0].running);
        assert_eq!(s.entries[0].message, "websites owned by katalog other");
        let stale = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2, "accepted": true}});
        assert_eq!(katalog_state(&stale).accepted, None);
    }
}

#[cfg(test)]
mod origin_tests {
    use super::*;

    #[test]
    fn an_origin_is_recorded_as_annotations_and_read_back() {
        let mut o = to_object(&json!({"metadata": {"name": "w"}, "spec": {}}));
        assert_eq!(origin_of(&o), None);
        let origin = Origin {
            source: "oci://r:5000/k/w:1.0.0".into(),
            digest: "sha256:ab".into(),
        };
        set_origin(&mut o, &origin);
        assert_eq!(o["metadata"]["annotations"][ANNOTATION_DIGEST], "sha256:ab");
        assert_eq!(origin_of(&o), Some(origin.clone()));
        assert_eq!(origin.to_string(), "oci://r:5000/k/w:1.0.0@sha256:ab");
    }
}
