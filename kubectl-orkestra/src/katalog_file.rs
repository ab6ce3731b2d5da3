//! Reading a Katalog file for the verbs that act on the cluster: lint first, refuse on errors.

use std::path::Path;

use anyhow::{bail, Context as _};
use orkestra_engine::lint::{lint, Input};
use orkestra_engine::load::{is_katalog, load_document};
use orkestra_engine::{Katalog, SourceFile};
use serde_json::Value;

/// A Katalog that passed lint, with the document it was loaded from.
pub struct Linted {
    /// The model.
    pub katalog: Katalog,
    /// The YAML document, as JSON.
    pub document: Value,
}

/// Read `path`, lint it (printing every finding to stderr) and load its first Katalog.
/// A file with lint errors is refused with a one-line summary after the diagnostics.
pub fn read_linted(path: &Path) -> anyhow::Result<Linted> {
    let file = SourceFile::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let schemas = crate::registry::schemas();
    let report = lint(
        &[Input {
            file: file.clone(),
            explicit: true,
        }],
        &[],
        &schemas,
    );
    for d in &report.diagnostics {
        eprintln!("{}", d.render(Some(&file)).trim_end());
    }
    if report.errors() > 0 {
        bail!(
            "{} fails lint with {} error(s); fix them (kubectl orkestra lint {}) and try again",
            file.name,
            report.errors(),
            file.name
        );
    }
    let (docs, _) = file.documents();
    let Some(doc) = docs.iter().find(|d| is_katalog(&d.value)) else {
        bail!("{}: no document of kind Katalog in this file", file.name);
    };
    let loaded = load_document(&file, doc, &schemas);
    let Some(katalog) = loaded.katalog else {
        bail!(
            "{} does not load; run `kubectl orkestra lint {}`",
            file.name,
            file.name
        );
    };
    Ok(Linted {
        document: doc.value.clone(),
        katalog,
    })
}
