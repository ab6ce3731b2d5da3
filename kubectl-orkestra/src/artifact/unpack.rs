//! Checking a pulled artifact before and after its blobs arrive (pure): the manifest is ours,
//! every layer is a known file type with a safe name, the sizes are within [`Limits`], and each
//! blob hashes to its descriptor's digest.

use std::collections::BTreeSet;

use oci_client::manifest::{OciDescriptor, OciImageManifest};

use super::manifest::sha256;
use super::CONFIG_MEDIA_TYPE;
use super::{ArtifactError, Bundle, Config, File, Limits, Role, ANNOTATION_TITLE};

/// A layer to download: where it goes and what it must hash to.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Its descriptor (digest, size).
    pub descriptor: OciDescriptor,
    /// Its file name.
    pub path: String,
    /// What it is.
    pub role: Role,
}

/// The manifest, checked: the config descriptor and the layers to fetch.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The config blob's descriptor.
    pub config: OciDescriptor,
    /// The files, sorted by path.
    pub layers: Vec<Wanted>,
    /// The manifest's annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Whether `path` is a file name a pull may write: relative, no `..`, no empty or hidden
/// components, `/`-separated, a `.yaml`/`.yml` file, at most 255 bytes.
pub fn check_path(path: &str) -> Result<(), ArtifactError> {
    let bad = |why| {
        Err(ArtifactError::BadPath {
            path: path.to_string(),
            why,
        })
    };
    if path.is_empty() || path.len() > 255 {
        return bad("it must be 1 to 255 bytes");
    }
    if path.starts_with('/') || path.contains('\\') || path.contains(':') {
        return bad("it must be a relative path with / between folders");
    }
    if path.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.starts_with('.') {
            return bad("its folders and name must not be empty, `.`, `..` or start with a dot");
        }
    }
    if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
        return bad("a Katalog artifact holds .yaml and .yml files only");
    }
    Ok(())
}

/// Check a manifest's bytes against `limits` before any blob is downloaded.
pub fn check(manifest: &[u8], limits: &Limits) -> Result<Checked, ArtifactError> {
    if manifest.len() as u64 > Limits::MAX_METADATA_BYTES {
        return Err(ArtifactError::TooLarge {
            what: "the manifest".into(),
            size: manifest.len() as u64,
            limit: Limits::MAX_METADATA_BYTES,
        });
    }
    let m: OciImageManifest =
        serde_json::from_slice(manifest).map_err(|e| ArtifactError::Malformed {
            what: "manifest",
            detail: e.to_string(),
        })?;
    if m.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(ArtifactError::NotKatalog {
            found: m.config.media_type,
        });
    }
    if m.config.size < 0 || m.config.size as u64 > Limits::MAX_METADATA_BYTES {
        return Err(ArtifactError::TooLarge {
            what: "the config blob".into(),
            size: m.config.size.max(0) as u64,
            limit: Limits::MAX_METADATA_BYTES,
        });
    }
    if m.layers.len() > limits.max_files {
        return Err(ArtifactError::TooManyFiles {
            count: m.layers.len(),
            limit: limits.max_files,
        });
    }
    let mut total: u64 = 0;
    let mut seen = BTreeSet::new();
    let mut layers = Vec::with_capacity(m.layers.len());
    for d in &m.layers {
        let title = d
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_TITLE))
            .cloned();
        let Some(role) = Role::of_media_type(&d.media_type) else {
            return Err(ArtifactError::UnknownLayer {
                title: title.unwrap_or_else(|| d.digest.clone()),
                media_type: d.media_type.clone(),
            });
        };
        let Some(path) = title else {
            return Err(ArtifactError::Untitled {
                digest: d.digest.clone(),
            });
        };
        check_path(&path)?;
        if !seen.insert(path.clone()) {
            return Err(ArtifactError::Duplicate { path });
        }
        total = total.saturating_add(d.size.max(0) as u64);
        if d.size < 0 || total > limits.max_bytes {
            return Err(ArtifactError::TooLarge {
                what: "the artifact".into(),
                size: m.layers.iter().map(|l| l.size.max(0) as u64).sum(),
                limit: limits.max_bytes,
            });
        }
        layers.push(Wanted {
            descriptor: d.clone(),
            path,
            role,
        });
    }
    katalog_count(layers.iter().map(|l| (l.role, l.path.as_str())))?;
    layers.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Checked {
        config: m.config,
        layers,
        annotations: m.annotations.unwrap_or_default(),
    })
}

