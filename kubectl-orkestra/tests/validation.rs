//! `validation` rules of an entry whose CRD comes from a file, as a user meets them: the CRD
//! already exists (installed from the Katalog's crdFile by kubectl), `kubectl orkestra apply`
//! writes ValidatingAdmissionPolicies, and `kubectl create` is refused by the real API server
//! with each deny rule's message, warned with the warn rule's; a CR stored before the rules is
//! still updatable (the policies ratchet); a rule removed from the Katalog takes its policy away.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use orkestra_testsupport::TestEnv;

/// The fixture katalogs/upstream/validation in a group of its own, written into `dir`.
fn fixture(dir: &Path, id: &str) -> (String, String, String) {
    let src = repo().join("katalogs/upstream/validation");
    let group = format!("{id}.validated.orkestra.io");
    let read = |f: &str| {
        std::fs::read_to_string(src.join(f))
            .unwrap()
            .replace("validated.orkestra.io", &group)
    };
    let katalog = labelled(
        &read("katalog.yaml").replace("name: upstream-validated", &format!("name: k-{id}")),
        id,
    );
    write(dir, "katalog.yaml", &katalog);
    let crd = read("crd.yaml");
    write(dir, "crd.yaml", &crd);
    let cr = read("cr.yaml");
    write(dir, "cr.yaml", &cr);
    (katalog, group.clone(), cr)
}

/// `kubectl create -f -` of `cr` with `name` in `ns` and one spec field set: (exit ok, stderr).
fn create(
    env: &TestEnv,
    cr: &str,
    ns: &str,
    name: &str,
    field: Option<(&str, &str)>,
) -> (bool, String) {
    let mut text = cr
        .replace("name: web", &format!("name: {name}"))
        .replace("namespace: default", &format!("namespace: {ns}"));
    if let Some((k, v)) = field {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{k}:")))
            .unwrap_or_else(|| panic!("cr.yaml has spec.{k}"))
            .to_string();
        text = text.replace(&line, &format!("  {k}: {v}"));
    }
    kubectl_create(env, &text)
}

