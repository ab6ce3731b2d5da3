//! Which kinds orkestra manages in a cluster (the entries of the installed Katalogs), and
//! resolving what a user types (`website`, `websites`, `Website.demo.orkestra.io`, a short name)
//! to one of them, checked against discovery so a missing CRD is named.

use anyhow::{anyhow, bail};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope as DiscoveredScope};
use orkestra_engine::katalog::ApiTypes;
use orkestra_engine::{load_file, Katalog, SourceFile};

use crate::katalog_object as ko;
use crate::kube_client::{explain, is_not_found, Kube};

/// A kind orkestra manages, with the Katalog that declares it.
#[derive(Debug, Clone)]
pub struct ManagedKind {
    /// The entry's apiTypes.
    pub api: ApiTypes,
    /// The Katalog's name.
    pub katalog: String,
    /// The registry artifact the Katalog object was applied from, if any.
    pub origin: Option<ko::Origin>,
}

impl ManagedKind {
    /// Whether `word` names this kind (kind, plural, singular, short name, optionally `.group`).
    pub fn matches(&self, word: &str) -> bool {
        let w = word.to_ascii_lowercase();
        let (base, group) = match w.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (w.clone(), None),
        };
        if group.is_some_and(|g| g != self.api.group.to_ascii_lowercase()) {
            return false;
        }
        base == self.api.kind.to_ascii_lowercase()
            || base == self.api.plural.to_ascii_lowercase()
            || base == self.api.singular.to_ascii_lowercase()
            || self
                .api
                .short_names
                .iter()
                .any(|s| s.to_ascii_lowercase() == base)
    }
}

/// Kinds declared by a Katalog model.
pub fn of_katalog(k: &Katalog) -> Vec<ManagedKind> {
    k.entries
        .iter()
        .map(|e| ManagedKind {
            api: e.api.clone(),
            katalog: k.name.clone(),
            origin: None,
        })
        .collect()
}

/// Every kind declared by the Katalogs installed in the cluster.
pub async fn installed(kube: &Kube) -> anyhow::Result<Vec<ManagedKind>> {
    let api: Api<DynamicObject> = Api::all_with(kube.client.clone(), &ko::api_resource());
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l,
        Err(e) if is_not_found(&e) => bail!(
            "orkestra is not installed in the cluster at {} (no Katalog CRD); run kubectl orkestra install",
            kube.server
        ),
        Err(e) => return Err(explain(e, "list katalogs", &kube.server)),
    };
    let schemas = crate::registry::schemas();
    let mut out = Vec::new();
    for obj in list.items {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let origin = serde_json::to_value(&obj)
            .ok()
            .and_then(|v| ko::origin_of(&v));
        let text = serde_yaml_ng::to_string(&obj).map_err(|e| anyhow!("katalog {name}: {e}"))?;
        let loaded = load_file(&SourceFile::new(format!("katalog/{name}"), text), &schemas);
        match loaded.katalog {
            Some(k) => out.extend(of_katalog(&k).into_iter().map(|m| ManagedKind {
                origin: origin.clone(),
                ..m
            })),
            None => eprintln!(
                "warning: katalog {name} in the cluster does not load; its kinds are skipped"
            ),
        }
    }
    Ok(out)
}

/// The kind `word` names among `kinds`, or an error listing what is known.
pub fn resolve<'a>(kinds: &'a [ManagedKind], word: &str) -> anyhow::Result<&'a ManagedKind> {
    let found: Vec<&ManagedKind> = kinds.iter().filter(|k| k.matches(word)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => {
            let known: Vec<String> = kinds
                .iter()
                .map(|k| k.api.kind.to_ascii_lowercase())
                .collect();
            if known.is_empty() {
                bail!("{word:?} is not a kind orkestra manages here: no Katalog is installed (kubectl orkestra apply -f KATALOG)")
            }
            bail!(
                "{word:?} is not a kind orkestra manages here (known: {})",
                known.join(", ")
            )
        }
        many => bail!(
            "{word:?} is ambiguous: {}; qualify it with the group (KIND.GROUP)",
            many.iter()
                .map(|k| format!("{}.{}", k.api.kind, k.api.group))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Confirm through discovery that the kind's CRD is installed and served; returns the server's
/// resource and whether it is namespaced.
pub async fn served(kube: &Kube, kind: &ManagedKind) -> anyhow::Result<(ApiResource, bool)> {
    let gvk = GroupVersionKind::gvk(&kind.api.group, &kind.api.version, &kind.api.kind);
    match kube::discovery::pinned_kind(&kube.client, &gvk).await {
        Ok((ar, caps)) => Ok((ar, caps.scope == DiscoveredScope::Namespaced)),
        Err(kube::Error::Api(s)) if s.code == 404 => bail!(
            "the CRD {} is not installed (Katalog {} declares it); run kubectl orkestra apply -f KATALOG",
            kind.api.crd_name(),
            kind.katalog
        ),
        Err(kube::Error::Discovery(_)) => bail!(
            "the CRD {} does not serve {} {}; run kubectl orkestra apply -f KATALOG",
            kind.api.crd_name(),
            kind.api.api_version(),
            kind.api.kind
        ),
        Err(e) => Err(explain(e, &format!("discover {}", kind.api.crd_name()), &kube.server)),
    }
}
