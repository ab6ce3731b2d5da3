//! A CR is Ready only when its children are, against the real control plane and its node: a
//! Deployment whose Pods cannot start keeps the CR `Ready=False` (reason `Waiting`) with a
//! message naming the Deployment; once its Pods run and are available for the Deployment's
//! generation, the CR turns `Ready=True`. The entry's resync is 10 minutes, so the turn can only
//! come from the controller's watch on Deployments (a status change wakes the owning CR).
//!
//! Needs the node (kubelet + containerd with the web image loaded): without it the test fails at
//! once, naming what is missing.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DeleteParams, GroupVersionKind, Patch, PatchParams};
use orkestra_testsupport::strip_finalizers;
use orkestra_testsupport::{cluster, unique_name};
use serde_json::json;

/// An image no registry serves and the node does not hold: its Pods end in ErrImagePull.
const MISSING_IMAGE: &str = "ghcr.io/orkspace/orkestra-does-not-exist:0.1.0";

#[tokio::test]
async fn a_cr_is_ready_only_once_its_deployment_is_available() {
    init_logs();
    let env = cluster().await;
    let node = require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-readiness").await.unwrap();
    install_katalog_crd(&client).await;

    let id = unique_name("r").replace('-', "");
    let group = format!("{id}.readiness.orkestra.io");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("webs.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"kind": "Web", "plural": "webs", "singular": "web", "listKind": "WebList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "image": {"type": "string"}, "replicas": {"type": "integer"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    });
    let katalog = json!({
        "apiVersion": "orkestra.orkspace.io/v1", "kind": "Katalog",
        "metadata": {"name": format!("readiness-{id}"), "labels": {RUN_LABEL: id}},
        "spec": {"crds": {"web": {
            "apiTypes": {"group": group, "version": "v1", "kind": "Web", "plural": "webs"},
            "operatorBox": {
                "reconciler": {"default": true, "resync": "10m"},
                "onCreate": {
                    "deployments": [{"name": "{{ .metadata.name }}", "image": "{{ .spec.image }}",
                        "replicas": "{{ .spec.replicas }}", "port": 8080, "reconcile": true}],
                    "services": [{"name": "{{ .metadata.name }}", "port": 80, "targetPort": 8080,
                        "reconcile": true}],
                }}}}}
    });
    install_crd(&client, &crd).await;
    create(&client, &katalog).await;
    let agent = start_agent(env, client.clone(), config(&id, ns.name())).await;

    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(&group, "v1", "Web"), "webs");
    let crs: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &ar);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());

    // Pods that cannot pull their image: the Deployment exists, is never available, and the CR
    // says so, naming it.
    create(
        &client,
        &json!({"apiVersion": format!("{group}/v1"), "kind": "Web",
                "metadata": {"name": "web", "namespace": ns.name()},
                "spec": {"image": MISSING_IMAGE, "replicas": 2}}),
    )
    .await;
    let cr = wait_cr(
        &crs,
        "web",
        "Ready=False, Waiting for Deployment web: 0/2 replicas available",
        |v| {
            ready_of(v).is_some_and(|(s, reason, message)| {
                s == "False"
                    && reason == "Waiting"
                    && message.contains("Deployment web: 0/2 replicas available")
            })
        },
    )
    .await;
    println!("while the image cannot be pulled: {:?}", ready_of(&cr));
    let d = deployments.get("web").await.unwrap();
    assert_eq!(
        d.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0),
        0,
        "{:?}",
        d.status
    );

    // The image the node holds: the Pods start on the node, the Deployment becomes available,
    // the CR turns Ready.
    crs.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"image": WEB_IMAGE}})),
    )
    .await
    .unwrap();
    let cr = wait_cr(
        &crs,
        "web",
        &format!(
            "Ready=True once Deployment web is available (Pods on node {node} with {WEB_IMAGE})"
        ),
        |v| ready_of(v).is_some_and(|r| r.0 == "True"),
    )
    .await;
    let (_, reason, message) = ready_of(&cr).unwrap();
    assert_eq!(reason, "Reconciled", "{message}");
    assert_eq!(
        cr["status"]["observedGeneration"], cr["metadata"]["generation"],
        "{}",
        cr["status"]
    );
    let d = deployments.get("web").await.unwrap();
    let generation = d.metadata.generation;
    let status = d.status.unwrap();
    assert_eq!(status.observed_generation, generation, "{status:?}");
    assert_eq!(status.available_replicas, Some(2), "{status:?}");
    assert_eq!(status.updated_replicas, Some(2), "{status:?}");
    assert_eq!(
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some(WEB_IMAGE)
    );

    crs.delete("web", &DeleteParams::default()).await.unwrap();
    wait_gone(&crs, "web", "the Web CR deleted").await;
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}
