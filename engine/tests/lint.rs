//! Each file in `tests/lint_cases/` is a Katalog broken in one way. Its `# expect:` lines name
//! the diagnostics lint must report (severity, code, line:column, a message fragment); every
//! error lint reports must be expected, so a check that starts misfiring fails here too.

use orkestra_engine::lint::{lint, Input, Report};
use orkestra_engine::{Severity, SourceFile};

struct Expect {
    severity: Severity,
    code: String,
    line: usize,
    column: usize,
    fragment: String,
}

fn expectations(text: &str) -> Vec<Expect> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let severity = match parts.next().unwrap() {
                "error" => Severity::Error,
                _ => Severity::Warning,
            };
            let code = parts.next().unwrap().to_string();
            let (line, column) = parts.next().unwrap().split_once(':').unwrap();
            Expect {
                severity,
                code,
                line: line.parse().unwrap(),
                column: column.parse().unwrap(),
                fragment: parts.next().unwrap_or("").to_string(),
            }
        })
        .collect()
}

fn run(file: SourceFile) -> Report {
    lint(
        &[Input {
            file,
            explicit: true,
        }],
        &[],
        &[orkestra_provider_aws::schema()],
    )
}

#[test]
fn every_broken_katalog_gets_its_diagnostic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint_cases");
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = SourceFile::read(&path).unwrap();
        let expected = expectations(&file.text);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            path.display()
        );
        let report = run(file);
        for e in &expected {
            let found = report.diagnostics.iter().any(|d| {
                d.severity == e.severity
                    && d.code == e.code
                    && d.line == e.line
                    && d.column == e.column
                    && d.message.contains(&e.fragment)
            });
            assert!(
                found,
                "{}: expected {:?} {} at {}:{} containing {:?}; got {:#?}",
                path.display(),
                e.severity,
                e.code,
                e.line,
                e.column,
                e.fragment,
                report.diagnostics
            );
        }
        for d in report.diagnostics.iter().filter(|d| d.is_error()) {
            assert!(
                expected
                    .iter()
                    .any(|e| e.code == d.code && e.line == d.line),
                "{}: unexpected error {d:?}",
                path.display()
            );
        }
        assert!(report.errors() > 0 || expected.iter().all(|e| e.severity == Severity::Warning));
        cases += 1;
    }
    assert!(cases >= 15, "only {cases} cases found");
}

#[test]
fn example_katalogs_lint_clean() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../katalogs");
    // Every YAML file under katalogs/, folders within folders included (katalogs/upstream/).
    let mut inputs = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                inputs.push(Input {
                    file: SourceFile::read(&p).unwrap(),
                    explicit: false,
                });
            }
        }
    }
    let report = lint(
        &inputs,
        &[],
        &[
            orkestra_provider_aws::schema(),
            orkestra_provider_database::schema(),
        ],
    );
    assert!(report.katalogs >= 3);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
}

#[test]
fn text_form_shows_the_source_line() {
    let f = SourceFile::new(
        "k.yaml",
        "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {name: k}\nspec:\n  crdz: {}\n",
    );
    let report = run(f.clone());
    let text: String = report
        .diagnostics
        .iter()
        .map(|d| d.render(Some(&f)))
        .collect();
    assert!(
        text.contains(
            "k.yaml:5:3: error[unknown-field]: unknown field `crdz` in spec; did you mean `crds`?"
        ),
        "{text}"
    );
    assert!(text.contains("5 |   crdz: {}\n  |   ^"), "{text}");
}
