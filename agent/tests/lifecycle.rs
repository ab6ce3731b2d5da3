//! Deleting a CR in order, against the real control plane: the onDelete Job runs first and holds
//! the finalizer until it has succeeded; then the cluster-scoped child (which owner references
//! cannot clean up from a namespaced owner) is deleted by the agent; then the CR goes.

mod common;

use common::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use orkestra_testsupport::{cluster, wait_for};
use serde_json::json;

#[tokio::test]
async fn on_delete_job_runs_first_then_the_cluster_scoped_child_goes() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("agent-lifecycle").await.unwrap();
    install_katalog_crd(&client).await;
    let f = Fixture::load(
        "team-access",
        "access.example.io",
        "team-access",
        "cr-platform.yaml",
    );
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

    crs.delete("platform", &DeleteParams::default())
        .await
        .unwrap();
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());
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
    assert!(
        roles.get_opt(&role).await.unwrap().is_some(),
        "nothing is removed before the onDelete Job has succeeded"
    );

    // The test cluster has no nodes, so no Pod of the Job can ever run: the test reports the
    // success the Job controller would record once the Pod exited 0.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    jobs.patch_status(
        "platform-farewell",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "startTime": now, "completionTime": now, "succeeded": 1, "active": 0,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
                {"type": "Complete", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
            ],
        }})),
    )
    .await
    .unwrap();

    wait_gone(&crs, "platform", "the CR is gone after its Job succeeded").await;
    let left = roles.get_opt(&role).await.unwrap();
    assert!(
        left.is_none_or(|r| r.metadata.deletion_timestamp.is_some()),
        "the cluster-scoped ClusterRole {role} is deleted with its CR"
    );

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}
