//! Deleting a CR in order, against the real control plane and its node: the onDelete Job really
//! runs (a Pod of the shell image on the test node) and holds the finalizer until the Job
//! controller reports it complete; then the cluster-scoped child (which owner references cannot
//! clean up from a namespaced owner) is deleted by the agent; then the CR goes.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams};
use kube::runtime::watcher;
use orkestra_testsupport::strip_finalizers;
use orkestra_testsupport::{cluster, wait_for};
use serde_json::json;

/// Whether the Job controller has recorded the Job complete with a succeeded Pod.
fn complete(j: &Job) -> bool {
    let Some(s) = &j.status else { return false };
    s.succeeded.unwrap_or(0) >= 1
        && s.conditions.as_ref().is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
}

#[tokio::test]
async fn on_delete_job_runs_first_then_the_cluster_scoped_child_goes() {
    init_logs();
    let env = cluster().await;
    // The onDelete Job must run for real: without the node it would never complete.
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-lifecycle").await.unwrap();
    install_katalog_crd(&client).await;
    let mut f = Fixture::load(
        "team-access",
        "access.example.io",
        "team-access",
        "cr-platform.yaml",
    );
    // The image the node holds (katalog.yaml names busybox:1.36, which no registry serves here),
    // and a few seconds of work, so that the CR is seen waiting for the Job while it runs.
    let job = &mut f.katalog["spec"]["crds"][0]["operatorBox"]["onDelete"]["jobs"][0];
    assert_eq!(job["name"], "{{ .metadata.name }}-farewell", "{job}");
    job["image"] = json!(SHELL_IMAGE);
    job["command"] = json!([
        "sh",
        "-c",
        "sleep 5; echo access for {{ .spec.team }} removed"
    ]);
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let crs = cr_api(&client, &f, ns.name());

    create(&client, &f.cr_in(ns.name(), "platform")).await;
    wait_cr(&crs, "platform", "TeamAccess Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role = format!("{}-platform-reader", ns.name());
    assert!(roles.get_opt(&role).await.unwrap().is_some());

    // The Job is garbage collected with its CR moments after it completes: a watch keeps the
    // last state the Job controller gave it.
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());
    let seen_complete: Arc<Mutex<Option<Job>>> = Arc::default();
    let watch = tokio::spawn({
        let jobs = jobs.clone();
        let seen = seen_complete.clone();
        async move {
            let config = watcher::Config::default().fields("metadata.name=platform-farewell");
            let mut events = watcher::watcher(jobs, config).boxed();
            while let Some(ev) = events.next().await {
                let found = match ev {
                    Ok(watcher::Event::Apply(j) | watcher::Event::InitApply(j)) => Some(j),
                    _ => None,
                };
                if let Some(j) = found.filter(complete) {
                    *seen.lock().unwrap() = Some(j);
                }
            }
        }
    });

    crs.delete("platform", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the onDelete Job is created", TIMEOUT, || async {
        jobs.get_opt("platform-farewell").await.ok().flatten()
    })
    .await
    .unwrap();
    let cr = wait_cr(&crs, "platform", "the CR waits for its Job", |v| {
        ready_of(v).is_some_and(|r| r.1 == "Deleting")
    })
    .await;
    let (_, _, message) = ready_of(&cr).unwrap();
    assert!(
        message.contains("onDelete Job platform-farewell"),
        "{message}"
    );
    let running = jobs.get("platform-farewell").await.unwrap();
    assert!(
        !complete(&running),
        "the Job ran before the test saw the CR wait for it: {:?}",
        running.status
    );
    assert!(
        roles.get_opt(&role).await.unwrap().is_some(),
        "nothing is removed before the onDelete Job has succeeded"
    );

    // The node runs the Job's Pod; the Job controller records it complete; then cleanup goes on.
    wait_gone(
        &crs,
        "platform",
        "the CR is gone after its Job ran to completion on the node",
    )
    .await;
    // (The watch may deliver the completion a moment after the CR is seen gone.)
    let done = wait_for(
        "the Job platform-farewell seen complete by the watch",
        TIMEOUT,
        || async { seen_complete.lock().unwrap().clone() },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: the CR went without its Job ever being seen complete"));
    let status = done.status.unwrap();
    assert_eq!(status.succeeded, Some(1), "{status:?}");
    assert!(status.completion_time.is_some(), "{status:?}");
    let left = roles.get_opt(&role).await.unwrap();
    assert!(
        left.is_none_or(|r| r.metadata.deletion_timestamp.is_some()),
        "the cluster-scoped ClusterRole {role} is deleted with its CR"
    );

    watch.abort();
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}
