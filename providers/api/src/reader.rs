//! Read-only access to Kubernetes for providers: Secrets and ConfigMaps, nothing else.
//!
//! [`KubeReader`] wraps a client privately and exposes only `get` of those two kinds, so a provider
//! cannot write to Kubernetes by construction, not by convention. Secret values come back wrapped in
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

/// Reads Secrets and ConfigMaps; cannot write anything.
#[derive(Clone)]
pub struct KubeReader {
    source: Source,
}

impl fmt::Debug for KubeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Api(_) => f.write_str("KubeReader(api)"),
            Source::Fixed(_) => f.write_str("KubeReader(fixed)"),
        }
    }
}

impl KubeReader {
    /// A reader over a live cluster. The client is kept private: only reads are exposed.
    pub fn new(client: kube::Client) -> Self {
        Self {
            source: Source::Api(client),
        }
    }

    /// A reader over fixed objects, for offline plans and tests that need no cluster. Secrets and
    /// ConfigMaps are keyed by `(namespace, name)`.
    pub fn fixed(secrets: Vec<Secret>, configmaps: Vec<ConfigMap>) -> Self {
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
        }
    }

    /// A reader that has nothing (every read finds no object).
    pub fn empty() -> Self {
        Self::fixed(Vec::new(), Vec::new())
    }

    /// The data of Secret `namespace/name`, or `None` if it does not exist.
    pub async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ProviderError> {
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

    /// The data of ConfigMap `namespace/name`, or `None` if it does not exist.
    pub async fn get_configmap(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
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

    /// One key of a Secret; a missing Secret or key is an error naming both.
    pub async fn secret_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<SecretValue, ProviderError> {
        let reference = |message: String| {
            ProviderError::new(Cause::Reference {
                object: "Secret",
                name: format!("{namespace}/{name}"),
                message,
                retryable: false,
            })
        };
        let data = self
            .get_secret(namespace, name)
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
        let r = KubeReader::fixed(vec![secret("ns", "db", "password", "hunter2")], vec![]);
        let v = r.secret_value("ns", "db", "password").await.unwrap();
        assert_eq!(v.expose_str(), Some("hunter2"));
        assert_eq!(format!("{v:?} {v}"), "(sensitive) (sensitive)");
        let e = r.secret_value("ns", "db", "nope").await.unwrap_err();
        assert_eq!(e.to_string(), "Secret ns/db: has no key \"nope\"");
        let e = r.secret_value("other", "db", "password").await.unwrap_err();
        assert_eq!(e.to_string(), "Secret other/db: not found");
        assert!(r.get_configmap("ns", "x").await.unwrap().is_none());
    }
}
