//! `orkestra-agent`: the agent with the providers orkestra ships with; everything else is in the
//! library ([`orkestra_agent::main_with`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    orkestra_agent::main_with(orkestra_providers::builtin())
}
