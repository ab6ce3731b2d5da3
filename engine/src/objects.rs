//! Desired-state builders: rendered short fields → complete Kubernetes objects.
//!
//! Pure functions from (block, fields, owner) to JSON objects. Fields arrive already converted to
//! their schema types, so builders only assemble. Every child gets the standard
//! `app.kubernetes.io/*` labels, an owner label set and, when the owner's uid is known, an owner
//! reference; workloads get a selector that matches their pod labels.

use serde_json::{json, Map, Value};

use crate::blocks::KubeBlock;

/// Label and annotation keys orkestra sets.
pub mod labels {
    pub const NAME: &str = "app.kubernetes.io/name";
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    pub const OWNER_KIND: &str = "orkestra.orkspace.io/owner-kind";
    pub const OWNER_NAME: &str = "orkestra.orkspace.io/owner-name";
    pub const OWNER_NAMESPACE: &str = "orkestra.orkspace.io/owner-namespace";
    pub const OWNER_UID: &str = "orkestra.orkspace.io/owner-uid";
    pub const KATALOG: &str = "orkestra.orkspace.io/katalog";
    /// Hash of an enforced child as last applied; equal hashes mean nothing to write.
    pub const APPLIED_HASH: &str = "orkestra.orkspace.io/applied-hash";
    pub const MANAGER: &str = "orkestra";
}

/// The CR that owns the children.
#[derive(Debug, Clone)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub katalog: String,
}

impl Owner {
    /// Read the owner fields from a CR.
    pub fn of(cr: &Value, katalog: &str) -> Self {
        let s = |p: &str| cr.pointer(p).and_then(Value::as_str).map(String::from);
        Self {
            api_version: s("/apiVersion").unwrap_or_default(),
            kind: s("/kind").unwrap_or_default(),
            name: s("/metadata/name").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
            uid: s("/metadata/uid"),
            katalog: katalog.to_string(),
        }
    }

    /// Labels every child carries (the owner label set).
    pub fn labels(&self, child: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(labels::NAME.into(), label_value(child).into());
        m.insert(labels::INSTANCE.into(), label_value(&self.name).into());
        m.insert(labels::MANAGED_BY.into(), labels::MANAGER.into());
        m.insert(labels::PART_OF.into(), label_value(&self.katalog).into());
        m.insert(labels::OWNER_KIND.into(), label_value(&self.kind).into());
        m.insert(labels::OWNER_NAME.into(), label_value(&self.name).into());
        if let Some(ns) = &self.namespace {
            m.insert(labels::OWNER_NAMESPACE.into(), label_value(ns).into());
        }
        if let Some(uid) = &self.uid {
            m.insert(labels::OWNER_UID.into(), uid.clone().into());
        }
        m
    }

    /// Labels a workload selects its pods by: stable across spec changes (selectors are immutable).
    pub fn selector(&self, child: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(labels::NAME.into(), label_value(child).into());
        m.insert(labels::INSTANCE.into(), label_value(&self.name).into());
        m
    }

    /// The owner reference, when the uid is known (it is not for an offline CR file).
    pub fn reference(&self) -> Option<Value> {
        let uid = self.uid.as_ref()?;
        Some(json!({
            "apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": uid,
            "controller": true, "blockOwnerDeletion": true,
        }))
    }
}

/// Stamp the hash of `desired` (computed without the stamp) into its
/// [`labels::APPLIED_HASH`] annotation. The agent applies enforced children stamped this way and
/// `kubectl orkestra plan` dry-runs them the same way, so both agree on "no change".
pub fn stamp_applied_hash(desired: &mut Value) {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(desired.to_string().as_bytes());
    let hash: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(a) = ann.as_object_mut() {
            a.insert(labels::APPLIED_HASH.into(), Value::String(hash));
        }
    }
}

/// A label value (at most 63 characters); longer values keep a prefix and a hash suffix.
pub fn label_value(s: &str) -> String {
    if s.len() <= 63 {
        return s.to_string();
    }
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(s.as_bytes());
    let hex: String = h.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let keep: String = s.chars().take(54).collect();
    format!("{}-{hex}", keep.trim_end_matches(['-', '.', '_']))
}

fn str_of<'a>(f: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    f.get(k).and_then(Value::as_str)
}

