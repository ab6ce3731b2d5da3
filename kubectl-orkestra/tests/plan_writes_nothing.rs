//! `kubectl orkestra plan` writes nothing: not to the API server, not to AWS.
//!
//! Its own test binary, so no other test of this crate mutates the cluster while the API
//! server's request counters are compared.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::Value;

/// `apiserver_request_total` summed by (verb, dry_run, resource) over the resources plan reads
/// or dry-runs, main resource only (controllers write the status subresources on their own).
fn request_counts(
    env: &orkestra_testsupport::TestEnv,
    resources: &[&str],
) -> BTreeMap<(String, String, String), f64> {
    let o = env
        .kubectl()
        .args(["get", "--raw", "/metrics"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(&format!("{k}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        if !resources.contains(&label("resource").as_str()) || !label("subresource").is_empty() {
            continue;
        }
        *out.entry((label("verb"), label("dry_run"), label("resource")))
            .or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// The counts once the API server is quiet: namespaces earlier tests left terminating are gone
/// (the namespace controller deletes what was in them; the root-CA publisher writes into new
/// ones) and no mutating request arrived for a second, so only plan's requests are counted.
fn quiet_counts(
    env: &orkestra_testsupport::TestEnv,
    resources: &[&str],
) -> BTreeMap<(String, String, String), f64> {
    let mut last = request_counts(env, resources);
    for _ in 0..180 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let now = request_counts(env, resources);
        let o = env
            .kubectl()
            .args([
                "get",
                "namespaces",
                "-o",
                "jsonpath={.items[?(@.status.phase==\"Terminating\")].metadata.name}",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let terminating = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if terminating.is_empty() && mutations(&now, false) == mutations(&last, false) {
            return now;
        }
        last = now;
    }
    panic!(
        "the API server did not go quiet within 3 minutes, so plan's requests cannot be told apart"
    )
}

fn mutations(counts: &BTreeMap<(String, String, String), f64>, dry_run: bool) -> f64 {
    counts
        .iter()
        .filter(|((verb, dr, _), _)| {
            matches!(
                verb.as_str(),
                "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE" | "DELETECOLLECTION"
            ) && (dr.is_empty() != dry_run)
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn plan_makes_no_mutating_call_to_the_api_server_or_moto() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-noop").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("n");
    let katalog = write(dir.path(), "katalog.yaml", &katalog_text(&id, true));
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(&katalog);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cr = write(dir.path(), "cr.yaml", &cr_text(&id, ns.name(), "web", 1));
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&cr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // An existing child (so plan dry-runs an apply, not only a create), as the agent makes it.
    let o = env
        .kubectl()
        .args([
            "get",
            "-n",
            ns.name(),
            &format!("sites.{id}.test.orkestra.io"),
            "web",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let live = write(dir.path(), "live.json", &String::from_utf8_lossy(&o.stdout));
    let o = run({
        let mut c = plugin(env);
        c.args(["render", "-f"])
            .arg(&katalog)
            .arg("--cr")
            .arg(&live)
            .args(["-o", "json"]);
        c
    });
    let rendered: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let deployment = rendered["items"][0]["objects"][0].clone();
    assert_eq!(deployment["kind"], "Deployment");
    let manifest = write(dir.path(), "deployment.json", &deployment.to_string());
    let o = env
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager=orkestra-agent",
            "-f",
        ])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Let the controllers finish their own writes first: the deployment controller's revision
    // annotation and the root-CA publisher's ConfigMap in the new namespace.
    let client = env.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    orkestra_testsupport::wait_for(
        "the deployment controller to see web",
        Duration::from_secs(60),
        || async {
            deployments
                .get("web")
                .await
                .ok()
                .and_then(|d| d.metadata.annotations)
                .is_some_and(|a| a.contains_key("deployment.kubernetes.io/revision"))
        },
    )
    .await
    .unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    orkestra_testsupport::wait_for("kube-root-ca.crt", Duration::from_secs(60), || async {
        configmaps
            .get_opt("kube-root-ca.crt")
            .await
            .ok()
            .flatten()
            .map(|_| true)
            .unwrap_or(false)
    })
    .await
    .unwrap();

    let resources = [
        "deployments",
        "configmaps",
        "sites",
        "katalogs",
        "customresourcedefinitions",
        "clusterroles",
        "clusterrolebindings",
    ];
    let before = quiet_counts(env, &resources);
    let rv_before = deployments
        .get("web")
        .await
        .unwrap()
        .metadata
        .resource_version;
    // What moto has served so far (it records every request; other tests share it, so only
    // the requests naming this test's bucket are looked at).
    let bucket = format!("web-{}", ns.name());
    let moto_before = env.aws.requests().unwrap().len();

    // A spec change, so there is something to dry-run: replicas 1 -> 4, plus the new bucket.
    let changed = write(dir.path(), "cr2.yaml", &cr_text(&id, ns.name(), "web", 4));
    for (args, expect) in [
        (
            vec![
                "plan".to_string(),
                "--cr".into(),
                changed.display().to_string(),
                "--detailed-exitcode".into(),
            ],
            2,
        ),
        (
            vec![
                "plan".to_string(),
                "site/web".to_string(),
                "-n".into(),
                ns.name().into(),
                "-o".into(),
                "json".into(),
            ],
            0,
        ),
    ] {
        let o = run({
            let mut c = plugin(env);
            c.args(&args[..1]).arg("-f").arg(&katalog).args(&args[1..]);
            c
        });
        assert_eq!(
            o.status.code(),
            Some(expect),
            "{}\n{}",
            stdout(&o),
            stderr(&o)
        );
        if expect == 2 {
            let out = stdout(&o);
            assert!(out.contains("~ spec.replicas = 1 -> 4"), "{out}");
            assert!(
                out.contains(&format!("# aws.s3 \"web-{}\" will be created", ns.name())),
                "{out}"
            );
            assert!(
                out.contains("Plan: 2 to create, 1 to update, 0 to replace, 0 to delete."),
                "{out}"
            );
        }
    }

    let after = request_counts(env, &resources);
    assert_eq!(
        mutations(&after, false),
        mutations(&before, false),
        "mutating requests reached the API server:\nbefore {before:?}\nafter {after:?}"
    );
    assert!(
        mutations(&after, true) > mutations(&before, true),
        "plan made no dry-run request at all: {after:?}"
    );
    assert_eq!(
        deployments
            .get("web")
            .await
            .unwrap()
            .metadata
            .resource_version,
        rv_before
    );
    let served: Vec<_> = env.aws.requests().unwrap()[moto_before..]
        .iter()
        .filter(|r| r.mentions(&bucket))
        .cloned()
        .collect();
    assert!(!served.is_empty(), "plan never asked moto about {bucket}");
    let writes: Vec<&str> = served
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| r.operation.as_str())
        .collect();
    assert!(
        writes.is_empty(),
        "plan made mutating calls to moto: {writes:?}"
    );
    let s3 = env.s3_client().await;
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(
        !buckets
            .buckets()
            .iter()
            .any(|b| b.name() == Some(bucket.as_str())),
        "plan created the bucket"
    );
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}
