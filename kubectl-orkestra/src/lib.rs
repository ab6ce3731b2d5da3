//! `kubectl orkestra`: the kubectl plugin for Katalogs, as a library.
//!
//! [`main_with`] is the whole program for one registration of providers: it parses the command
//! line and dispatches to the verb's module (one per verb). `kubectl-orkestra` itself is
//! `main_with(orkestra_providers::builtin())`; a build that ships providers of its own passes its
//! list, the same one its agent gets, so lint, render and plan know every block the agent runs.
//!
//! The verbs are an application's code (they report with `anyhow` and print); the library exists
//! so that other builds can reuse them, and its only public items are [`main_with`] and [`Cli`].
#![forbid(unsafe_code)]

mod admission;
mod apply;
mod artifact;
mod completion;
mod init;
mod install;
mod katalog_file;
mod katalog_object;
mod katalog_source;
mod kinds;
mod kube_client;
mod lint;
mod oci;
mod output;
mod plan;
mod progress;
mod pull;
mod push;
mod registry;
mod render;
mod status;
mod version;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orkestra_provider::{ProviderError, Providers};

/// Turn a CRD into a complete operator from one YAML file, a Katalog.
#[derive(Parser)]
#[command(
    name = "kubectl orkestra",
    bin_name = "kubectl orkestra",
    version,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check Katalogs offline: YAML, fields, templates, providers, and paths against the CR schema.
    Lint(lint::Args),
    /// Show, offline, what the agent would create for each CR.
    Render(render::Args),
    /// Install or update a Katalog: its CRDs, the agent's RBAC for it, and the Katalog object.
    Apply(apply::Args),
    /// Write a new Katalog, its CRD and a sample CR (asks on a terminal; flags otherwise).
    Init(init::Args),
    /// Install the orkestra agent (Katalog CRD, RBAC, Deployment) and wait until it is ready.
    Install(install::InstallArgs),
    /// Remove the orkestra agent (refuses while CRs still hold external resources).
    Uninstall(install::UninstallArgs),
    /// Show what applying would change in the cluster and outside it, writing nothing.
    Plan(plan::Args),
    /// Lint a Katalog folder and push it to an OCI registry as a Katalog artifact.
    Push(push::Args),
    /// Fetch a Katalog artifact from an OCI registry, verify it, and write its files.
    Pull(pull::Args),
    /// Show each CR and each of its external resources as the agent last reported them.
    Status(status::Args),
    /// Print the plugin's version.
    Version(version::Args),
    /// Print a shell completion script (bash, zsh, fish).
    Completion(completion::Args),
}

/// Run the verb the command line names with `providers` registered, and return its exit status
/// (errors are printed as one `error: …` line; a closed stdout is not an error).
pub fn main_with(providers: Result<Providers, ProviderError>) -> ExitCode {
    let cli = Cli::parse();
    match providers {
        Ok(p) => registry::install(p),
        Err(e) => {
            eprintln!("error: registering providers: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Lint(a) => lint::run(a),
        Command::Render(a) => render::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Init(a) => init::run(a),
        Command::Install(a) => install::install(a),
        Command::Uninstall(a) => install::uninstall(a),
        Command::Plan(a) => plan::run(a),
        Command::Push(a) => push::run(a),
        Command::Pull(a) => pull::run(a),
        Command::Status(a) => status::run(a),
        Command::Version(a) => version::run(a),
        Command::Completion(a) => completion::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The reader of our stdout went away (`| head`): not an error worth a message.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
