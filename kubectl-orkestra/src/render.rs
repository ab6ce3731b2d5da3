//! `kubectl orkestra render -f KATALOG --cr CR_FILE [-o yaml|json]`: what the agent would do for
//! each CR, offline, through the same engine call the agent makes.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use orkestra_engine::{load_file, render, SourceFile};
use serde_json::{json, Value};

/// Arguments of `render`.
#[derive(clap::Args)]
pub struct Args {
    /// The Katalog file.
    #[arg(short = 'f', long = "filename", value_name = "KATALOG")]
    katalog: PathBuf,
    /// CR files (several documents per file are fine).
    #[arg(long = "cr", value_name = "CR_FILE", required = true)]
    crs: Vec<PathBuf>,
    /// Namespace for CRs that do not name one.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Output format.
    #[arg(short = 'o', long, value_parser = ["yaml", "json"], default_value = "yaml")]
    output: String,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let schemas = crate::registry::schemas();
    let kfile = SourceFile::read(&a.katalog)
        .with_context(|| format!("cannot read {}", a.katalog.display()))?;
    let loaded = load_file(&kfile, &schemas);
    let Some(katalog) = loaded.katalog else {
        for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            eprint!("{}", d.render(Some(&kfile)));
        }
        bail!(
            "{} does not load; run `kubectl orkestra lint {}` for every finding",
            kfile.name,
            kfile.name
        );
    };
    let mut items = Vec::new();
    let mut failed = 0;
    for path in &a.crs {
        let f =
            SourceFile::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (docs, diags) = f.documents();
        for d in &diags {
            eprint!("{}", d.render(Some(&f)));
            failed += 1;
        }
        for doc in docs {
            let mut cr = doc.value;
            let kind = cr
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let api_version = cr
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let name = cr
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(entry) = katalog.entry_for(&api_version, &kind) else {
                let handled: Vec<String> = katalog
                    .entries
                    .iter()
                    .map(|e| format!("{}/{}", e.api.api_version(), e.api.kind))
                    .collect();
                eprintln!(
                    "error: {}: {api_version} {kind} {name:?} is not handled by Katalog {} (it handles {})",
                    f.name,
                    katalog.name,
                    handled.join(", ")
                );
                failed += 1;
                continue;
            };
            if name.is_empty() {
                eprintln!("error: {}: the {kind} has no metadata.name", f.name);
                failed += 1;
                continue;
            }
            if entry.api.scope == orkestra_engine::katalog::Scope::Namespaced
                && cr.pointer("/metadata/namespace").is_none()
            {
                cr["metadata"]["namespace"] = a.namespace.clone().into();
            }
            let namespace = cr
                .pointer("/metadata/namespace")
                .cloned()
                .unwrap_or(Value::Null);
            match render(&katalog, entry, &cr, &schemas) {
                Ok(desired) => items.push(json!({
                    "cr": {"kind": kind, "namespace": namespace, "name": name},
                    "objects": desired.children.iter().map(|c| &c.object).collect::<Vec<_>>(),
                    "external": desired.external.iter().map(|e| json!({
                        "provider": e.provider, "kind": e.kind, "name": e.name, "fields": e.fields,
                    })).collect::<Vec<_>>(),
                })),
                Err(e) => {
                    eprintln!(
                        "error: {kind} {}/{name}: {e}",
                        namespace.as_str().unwrap_or("-")
                    );
                    failed += 1;
                }
            }
        }
    }
    crate::output::print_data(&json!({"items": items}), a.output == "json")?;
    Ok(if failed > 0 { 1 } else { 0 })
}
