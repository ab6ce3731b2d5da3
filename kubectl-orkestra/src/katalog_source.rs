//! Where a Katalog comes from for `apply` and `plan`: a file, or an `oci://` reference pulled
//! into memory, verified and linted with the artifact's CRDs beside it. What the cluster runs
//! is recorded on the Katalog object ([`ko::Origin`]) and read back here.

use std::path::Path;

use kube::api::{Api, DynamicObject};

use crate::katalog_file::{lint_bundle, read_linted, Linted};
use crate::katalog_object::{self as ko, Origin};
use crate::kube_client::{explain, Kube};
use crate::oci::transfer::Session;
use crate::oci::{is_oci, OciRef, RegistryArgs};

/// A linted Katalog and, when it came from a registry, the reference and digest.
pub struct Sourced {
    /// The Katalog.
    pub linted: Linted,
    /// Set for `oci://` sources.
    pub origin: Option<Origin>,
}

/// Read the Katalog `arg` names: a path, or `oci://…` fetched with `registry`'s flags.
pub async fn read(arg: &str, registry: &RegistryArgs) -> anyhow::Result<Sourced> {
    if !is_oci(arg) {
        return Ok(Sourced {
            linted: read_linted(Path::new(arg))?,
            origin: None,
        });
    }
    let reference = OciRef::parse(arg).map_err(anyhow::Error::msg)?;
    let session = Session::open(&reference, registry)?;
    let fetched = session.fetch(&registry.limits()).await?;
    eprintln!(
        "pulled {} ({} files, {} bytes)",
        reference.pinned(&fetched.digest),
        fetched.bundle.files.len(),
        fetched.bundle.size()
    );
    let linted = lint_bundle(&fetched.bundle, &reference.to_string())?;
    Ok(Sourced {
        linted,
        origin: Some(Origin {
            source: reference.to_string(),
            digest: fetched.digest,
        }),
    })
}

/// The origin recorded on the cluster's Katalog object `name` (`None` when it does not exist or
/// was applied from a file).
pub async fn cluster_origin(kube: &Kube, name: &str) -> anyhow::Result<Option<Origin>> {
    let api: Api<DynamicObject> = Api::all_with(kube.client.clone(), &ko::api_resource());
    let obj = api
        .get_opt(name)
        .await
        .map_err(|e| explain(e, &format!("get katalog {name}"), &kube.server))?;
    Ok(obj
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| ko::origin_of(&v)))
}

/// `--verify-digest[=DIGEST]`: the digest `origin` resolved to must be `expected`, or, without
/// a value, the one the cluster recorded for the same reference. Refuses a tag that moved.
pub fn verify_digest(
    origin: &Origin,
    expected: Option<&str>,
    recorded: Option<&Origin>,
) -> anyhow::Result<()> {
    let (want, why) = match (expected.filter(|e| !e.is_empty()), recorded) {
        (Some(e), _) => (e.to_string(), "--verify-digest".to_string()),
        (None, Some(r)) if r.source == origin.source => (
            r.digest.clone(),
            format!("the cluster runs {} from it", r.digest),
        ),
        (None, Some(r)) => anyhow::bail!(
            "--verify-digest: the cluster's Katalog was applied from {}, not {}; pass the digest to expect (--verify-digest=sha256:…)",
            r.source,
            origin.source
        ),
        (None, None) => anyhow::bail!(
            "--verify-digest: the cluster has no digest recorded for {} (not applied from a registry yet); pass the digest to expect (--verify-digest=sha256:…)",
            origin.source
        ),
    };
    if want != origin.digest {
        anyhow::bail!(
            "{} now resolves to {}, but {why}: the tag moved; nothing was applied (apply {}@{want} to keep the old version, or drop --verify-digest to move)",
            origin.source,
            origin.digest,
            origin.source.split('@').next().unwrap_or_default(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(source: &str, digest: &str) -> Origin {
        Origin {
            source: source.into(),
            digest: digest.into(),
        }
    }

    #[test]
    fn a_moved_tag_is_refused_and_an_unmoved_one_passes() {
        let now = o("oci://r/k:1", "sha256:b");
        verify_digest(&now, None, Some(&o("oci://r/k:1", "sha256:b"))).unwrap();
        let e = verify_digest(&now, None, Some(&o("oci://r/k:1", "sha256:a")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the tag moved") && e.contains("oci://r/k:1@sha256:a"),
            "{e}"
        );
        verify_digest(&now, Some("sha256:b"), None).unwrap();
        assert!(verify_digest(&now, Some("sha256:c"), None).is_err());
        assert!(verify_digest(&now, None, None).is_err());
        assert!(verify_digest(&now, None, Some(&o("oci://r/other:1", "sha256:b"))).is_err());
    }
}