/// `kubectl create -f -` of `text`: (exit ok, stderr).
fn kubectl_create(env: &TestEnv, text: &str) -> (bool, String) {
    let mut c = env.kubectl();
    c.args(["create", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("kubectl");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let o = child.wait_with_output().expect("kubectl");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `kubectl orkestra apply -f DIR/katalog.yaml`: its stderr, after asserting it succeeded.
fn apply(env: &TestEnv, dir: &Path) -> String {
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(dir.join("katalog.yaml"));
        c
    });
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    err
}

/// Call `attempt` (with a fresh number, for unique names) until it sees the policy in effect:
/// a new policy is enforced once the API server's informer has it.
async fn until_in_effect(what: &str, mut attempt: impl FnMut(usize) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 1.. {
        if attempt(n) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} never took effect");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The CRD `crd_name` carries no `x-kubernetes-validations`: its rules are in policies.
fn assert_no_crd_rules(env: &TestEnv, crd_name: &str) {
    let o = env
        .kubectl()
        .args(["get", "crd", crd_name, "-o", "json"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&o.stdout).contains("x-kubernetes-validations"));
}

/// Remove what a test applied: the Katalog and its RBAC, the deny policy and binding, the CRD.
fn remove_all(env: &TestEnv, katalog: &str, crd_name: &str) {
    remove_applied_katalog(env, katalog);
    let _ = kubectl_ok(
        env,
        &[
            "delete",
            "--ignore-not-found",
            "--wait=false",
            &format!("validatingadmissionpolicybinding/orkestra-deny.{crd_name}"),
            &format!("validatingadmissionpolicy/orkestra-deny.{crd_name}"),
            &format!("crd/{crd_name}"),
        ],
    );
}

fn kubectl_ok(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let o = env.kubectl().args(args).output().expect("kubectl");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn crd_file_rules_become_admission_policies_that_refuse_warn_and_ratchet() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-validation").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("v");
    let (katalog, group, cr) = fixture(dir.path(), &id);
    let crd_name = format!("apps.{group}");

    // The user's CRD exists before the Katalog, and so does a CR the rules will not allow.
    let (ok, err) = kubectl_ok(
        env,
        &[
            "create",
            "-f",
            dir.path().join("crd.yaml").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let (ok, err) = kubectl_ok(
        env,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            &format!("crd/{crd_name}"),
        ],
    );
    assert!(ok, "{err}");
    let (ok, err) = create(
        env,
        &cr,
        ns.name(),
        "old",
        Some(("image", "docker.io/nginx")),
    );
    assert!(ok, "before the Katalog any image is accepted: {err}");

    let err = apply(env, dir.path());
    assert!(
        err.contains(&format!("validatingadmissionpolicy.admissionregistration.k8s.io/orkestra-deny.{crd_name} applied (3 rule(s), Deny)")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "orkestra-warn.{crd_name} applied (1 rule(s), Warn)"
        )),
        "{err}"
    );
    // The user's CRD is left as written.
    assert_no_crd_rules(env, &crd_name);

    // The API server enforces a new policy once its informer has it: wait for the first refusal.
    until_in_effect("the deny policy", |n| {
        let (ok, err) = create(
            env,
            &cr,
            ns.name(),
            &format!("probe-{n}"),
            Some(("image", "docker.io/nginx")),
        );
        assert!(
            ok || err.contains("images come from ghcr.io/orkspace/"),
            "{err}"
        );
        !ok
    })
    .await;
    for (field, value, message) in [
        ("replicas", "0", "replicas must be at least 1"),
        ("environment", "qa", "environment is dev, staging or prod"),
    ] {
        let (ok, err) = create(
            env,
            &cr,
            ns.name(),
            &format!("bad-{field}"),
            Some((field, value)),
        );
        assert!(!ok && err.contains(message), "{field}: {err}");
    }
    let (ok, err) = create(env, &cr, ns.name(), "good", None);
    assert!(ok, "the good CR is accepted: {err}");
    assert!(!err.contains("Warning"), "{err}");
    // The warn rule: accepted, with the message as the API server's warning.
    until_in_effect("the warn policy", |n| {
        let (ok, err) = create(
            env,
            &cr,
            ns.name(),
            &format!("big-{n}"),
            Some(("replicas", "7")),
        );
        assert!(ok, "a warn rule never refuses: {err}");
        assert!(
            !err.contains("Warning") || err.contains("more than 5 replicas need a capacity review"),
            "{err}"
        );
        err.contains("Warning")
    })
    .await;

    // Ratcheting: the CR stored before the rules can still be labelled (and finalized), but
    // not given another image that breaks the rule.
    let old = format!("apps.{group}/old");
    let (ok, err) = kubectl_ok(env, &["label", "-n", ns.name(), &old, "team=web"]);
    assert!(
        ok,
        "an update that leaves spec.image as it was passes: {err}"
    );
    let (ok, err) = kubectl_ok(
        env,
        &[
            "patch",
            "-n",
            ns.name(),
            &old,
            "--type=merge",
            "-p",
            r#"{"spec":{"image":"quay.io/x"}}"#,
        ],
    );
    assert!(
        !ok && err.contains("images come from ghcr.io/orkspace/"),
        "{err}"
    );

    // The warn rule removed from the Katalog: its policy and binding go.
    let without = katalog.replace(
        "          - field: spec.replicas\n            max: 5\n            action: warn\n            message: \"more than 5 replicas need a capacity review\"\n",
        "",
    );
    assert_ne!(
        without, katalog,
        "the fixture's warn rule is where this test expects it"
    );
    write(dir.path(), "katalog.yaml", &without);
    let err = apply(env, dir.path());
    assert!(
        err.contains(&format!("validatingadmissionpolicy.admissionregistration.k8s.io/orkestra-warn.{crd_name} deleted")),
        "{err}"
    );
    let (ok, _) = kubectl_ok(
        env,
        &[
            "get",
            "validatingadmissionpolicybinding",
            &format!("orkestra-warn.{crd_name}"),
        ],
    );
    assert!(!ok, "the warn binding is gone");

    remove_all(env, &format!("k-{id}"), &crd_name);
    ns.cleanup().await.unwrap();
}

/// An entry with only `apiTypes` (no schema: its CRD keeps `spec` unknown) and rules on `spec`
/// and on metadata labels: fields a CRD rule cannot read, so `apply` puts them into a policy,
/// and the API server enforces them.
#[tokio::test]
async fn rules_on_fields_the_crd_keeps_unknown_are_enforced_by_a_policy() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-validation-open").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("vo");
    let group = format!("{id}.open.orkestra.io");
    let katalog = labelled(
        &format!(
            r#"apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata:
  name: k-{id}
spec:
  crds:
    site:
      apiTypes: {{group: {group}, version: v1, kind: Site, plural: sites}}
      validation:
        rules:
          - {{field: spec.image, prefix: "ghcr.io/", message: "images come from ghcr.io"}}
          - {{field: metadata.labels.team, exists: true, message: "a Site names its team"}}
      operatorBox: {{onCreate: {{}}}}
"#
        ),
        &id,
    );
    write(dir.path(), "katalog.yaml", &katalog);
    let err = apply(env, dir.path());
    let crd_name = format!("sites.{group}");
    assert!(
        err.contains(&format!(
            "orkestra-deny.{crd_name} applied (2 rule(s), Deny)"
        )),
        "{err}"
    );
    assert_no_crd_rules(env, &crd_name);
    let site = |name: &str, image: &str, team: bool| {
        let labels = if team { "\n  labels: {team: web}" } else { "" };
        format!("apiVersion: {group}/v1\nkind: Site\nmetadata:\n  name: {name}\n  namespace: {}{labels}\nspec: {{image: {image}}}\n", ns.name())
    };
    until_in_effect("the deny policy", |n| {
        let (ok, err) = kubectl_create(env, &site(&format!("probe-{n}"), "docker.io/x", true));
        assert!(ok || err.contains("images come from ghcr.io"), "{err}");
        !ok
    })
    .await;
    let (ok, err) = kubectl_create(env, &site("no-team", "ghcr.io/x", false));
    assert!(!ok && err.contains("a Site names its team"), "{err}");
    let (ok, err) = kubectl_create(env, &site("good", "ghcr.io/x", true));
    assert!(ok, "{err}");
    remove_all(env, &format!("k-{id}"), &crd_name);
    ns.cleanup().await.unwrap();
}
