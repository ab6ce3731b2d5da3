//! The results: a table on stdout, `NAME.json`, `NAME.md` and the SVG figures it links to in the
//! results directory.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Context, Result};
use crate::plot::{self, Figure};

/// One figure, beside its baseline when there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Section (Convergence, Steady state, ...).
    pub section: String,
    /// What was measured.
    pub metric: String,
    /// orkestra's figure.
    pub value: String,
    /// The baseline measured in the same run ("" when none).
    pub baseline: String,
    /// Ratio, unit or remark.
    pub note: String,
    /// Machine-readable extras.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// All rows of a run plus facts about the run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Command, machine, versions, seed.
    pub meta: serde_json::Map<String, Value>,
    /// The figures.
    pub rows: Vec<Row>,
    /// Free-text notes (what could not be measured and why).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a row and prints it at once (a long run shows progress).
    pub fn add(
        &mut self,
        section: &str,
        metric: &str,
        value: impl Into<String>,
        baseline: impl Into<String>,
        note: impl Into<String>,
        data: Value,
    ) {
        let row = Row {
            section: section.into(),
            metric: metric.into(),
            value: value.into(),
            baseline: baseline.into(),
            note: note.into(),
            data,
        };
        eprintln!(
            "[bench] {} | {} | {} | {} | {}",
            row.section, row.metric, row.value, row.baseline, row.note
        );
        self.rows.push(row);
    }

    /// Adds a note.
    pub fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        eprintln!("[bench] note: {n}");
        self.notes.push(n);
    }

    /// The table as text.
    pub fn table(&self) -> String {
        let headers = ["section", "metric", "orkestra", "baseline", "note"];
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.section.clone(),
                    r.metric.clone(),
                    r.value.clone(),
                    r.baseline.clone(),
                    r.note.clone(),
                ]
            })
            .collect();
        let mut w = headers.map(str::len);
        for c in &cells {
            for i in 0..5 {
                w[i] = w[i].max(c[i].chars().count());
            }
        }
        let line = |c: &[String; 5]| {
            let mut s = String::new();
            for i in 0..5 {
                let _ = write!(s, "{:<width$}  ", c[i], width = w[i]);
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&headers.map(String::from));
        out += &line(&w.map(|n| "-".repeat(n)));
        for c in &cells {
            out += &line(c);
        }
        out
    }

    /// The Markdown report, each figure's image link under its section's table (relative
    /// links, so the directory can be moved or published as it is).
    pub fn markdown(&self, title: &str, figures: &[Figure]) -> String {
        let mut s = format!("# {title}\n\n");
        for (k, v) in &self.meta {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            let _ = writeln!(s, "- **{k}**: `{v}`");
        }
        // One table per section, in the order sections first appear: a run interleaves them
        // (memory is sampled after each convergence size).
        let mut sections: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !sections.contains(&r.section.as_str()) {
                sections.push(&r.section);
            }
        }
        let esc = |t: &str| t.replace('|', "\\|");
        for section in sections {
            let _ = write!(s, "\n## {section}\n\n| metric | orkestra | baseline | note |\n| --- | --- | --- | --- |\n");
            for r in self.rows.iter().filter(|r| r.section == section) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    esc(&r.metric),
                    esc(&r.value),
                    esc(&r.baseline),
                    esc(&r.note)
                );
            }
            for f in figures.iter().filter(|f| f.section == section) {
                let _ = write!(s, "\n![{}]({})\n", f.alt, f.file);
            }
        }
        if !self.notes.is_empty() {
            s += "\n## Notes\n\n";
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }

    /// Writes `NAME.json`, `NAME.md` and the figures its rows have data for (`NAME-*.svg`) into
    /// `dir`. A figure that cannot be drawn costs only the figures: the Markdown says why.
    pub fn write(&self, dir: &Path, name: &str, title: &str) -> Result<()> {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(dir.join(format!("{name}.json")), json)
            .ctx(|| format!("writing {name}.json"))?;
        let (figures, failure) = match plot::figures(self, name) {
            Ok(f) => (f, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        for f in &figures {
            std::fs::write(dir.join(&f.file), &f.svg).ctx(|| format!("writing {}", f.file))?;
        }
        let mut md = self.markdown(title, &figures);
        if let Some(e) = failure {
            let _ = writeln!(md, "\nFigures not drawn: {e}");
        }
        std::fs::write(dir.join(format!("{name}.md")), md).ctx(|| format!("writing {name}.md"))?;
        Ok(())
    }
}

/// KiB as "12.3 MiB".
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
