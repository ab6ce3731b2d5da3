//! The Kubernetes blocks a Katalog hook may hold, and the short fields each accepts.
//!
//! Field lists follow upstream Orkestra's short forms. They are data ([`FieldSchema`]) so lint,
//! the loader and the renderer's type conversion all read the same definition.

use std::sync::LazyLock;

use orkestra_provider_schema::{FieldSchema as F, FieldType as T, Validator};

/// A Kubernetes block key in `onCreate` / `onReconcile` / `onDelete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KubeBlock {
    Deployments,
    Services,
    ConfigMaps,
    Secrets,
    ServiceAccounts,
    Jobs,
    CronJobs,
    StatefulSets,
    Ingresses,
    PersistentVolumeClaims,
    Custom,
}

impl KubeBlock {
    pub const ALL: [KubeBlock; 11] = [
        KubeBlock::Deployments,
        KubeBlock::Services,
        KubeBlock::ConfigMaps,
        KubeBlock::Secrets,
        KubeBlock::ServiceAccounts,
        KubeBlock::Jobs,
        KubeBlock::CronJobs,
        KubeBlock::StatefulSets,
        KubeBlock::Ingresses,
        KubeBlock::PersistentVolumeClaims,
        KubeBlock::Custom,
    ];

    /// The name an entry gets when it gives none, as upstream Orkestra names it (a template
    /// over the CR); `None` where a name is required (PVCs, custom objects).
    pub fn default_name(self) -> Option<&'static str> {
        Some(match self {
            KubeBlock::Deployments => "{{ .metadata.name }}-deployment",
            KubeBlock::Services => "{{ .metadata.name }}-svc",
            KubeBlock::ConfigMaps => "{{ .metadata.name }}-config",
            KubeBlock::Secrets => "{{ .metadata.name }}-secret",
            KubeBlock::ServiceAccounts => "{{ .metadata.name }}-sa",
            KubeBlock::Jobs => "{{ .metadata.name }}-job",
            KubeBlock::CronJobs => "{{ .metadata.name }}-cronjob",
            KubeBlock::StatefulSets => "{{ .metadata.name }}",
            KubeBlock::Ingresses => "{{ .metadata.name }}-ingress",
            KubeBlock::PersistentVolumeClaims | KubeBlock::Custom => return None,
        })
    }

    /// The key as written in a Katalog.
    pub fn key(self) -> &'static str {
        match self {
            KubeBlock::Deployments => "deployments",
            KubeBlock::Services => "services",
            KubeBlock::ConfigMaps => "configMaps",
            KubeBlock::Secrets => "secrets",
            KubeBlock::ServiceAccounts => "serviceAccounts",
            KubeBlock::Jobs => "jobs",
            KubeBlock::CronJobs => "cronJobs",
            KubeBlock::StatefulSets => "statefulSets",
            KubeBlock::Ingresses => "ingresses",
            KubeBlock::PersistentVolumeClaims => "persistentVolumeClaims",
            KubeBlock::Custom => "custom",
        }
    }

    pub fn from_key(k: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.key() == k)
    }

    /// apiVersion and kind of the objects the block makes (`None` for `custom`).
    pub fn type_meta(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            KubeBlock::Deployments => ("apps/v1", "Deployment"),
            KubeBlock::Services => ("v1", "Service"),
            KubeBlock::ConfigMaps => ("v1", "ConfigMap"),
            KubeBlock::Secrets => ("v1", "Secret"),
            KubeBlock::ServiceAccounts => ("v1", "ServiceAccount"),
            KubeBlock::Jobs => ("batch/v1", "Job"),
            KubeBlock::CronJobs => ("batch/v1", "CronJob"),
            KubeBlock::StatefulSets => ("apps/v1", "StatefulSet"),
            KubeBlock::Ingresses => ("networking.k8s.io/v1", "Ingress"),
            KubeBlock::PersistentVolumeClaims => ("v1", "PersistentVolumeClaim"),
            KubeBlock::Custom => return None,
        })
    }

    /// The fields an entry of this block accepts (besides `reconcile`, `when`, `or`).
    /// Built once per process: rendering reads them on every reconcile.
    pub fn fields(self) -> &'static [F] {
        static TABLES: LazyLock<Vec<Vec<F>>> =
            LazyLock::new(|| KubeBlock::ALL.iter().map(|b| b.build_fields()).collect());
        let i = KubeBlock::ALL
            .iter()
            .position(|b| *b == self)
            .expect("every block is in ALL");
        &TABLES[i]
    }

    fn build_fields(self) -> Vec<F> {
        let mut f = vec![
            F::new("name", T::String)
                .required()
                .validate(Validator::Rule(dns_name)),
            F::new("labels", T::StringMap),
            F::new("annotations", T::StringMap),
        ];
        let pod = || {
            vec![
                F::new("image", T::String).required(),
                F::new("command", T::List),
                F::new("args", T::List),
                F::new("env", T::Any),
                F::new("envFrom", T::List),
                F::new("resources", T::Object),
                F::new("serviceAccountName", T::String),
                F::new("imagePullPolicy", T::String).validate(Validator::OneOf(&[
                    "Always",
                    "IfNotPresent",
                    "Never",
                ])),
                F::new("containerName", T::String),
                F::new("volumes", T::List),
                F::new("volumeMounts", T::List),
                F::new("nodeSelector", T::StringMap),
                F::new("securityContext", T::Object),
                F::new("podLabels", T::StringMap),
                F::new("podAnnotations", T::StringMap),
            ]
        };
        match self {
            KubeBlock::Deployments | KubeBlock::StatefulSets => {
                f.extend(pod());
                f.extend([
                    F::new("replicas", T::Integer).validate(Validator::Range(0, 100_000)),
                    F::new("port", T::Integer).validate(Validator::Range(1, 65535)),
                    F::new("ports", T::List),
                    F::new("livenessProbe", T::Object),
                    F::new("readinessProbe", T::Object),
                ]);
                if self == KubeBlock::StatefulSets {
                    f.extend([
                        F::new("serviceName", T::String),
                        F::new("storage", T::String),
                        F::new("storageClassName", T::String),
                        F::new("mountPath", T::String),
                    ]);
                }
            }
            KubeBlock::Jobs | KubeBlock::CronJobs => {
                f.extend(pod());
                f.extend([
                    F::new("restartPolicy", T::String)
                        .validate(Validator::OneOf(&["Never", "OnFailure"])),
                    F::new("backoffLimit", T::Integer),
                    F::new("ttlSecondsAfterFinished", T::Integer),
                    F::new("activeDeadlineSeconds", T::Integer),
                ]);
                if self == KubeBlock::CronJobs {
                    f.extend([
                        F::new("schedule", T::String).required(),
                        F::new("concurrencyPolicy", T::String)
                            .validate(Validator::OneOf(&["Allow", "Forbid", "Replace"])),
                        F::new("suspend", T::Boolean),
                        F::new("successfulJobsHistoryLimit", T::Integer),
                        F::new("failedJobsHistoryLimit", T::Integer),
                        F::new("startingDeadlineSeconds", T::Integer),
                        F::new("timeZone", T::String),
                    ]);
                }
            }
            KubeBlock::Services => f.extend([
                F::new("type", T::String).validate(Validator::OneOf(&[
                    "ClusterIP",
                    "NodePort",
                    "LoadBalancer",
                    "ExternalName",
                ])),
                F::new("port", T::Integer).validate(Validator::Range(1, 65535)),
                F::new("targetPort", T::Any),
                F::new("nodePort", T::Integer),
                F::new("protocol", T::String).validate(Validator::OneOf(&["TCP", "UDP", "SCTP"])),
                F::new("ports", T::List),
                F::new("selector", T::StringMap),
                F::new("externalName", T::String),
            ]),
            KubeBlock::ConfigMaps => f.extend([F::new("data", T::StringMap)]),
            KubeBlock::Secrets => f.extend([
                F::new("type", T::String),
                F::new("stringData", T::StringMap).sensitive(),
                F::new("data", T::StringMap).sensitive(),
            ]),
            KubeBlock::ServiceAccounts => {
                f.push(F::new("automountServiceAccountToken", T::Boolean))
            }
            KubeBlock::Ingresses => f.extend([
                F::new("host", T::String),
                F::new("path", T::String),
                F::new("pathType", T::String).validate(Validator::OneOf(&[
                    "Prefix",
                    "Exact",
                    "ImplementationSpecific",
                ])),
                F::new("serviceName", T::String).required(),
                F::new("servicePort", T::Integer).validate(Validator::Range(1, 65535)),
                F::new("ingressClassName", T::String),
                F::new("tlsSecretName", T::String),
            ]),
            KubeBlock::PersistentVolumeClaims => f.extend([
                F::new("storage", T::String).required(),
                F::new("accessModes", T::List),
                F::new("storageClassName", T::String),
            ]),
            KubeBlock::Custom => {
                return vec![
                    F::new("apiVersion", T::String).required(),
                    F::new("kind", T::String).required(),
                    F::new("metadata", T::Object).required(),
                    F::new("spec", T::Any),
                    F::new("data", T::Any),
                    F::new("stringData", T::Any).sensitive(),
                    F::new("type", T::String),
                    F::new("rules", T::Any),
                    F::new("roleRef", T::Any),
                    F::new("subjects", T::Any),
                ]
            }
        }
        f
    }
}

/// Keys every Kubernetes entry accepts besides its fields.
pub const CONTROL_KEYS: &[&str] = &[
    "reconcile",
    "when",
    "or",
    "id",
    "after",
    "readyWhen",
    "forEach",
];

/// Keys a provider item accepts beside its one kind key (`- id: db` next to `rds:`).
pub const ITEM_CONTROL_KEYS: &[&str] = &["when", "or", "id", "after", "readyWhen"];

/// Kubernetes object names (RFC 1123 subdomain, the rule most kinds use).
pub fn dns_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ))
    }
}
