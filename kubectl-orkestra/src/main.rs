//! `kubectl-orkestra`: the plugin with the providers orkestra ships with; everything else is in
//! the library ([`kubectl_orkestra::main_with`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    kubectl_orkestra::main_with(orkestra_providers::builtin())
}
