//! `kubectl orkestra version`.

/// Arguments of `version`.
#[derive(clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(short = 'o', long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let v = env!("CARGO_PKG_VERSION");
    if a.output == "json" {
        crate::output::out(&format!("{}\n", serde_json::json!({"version": v})))?;
    } else {
        crate::output::out(&format!("kubectl-orkestra {v}\n"))?;
    }
    Ok(0)
}
