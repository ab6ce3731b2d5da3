//! Reading a Katalog for the verbs that act on the cluster or publish it: lint first, refuse on
//! errors. The Katalog comes from a file, or from a bundle of files (a folder about to be
//! pushed, an artifact just pulled) whose CRDs supply the schemas lint checks against.

use std::path::Path;

use anyhow::{bail, Context as _};
use orkestra_engine::lint::{lint, Input};
use orkestra_engine::load::{is_katalog, load_document};
use orkestra_engine::{Katalog, SourceFile};
use serde_json::Value;

use crate::artifact::{Bundle, Role};

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
    lint_files(&file, &[])
}

/// Lint the Katalog file of `bundle` with the bundle's other files beside it (its CRDs give
/// the schemas), files named `PREFIX/PATH`.
pub fn lint_bundle(bundle: &Bundle, prefix: &str) -> anyhow::Result<Linted> {
    let sources = bundle.sources(prefix);
    let Some((_, katalog)) = sources.iter().find(|(r, _)| *r == Role::Katalog) else {
        bail!("{prefix}: no Katalog file");
    };
    let others: Vec<SourceFile> = sources
        .iter()
        .filter(|(r, _)| *r != Role::Katalog)
        .map(|(_, f)| f.clone())
        .collect();
    lint_files(katalog, &others)
}

fn lint_files(file: &SourceFile, others: &[SourceFile]) -> anyhow::Result<Linted> {
    let schemas = crate::registry::schemas();
    let inputs: Vec<Input> = std::iter::once(Input {
        file: file.clone(),
        explicit: true,
    })
    .chain(others.iter().map(|f| Input {
        file: f.clone(),
        explicit: false,
    }))
    .collect();
    let report = lint(&inputs, &[], &schemas);
    for d in &report.diagnostics {
        let source = inputs.iter().map(|i| &i.file).find(|f| f.name == d.file);
        eprintln!("{}", d.render(source).trim_end());
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
    let loaded = load_document(file, doc, &schemas);
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
