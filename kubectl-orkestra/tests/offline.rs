//! `kubectl orkestra lint` and `render` as a user types them: the binary, its stdout, stderr and
//! exit code, against cli.md's contract. Text output is compared with golden files (colour is off
//! because stdout is not a terminal). Set `UPDATE_GOLDEN=1` to rewrite them after an intended change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-orkestra"))
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .output()
        .expect("run kubectl-orkestra")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn golden(name: &str, actual: &str) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&p, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&p).unwrap_or_default();
    assert_eq!(
        actual, expected,
        "golden file {name} differs (UPDATE_GOLDEN=1 rewrites it)"
    );
}

#[test]
fn lint_examples_is_clean() {
    let o = run(&["lint", "katalogs"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "");
    // Every example directory holds one Katalog (katalogs/upstream/ one per folder), and lint
    // must have found each of them.
    let folders = |d: std::path::PathBuf| {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("katalog.yaml").is_file())
            .count()
    };
    let examples = folders(root().join("katalogs")) + folders(root().join("katalogs/upstream"));
    assert!(examples >= 4, "the examples under katalogs/");
    let summary = format!("0 error(s), 0 warning(s) in {examples} Katalog(s)");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(&summary), "{stderr}");
}

#[test]
fn lint_text_is_compiler_style() {
    let o = run(&["lint", "kubectl-orkestra/tests/golden/broken-katalog.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    golden("broken-katalog.lint.txt", &stdout(&o));
    assert!(!stdout(&o).contains('\x1b'), "no colour off a terminal");
}

#[test]
fn lint_json_contract() {
    let o = run(&[
        "lint",
        "-o",
        "json",
        "kubectl-orkestra/tests/golden/broken-katalog.yaml",
        "katalogs/website",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let diags = v["diagnostics"].as_array().unwrap();
    assert!(!diags.is_empty());
    for d in diags {
        let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["file", "line", "column", "severity", "code", "message"]
        );
        assert!(d["line"].as_u64().unwrap() >= 1 && d["column"].as_u64().unwrap() >= 1);
        assert!(matches!(d["severity"].as_str(), Some("error" | "warning")));
    }
    let errors = diags.iter().filter(|d| d["severity"] == "error").count() as u64;
    assert_eq!(v["errors"].as_u64(), Some(errors));
    assert_eq!(v["warnings"].as_u64(), Some(diags.len() as u64 - errors));
}

#[test]
fn lint_uses_crd_schemas_given_with_crd() {
    let o = run(&[
        "lint",
        "-o",
        "json",
        "kubectl-orkestra/tests/golden/schema-typo.yaml",
        "--crd",
        "katalogs/website/crd.yaml",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "warnings only: {v}");
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "schema-path");
    assert_eq!(d["severity"], "warning");
    assert!(
        d["message"].as_str().unwrap().contains("`.spec.imgae`"),
        "{d}"
    );
    // Without the CRD there is no schema to check against.
    let o = run(&[
        "lint",
        "-o",
        "json",
        "kubectl-orkestra/tests/golden/schema-typo.yaml",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["warnings"], 0);
}

/// `render -f KATALOG --cr CR -o json`, which must succeed.
fn render_json(katalog: &str, cr: &str) -> Value {
    let o = run(&["render", "-f", katalog, "--cr", cr, "-o", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn render_json_contract() {
    let v = render_json(
        "katalogs/application-stack/katalog.yaml",
        "katalogs/application-stack/cr-shop.yaml",
    );
    let item = &v["items"][0];
    assert_eq!(
        item["cr"],
        serde_json::json!({"kind": "ApplicationStack", "namespace": "prod", "name": "shop"})
    );
    let kinds: Vec<&str> = item["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Deployment", "Service"]);
    assert_eq!(item["objects"][0]["spec"]["replicas"], 3);
    let ext = &item["external"][0];
    let keys: Vec<&str> = ext
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["provider", "kind", "name", "fields"]);
    assert_eq!(ext["name"], "shop-prod-assets");
}

#[test]
fn render_lists_the_nodes_that_wait_for_others() {
    // Offline nothing is observed: every node that reads another one waits, and says for what.
    let v = render_json(
        "katalogs/app-with-database/katalog.yaml",
        "katalogs/app-with-database/cr-large-db.yaml",
    );
    let item = &v["items"][0];
    assert_eq!(
        item["waiting"],
        serde_json::json!([
            {"node": "aws.rds db", "waitsFor": "secrets[dbPassword]", "state": "not created yet", "value": "metadata.name"},
            {"node": "secrets[conn]", "waitsFor": "secrets[dbPassword]", "state": "not created yet", "value": "data.password"},
            {"node": "deployments[web]", "waitsFor": "aws.rds db", "state": "waiting itself", "value": "outputs.endpoint"},
        ])
    );
    let names: Vec<&str> = item["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing-db-password", "billing-cache"]);
    assert_eq!(item["external"], serde_json::json!([]));
    // The generated password is made by the agent, never by render.
    assert!(item["objects"][0].get("data").is_none(), "{item:#}");
    assert!(!v.to_string().contains("known after apply"), "{v:#}");
    let yaml = stdout(&run(&[
        "render",
        "-f",
        "katalogs/app-with-database/katalog.yaml",
        "--cr",
        "katalogs/app-with-database/cr-large-db.yaml",
    ]));
    assert!(
        yaml.contains("  waiting:\n  - node: aws.rds db\n    waitsFor: secrets[dbPassword]\n    state: not created yet\n    value: metadata.name\n"),
        "{yaml}"
    );
}

#[test]
fn render_yaml_is_the_default_and_golden() {
    let o = run(&[
        "render",
        "-f",
        "katalogs/website/katalog.yaml",
        "--cr",
        "katalogs/website/cr-blog.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0));
    golden("website.render.yaml", &stdout(&o));
}

#[test]
fn render_reports_a_bad_cr_and_keeps_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let crs = dir.path().join("crs.yaml");
    std::fs::write(
        &crs,
        "apiVersion: demo.orkestra.io/v1alpha1\nkind: Website\nmetadata: {name: good}\nspec: {image: nginx, replicas: 1, port: 80}\n---\n\
         apiVersion: demo.orkestra.io/v1alpha1\nkind: Website\nmetadata: {name: bad}\nspec: {image: nginx, replicas: many, port: 80}\n---\n\
         apiVersion: other.example.io/v1\nkind: Other\nmetadata: {name: stranger}\n",
    )
    .unwrap();
    let o = run(&[
        "render",
        "-f",
        "katalogs/website/katalog.yaml",
        "--cr",
        crs.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Website default/bad: spec.crds.website.operatorBox.onCreate.deployments[0].replicas: expected an integer, got \"many\""), "{err}");
    assert!(
        err.contains("Other \"stranger\" is not handled by Katalog website-operator"),
        "{err}"
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["cr"]["name"], "good");
}

#[test]
fn render_refuses_a_katalog_that_does_not_load() {
    let o = run(&[
        "render",
        "-f",
        "kubectl-orkestra/tests/golden/broken-katalog.yaml",
        "--cr",
        "katalogs/website/cr-blog.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("does not load; run `kubectl orkestra lint"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn usage_errors_exit_2_and_say_kubectl_orkestra() {
    let o = run(&["render"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("kubectl orkestra render"));
    let o = run(&["--help"]);
    assert!(stdout(&o).contains("Usage: kubectl orkestra"));
}

#[test]
fn missing_file_is_one_clear_line() {
    let o = run(&["lint", "no/such/katalog.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: cannot read no/such/katalog.yaml"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
