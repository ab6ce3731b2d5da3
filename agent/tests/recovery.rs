//! Recovery against the real control plane and moto: a create interrupted between CreateBucket
//! and its ownership tags is claimed from the intent the CR's status recorded (and an untagged
//! bucket without such a record is not); a CR whose Katalog no longer renders — or never did —
//! can still be deleted, its recorded external resources deleted from its status rows.

mod common;

use std::collections::BTreeMap;

use common::*;
use kube::api::{DeleteParams, Patch, PatchParams};
use orkestra_testsupport::cluster;
use orkestra_testsupport::strip_finalizers;
use serde_json::{json, Value};

const OWNER_UID_TAG: &str = "orkestra.orkspace.io/owner-uid";

fn stack() -> Fixture {
    Fixture::load(
        "application-stack",
        "platform.example.io",
        "application-stack",
        "cr-shop.yaml",
    )
}

/// The stack CR `name` in `ns`, in us-east-1 (no location constraint needed to pre-create its
/// bucket), with one replica of the web image the test node holds (these tests are about buckets;
/// the CR is Ready only once its Deployment is available).
fn stack_cr(f: &Fixture, ns: &str, name: &str) -> Value {
    let mut cr = f.cr_in(ns, name);
    cr["spec"]["region"] = json!("us-east-1");
    cr["spec"]["image"] = json!(WEB_IMAGE);
    cr["spec"]["replicas"] = json!(1);
    cr
}