fn merged(base: Map<String, Value>, extra: Option<&Value>) -> Value {
    let mut m = base;
    if let Some(Value::Object(e)) = extra {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}

/// Build the object for one entry of a Kubernetes block (`scopes`: where custom kinds live).
pub fn build(block: KubeBlock, f: &Map<String, Value>, owner: &Owner, scopes: &Scopes) -> Value {
    if block == KubeBlock::Custom {
        return custom(f, owner, scopes);
    }
    let (api_version, kind) = block.type_meta().expect("not custom");
    let name = str_of(f, "name").unwrap_or_default();
    let mut metadata = Map::new();
    metadata.insert("name".into(), name.into());
    if let Some(ns) = &owner.namespace {
        metadata.insert("namespace".into(), ns.clone().into());
    }
    // User labels may add to, but not replace, the owner label set.
    let mut lbl = f
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    lbl.extend(owner.labels(name));
    metadata.insert("labels".into(), Value::Object(lbl));
    if let Some(a) = f.get("annotations") {
        metadata.insert("annotations".into(), a.clone());
    }
    if let Some(r) = owner.reference() {
        metadata.insert("ownerReferences".into(), json!([r]));
    }
    let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": metadata});
    let o = obj.as_object_mut().expect("object");
    match block {
        KubeBlock::Deployments => {
            o.insert("spec".into(), workload_spec(f, owner, name, false));
        }
        KubeBlock::StatefulSets => {
            let mut spec = workload_spec(f, owner, name, true);
            let s = spec.as_object_mut().expect("object");
            s.insert(
                "serviceName".into(),
                str_of(f, "serviceName").unwrap_or(name).into(),
            );
            if let Some(size) = str_of(f, "storage") {
                let mut pvc = json!({
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
                });
                if let Some(sc) = str_of(f, "storageClassName") {
                    pvc["spec"]["storageClassName"] = sc.into();
                }
                s.insert("volumeClaimTemplates".into(), json!([pvc]));
                let mount = str_of(f, "mountPath").unwrap_or("/data");
                let c = &mut s["template"]["spec"]["containers"][0];
                let mounts = c
                    .as_object_mut()
                    .expect("container")
                    .entry("volumeMounts")
                    .or_insert(json!([]));
                if let Some(a) = mounts.as_array_mut() {
                    a.push(json!({"name": "data", "mountPath": mount}));
                }
            }
            o.insert("spec".into(), spec);
        }
        KubeBlock::Jobs => {
            o.insert("spec".into(), job_spec(f, owner, name));
        }
        KubeBlock::CronJobs => {
            let mut spec = json!({
                "schedule": f.get("schedule").cloned().unwrap_or(Value::Null),
                "jobTemplate": {"spec": job_spec(f, owner, name)},
            });
            for k in [
                "concurrencyPolicy",
                "suspend",
                "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit",
                "startingDeadlineSeconds",
                "timeZone",
            ] {
                if let Some(v) = f.get(k) {
                    spec[k] = v.clone();
                }
            }
            o.insert("spec".into(), spec);
        }
        KubeBlock::Services => {
            let mut spec = Map::new();
            if let Some(t) = f.get("type") {
                spec.insert("type".into(), t.clone());
            }
            let ports = match f.get("ports") {
                Some(p) => p.clone(),
                None => {
                    let port = f.get("port").cloned().unwrap_or(json!(80));
                    let mut p = json!({"name": "http", "port": port, "protocol": str_of(f, "protocol").unwrap_or("TCP")});
                    p["targetPort"] = match f.get("targetPort") {
                        Some(Value::String(s)) => s
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| s.clone().into()),
                        Some(v) => v.clone(),
                        None => port,
                    };
                    if let Some(n) = f.get("nodePort") {
                        p["nodePort"] = n.clone();
                    }
                    json!([p])
                }
            };
            if str_of(f, "type") == Some("ExternalName") {
                spec.insert(
                    "externalName".into(),
                    f.get("externalName").cloned().unwrap_or(Value::Null),
                );
            } else {
                spec.insert("ports".into(), ports);
                let sel = f
                    .get("selector")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(owner.selector(name)));
                spec.insert("selector".into(), sel);
            }
            o.insert("spec".into(), Value::Object(spec));
        }
        KubeBlock::ConfigMaps => {
            o.insert("data".into(), f.get("data").cloned().unwrap_or(json!({})));
        }
        KubeBlock::Secrets => {
            o.insert("type".into(), str_of(f, "type").unwrap_or("Opaque").into());
            for k in ["stringData", "data"] {
                if let Some(v) = f.get(k) {
                    o.insert(k.into(), v.clone());
                }
            }
        }
        KubeBlock::ServiceAccounts => {
            if let Some(v) = f.get("automountServiceAccountToken") {
                o.insert("automountServiceAccountToken".into(), v.clone());
            }
        }
        KubeBlock::Ingresses => {
            let mut rule = json!({"http": {"paths": [{
                "path": str_of(f, "path").unwrap_or("/"),
                "pathType": str_of(f, "pathType").unwrap_or("Prefix"),
                "backend": {"service": {"name": f.get("serviceName").cloned().unwrap_or(Value::Null),
                                        "port": {"number": f.get("servicePort").cloned().unwrap_or(json!(80))}}}
            }]}});
            if let Some(h) = f.get("host") {
                rule["host"] = h.clone();
            }
            let mut spec = json!({"rules": [rule]});
            if let Some(c) = f.get("ingressClassName") {
                spec["ingressClassName"] = c.clone();
            }
            if let Some(t) = f.get("tlsSecretName") {
                let hosts = f.get("host").map(|h| json!([h])).unwrap_or(json!([]));
                spec["tls"] = json!([{"secretName": t, "hosts": hosts}]);
            }
            o.insert("spec".into(), spec);
        }
        KubeBlock::PersistentVolumeClaims => {
            let mut spec = json!({
                "accessModes": f.get("accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                "resources": {"requests": {"storage": f.get("storage").cloned().unwrap_or(Value::Null)}},
            });
            if let Some(sc) = f.get("storageClassName") {
                spec["storageClassName"] = sc.clone();
            }
            o.insert("spec".into(), spec);
        }
        KubeBlock::Custom => unreachable!("handled above"),
    }
    obj
}

