//! `kubectl orkestra pull oci://HOST/REPO[:TAG|@DIGEST] [-d DIR]`: fetch a Katalog artifact,
//! verify every blob against its digest, and only then write its files (into `./NAME` by
//! default, NAME being the Katalog's). A failure writes nothing.

use std::path::PathBuf;

use serde_json::json;

use crate::artifact::files;
use crate::kube_client::runtime;
use crate::oci::transfer::Session;
use crate::oci::{OciRef, RegistryArgs};
use crate::output::{out, print_data};

/// Arguments of `pull`.
#[derive(clap::Args)]
pub struct Args {
    /// What to pull: oci://HOST/REPOSITORY[:TAG|@sha256:DIGEST].
    #[arg(value_name = "oci://HOST/REPO[:TAG|@DIGEST]")]
    reference: String,
    /// The folder to write into (default: ./KATALOG-NAME).
    #[arg(short = 'd', long = "directory", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Replace files in DIR that exist with other content.
    #[arg(long)]
    overwrite: bool,
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
    let limits = a.registry.limits();
    let session = Session::open(&reference, &a.registry)?;
    let fetched = session.fetch(&limits).await?;
    let dir = match a.dir.clone() {
        Some(d) => d,
        // The name comes from the registry: only a plain Kubernetes name becomes a folder.
        None if is_plain_name(&fetched.config.name) => PathBuf::from(&fetched.config.name),
        None => anyhow::bail!(
            "{reference}: the Katalog's name {:?} is not a plain name to use as the folder; pass -d DIR (nothing was written)",
            fetched.config.name
        ),
    };
    let written = files::write(&fetched.bundle, &dir, a.overwrite)?;
    let pinned = reference.pinned(&fetched.digest);
    eprintln!(
        "pulled katalog {} from {pinned} into {}",
        fetched.config.name,
        dir.display()
    );
    if a.output == "json" {
        print_data(
            &json!({
                "reference": reference.to_string(),
                "digest": fetched.digest,
                "katalog": fetched.config.name,
                "version": fetched.config.version,
                "directory": dir.display().to_string(),
                "annotations": fetched.annotations,
                "files": fetched.bundle.files.iter().map(|f| json!({
                    "path": f.path, "role": f.role, "size": f.bytes.len(),
                })).collect::<Vec<_>>(),
            }),
            true,
        )?;
    } else {
        let mut text = String::new();
        for p in written {
            text.push_str(&format!("{}\n", p.display()));
        }
        out(&text)?;
    }
    Ok(0)
}

/// A Kubernetes object name (lowercase letters, digits, `-`, `.`), safe as a folder name.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_names_become_folders() {
        assert!(super::is_plain_name("application-stack"));
        for bad in ["../x", "/etc", ".", "a/b", "", "A", "a..b"] {
            assert!(!super::is_plain_name(bad), "{bad:?}");
        }
    }
}