/// Exactly one file of role Katalog.
pub fn katalog_count<'a>(
    files: impl Iterator<Item = (Role, &'a str)>,
) -> Result<(), ArtifactError> {
    let katalogs: Vec<&str> = files
        .filter(|(r, _)| *r == Role::Katalog)
        .map(|(_, p)| p)
        .collect();
    match katalogs.len() {
        1 => Ok(()),
        0 => Err(ArtifactError::KatalogCount(
            "the artifact holds no Katalog file".into(),
        )),
        _ => Err(ArtifactError::KatalogCount(format!(
            "the artifact holds {} Katalog files ({}); one artifact carries one Katalog",
            katalogs.len(),
            katalogs.join(", ")
        ))),
    }
}

/// A downloaded blob's digest does not match its descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} does not match its digest: expected {expected}, got {actual} (the registry served other bytes than the manifest names; the artifact was tampered with or corrupted)")]
pub struct DigestMismatch {
    /// The file or blob.
    pub what: String,
    /// The descriptor's digest.
    pub expected: String,
    /// The digest of the bytes received.
    pub actual: String,
}

/// Check a downloaded blob against its descriptor (size and digest).
pub fn verify(what: &str, descriptor: &OciDescriptor, data: &[u8]) -> Result<(), DigestMismatch> {
    let actual = sha256(data);
    if actual != descriptor.digest || data.len() as i64 != descriptor.size {
        return Err(DigestMismatch {
            what: what.to_string(),
            expected: descriptor.digest.clone(),
            actual,
        });
    }
    Ok(())
}

/// The config blob, verified and parsed. An empty blob (`oras push --config /dev/null:…`)
/// is an empty config.
pub fn config(checked: &Checked, data: &[u8]) -> Result<Config, ArtifactError> {
    let data = if data.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        data
    };
    serde_json::from_slice(data).map_err(|e| ArtifactError::Malformed {
        what: "config",
        detail: format!("{e} (media type {})", checked.config.media_type),
    })
}

/// The Katalog's `metadata.name` as its file says.
pub fn katalog_name(bundle: &Bundle) -> Option<String> {
    let file = bundle.files.iter().find(|f| f.role == Role::Katalog)?;
    let (docs, _) =
        orkestra_engine::SourceFile::new("", String::from_utf8_lossy(&file.bytes)).documents();
    docs.iter()
        .find(|d| orkestra_engine::load::is_katalog(&d.value))?
        .value
        .pointer("/metadata/name")?
        .as_str()
        .map(str::to_string)
}

