//! The orkestra agent with the `ssm` provider registered beside the built-in ones.

fn main() -> std::process::ExitCode {
    orkestra_agent::main_with(acme_orkestra_ssm::providers())
}
