//! End to end with the real agent (run in this process against the private control plane and
//! moto): `apply --wait` waits for the agent's own report, `status` shows the bucket the agent
//! made, and `plan` agrees with the agent that nothing is left to do.

mod common;

use std::time::Duration;

use common::*;
use orkestra_agent::{Config, Toggle};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const RUN_LABEL: &str = "test.orkestra.io/run";
/// The web-server image loaded into the test node; the CR is Ready only once its Deployment is
/// available, so its Pods must be able to start (no registry can be reached from the node).
const WEB_IMAGE: &str = "ghcr.io/orkspace/orkestra-web:0.1.0";

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
    let text = katalog_text(&id, true).replacen(
        "metadata:\n",
        &format!("metadata:\n  labels: {{{RUN_LABEL}: {id}}}\n"),
        1,
    );
    let katalog = write(dir.path(), "katalog.yaml", &text);

    // The agent, with the aws provider aimed at moto, acting only on this test's Katalog and namespace.
    let config = Config {
        namespaces: vec![ns.name().to_string()],
        katalog_selector: Some(format!("{RUN_LABEL}={id}")),
        leader_election: Toggle::Off,
        ..Config::local()
    };
    let aws = orkestra_provider_aws::AwsProvider::with_clients(
        env.s3_client().await,
        env.rds_client().await,
        &env.aws.region,
    );
    let mut providers = orkestra_provider::ProviderRuntime::new();
    providers.register(
        std::sync::Arc::new(aws),
        orkestra_provider::RateLimit::default(),
    );
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(orkestra_agent::run_with(
        config,
        env.client().await,
        providers,
        shutdown.clone(),
    ));

    let o = tokio::task::spawn_blocking({
        let mut c = plugin(env);
        c.args(["apply", "-f"])
            .arg(&katalog)
            .args(["--wait", "--timeout", "90s"]);
        move || run(c)
    })
    .await
    .unwrap();
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
        || {
            let mut c = plugin(env);
            c.args([
                "status",
                &format!("{kind}/web"),
                "-n",
                ns.name(),
                "-o",
                "json",
            ]);
            async move {
                let o = tokio::task::spawn_blocking(move || run(c)).await.ok()?;
                let v: Value = serde_json::from_str(&stdout(&o)).ok()?;
                let item = v["items"][0].clone();
                (item["ready"] == true && item["external"][0]["state"] == "Ready").then_some(item)
            }
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
    let o = tokio::task::spawn_blocking({
        let mut c = plugin(env);
        c.args(["plan", "-f"]).arg(&katalog).args([
            "site/web",
            "-n",
            ns.name(),
            "--detailed-exitcode",
        ]);
        move || run(c)
    })
    .await
    .unwrap();
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
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), agent).await;
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}