/// The bundle from the checked layers and their verified bytes (in the same order).
pub fn bundle(checked: &Checked, blobs: Vec<Vec<u8>>) -> Bundle {
    Bundle {
        files: checked
            .layers
            .iter()
            .zip(blobs)
            .map(|(w, bytes)| File {
                path: w.path.clone(),
                role: w.role,
                bytes,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::manifest::pack;
    use crate::artifact::{CRD_MEDIA_TYPE, KATALOG_MEDIA_TYPE};
    use serde_json::json;

    fn manifest(layers: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256(b"{}"), "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    fn layer(media_type: &str, title: &str, size: i64) -> serde_json::Value {
        json!({"mediaType": media_type, "digest": sha256(title.as_bytes()), "size": size,
               "annotations": {ANNOTATION_TITLE: title}})
    }

    #[test]
    fn what_pack_writes_unpack_accepts() {
        let b = Bundle {
            files: vec![File {
                path: "katalog.yaml".into(),
                role: Role::Katalog,
                bytes: b"kind: Katalog".to_vec(),
            }],
        };
        let c = Config {
            name: "w".into(),
            version: None,
            description: None,
            kinds: vec![],
        };
        let p = pack(&b, &c, None);
        let checked = check(&p.manifest, &Limits::default()).unwrap();
        assert_eq!(checked.layers.len(), 1);
        verify(
            "katalog.yaml",
            &checked.layers[0].descriptor,
            &b.files[0].bytes,
        )
        .unwrap();
        assert_eq!(bundle(&checked, vec![b.files[0].bytes.clone()]), b);
        assert_eq!(config(&checked, &p.config.data).unwrap(), c);
    }

    #[test]
    fn file_names_that_escape_the_folder_are_refused() {
        for bad in [
            "../x.yaml",
            "/etc/x.yaml",
            "a/../../x.yaml",
            "a//x.yaml",
            ".hidden.yaml",
            "a/./x.yaml",
            "c:\\x.yaml",
            "x.sh",
            "",
            "a\nb.yaml",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["katalog.yaml", "crds/website.yml", "examples/cr-1.yaml"] {
            check_path(good).unwrap();
        }
        let m = manifest(json!([layer(
            KATALOG_MEDIA_TYPE,
            "../../etc/cron.d/x.yaml",
            3
        )]));
        assert!(matches!(
            check(&m, &Limits::default()),
            Err(ArtifactError::BadPath { .. })
        ));
    }

    #[test]
    fn sizes_over_the_limit_are_refused_before_download() {
        let m = manifest(json!([
            layer(KATALOG_MEDIA_TYPE, "katalog.yaml", 10),
            layer(CRD_MEDIA_TYPE, "crd.yaml", 5 * 1024 * 1024)
        ]));
        let err = check(&m, &Limits::default()).unwrap_err();
        assert!(matches!(err, ArtifactError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("--max-size"));
        let negative = manifest(json!([layer(KATALOG_MEDIA_TYPE, "katalog.yaml", -1)]));
        assert!(check(&negative, &Limits::default()).is_err());
        let many: Vec<_> = (0..300)
            .map(|i| layer(CRD_MEDIA_TYPE, &format!("c{i}.yaml"), 1))
            .collect();
        assert!(matches!(
            check(&manifest(json!(many)), &Limits::default()),
            Err(ArtifactError::TooManyFiles { .. })
        ));
    }

    #[test]
    fn foreign_artifacts_and_layers_are_named() {
        let image = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(b""), "size": 0},
            "layers": []
        }))
        .unwrap();
        let e = check(&image, &Limits::default()).unwrap_err();
        assert!(
            e.to_string().contains("not an orkestra Katalog artifact"),
            "{e}"
        );
        let m = manifest(json!([
            layer(KATALOG_MEDIA_TYPE, "katalog.yaml", 1),
            layer(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "rootfs.yaml",
                1
            )
        ]));
        let e = check(&m, &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("rootfs.yaml"), "{e}");
        let none = manifest(json!([layer(CRD_MEDIA_TYPE, "crd.yaml", 1)]));
        assert!(matches!(
            check(&none, &Limits::default()),
            Err(ArtifactError::KatalogCount(_))
        ));
        let dup = manifest(json!([
            layer(KATALOG_MEDIA_TYPE, "katalog.yaml", 1),
            layer(CRD_MEDIA_TYPE, "katalog.yaml", 1)
        ]));
        assert!(matches!(
            check(&dup, &Limits::default()),
            Err(ArtifactError::Duplicate { .. })
        ));
        assert!(matches!(
            check(b"{not json", &Limits::default()),
            Err(ArtifactError::Malformed { .. })
        ));
    }

    #[test]
    fn a_changed_byte_is_a_digest_mismatch() {
        let d = OciDescriptor {
            digest: sha256(b"abc"),
            size: 3,
            ..Default::default()
        };
        verify("x", &d, b"abc").unwrap();
        let e = verify("katalog.yaml", &d, b"abd").unwrap_err();
        assert_eq!(e.expected, sha256(b"abc"));
        assert!(e.to_string().contains("katalog.yaml"));
    }
}
