//! Deleting a CR in order, against the real control plane and its node: the onDelete Job really
//! runs (a Pod of the shell image on the test node) and holds the finalizer until the Job
//! controller reports it complete; then the cluster-scoped child (which owner references cannot
//! clean up from a namespaced owner) is deleted by the agent; then the CR goes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use orkestra_testsupport::strip_finalizers;
use orkestra_testsupport::{cluster, wait_for, TestEnv};
use serde_json::{json, Value};

/// The team-access fixture (a ClusterRole child, an onDelete Job); tests replace its operatorBox.
fn team_access() -> Fixture {
    Fixture::load(
        "team-access",
        "access.example.io",
        "team-access",
        "cr-platform.yaml",
    )
}

/// Install `f`'s CRD and Katalog, start an agent for them on `ns` and create the CR `platform`.
async fn start_with_platform(
    env: &TestEnv,
    client: &kube::Client,
    f: &Fixture,
    ns: &str,
) -> (Agent, Api<DynamicObject>) {
    install_crd(client, &f.crd).await;
    create(client, &f.katalog).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns)).await;
    let crs = cr_api(client, f, ns);
    create(client, &f.cr_in(ns, "platform")).await;
    (agent, crs)
}

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
    let mut f = team_access();
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
    let (agent, crs) = start_with_platform(env, &client, &f, ns.name()).await;
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

/// A cluster-scoped kind outside the renderer's fixed list (RuntimeClass) is placed by discovery:
/// written without the CR's namespace and without an owner reference a namespaced CR cannot give
/// it, then left alone by later cycles (before, the body kept the namespace the API server
/// drops, never matched the live object, and was re-applied — an `Updated` event — on every
/// reconcile), and deleted with its CR.
#[tokio::test]
async fn a_cluster_scoped_kind_outside_the_fixed_list_is_placed_by_discovery() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("agent-scope").await.unwrap();
    install_katalog_crd(&client).await;
    let mut f = team_access();
    let entry = &mut f.katalog["spec"]["crds"][0];
    entry["operatorBox"]["reconciler"] = json!({"resync": "3s"});
    entry["operatorBox"]["onReconcile"] = json!({"custom": [{
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": "{{ .metadata.namespace }}-{{ .metadata.name }}-rc"},
        "handler": "runc",
    }]});
    entry["operatorBox"]
        .as_object_mut()
        .unwrap()
        .remove("onDelete");
    let (agent, crs) = start_with_platform(env, &client, &f, ns.name()).await;
    wait_cr(&crs, "platform", "TeamAccess Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;

    let classes: Api<RuntimeClass> = Api::all(client.clone());
    let name = format!("{}-platform-rc", ns.name());
    let rc = classes.get(&name).await.unwrap();
    assert_eq!(rc.handler, "runc");
    assert!(
        rc.metadata.owner_references.is_none(),
        "a namespaced CR cannot own a cluster-scoped object: {:?}",
        rc.metadata.owner_references
    );

    // Three resyncs later (each re-applies an enforced child that drifted), nothing was
    // corrected: the body matches what the API server keeps.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let events: Api<Event> = Api::namespaced(client.clone(), ns.name());
    let corrected: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Updated"))
        .filter_map(|e| e.note)
        .collect();
    assert!(
        corrected.is_empty(),
        "the RuntimeClass was re-applied: {corrected:?}"
    );

    crs.delete("platform", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&crs, "platform", "the CR is gone").await;
    let left = classes.get_opt(&name).await.unwrap();
    assert!(
        left.is_none_or(|r| r.metadata.deletion_timestamp.is_some()),
        "the RuntimeClass {name} is deleted with its CR"
    );
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

/// Children are written with strict field validation: a field the kind does not have (`dat`
/// for `data`) is refused by the API server with a message naming it, on the CR's Ready
/// condition. Both write paths: the server-side apply of an enforced child, and the create of a
/// create-only one (which, without strict validation, dropped the field silently and reported
/// the CR Ready).
#[tokio::test]
async fn a_misspelled_child_field_is_refused_by_the_api_server_naming_it() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("agent-strict").await.unwrap();
    install_katalog_crd(&client).await;
    let mut f = team_access();
    let configmap = |name: &str, field: &str| {
        json!({"custom": [{
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": format!("{{{{ .metadata.name }}}}-{name}")},
            field: {"team": "{{ .spec.team }}"},
        }]})
    };
    let entry = &mut f.katalog["spec"]["crds"][0]["operatorBox"];
    *entry = json!({"default": true, "onReconcile": configmap("enforced", "dat")});
    let (agent, crs) = start_with_platform(env, &client, &f, ns.name()).await;
    // (Server-side apply of a built-in kind refuses it with the typed-patch message; a custom
    // resource's schema would prune it without `fieldValidation=Strict`.)
    let refused = |v: &Value| {
        ready_of(v).is_some_and(|r| {
            r.0 == "False"
                && (r.2.contains(".dat: field not declared in schema")
                    || r.2.contains("unknown field \"dat\""))
        })
    };
    let cr = wait_cr(&crs, "platform", "Ready=False naming `dat`", refused).await;
    assert!(
        ready_of(&cr).unwrap().2.contains("ConfigMap"),
        "{:?}",
        ready_of(&cr)
    );

    // The create-only path: onCreate with the misspelling, the enforced one fixed. A create
    // without strict validation drops the unknown field with a warning and succeeds.
    let katalogs = katalog_api(&client);
    let mut k = f.katalog.clone();
    k["spec"]["crds"][0]["operatorBox"] = json!({
        "default": true,
        "onCreate": configmap("once", "dta"),
        "onReconcile": configmap("enforced", "data"),
    });
    katalogs
        .patch(
            &f.katalog_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": k["spec"]})),
        )
        .await
        .unwrap();
    let refused = |v: &Value| {
        ready_of(v).is_some_and(|r| r.0 == "False" && r.2.contains("unknown field \"dta\""))
    };
    wait_cr(&crs, "platform", "Ready=False naming `dta`", refused).await;

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}
