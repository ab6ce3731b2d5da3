//! Reading a Katalog file or folder from disk into a [`Bundle`], and the [`Config`] a loaded
//! Katalog gives it.
//!
//! A folder contributes every `.yaml`/`.yml` file under it (recursively, hidden ones left
//! out): the file holding the Katalog, the files of CustomResourceDefinitions, and any other
//! file as example CRs. A file contributes itself only.

use std::path::{Path, PathBuf};

use orkestra_engine::load::is_katalog;
use orkestra_engine::{Katalog, SourceFile};
use serde_json::Value;

use super::unpack::{check_path, katalog_count};
use super::{ArtifactError, Bundle, Config, File, KindRef, Role};

/// Why a folder cannot be read into a bundle.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file name an artifact cannot carry, or no/several Katalogs.
    #[error("{path}: {source}")]
    Artifact {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        source: ArtifactError,
    },
}

/// The role of a file from its YAML documents: the Katalog's file, a CRD file, or an example.
pub fn classify(text: &str) -> Role {
    let (docs, _) = SourceFile::new("", text).documents();
    if docs.iter().any(|d| is_katalog(&d.value)) {
        Role::Katalog
    } else if !docs.is_empty()
        && docs.iter().all(|d| {
            d.value.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
        })
    {
        Role::Crd
    } else {
        Role::Example
    }
}

/// Read `path` (a Katalog file, or a folder with one) into a bundle.
pub fn read(path: &Path) -> Result<Bundle, PackError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| PackError::Io { path: p, source }
    };
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let (root, paths) = if meta.is_dir() {
        (path.to_path_buf(), yaml_files(path)?)
    } else {
        (
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            vec![path.to_path_buf()],
        )
    };
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let bytes = std::fs::read(&p).map_err(io(&p))?;
        let rel = p
            .strip_prefix(&root)
            .unwrap_or(&p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        check_path(&rel).map_err(|source| PackError::Artifact {
            path: p.clone(),
            source,
        })?;
        let role = classify(&String::from_utf8_lossy(&bytes));
        files.push(File {
            path: rel,
            role,
            bytes,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    katalog_count(files.iter().map(|f| (f.role, f.path.as_str()))).map_err(|source| {
        PackError::Artifact {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(Bundle { files })
}

/// Every .yaml/.yml file under `dir` that is not hidden (nor in a hidden folder such as
/// `.git`), in a stable order. `lint FOLDER` reads the same files a push of it carries.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, PackError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| PackError::Io {
            path: d.clone(),
            source,
        })?;
        for e in entries {
            let p = e
                .map_err(|source| PackError::Io {
                    path: d.clone(),
                    source,
                })?
                .path();
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The config blob of a loaded Katalog: its name, `metadata.version` and `.description` from
/// the document, and the kinds its entries define.
pub fn config_of(katalog: &Katalog, document: &Value) -> Config {
    let meta = |key: &str| {
        document
            .pointer(&format!("/metadata/{key}"))
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
    };
    Config {
        name: katalog.name.clone(),
        version: meta("version"),
        description: meta("description"),
        kinds: katalog
            .entries
            .iter()
            .map(|e| KindRef {
                group: e.api.group.clone(),
                version: e.api.version.clone(),
                kind: e.api.kind.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_classified_by_their_documents() {
        assert_eq!(
            classify("apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {name: a}\n"),
            Role::Katalog
        );
        assert_eq!(
            classify("kind: CustomResourceDefinition\n---\nkind: CustomResourceDefinition\n"),
            Role::Crd
        );
        assert_eq!(
            classify("apiVersion: demo.io/v1\nkind: Website\n"),
            Role::Example
        );
        assert_eq!(classify("kind: [broken"), Role::Example);
    }

    #[test]
    fn a_folder_reads_with_relative_names_and_one_katalog() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("katalog.yaml"),
            "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {name: a}\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("examples")).unwrap();
        std::fs::write(dir.path().join("examples/cr.yaml"), "kind: Website\n").unwrap();
        std::fs::write(dir.path().join("README.md"), "not yaml").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "x: 1").unwrap();
        let b = read(dir.path()).unwrap();
        let names: Vec<_> = b.files.iter().map(|f| (f.path.as_str(), f.role)).collect();
        assert_eq!(
            names,
            [
                ("examples/cr.yaml", Role::Example),
                ("katalog.yaml", Role::Katalog)
            ]
        );
        std::fs::write(
            dir.path().join("second.yaml"),
            "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {name: b}\n",
        )
        .unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("2 Katalog files") && e.contains("second.yaml"),
            "{e}"
        );
    }
}
