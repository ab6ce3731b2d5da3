//! Diagnostics: what lint reports and what a refused Katalog carries on its status.
//!
//! The JSON form is cli.md's contract: `{"file","line","column","severity","code","message"}`.

use serde::Serialize;

use crate::source::{Pos, SourceFile};

/// How bad a finding is. Errors make lint exit 1 and stop a Katalog from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, tied to a file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    /// A stable kebab-case code (`unknown-field`, `template-syntax`, …).
    pub code: &'static str,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        severity: Severity,
        code: &'static str,
        file: &str,
        pos: Pos,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            severity,
            code,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Compiler-style text: `file:line:col: error[code]: message`, the source line and a caret.
    pub fn render(&self, source: Option<&SourceFile>) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut s = format!(
            "{}:{}:{}: {sev}[{}]: {}\n",
            self.file, self.line, self.column, self.code, self.message
        );
        if let Some(text) = source.and_then(|f| f.line(self.line)) {
            let gutter = self.line.to_string();
            s.push_str(&format!("{gutter} | {text}\n"));
            let pad: String = text
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            s.push_str(&format!("{} | {pad}^\n", " ".repeat(gutter.len())));
        }
        s
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a plausible typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&word.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ", did you mean `x`?" or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(word, candidates)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_compiler_style() {
        let f = SourceFile::new("k.yaml", "a: 1\n  imagee: x\n");
        let d = Diagnostic::new(
            Severity::Error,
            "unknown-field",
            "k.yaml",
            Pos { line: 2, column: 3 },
            "unknown field `imagee`",
        );
        let text = d.render(Some(&f));
        assert_eq!(
            text,
            "k.yaml:2:3: error[unknown-field]: unknown field `imagee`\n2 |   imagee: x\n  |   ^\n"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("imagee", ["image", "replicas"]), Some("image"));
        assert_eq!(suggest("zzz", ["image", "replicas"]), None);
    }
}
