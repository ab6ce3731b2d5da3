//! The Katalog artifact: how a Katalog, its CRDs and example CRs travel through an OCI registry.
//!
//! The format is the OCI image-spec's artifact form (image-spec 1.1): an image manifest whose
//! config has orkestra's own media type, with one layer per file. Any OCI registry stores it and
//! any OCI client (oras, crane, skopeo) copies it; `deploy/README.md` documents the media types
//! so other tools can produce the same artifact.
//!
//! - config `application/vnd.orkestra.katalog.config.v1+json`: [`Config`] (name, version,
//!   description, the kinds the Katalog defines);
//! - layers, one per file, each annotated with `org.opencontainers.image.title` = the file's
//!   path relative to the Katalog folder (the annotation `oras pull` names files by):
//!   exactly one [`KATALOG_MEDIA_TYPE`], any number of [`CRD_MEDIA_TYPE`] and [`EXAMPLE_MEDIA_TYPE`];
//! - manifest annotations: the `org.opencontainers.image.{title,version,description,source}`
//!   keys. No creation time: the same files give the same digest, so pushing twice is a no-op.
//!
//! [`pack`] reads a folder into a [`Bundle`] (the I/O), [`manifest`] turns a bundle into the
//! bytes to push (pure), [`unpack`] checks a pulled manifest against [`Limits`] before anything
//! is downloaded and builds the bundle back from verified blobs (pure), and [`files`] writes a
//! bundle to a folder (the I/O).

pub mod files;
pub mod manifest;
pub mod pack;
pub mod unpack;

use orkestra_engine::SourceFile;
use serde::{Deserialize, Serialize};

/// Media type of the artifact's config blob ([`Config`]).
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.orkestra.katalog.config.v1+json";
/// Media type of the layer holding the Katalog file.
pub const KATALOG_MEDIA_TYPE: &str = "application/vnd.orkestra.katalog.v1+yaml";
/// Media type of a layer holding CustomResourceDefinitions (the CR schemas lint checks against).
pub const CRD_MEDIA_TYPE: &str = "application/vnd.orkestra.katalog.crd.v1+yaml";
/// Media type of a layer holding example CRs.
pub const EXAMPLE_MEDIA_TYPE: &str = "application/vnd.orkestra.katalog.example.v1+yaml";
/// The OCI image manifest's media type (the artifact is a plain image manifest).
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pre-defined OCI annotation: a layer's file name, the artifact's name.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// Pre-defined OCI annotation: the Katalog's `metadata.version`.
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// Pre-defined OCI annotation: the Katalog's `metadata.description`.
pub const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
/// Pre-defined OCI annotation: where the Katalog's source lives (`push --source`).
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";

/// What a file is to the Katalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The Katalog itself (exactly one per artifact).
    Katalog,
    /// CustomResourceDefinitions.
    Crd,
    /// Example CRs.
    Example,
}

impl Role {
    /// The layer media type of files of this role.
    pub fn media_type(self) -> &'static str {
        match self {
            Role::Katalog => KATALOG_MEDIA_TYPE,
            Role::Crd => CRD_MEDIA_TYPE,
            Role::Example => EXAMPLE_MEDIA_TYPE,
        }
    }

    /// The role of a layer media type, if it is one of ours.
    pub fn of_media_type(media_type: &str) -> Option<Role> {
        [Role::Katalog, Role::Crd, Role::Example]
            .into_iter()
            .find(|r| r.media_type() == media_type)
    }
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Path relative to the Katalog folder, `/`-separated, checked by [`unpack::check_path`].
    pub path: String,
    /// What the file is.
    pub role: Role,
    /// The file's bytes, as read (YAML text).
    pub bytes: Vec<u8>,
}

/// A Katalog with the files that travel with it, sorted by path, exactly one of role Katalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The files, sorted by path.
    pub files: Vec<File>,
}

impl Bundle {
    /// Total size of the files in bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.bytes.len() as u64).sum()
    }

    /// The files as lint reads them, named `PREFIX/PATH` so diagnostics point into the
    /// artifact (`oci://host/repo:tag/katalog.yaml:3:5`) or the folder.
    pub fn sources(&self, prefix: &str) -> Vec<(Role, SourceFile)> {
        self.files
            .iter()
            .map(|f| {
                (
                    f.role,
                    SourceFile::new(
                        format!("{prefix}/{}", f.path),
                        String::from_utf8_lossy(&f.bytes).into_owned(),
                    ),
                )
            })
            .collect()
    }
}

/// The config blob: what a registry UI or `oras manifest fetch-config` shows about the Katalog
/// without downloading its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The Katalog's `metadata.name` (an artifact pushed with an empty config gets it from the
    /// Katalog file on pull).
    #[serde(default)]
    pub name: String,
    /// The Katalog's `metadata.version`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The Katalog's `metadata.description`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The kinds the Katalog's entries define.
    #[serde(default)]
    pub kinds: Vec<KindRef>,
}

/// A kind a Katalog defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindRef {
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

/// Bounds on what a pull accepts (and a push sends), checked before anything is downloaded:
/// the registry is not trusted to keep an artifact small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sum of all file sizes.
    pub max_bytes: u64,
    /// Number of files.
    pub max_files: usize,
}

impl Limits {
    /// The largest manifest or config blob read (a Katalog's are a few hundred bytes).
    pub const MAX_METADATA_BYTES: u64 = 256 * 1024;
}

impl Default for Limits {
    /// 4 MiB and 256 files: a Katalog with its CRDs and examples is a few tens of KiB.
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            max_files: 256,
        }
    }
}

/// Why a bundle or an artifact is not acceptable. Each variant names the file or the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    /// The manifest's config is not ours: an image, a Helm chart, something else.
    #[error("this is not an orkestra Katalog artifact: its config media type is {found:?}, not {CONFIG_MEDIA_TYPE:?} (an image or another tool's artifact?)")]
    NotKatalog {
        /// The config media type found.
        found: String,
    },
    /// A layer of a media type we do not know.
    #[error("layer {title:?} has media type {media_type:?}, which a Katalog artifact does not contain (expected {KATALOG_MEDIA_TYPE}, {CRD_MEDIA_TYPE} or {EXAMPLE_MEDIA_TYPE})")]
    UnknownLayer {
        /// The layer's title annotation (or its digest).
        title: String,
        /// Its media type.
        media_type: String,
    },
    /// A layer without a usable file name.
    #[error("layer {digest} has no {ANNOTATION_TITLE} annotation naming its file")]
    Untitled {
        /// The layer's digest.
        digest: String,
    },
    /// A file name that would write outside the target folder or is not a YAML file.
    #[error("file name {path:?} is refused: {why}")]
    BadPath {
        /// The name.
        path: String,
        /// Why.
        why: &'static str,
    },
    /// Two files with the same name.
    #[error("file {path:?} appears twice")]
    Duplicate {
        /// The name.
        path: String,
    },
    /// No Katalog file, or more than one.
    #[error("{0}")]
    KatalogCount(String),
    /// Over [`Limits::max_bytes`] or [`Limits::MAX_METADATA_BYTES`].
    #[error("{what} is {size} bytes, over the limit of {limit} bytes (raise it with --max-size if this is expected)")]
    TooLarge {
        /// What (the artifact, its manifest, its config).
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Over [`Limits::max_files`].
    #[error("the artifact has {count} files, over the limit of {limit}")]
    TooManyFiles {
        /// Files.
        count: usize,
        /// Limit.
        limit: usize,
    },
    /// A manifest or config that does not parse.
    #[error("the {what} is not valid: {detail}")]
    Malformed {
        /// Manifest or config.
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
}
