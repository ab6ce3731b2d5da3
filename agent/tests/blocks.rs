//! Every Kubernetes block of a Katalog reaches the real API server, written as the agent writes
//! it (created with strict field validation), where other tests compare some of them
//! (cronJobs, statefulSets, ingresses, persistentVolumeClaims) only with hand-written JSON: a
//! field the API does not have would be refused here and fail the test.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::Api;
use kube::Client;
use orkestra_testsupport::{cluster, strip_finalizers, wait_for};
use serde_json::json;

/// Wait until the object `name` of kind `K` exists in `ns`.
async fn exists<K>(client: &Client, ns: &str, name: &str) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let what = format!("{} {name}", K::kind(&Default::default()));
    wait_for(&what, TIMEOUT, || async {
        api.get_opt(name).await.ok().flatten()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn every_block_is_accepted_by_the_api_server_with_strict_validation() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("agent-blocks").await.unwrap();
    install_katalog_crd(&client).await;
    let mut f = Fixture::load(
        "team-access",
        "access.example.io",
        "team-access",
        "cr-platform.yaml",
    );
    f.katalog["spec"]["crds"][0]["operatorBox"] = json!({"default": true, "onCreate": {
        "deployments": [{"name": "b-deploy", "image": WEB_IMAGE, "port": 8080, "replicas": 1,
            "env": {"MODE": "test"}, "resources": {"requests": {"cpu": "10m"}}}],
        "services": [{"name": "b-svc", "port": 8080, "type": "ClusterIP"}],
        "configMaps": [{"name": "b-config", "data": {"a": "b"}}],
        "secrets": [{"name": "b-secret", "stringData": {"k": "v"}}],
        "serviceAccounts": [{"name": "b-sa", "automountServiceAccountToken": false}],
        "jobs": [{"name": "b-job", "image": SHELL_IMAGE, "command": ["sh", "-c", "true"],
            "backoffLimit": 1, "ttlSecondsAfterFinished": 600}],
        "cronJobs": [{"name": "b-cron", "image": SHELL_IMAGE, "schedule": "0 0 * * *",
            "command": ["sh", "-c", "true"], "concurrencyPolicy": "Forbid", "suspend": true,
            "successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1,
            "startingDeadlineSeconds": 60, "timeZone": "Etc/UTC"}],
        "statefulSets": [{"name": "b-sts", "image": WEB_IMAGE, "serviceName": "b-svc",
            "storage": "1Mi", "mountPath": "/data", "replicas": 1}],
        "ingresses": [{"name": "b-ingress", "host": "b.example.com", "path": "/",
            "pathType": "Prefix", "serviceName": "b-svc", "servicePort": 8080}],
        "persistentVolumeClaims": [{"name": "b-pvc", "storage": "1Mi",
            "accessModes": ["ReadWriteOnce"]}],
        "custom": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b-custom"},
            "data": {"x": "y"}, "hasStatus": false}],
    }});
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "platform")).await;

    let n = ns.name();
    let d: Deployment = exists(&client, n, "b-deploy").await;
    let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(c.env.as_ref().unwrap()[0].name, "MODE");
    let _: Service = exists(&client, n, "b-svc").await;
    let _: ConfigMap = exists(&client, n, "b-config").await;
    let s: Secret = exists(&client, n, "b-secret").await;
    assert!(s.data.unwrap().contains_key("k"));
    let _: ServiceAccount = exists(&client, n, "b-sa").await;
    let _: Job = exists(&client, n, "b-job").await;
    let cj: CronJob = exists(&client, n, "b-cron").await;
    let spec = cj.spec;
    assert_eq!(spec.suspend, Some(true));
    assert_eq!(
        (
            spec.successful_jobs_history_limit,
            spec.failed_jobs_history_limit
        ),
        (Some(2), Some(1))
    );
    assert_eq!(spec.starting_deadline_seconds, Some(60));
    assert_eq!(spec.time_zone.as_deref(), Some("Etc/UTC"));
    let sts: StatefulSet = exists(&client, n, "b-sts").await;
    let claims = sts.spec.unwrap().volume_claim_templates.unwrap();
    assert_eq!(claims[0].metadata.name.as_deref(), Some("data"));
    let ing: Ingress = exists(&client, n, "b-ingress").await;
    let rule = &ing.spec.unwrap().rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("b.example.com"));
    let _: PersistentVolumeClaim = exists(&client, n, "b-pvc").await;
    let _: ConfigMap = exists(&client, n, "b-custom").await;

    // Nothing the agent wrote was refused: the CR waits on readiness (a PVC without a
    // provisioner stays Pending), never on an API error.
    let cr = wait_cr(&crs, "platform", "the CR's Ready condition", |v| {
        ready_of(v).is_some()
    })
    .await;
    let (_, reason, message) = ready_of(&cr).unwrap();
    assert!(
        !matches!(
            reason.as_str(),
            "KubernetesError" | "RenderFailed" | "Invalid"
        ),
        "{reason}: {message}"
    );
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}