fn container(f: &Map<String, Value>, name: &str) -> Value {
    let mut c = Map::new();
    c.insert(
        "name".into(),
        str_of(f, "containerName").unwrap_or(name).into(),
    );
    c.insert(
        "image".into(),
        f.get("image").cloned().unwrap_or(Value::Null),
    );
    for k in [
        "command",
        "args",
        "envFrom",
        "resources",
        "imagePullPolicy",
        "volumeMounts",
        "securityContext",
        "livenessProbe",
        "readinessProbe",
    ] {
        if let Some(v) = f.get(k) {
            c.insert(k.into(), v.clone());
        }
    }
    if let Some(env) = f.get("env") {
        c.insert("env".into(), env_list(env));
    }
    match (f.get("ports"), f.get("port")) {
        (Some(p), _) => {
            c.insert("ports".into(), p.clone());
        }
        (None, Some(p)) => {
            c.insert(
                "ports".into(),
                json!([{"name": "http", "containerPort": p, "protocol": "TCP"}]),
            );
        }
        _ => {}
    }
    Value::Object(c)
}

/// `env` as a list of `{name, value}` (or valueFrom), or a map of name → value.
fn env_list(env: &Value) -> Value {
    match env {
        Value::Object(m) => Value::Array(
            m.iter()
                .map(|(k, v)| match v {
                    Value::Object(_) => json!({"name": k, "valueFrom": v}),
                    v => json!({"name": k, "value": crate::template::functions::to_text(v)}),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| match (i.get("value"), i.as_object()) {
                    // Environment values are strings in Kubernetes: `3` becomes "3".
                    (Some(v), Some(m)) if !v.is_string() => {
                        let mut m = m.clone();
                        m.insert(
                            "value".into(),
                            crate::template::functions::to_text(v).into(),
                        );
                        Value::Object(m)
                    }
                    _ => i.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn pod_template(f: &Map<String, Value>, owner: &Owner, name: &str, restart: Option<&str>) -> Value {
    let mut labels = f
        .get("podLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.extend(owner.labels(name));
    let mut spec = Map::new();
    spec.insert("containers".into(), json!([container(f, name)]));
    for k in ["serviceAccountName", "volumes", "nodeSelector"] {
        if let Some(v) = f.get(k) {
            spec.insert(k.into(), v.clone());
        }
    }
    if let Some(r) = restart {
        spec.insert("restartPolicy".into(), r.into());
    }
    let mut meta = json!({"labels": labels});
    if let Some(a) = f.get("podAnnotations") {
        meta["annotations"] = a.clone();
    }
    json!({"metadata": meta, "spec": spec})
}

fn workload_spec(f: &Map<String, Value>, owner: &Owner, name: &str, _stateful: bool) -> Value {
    json!({
        "replicas": f.get("replicas").cloned().unwrap_or(json!(1)),
        "selector": {"matchLabels": owner.selector(name)},
        "template": pod_template(f, owner, name, None),
    })
}

fn job_spec(f: &Map<String, Value>, owner: &Owner, name: &str) -> Value {
    let restart = str_of(f, "restartPolicy").unwrap_or("Never");
    let mut spec = json!({"template": pod_template(f, owner, name, Some(restart))});
    for k in [
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "activeDeadlineSeconds",
    ] {
        if let Some(v) = f.get(k) {
            spec[k] = v.clone();
        }
    }
    spec
}

fn custom(f: &Map<String, Value>, owner: &Owner, scopes: &Scopes) -> Value {
    let mut obj = Map::new();
    for (k, v) in f {
        if k != "labels" && k != "annotations" && k != "name" {
            obj.insert(k.clone(), v.clone());
        }
    }
    let meta = obj.entry("metadata").or_insert(json!({}));
    if let Some(m) = meta.as_object_mut() {
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let user = m.get("labels").cloned();
        let mut lbl = owner.labels(&name);
        if let Some(Value::Object(u)) = user {
            let base = lbl;
            lbl = u;
            lbl.extend(base);
        }
        m.insert("labels".into(), merged(lbl, None));
        let kind = f.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = f
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let cluster = scopes.is_cluster_scoped(api_version, kind);
        if !m.contains_key("namespace") && !cluster {
            if let Some(ns) = &owner.namespace {
                m.insert("namespace".into(), ns.clone().into());
            }
        }
        if !cluster || owner.namespace.is_none() {
            if let Some(r) = owner.reference() {
                m.insert("ownerReferences".into(), json!([r]));
            }
        }
    }
    Value::Object(obj)
}

/// Built-in kinds that live outside namespaces (Kubernetes 1.36), by API group (`""`: core).
/// Kinds only ever created, never stored (reviews), are left out: no Katalog makes them.
const CLUSTER_SCOPED: &[(&str, &[&str])] = &[
    ("", &["Namespace", "Node", "PersistentVolume"]),
    (
        "admissionregistration.k8s.io",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
        ],
    ),
    ("apiextensions.k8s.io", &["CustomResourceDefinition"]),
    ("apiregistration.k8s.io", &["APIService"]),
    (
        "certificates.k8s.io",
        &["CertificateSigningRequest", "ClusterTrustBundle"],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    ("internal.apiserver.k8s.io", &["StorageVersion"]),
    (
        "networking.k8s.io",
        &["IngressClass", "IPAddress", "ServiceCIDR"],
    ),
    ("node.k8s.io", &["RuntimeClass"]),
    (
        "rbac.authorization.k8s.io",
        &["ClusterRole", "ClusterRoleBinding"],
    ),
    ("resource.k8s.io", &["DeviceClass", "ResourceSlice"]),
    ("scheduling.k8s.io", &["PriorityClass"]),
    (
        "storage.k8s.io",
        &[
            "CSIDriver",
            "CSINode",
            "StorageClass",
            "VolumeAttachment",
            "VolumeAttributesClass",
        ],
    ),
    ("storagemigration.k8s.io", &["StorageVersionMigration"]),
];

/// Where objects of a kind live, as far as rendering can tell without a cluster: built-in kinds
/// from [`CLUSTER_SCOPED`], the Katalog's own kinds from their CRDs (`apiTypes.scope` or the
/// crdFile's `spec.scope`). Anything else counts as namespaced here; the agent and `plan` ask
/// discovery and place every object by what the API server says.
#[derive(Debug, Clone, Default)]
pub struct Scopes {
    /// `(group, kind)` of the Katalog's cluster-scoped kinds.
    own: Vec<(String, String)>,
}

impl Scopes {
    /// The scopes `katalog` knows of.
    pub fn of(katalog: &crate::katalog::Katalog) -> Self {
        let own = katalog
            .entries
            .iter()
            .filter(|e| e.api.scope == crate::katalog::Scope::Cluster)
            .map(|e| (e.api.group.clone(), e.api.kind.clone()))
            .collect();
        Self { own }
    }

    /// Whether objects of `kind` in `api_version` (`group/version`, or `v1` for core) live
    /// outside namespaces.
    pub fn is_cluster_scoped(&self, api_version: &str, kind: &str) -> bool {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        CLUSTER_SCOPED
            .iter()
            .any(|(g, kinds)| *g == group && kinds.contains(&kind))
            || self.own.iter().any(|(g, k)| g == group && k == kind)
    }
}
