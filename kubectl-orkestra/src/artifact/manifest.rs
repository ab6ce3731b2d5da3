//! A [`Bundle`] as the blobs and manifest a registry stores: pure, so the digest a push prints
//! is computed from exactly the bytes it sends.

use std::collections::BTreeMap;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use sha2::{Digest as _, Sha256};

use super::{Bundle, Config, ANNOTATION_DESCRIPTION, ANNOTATION_SOURCE, ANNOTATION_TITLE};
use super::{ANNOTATION_VERSION, CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

/// A blob with its descriptor.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Media type, digest, size, annotations.
    pub descriptor: OciDescriptor,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Everything a push sends.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The config blob.
    pub config: Blob,
    /// One blob per file, in the bundle's order.
    pub layers: Vec<Blob>,
    /// The manifest as sent.
    pub manifest: Vec<u8>,
    /// `sha256:…` of [`Packed::manifest`].
    pub digest: String,
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn blob(media_type: &str, data: Vec<u8>, annotations: Option<BTreeMap<String, String>>) -> Blob {
    Blob {
        descriptor: OciDescriptor {
            media_type: media_type.to_string(),
            digest: sha256(&data),
            size: data.len() as i64,
            annotations,
            ..Default::default()
        },
        data,
    }
}

/// The artifact for `bundle`: its config, a layer per file titled with its path, and a
/// manifest annotated with the Katalog's name, version, description and `source`.
pub fn pack(bundle: &Bundle, config: &Config, source: Option<&str>) -> Packed {
    let config_blob = blob(
        CONFIG_MEDIA_TYPE,
        serde_json::to_vec(config).unwrap_or_default(),
        None,
    );
    let layers: Vec<Blob> = bundle
        .files
        .iter()
        .map(|f| {
            blob(
                f.role.media_type(),
                f.bytes.clone(),
                Some(BTreeMap::from([(
                    ANNOTATION_TITLE.to_string(),
                    f.path.clone(),
                )])),
            )
        })
        .collect();
    let mut annotations = BTreeMap::from([(ANNOTATION_TITLE.to_string(), config.name.clone())]);
    for (key, value) in [
        (ANNOTATION_VERSION, config.version.as_deref()),
        (ANNOTATION_DESCRIPTION, config.description.as_deref()),
        (ANNOTATION_SOURCE, source),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            annotations.insert(key.to_string(), v.to_string());
        }
    }
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        config: config_blob.descriptor.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        subject: None,
        artifact_type: None,
        annotations: Some(annotations),
    };
    // Struct field order and BTreeMaps: the same bundle always serializes to the same bytes.
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    Packed {
        digest: sha256(&manifest),
        config: config_blob,
        layers,
        manifest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{File, Role};

    fn bundle() -> Bundle {
        Bundle {
            files: vec![
                File {
                    path: "crd.yaml".into(),
                    role: Role::Crd,
                    bytes: b"kind: CustomResourceDefinition\n".to_vec(),
                },
                File {
                    path: "katalog.yaml".into(),
                    role: Role::Katalog,
                    bytes: b"kind: Katalog\n".to_vec(),
                },
            ],
        }
    }

    fn config() -> Config {
        Config {
            name: "website".into(),
            version: Some("1.2.0".into()),
            description: None,
            kinds: vec![],
        }
    }

    #[test]
    fn the_same_files_give_the_same_digest_and_a_changed_byte_another() {
        let a = pack(&bundle(), &config(), None);
        let b = pack(&bundle(), &config(), None);
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.manifest, b.manifest);
        let mut changed = bundle();
        changed.files[1].bytes.push(b' ');
        assert_ne!(pack(&changed, &config(), None).digest, a.digest);
    }

    #[test]
    fn layers_carry_their_media_type_title_and_digest() {
        let p = pack(&bundle(), &config(), Some("https://git.example/k"));
        let m: serde_json::Value = serde_json::from_slice(&p.manifest).unwrap();
        assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(m["layers"][1]["mediaType"], Role::Katalog.media_type());
        assert_eq!(
            m["layers"][1]["annotations"][ANNOTATION_TITLE],
            "katalog.yaml"
        );
        assert_eq!(
            m["layers"][1]["digest"],
            sha256(b"kind: Katalog\n").as_str()
        );
        assert_eq!(m["annotations"][ANNOTATION_VERSION], "1.2.0");
        assert_eq!(m["annotations"][ANNOTATION_SOURCE], "https://git.example/k");
        assert!(m["annotations"].get(ANNOTATION_DESCRIPTION).is_none());
        assert_eq!(p.digest, sha256(&p.manifest));
    }

    #[test]
    fn sha256_is_the_known_value() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
