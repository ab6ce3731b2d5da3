//! `kubectl orkestra-acme`: the orkestra plugin knowing the same providers as this build's agent.

fn main() -> std::process::ExitCode {
    kubectl_orkestra::main_with(acme_orkestra_ssm::providers())
}
