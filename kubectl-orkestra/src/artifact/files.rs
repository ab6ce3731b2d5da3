//! Writing a verified [`Bundle`] to a folder. Nothing is written before every blob has been
//! downloaded and verified; a new folder appears whole (written beside it, then renamed).

use std::path::{Path, PathBuf};

use super::Bundle;

/// Why the files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file would replace one with other content.
    #[error("{path} exists with other content; pass --overwrite to replace it, or pull into another folder with -d")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The OS refused.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Write `bundle` under `dir`. A missing `dir` is created whole; in an existing one, a file that
/// exists with other content is refused (before anything is written) unless `overwrite`.
/// Returns the paths written.
pub fn write(bundle: &Bundle, dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>, WriteError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, source }
    };
    if !dir.exists() {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = tempfile::Builder::new()
            .prefix(".orkestra-pull-")
            .tempdir_in(parent)
            .map_err(io(parent))?;
        write_into(bundle, tmp.path())?;
        let tmp = tmp.keep();
        std::fs::rename(&tmp, dir).map_err(io(dir))?;
        return Ok(bundle.files.iter().map(|f| dir.join(&f.path)).collect());
    }
    if !overwrite {
        for f in &bundle.files {
            let p = dir.join(&f.path);
            if let Ok(existing) = std::fs::read(&p) {
                if existing != f.bytes {
                    return Err(WriteError::Exists { path: p });
                }
            }
        }
    }
    write_into(bundle, dir)?;
    Ok(bundle.files.iter().map(|f| dir.join(&f.path)).collect())
}

fn write_into(bundle: &Bundle, dir: &Path) -> Result<(), WriteError> {
    for f in &bundle.files {
        let p = dir.join(&f.path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|source| WriteError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // Each file replaces the old one whole (write beside it, then rename).
        let tmp = p.with_extension("orkestra-pull.tmp");
        std::fs::write(&tmp, &f.bytes).map_err(|source| WriteError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &p).map_err(|source| WriteError::Io {
            path: p.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{File, Role};

    fn bundle(text: &str) -> Bundle {
        Bundle {
            files: vec![File {
                path: "sub/katalog.yaml".into(),
                role: Role::Katalog,
                bytes: text.as_bytes().to_vec(),
            }],
        }
    }

    #[test]
    fn a_new_folder_is_written_whole_and_other_content_is_not_replaced() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let written = write(&bundle("a"), &dir, false).unwrap();
        assert_eq!(written, [dir.join("sub/katalog.yaml")]);
        assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), "a");
        // Same content again: fine. Other content: refused, file untouched.
        write(&bundle("a"), &dir, false).unwrap();
        let e = write(&bundle("b"), &dir, false).unwrap_err();
        assert!(matches!(e, WriteError::Exists { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), "a");
        write(&bundle("b"), &dir, true).unwrap();
        assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), "b");
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary folders left behind");
    }
}
