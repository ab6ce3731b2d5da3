//! Read-only access to Kubernetes for providers: Secrets and ConfigMaps of one namespace, nothing
//! else.
//!
//! [`KubeReader`] wraps a client privately and exposes only `get` of those two kinds, so a provider
//! cannot write to Kubernetes by construction, not by convention. It is bound to one namespace
//! when it is made (the CR's), and no method takes a namespace, so a provider cannot read another
//! namespace's Secrets either: the scope is a property of the type. Secret values come back wrapped in
//! [`SecretValue`], whose `Debug` never prints the value, so they cannot reach a log by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use crate::error::{Cause, ProviderError};

/// A secret value. `Debug` and `Display` print `(sensitive)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wrap bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The raw bytes. Call only where the value is handed to the external API.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The value as UTF-8, if it is.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

/// The data of a Secret, key by key.
pub type SecretData = BTreeMap<String, SecretValue>;

#[derive(Clone)]
enum Source {
    Api(kube::Client),
    Fixed(Arc<Fixed>),
}

#[derive(Default)]
struct Fixed {
    secrets: BTreeMap<(String, String), SecretData>,
    configmaps: BTreeMap<(String, String), BTreeMap<String, String>>,
}

/// Reads Secrets and ConfigMaps of one namespace; cannot write anything.
#[derive(Clone)]
pub struct KubeReader {
    source: Source,
    namespace: String,
}

impl fmt::Debug for KubeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.source {
            Source::Api(_) => "api",
            Source::Fixed(_) => "fixed",
        };
        write!(f, "KubeReader({kind}, namespace {:?})", self.namespace)
    }
}

impl KubeReader {
    /// A reader of `namespace` over a live cluster. The client is kept private: only reads of
    /// that namespace are exposed.
    pub fn new(client: kube::Client, namespace: impl Into<String>) -> Self {
        Self {
            source: Source::Api(client),
            namespace: namespace.into(),
        }
    }

    /// A reader of `namespace` over fixed objects, for offline plans and tests that need no
    /// cluster. Objects of other namespaces are kept but unreachable through this reader.
    pub fn fixed(
        namespace: impl Into<String>,
        secrets: Vec<Secret>,
        configmaps: Vec<ConfigMap>,
    ) -> Self {
        let mut fixed = Fixed::default();
        for s in secrets {
            let key = (
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default(),
            );
            fixed.secrets.insert(key, secret_data(s));
        }
        for c in configmaps {
            let key = (
                c.metadata.namespace.clone().unwrap_or_default(),
                c.metadata.name.clone().unwrap_or_default(),
            );
            fixed.configmaps.insert(key, c.data.unwrap_or_default());
        }
        Self {
            source: Source::Fixed(Arc::new(fixed)),
            namespace: namespace.into(),
        }
    }

    /// A reader that has nothing (every read finds no object).
    pub fn empty() -> Self {
        Self::fixed("", Vec::new(), Vec::new())
    }

    /// The namespace this reader reads (the CR's).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The data of Secret `name` in this reader's namespace, or `None` if it does not exist.
    pub async fn get_secret(&self, name: &str) -> Result<Option<SecretData>, ProviderError> {
        let namespace = self.namespace.as_str();
        match &self.source {
            Source::Fixed(f) => Ok(f
                .secrets
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()),
            Source::Api(client) => {
                let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
                api.get_opt(name)
                    .await
                    .map(|o| o.map(secret_data))
                    .map_err(|e| kube_error("Secret", namespace, name, &e))
            }
        }
    }

    /// The data of ConfigMap `name` in this reader's namespace, or `None` if it does not exist.
    pub async fn get_configmap(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        let namespace = self.namespace.as_str();
        match &self.source {
            Source::Fixed(f) => Ok(f
                .configmaps
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()),
            Source::Api(client) => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
                api.get_opt(name)
                    .await
                    .map(|o| o.map(|c| c.data.unwrap_or_default()))
                    .map_err(|e| kube_error("ConfigMap", namespace, name, &e))
            }
        }
    }

    /// One key of Secret `name`; a missing Secret or key is an error naming both.
    pub async fn secret_value(&self, name: &str, key: &str) -> Result<SecretValue, ProviderError> {
        let namespace = self.namespace.as_str();
        let reference = |message: String| {
            ProviderError::new(Cause::Reference {
                object: "Secret",
                name: format!("{namespace}/{name}"),
                message,
                retryable: false,
            })
        };
        let data = self
            .get_secret(name)
            .await?
            .ok_or_else(|| reference("not found".to_string()))?;
        data.get(key)
            .cloned()
            .ok_or_else(|| reference(format!("has no key {key:?}")))
    }
}

fn secret_data(s: Secret) -> SecretData {
    let mut out: SecretData = s
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, SecretValue(v.0)))
        .collect();
    // stringData is write-only on a real server; fixed readers may be built from manifests using it.
    for (k, v) in s.string_data.unwrap_or_default() {
        out.insert(k, SecretValue(v.into_bytes()));
    }
    out
}

fn kube_error(object: &'static str, namespace: &str, name: &str, e: &kube::Error) -> ProviderError {
    let retryable = match e {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    };
    ProviderError::new(Cause::Reference {
        object,
        name: format!("{namespace}/{name}"),
        message: format!("cannot be read: {e}"),
        retryable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(ns: &str, name: &str, key: &str, value: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some(ns.into());
        s.metadata.name = Some(name.into());
        s.data = Some(BTreeMap::from([(
            key.to_string(),
            ByteString(value.as_bytes().to_vec()),
        )]));
        s
    }

    #[tokio::test]
    async fn fixed_reader_reads_and_names_missing_keys() {
        let all = vec![
            secret("ns", "db", "password", "hunter2"),
            secret("other", "theirs", "password", "not-yours"),
        ];
        let r = KubeReader::fixed("ns", all.clone(), vec![]);
        let v = r.secret_value("db", "password").await.unwrap();
        assert_eq!(v.expose_str(), Some("hunter2"));
        assert_eq!(format!("{v:?} {v}"), "(sensitive) (sensitive)");
        let e = r.secret_value("db", "nope").await.unwrap_err();
        assert_eq!(e.to_string(), "Secret ns/db: has no key \"nope\"");
        // Another namespace's Secret cannot be named: the reader is bound to "ns".
        let e = r.secret_value("theirs", "password").await.unwrap_err();
        assert_eq!(e.to_string(), "Secret ns/theirs: not found");
        assert!(r.get_configmap("x").await.unwrap().is_none());
        let theirs = KubeReader::fixed("other", all, vec![]);
        assert!(theirs.get_secret("db").await.unwrap().is_none());
        assert_eq!(
            format!("{theirs:?}"),
            "KubeReader(fixed, namespace \"other\")"
        );
    }
}
