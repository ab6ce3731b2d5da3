//! `kubectl orkestra plan` writes nothing: not to the API server, not to AWS.
//!
//! The API server's audit log shows each request's User-Agent and whether it was a dry run, so
//! the check looks at exactly the requests the plugin sent while plan ran, whatever the
//! controllers (or namespaces left terminating by earlier tests) do meanwhile. Its own test
//! binary, so no other test runs the plugin at the same time.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

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

    // Where the audit log stands before plan runs.
    let audit_before = env.audit_events().unwrap().len();
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

    // A dry-run create after plan: once its event is in the log, so are plan's, which finished
    // before it was sent.
    let marker = format!("audit-marker-{id}");
    let o = env
        .kubectl()
        .args([
            "create",
            "configmap",
            &marker,
            "-n",
            ns.name(),
            "--dry-run=server",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut events = Vec::new();
    orkestra_testsupport::wait_for(
        "the marker request in the audit log",
        Duration::from_secs(30),
        || {
            events = env.audit_events().unwrap()[audit_before..].to_vec();
            let seen = events.iter().any(|e| e.name == marker);
            async move { seen }
        },
    )
    .await
    .unwrap();
    let marker_at = events.iter().position(|e| e.name == marker).unwrap();
    // The plugin names itself in User-Agent; the scheduler shares the admin credentials here.
    let plans: Vec<_> = events[..marker_at]
        .iter()
        .filter(|e| e.user_agent.starts_with("kubectl-orkestra/"))
        .collect();
    let writes: Vec<_> = plans.iter().filter(|e| e.is_write()).collect();
    assert!(
        writes.is_empty(),
        "plan sent requests that write to the API server: {writes:#?}"
    );
    assert!(
        plans
            .iter()
            .any(|e| e.is_dry_run() && e.resource == "deployments"),
        "plan made no dry-run request for the Deployment: {plans:#?}"
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
