//! Bad input gets one clear line, exit 1, no stack trace; kubectl's ways of choosing a cluster.

mod common;

use common::*;

#[tokio::test]
async fn missing_kubeconfig_is_one_line() {
    let env = orkestra_testsupport::cluster().await;
    let o = run({
        let mut c = plugin(env);
        c.env("KUBECONFIG", "/nonexistent/a:/nonexistent/b")
            .args(["status"]);
        c
    });
    assert_one_line_error(&o, "none of the files in KUBECONFIG exists");
    let o = run({
        let mut c = plugin(env);
        c.env_remove("KUBECONFIG")
            .args(["status", "--kubeconfig", "/nonexistent/config"]);
        c
    });
    assert_one_line_error(&o, "kubeconfig /nonexistent/config does not exist");
    let o = run({
        let mut c = plugin(env);
        c.env_remove("KUBECONFIG")
            .env("HOME", "/nonexistent-home")
            .args(["status"]);
        c
    });
    assert_one_line_error(&o, "no kubeconfig");
}

#[tokio::test]
async fn unreachable_cluster_is_one_line() {
    let env = orkestra_testsupport::cluster().await;
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let kc = write(
        dir.path(),
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: gone\n  context: {cluster: gone, user: u}\ncurrent-context: gone\n",
    );
    let o = run({
        let mut c = plugin(env);
        c.env("KUBECONFIG", &kc).args(["status", "-A"]);
        c
    });
    assert_one_line_error(&o, "cannot reach the cluster at https://127.0.0.1:1/");
}

#[tokio::test]
async fn several_kubeconfig_files_and_contexts_work_like_kubectl() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let dir = tempfile::tempdir().unwrap();
    // A second file that only names another context, listed first: kubectl merges the files.
    let extra = write(
        dir.path(),
        "extra",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: gone\n  context: {cluster: gone, user: u}\n",
    );
    let joined =
        std::env::join_paths([extra.clone(), env.kubeconfig.clone(), "/nonexistent".into()])
            .unwrap();
    let o = run({
        let mut c = plugin(env);
        c.env("KUBECONFIG", &joined)
            .args(["status", "-A", "-o", "json"]);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"items\""), "{}", stdout(&o));
    // --context picks the merged second file's context.
    let o = run({
        let mut c = plugin(env);
        c.env("KUBECONFIG", &joined)
            .args(["status", "--context", "gone"]);
        c
    });
    assert_one_line_error(&o, "cannot reach the cluster at https://127.0.0.1:1/");
    let o = run({
        let mut c = plugin(env);
        c.args(["status", "--context", "nope"]);
        c
    });
    assert_one_line_error(&o, "context \"nope\" is not in the kubeconfig");
}

#[tokio::test]
async fn missing_crd_missing_cr_and_unknown_kind() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-bad").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("b");
    let katalog = write(dir.path(), "katalog.yaml", &katalog_text(&id, false));
    // Not applied: its CRD is missing.
    let o = run({
        let mut c = plugin(env);
        c.args(["plan", "-f"])
            .arg(&katalog)
            .args(["site/web", "-n", ns.name()]);
        c
    });
    assert_one_line_error(
        &o,
        &format!("the CRD sites.{id}.test.orkestra.io is not installed"),
    );
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(&katalog);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run({
        let mut c = plugin(env);
        c.args(["plan", "-f"])
            .arg(&katalog)
            .args(["site/web", "-n", ns.name()]);
        c
    });
    assert_one_line_error(
        &o,
        &format!("Site \"web\" not found in namespace {}", ns.name()),
    );
    let o = run({
        let mut c = plugin(env);
        c.args([
            "status",
            &format!("site.{id}.test.orkestra.io/web"),
            "-n",
            ns.name(),
        ]);
        c
    });
    assert_one_line_error(&o, "Site \"web\" not found");
    let o = run({
        let mut c = plugin(env);
        c.args(["status", "gizmos"]);
        c
    });
    assert_one_line_error(&o, "\"gizmos\" is not a kind orkestra manages here");
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_katalog_failing_lint_is_refused_before_anything_is_written() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let dir = tempfile::tempdir().unwrap();
    let id = id("l");
    let bad = katalog_text(&id, false).replace("replicas: \"{{ .spec.replicas }}\"", "replicaz: 2");
    let katalog = write(dir.path(), "katalog.yaml", &bad);
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(&katalog);
        c
    });
    assert_one_line_error(&o, "fails lint with 1 error(s)");
    let err = stderr(&o);
    assert!(
        err.contains("replicaz"),
        "the diagnostics come first: {err}"
    );
    let o = env
        .kubectl()
        .args(["get", "crd", &format!("sites.{id}.test.orkestra.io")])
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "the CRD was created although lint failed"
    );
}

#[test]
fn usage_errors_exit_2_and_help_says_kubectl_orkestra() {
    let o = std::process::Command::new(BIN)
        .args(["plan", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = std::process::Command::new(BIN)
        .args(["apply", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("Usage: kubectl orkestra apply"), "{help}");
    assert!(!help.contains("kubectl-orkestra"), "{help}");
}
