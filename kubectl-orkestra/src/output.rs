//! Output conventions shared by the verbs: formats, colour only on a terminal, data on stdout.

use std::io::IsTerminal;

/// Whether to colour text written to stdout (a terminal, and NO_COLOR unset).
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Wrap `s` in an ANSI colour when `on`.
pub fn paint(s: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Write text to stdout. A closed pipe (`| head`) is reported as an error main turns into a
/// quiet exit, instead of the panic `println!` would give.
pub fn out(s: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.flush()
}

/// Print a serializable value as JSON (pretty) or YAML.
pub fn print_data<T: serde::Serialize>(v: &T, json: bool) -> anyhow::Result<()> {
    if json {
        out(&format!("{}\n", serde_json::to_string_pretty(v)?))?;
    } else {
        out(&serde_yaml_ng::to_string(v)?)?;
    }
    Ok(())
}