async fn bucket_tags(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, String> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

#[tokio::test]
async fn an_interrupted_create_is_claimed_and_an_unrecorded_untagged_bucket_is_not() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-claim").await.unwrap();
    install_katalog_crd(&client).await;
    let f = stack();
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let crs = cr_api(&client, &f, ns.name());
    let s3 = env.s3_client().await;

    // Before any agent runs: "crashed" recorded a create intent and its bucket exists without
    // tags, exactly what an agent killed between CreateBucket and PutBucketTagging leaves behind.
    // "stranger"'s bucket also exists untagged, but nothing recorded creating it.
    let crashed = create(&client, &stack_cr(&f, ns.name(), "crashed")).await;
    create(&client, &stack_cr(&f, ns.name(), "stranger")).await;
    let crashed_bucket = format!("crashed-{}-assets", ns.name());
    let stranger_bucket = format!("stranger-{}-assets", ns.name());
    crs.patch_status(
        "crashed",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"external": [{
            "provider": "aws", "kind": "s3", "name": crashed_bucket, "state": "Creating",
            "intent": "Create", "message": "creating (intent recorded before the create call)",
            "lastSyncTime": "2026-11-30T10:00:00Z",
        }]}})),
    )
    .await
    .unwrap();
    // "early" crashed in its very first reconcile: its intent is in the annotation that came
    // with the finalizer, and it has no status at all.
    let early = create(&client, &stack_cr(&f, ns.name(), "early")).await;
    let early_bucket = format!("early-{}-assets", ns.name());
    let intents = json!([{
        "provider": "aws", "kind": "s3", "name": early_bucket, "state": "Creating",
        "intent": "Create", "lastSyncTime": "2026-11-30T10:00:00Z",
    }]);
    crs.patch(
        "early",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {
            "finalizers": ["orkestra.orkspace.io/cleanup"],
            "annotations": {"orkestra.orkspace.io/create-intents": intents.to_string()},
        }})),
    )
    .await
    .unwrap();
    for b in [&crashed_bucket, &stranger_bucket, &early_bucket] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }

    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let cr = wait_cr(
        &crs,
        "crashed",
        "crashed CR Ready on its claimed bucket",
        |v| ready_of(v).is_some_and(|r| r.0 == "True"),
    )
    .await;
    let tags = bucket_tags(&s3, &crashed_bucket).await;
    assert_eq!(
        tags.get(OWNER_UID_TAG).map(String::as_str),
        crashed.metadata.uid.as_deref(),
        "the claimed bucket carries the CR's owner tags: {tags:?}"
    );
    assert_eq!(cr["status"]["external"][0]["state"], "Ready");
    wait_cr(&crs, "early", "early CR Ready on its claimed bucket", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let tags = bucket_tags(&s3, &early_bucket).await;
    assert_eq!(
        tags.get(OWNER_UID_TAG).map(String::as_str),
        early.metadata.uid.as_deref(),
        "the bucket of the annotation's intent is claimed: {tags:?}"
    );

    let cr = wait_cr(
        &crs,
        "stranger",
        "stranger CR refused the untagged bucket",
        |v| v["status"]["external"][0]["state"] == "Conflict",
    )
    .await;
    let message = cr["status"]["external"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("not created by orkestra"), "{message}");
    assert!(bucket_tags(&s3, &stranger_bucket).await.is_empty());

    // Deleting: the claimed buckets go with their CRs, the stranger's stays.
    for n in ["crashed", "stranger", "early"] {
        crs.delete(n, &DeleteParams::default()).await.unwrap();
    }
    wait_gone(&crs, "crashed", "crashed CR gone").await;
    wait_gone(&crs, "early", "early CR gone").await;
    assert!(s3.head_bucket().bucket(&early_bucket).send().await.is_err());
    wait_gone(&crs, "stranger", "stranger CR gone").await;
    assert!(s3
        .head_bucket()
        .bucket(&crashed_bucket)
        .send()
        .await
        .is_err());
    assert!(s3
        .head_bucket()
        .bucket(&stranger_bucket)
        .send()
        .await
        .is_ok());
    s3.delete_bucket()
        .bucket(&stranger_bucket)
        .send()
        .await
        .unwrap();

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

/// A new CR's finalizer comes in the request that records its bucket's create intent (the
/// annotation), so the agent writes the CR object itself once; its status after that.
#[tokio::test]
async fn a_new_crs_finalizer_comes_with_its_first_create_intent() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-first-write").await.unwrap();
    install_katalog_crd(&client).await;
    let f = stack();
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let crs = cr_api(&client, &f, ns.name());
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    create(&client, &stack_cr(&f, ns.name(), "first")).await;
    let cr = wait_cr(&crs, "first", "first Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let bucket = format!("first-{}-assets", ns.name());
    assert_eq!(
        cr["metadata"]["finalizers"],
        json!(["orkestra.orkspace.io/cleanup"])
    );
    let intents: Value = serde_json::from_str(
        cr["metadata"]["annotations"]["orkestra.orkspace.io/create-intents"]
            .as_str()
            .expect("the intents annotation"),
    )
    .unwrap();
    assert_eq!(intents[0]["name"], bucket.as_str(), "{intents}");
    assert_eq!(intents[0]["intent"], "Create");
    // The status that followed records the bucket without the intent.
    assert_eq!(cr["status"]["external"][0]["state"], "Ready");
    assert!(cr["status"]["external"][0].get("intent").is_none(), "{cr}");
    let writes: Vec<_> = env
        .audit_events()
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.namespace == ns.name()
                && e.resource == "applicationstacks"
                && e.name == "first"
                && e.verb == "patch"
        })
        .collect();
    let on_object = writes
        .iter()
        .filter(|e| {
            !e.request_uri
                .split('?')
                .next()
                .unwrap_or_default()
                .ends_with("/status")
        })
        .count();
    assert_eq!(on_object, 1, "one write to the CR object: {writes:#?}");
    assert!(writes.len() > on_object, "and its status: {writes:#?}");

    crs.delete("first", &DeleteParams::default()).await.unwrap();
    wait_gone(&crs, "first", "first CR gone").await;
    agent.stop().await;
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_cr_that_no_longer_renders_is_cleaned_up_from_its_status() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-unrender").await.unwrap();
    install_katalog_crd(&client).await;
    let mut f = stack();
    // A schema laxer than the templates (image not required), so that the API server accepts CRs
    // the Katalog cannot render.
    f.crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("required");
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let crs = cr_api(&client, &f, ns.name());
    let s3 = env.s3_client().await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;

    // "drifted" converges, then its spec stops rendering; "never" never renders at all.
    create(&client, &stack_cr(&f, ns.name(), "drifted")).await;
    let mut never = stack_cr(&f, ns.name(), "never");
    never["spec"].as_object_mut().unwrap().remove("image");
    create(&client, &never).await;
    wait_cr(&crs, "drifted", "drifted Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let bucket = format!("drifted-{}-assets", ns.name());
    assert!(s3.head_bucket().bucket(&bucket).send().await.is_ok());
    crs.patch(
        "drifted",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"image": null}})),
    )
    .await
    .unwrap();
    for n in ["drifted", "never"] {
        wait_cr(&crs, n, "render failure on the CR", |v| {
            ready_of(v).is_some_and(|r| r.1 == "RenderFailed")
        })
        .await;
    }

    for n in ["drifted", "never"] {
        crs.delete(n, &DeleteParams::default()).await.unwrap();
    }
    wait_gone(&crs, "never", "the CR that never rendered is deleted").await;
    wait_gone(&crs, "drifted", "the CR that stopped rendering is deleted").await;
    assert!(
        s3.head_bucket().bucket(&bucket).send().await.is_err(),
        "the bucket recorded in status was deleted with its CR"
    );

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}
