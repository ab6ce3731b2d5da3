//! Resolving `apiVersion` + `kind` to an API resource (plural, scope) by discovery, cached.

use std::collections::HashMap;
use std::sync::RwLock;

use kube::api::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;

use crate::error::{Error, KubeContext};

/// A resolved kind: how to address it and whether it lives in a namespace.
#[derive(Debug, Clone)]
pub struct ResolvedApi {
    /// Group, version, kind, plural.
    pub resource: ApiResource,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
}

/// A cache of discovered kinds.
pub struct ApiCache {
    client: kube::Client,
    known: RwLock<HashMap<(String, String), ResolvedApi>>,
}

impl ApiCache {
    /// An empty cache.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            known: RwLock::new(HashMap::new()),
        }
    }

    /// Resolve `api_version`/`kind`, asking the API server the first time.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<ResolvedApi, Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(r) = self
            .known
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(r.clone());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .ctx(|| format!("discovering kind {kind} in {api_version} (is its CRD installed?)"))?;
        let r = ResolvedApi {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
        };
        self.known
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, r.clone());
        Ok(r)
    }

    /// Forget a kind (its CRD was removed or changed).
    pub fn forget(&self, api_version: &str, kind: &str) {
        self.known
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(api_version.to_string(), kind.to_string()));
    }
}

impl std::fmt::Debug for ApiCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCache").finish_non_exhaustive()
    }
}
