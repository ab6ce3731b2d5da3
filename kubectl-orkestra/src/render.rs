//! `kubectl orkestra render -f KATALOG --cr CR_FILE [-o yaml|json]`: what the agent would do for
//! each CR, offline, through the same engine call the agent makes.
//!
//! Offline nothing is observed, so a node that reads another node (`.resources.<id>`, `after:`)
//! waits: it is not among the objects or external resources, and each item's `waiting` list
//! names it, what it waits for, where that stands and the value it reads.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use orkestra_engine::cr::{resolve, CrId};
use orkestra_engine::{load_file, render, SourceFile, Waiting};
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
            let entry = match resolve(&katalog, &mut cr, &a.namespace) {
                Ok(entry) => entry,
                Err(e) => {
                    eprintln!("error: {}: {e}", f.name);
                    failed += 1;
                    continue;
                }
            };
            let id = CrId::of(&cr);
            match render(&katalog, entry, &cr, &schemas) {
                Ok(desired) => items.push(json!({
                    "cr": id,
                    "objects": desired.children.iter().map(|c| &c.object).collect::<Vec<_>>(),
                    "external": desired.external.iter().map(|e| json!({
                        "provider": e.provider, "kind": e.kind, "name": e.name, "fields": e.fields,
                    })).collect::<Vec<_>>(),
                    "waiting": desired.waiting.iter().map(waiting_json).collect::<Vec<_>>(),
                })),
                Err(e) => {
                    eprintln!("error: {id}: {e}");
                    failed += 1;
                }
            }
        }
    }
    crate::output::print_data(&json!({"items": items}), a.output == "json")?;
    Ok(if failed > 0 { 1 } else { 0 })
}

/// A waiting node as `render` and `plan` show it: `{node, waitsFor, state, value}`
/// (`deployments[web]`, `aws.rds db`, `not created yet`, `outputs.endpoint`; `value` is empty
/// for an `after:`).
pub fn waiting_json(w: &Waiting) -> Value {
    json!({"node": w.node, "waitsFor": w.on, "state": w.on_state, "value": w.value})
}
