//! `kubectl orkestra push PATH oci://HOST/REPO:TAG`: lint the Katalog (with the CRDs beside it),
//! pack it as a Katalog artifact ([`crate::artifact`]) and push it; prints the reference pinned
//! to its digest. Nothing is pushed when lint finds an error.

use std::path::PathBuf;

use anyhow::bail;
use serde_json::json;

use crate::artifact::{manifest, pack};
use crate::katalog_file::lint_bundle;
use crate::kube_client::runtime;
use crate::oci::transfer::Session;
use crate::oci::{OciRef, RegistryArgs};
use crate::output::{out, print_data};

/// Arguments of `push`.
#[derive(clap::Args)]
pub struct Args {
    /// A Katalog file, or a folder with one Katalog, its CRDs and example CRs.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Where to push: oci://HOST/REPOSITORY:TAG.
    #[arg(value_name = "oci://HOST/REPO:TAG")]
    reference: String,
    /// Recorded as the artifact's org.opencontainers.image.source (e.g. the git repository).
    #[arg(long, value_name = "URL")]
    source: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    runtime()?.block_on(run_async(a))
}

async fn run_async(a: Args) -> anyhow::Result<i32> {
    let reference = OciRef::parse(&a.reference).map_err(anyhow::Error::msg)?;
    if reference.digest.is_some() {
        bail!(
            "{reference}: push to a tag (oci://HOST/REPO:TAG); the digest is what the push prints"
        );
    }
    let bundle = pack::read(&a.path)?;
    let limits = a.registry.limits();
    if bundle.size() > limits.max_bytes || bundle.files.len() > limits.max_files {
        bail!(
            "{}: {} files, {} bytes: over the limit of {} files and {} bytes (--max-size); nothing was pushed",
            a.path.display(),
            bundle.files.len(),
            bundle.size(),
            limits.max_files,
            limits.max_bytes
        );
    }
    let prefix = a.path.display().to_string();
    let prefix = if a.path.is_dir() {
        prefix.trim_end_matches('/').to_string()
    } else {
        a.path
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into())
    };
    let linted =
        lint_bundle(&bundle, &prefix).map_err(|e| anyhow::anyhow!("{e:#}; nothing was pushed"))?;
    let config = pack::config_of(&linted.katalog, &linted.document);
    let packed = manifest::pack(&bundle, &config, a.source.as_deref());
    let session = Session::open(&reference, &a.registry)?;
    session.push(&packed).await?;
    let pinned = reference.pinned(&packed.digest);
    eprintln!(
        "pushed katalog {} ({} files, {} bytes) to {reference}",
        config.name,
        bundle.files.len(),
        bundle.size()
    );
    if a.output == "json" {
        print_data(
            &json!({
                "reference": reference.to_string(),
                "digest": packed.digest,
                "pinned": pinned.to_string(),
                "katalog": config.name,
                "files": bundle.files.iter().zip(&packed.layers).map(|(f, l)| json!({
                    "path": f.path,
                    "mediaType": l.descriptor.media_type,
                    "digest": l.descriptor.digest,
                    "size": l.descriptor.size,
                })).collect::<Vec<_>>(),
            }),
            true,
        )?;
    } else {
        out(&format!("{pinned}\n"))?;
    }
    Ok(0)
}
