//! `kubectl orkestra completion SHELL`.

use clap::CommandFactory;

/// Arguments of `completion`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(
        a.shell,
        &mut cmd,
        "kubectl-orkestra",
        &mut std::io::stdout(),
    );
    Ok(0)
}
