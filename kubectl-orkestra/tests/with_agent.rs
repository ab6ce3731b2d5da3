//! End to end with the real agent (run in this process against the private control plane and
//! moto): `apply --wait` waits for the agent's own report, `status` shows the bucket the agent
//! made, and `plan` agrees with the agent that nothing is left to do.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn apply_wait_status_and_plan_against_the_running_agent() {
    let env = orkestra_testsupport::cluster().await;
    assert!(
        env.vars.get("ORKESTRA_NODE").is_some_and(|n| !n.is_empty()),
        "{}/env has no ORKESTRA_NODE: this test needs the node (kubelet + containerd with \
         {WEB_IMAGE} loaded), since a CR is Ready only once its Deployment is available; start \
         the systems with tests/cluster/up.sh including the node",
        env.dir.display()
    );
    install_katalog_crd(env);
    let ns = env.namespace("cli-e2e").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("e");
    let katalog = write(
        dir.path(),
        "katalog.yaml",
        &labelled(&katalog_text(&id, true), &id),
    );

    // The agent, with the aws provider aimed at moto, acting only on this test's Katalog and namespace.
    let agent = Agent::start(env, &id, ns.name(), true).await;

    let o = run_async({
        let mut c = plugin(env);
        c.args(["apply", "-f"])
            .arg(&katalog)
            .args(["--wait", "--timeout", "90s"]);
        c
    })
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 controller(s) running"),
        "{}",
        stderr(&o)
    );

    let cr = write(
        dir.path(),
        "cr.yaml",
        &cr_text(&id, ns.name(), "web", 1).replace("nginx:1.27", WEB_IMAGE),
    );
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&cr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let kind = format!("site.{id}.test.orkestra.io");
    let status = orkestra_testsupport::wait_for(
        "the CR Ready with its bucket",
        Duration::from_secs(90),
        || async {
            let v = status_json(env, &format!("{kind}/web"), ns.name()).await;
            let item = v["items"][0].clone();
            (item["ready"] == true && item["external"][0]["state"] == "Ready").then_some(item)
        },
    )
    .await
    .unwrap();
    let bucket = format!("web-{}", ns.name());
    assert_eq!(status["external"][0]["name"], bucket.as_str());
    assert_eq!(
        status["external"][0]["id"],
        format!("arn:aws:s3:::{bucket}")
    );

    // What the agent did is what plan wanted: nothing is left to change.
    let o = run_async({
        let mut c = plugin(env);
        c.args(["plan", "-f"]).arg(&katalog).args([
            "site/web",
            "-n",
            ns.name(),
            "--detailed-exitcode",
        ]);
        c
    })
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "plan after the agent converged:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains("no changes"), "{}", stdout(&o));

    // Delete the CR while the agent runs: its finalizer deletes the bucket, then lets go.
    let o = env
        .kubectl()
        .args(["delete", "-f"])
        .arg(&cr)
        .args(["--wait=false"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let started = std::time::Instant::now();
    orkestra_testsupport::wait_for(
        "the CR gone after the agent's cleanup",
        Duration::from_secs(240),
        || {
            let mut c = env.kubectl();
            c.args([
                "get",
                "-n",
                ns.name(),
                &format!("sites.{id}.test.orkestra.io"),
                "web",
                "--ignore-not-found",
                "-o",
                "name",
            ]);
            async move {
                c.output()
                    .map(|o| o.status.success() && o.stdout.is_empty())
                    .unwrap_or(false)
            }
        },
    )
    .await
    .unwrap();
    eprintln!(
        "CR deletion with the agent's cleanup took {:?}",
        started.elapsed()
    );
    let s3 = env.s3_client().await;
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(
        !buckets
            .buckets()
            .iter()
            .any(|b| b.name() == Some(bucket.as_str())),
        "the agent left the bucket"
    );
    agent.stop().await;
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}
