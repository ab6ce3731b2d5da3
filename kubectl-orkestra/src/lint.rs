//! `kubectl orkestra lint PATH… [-o text|json] [--crd FILE…]`: offline checks, compiler-style.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use orkestra_engine::lint::{lint, Input};
use orkestra_engine::{Severity, SourceFile};

use crate::output::{color_stdout, paint};

/// Arguments of `lint`.
#[derive(clap::Args)]
pub struct Args {
    /// Katalog files or folders (searched recursively for .yaml/.yml files).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
    /// CRD files whose schemas the templates' paths are checked against.
    #[arg(long = "crd", value_name = "FILE")]
    crds: Vec<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let mut inputs = Vec::new();
    for p in &a.paths {
        if p.is_dir() {
            for f in crate::artifact::pack::yaml_files(p)? {
                inputs.push(Input {
                    file: read(&f)?,
                    explicit: false,
                });
            }
        } else {
            inputs.push(Input {
                file: read(p)?,
                explicit: true,
            });
        }
    }
    let crds = a
        .crds
        .iter()
        .map(|p| read(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = lint(&inputs, &crds, &crate::registry::schemas());
    if a.output == "json" {
        let out = serde_json::json!({
            "diagnostics": report.diagnostics,
            "errors": report.errors(),
            "warnings": report.warnings(),
        });
        crate::output::print_data(&out, true)?;
    } else {
        let files: HashMap<&str, &SourceFile> = inputs
            .iter()
            .map(|i| (i.file.name.as_str(), &i.file))
            .chain(crds.iter().map(|c| (c.name.as_str(), c)))
            .collect();
        let color = color_stdout();
        for d in &report.diagnostics {
            let text = d.render(files.get(d.file.as_str()).copied());
            let (word, code) = match d.severity {
                Severity::Error => ("error", "1;31"),
                Severity::Warning => ("warning", "1;33"),
            };
            let text = text.replacen(
                &format!(" {word}["),
                &format!(" {}[", paint(word, code, color)),
                1,
            );
            crate::output::out(&format!("{text}\n"))?;
        }
        eprintln!(
            "{} error(s), {} warning(s) in {} Katalog(s)",
            report.errors(),
            report.warnings(),
            report.katalogs
        );
    }
    Ok(if report.errors() > 0 { 1 } else { 0 })
}

fn read(p: &Path) -> anyhow::Result<SourceFile> {
    SourceFile::read(p).with_context(|| format!("cannot read {}", p.display()))
}
