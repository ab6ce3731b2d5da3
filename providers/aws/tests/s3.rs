//! `aws.s3` against the real moto server (tests/cluster/up.sh's moto, via orkestra-testsupport).
//! Every test uses its own bucket names and owner uid, so tests share one moto safely.

mod common;

use std::collections::BTreeMap;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging};
use common::*;
use orkestra_provider::ownership::{TAG_KATALOG, TAG_OWNER, TAG_OWNER_UID};
use orkestra_provider::{Action, Blocked, KubeReader, State};
use orkestra_testsupport::unique_name;
use serde_json::{json, Value};

async fn tags(h: &Harness, bucket: &str) -> BTreeMap<String, String> {
    match h.s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// Whether versioning is Enabled, read directly. moto 5.2.5 names the XML root of this answer
/// `GetBucketVersioningResponse`, which the SDK refuses to parse, so the raw body is read then.
async fn versioning(h: &Harness, bucket: &str) -> bool {
    match h.s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => out.status() == Some(&BucketVersioningStatus::Enabled),
        Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 200 => {
            let body = se.raw().body().bytes().expect("a buffered body");
            String::from_utf8_lossy(body).contains("<Status>Enabled</Status>")
        }
        Err(e) => panic!("GetBucketVersioning: {e:?}"),
    }
}

async fn exists(h: &Harness, bucket: &str) -> bool {
    h.s3.head_bucket().bucket(bucket).send().await.is_ok()
}

async fn create_directly(h: &Harness, bucket: &str, tag_set: &[(&str, &str)]) {
    h.s3.create_bucket().bucket(bucket).send().await.unwrap();
    if !tag_set.is_empty() {
        let set = tag_set
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
            .collect();
        h.s3.put_bucket_tagging()
            .bucket(bucket)
            .tagging(Tagging::builder().set_tag_set(Some(set)).build().unwrap())
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn create_then_noop_second_reconcile_makes_no_mutating_call() {
    let h = harness().await;
    let bucket = unique_name("assets");
    let me = owner("web");
    let d = decl(
        "s3",
        json!({"bucket": bucket, "versioning": "true", "encryption": "AES256", "tags": {"team": "web"}}),
        &me,
    );

    let plan = &h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await[0];
    let (_, plan) = plan.as_ref().unwrap();
    assert_eq!(plan.action, Action::Create);
    let text = plan.render();
    assert!(
        text.contains(&format!("# aws.s3 \"{bucket}\" will be created")),
        "{text}"
    );
    assert!(text.contains("+ versioning"), "{text}");
    assert!(text.contains(&format!("arn:aws:s3:::{bucket}")), "{text}");
    assert!(h.log.mutating().is_empty(), "plan must not change anything");

    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    let r = row(&report);
    assert_eq!(
        r.id.as_deref(),
        Some(format!("arn:aws:s3:::{bucket}").as_str())
    );
    assert_eq!(r.outputs.get("region"), Some(&json!(h.moto.region)));
    assert_eq!(
        mutating_ops(&h.log),
        [
            "CreateBucket",
            "PutBucketTagging",
            "PutBucketVersioning",
            "PutBucketEncryption",
            "PutPublicAccessBlock"
        ]
    );
    let t = tags(&h, &bucket).await;
    assert_eq!(t.get(TAG_OWNER_UID), Some(&me.uid));
    assert_eq!(t.get(TAG_OWNER).map(String::as_str), Some("shop/web"));
    assert_eq!(t.get(TAG_KATALOG).map(String::as_str), Some("shop-katalog"));
    assert_eq!(t.get("team").map(String::as_str), Some("web"));
    assert!(versioning(&h, &bucket).await);
    let pab =
        h.s3.get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    assert_eq!(
        pab.public_access_block_configuration()
            .unwrap()
            .block_public_acls(),
        Some(true)
    );

    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert!(h.log.total() > 0, "the second reconcile must still look");
    assert_eq!(
        mutating_ops(&h.log),
        Vec::<String>::new(),
        "no-op reconcile made mutating calls"
    );
    assert_eq!(report.mutations, 0);
    println!("calls per resync (observe only): {}", h.log.total());
}

#[tokio::test]
async fn update_in_place_changes_only_what_differs() {
    let h = harness().await;
    let bucket = unique_name("upd");
    let me = owner("web");
    let v1 = decl(
        "s3",
        json!({"bucket": bucket, "versioning": false, "tags": {"team": "a", "old": "x"}}),
        &me,
    );
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&v1)).await,
        State::Ready,
    );

    let v2 = decl(
        "s3",
        json!({"bucket": bucket, "versioning": true, "tags": {"team": "b", "env": "prod"}}),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&v2)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update);
    let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["versioning", "tags.env", "tags.team", "tags.old"]);
    let text = plan.render();
    assert!(text.contains("~ versioning = false -> true"), "{text}");
    assert!(text.contains("- tags.old   = \"x\" -> null"), "{text}");

    h.log.clear();
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&v2)).await,
        State::Ready,
    );
    assert_eq!(
        mutating_ops(&h.log),
        ["PutBucketTagging", "PutBucketVersioning"]
    );
    assert!(versioning(&h, &bucket).await);
    let t = tags(&h, &bucket).await;
    assert_eq!(t.get("team").map(String::as_str), Some("b"));
    assert_eq!(t.get("env").map(String::as_str), Some("prod"));
    assert!(!t.contains_key("old"));
    assert_eq!(
        t.get(TAG_OWNER_UID),
        Some(&me.uid),
        "ownership tags must survive a tag update"
    );

    h.log.clear();
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&v2)).await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
}

#[tokio::test]
async fn drift_made_outside_is_corrected() {
    let h = harness().await;
    let bucket = unique_name("drift");
    let me = owner("web");
    let d = decl("s3", json!({"bucket": bucket, "versioning": true}), &me);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    h.s3.delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();

    h.log.clear();
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    assert_eq!(mutating_ops(&h.log), ["PutPublicAccessBlock"]);
}

#[tokio::test]
async fn region_change_is_reported_as_replacement_and_not_done() {
    let h = harness().await;
    let bucket = unique_name("region");
    let me = owner("web");
    let d = decl("s3", json!({"bucket": bucket, "region": "us-east-1"}), &me);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );

    let moved = decl(
        "s3",
        json!({"bucket": bucket, "region": "eu-west-1", "versioning": true}),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&moved)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Replace);
    assert_eq!(plan.requires_replacement, ["region"]);
    assert_eq!(plan.blocked, Some(Blocked::ReplacementRequired));
    let text = plan.render();
    assert!(
        text.contains("~ region     = \"us-east-1\" -> \"eu-west-1\" # forces replacement"),
        "{text}"
    );

    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&moved))
        .await;
    assert_state(&report, State::Error);
    let message = &row(&report).message;
    assert!(
        message.contains("requires replacement: region \"us-east-1\" -> \"eu-west-1\""),
        "{message}"
    );
    assert!(
        h.log.mutating().is_empty(),
        "a replacement must never be carried out: {:?}",
        h.log.mutating()
    );
    assert!(!versioning(&h, &bucket).await);
}

#[tokio::test]
async fn foreign_bucket_is_a_conflict_and_never_touched() {
    let h = harness().await;
    let bucket = unique_name("foreign");
    let other = owner("someone-else");
    create_directly(
        &h,
        &bucket,
        &[
            (TAG_OWNER_UID, &other.uid),
            (TAG_OWNER, "other/someone-else"),
        ],
    )
    .await;
    let me = owner("web");
    // Even adopt: true does not take a bucket that carries another owner's tags.
    let d = decl(
        "s3",
        json!({"bucket": bucket, "versioning": true, "adopt": true}),
        &me,
    );

    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Conflict);
    assert!(
        row(&report)
            .message
            .contains("belongs to other/someone-else"),
        "{:?}",
        row(&report)
    );
    let deleted = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&deleted, State::Conflict);
    assert!(
        row(&deleted).message.starts_with("not deleted"),
        "{:?}",
        row(&deleted)
    );
    assert!(
        deleted.delete_finished(),
        "a conflict must not hold the finalizer forever"
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert!(exists(&h, &bucket).await);
    assert_eq!(tags(&h, &bucket).await.get(TAG_OWNER_UID), Some(&other.uid));
}

#[tokio::test]
async fn unowned_bucket_needs_adopt() {
    let h = harness().await;
    let bucket = unique_name("unowned");
    create_directly(&h, &bucket, &[("keep", "me")]).await;
    let me = owner("web");

    h.log.clear();
    let not_adopted = decl("s3", json!({"bucket": bucket}), &me);
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&not_adopted))
        .await;
    assert_state(&report, State::Conflict);
    assert!(
        row(&report).message.contains("set adopt: true"),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty());

    let adopted = decl("s3", json!({"bucket": bucket, "adopt": true}), &me);
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&adopted))
        .await;
    assert_state(&report, State::Ready);
    assert_eq!(
        mutating_ops(&h.log),
        ["PutBucketTagging", "PutPublicAccessBlock"]
    );
    let t = tags(&h, &bucket).await;
    assert_eq!(t.get(TAG_OWNER_UID), Some(&me.uid));
    assert_eq!(
        t.get("keep").map(String::as_str),
        Some("me"),
        "undeclared tags are kept when tags are not declared"
    );

    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&adopted))
            .await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
}

#[tokio::test]
async fn observe_only_reads_and_never_writes() {
    let h = harness().await;
    let bucket = unique_name("observed");
    create_directly(&h, &bucket, &[]).await;
    let me = owner("web");
    let d = decl(
        "s3",
        json!({"bucket": bucket, "versioning": true, "managementPolicy": "Observe"}),
        &me,
    );
    let missing = decl(
        "s3",
        json!({"bucket": unique_name("absent"), "managementPolicy": "Observe"}),
        &me,
    );

    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx(), &[d.clone(), missing.clone()])
        .await;
    assert_eq!(report.rows[0].state, State::Ready, "{:?}", report.rows[0]);
    assert!(
        report.rows[0].message.contains("drift not corrected"),
        "{:?}",
        report.rows[0]
    );
    assert_eq!(report.rows[1].state, State::Error, "{:?}", report.rows[1]);
    assert!(
        report.rows[1].message.contains("does not exist"),
        "{:?}",
        report.rows[1]
    );

    let deleted = h.runtime.delete_all(&ctx(), &[d, missing.clone()]).await;
    assert!(
        deleted.rows.iter().all(|r| r.state == State::Orphaned),
        "{:?}",
        deleted.rows
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert!(exists(&h, &bucket).await);
    assert!(!exists(&h, &missing.name).await);
    assert!(!versioning(&h, &bucket).await);
}

#[tokio::test]
async fn orphan_policy_leaves_the_bucket() {
    let h = harness().await;
    let bucket = unique_name("orphan");
    let me = owner("web");
    let d = decl(
        "s3",
        json!({"bucket": bucket, "deletionPolicy": "Orphan"}),
        &me,
    );
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );

    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Orphaned);
    assert!(report.delete_finished());
    assert!(h.log.mutating().is_empty());
    assert!(exists(&h, &bucket).await);
}

#[tokio::test]
async fn delete_of_a_missing_bucket_is_success() {
    let h = harness().await;
    let d = decl("s3", json!({"bucket": unique_name("never")}), &owner("web"));
    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleted);
    assert!(report.delete_finished());
    assert!(report.errors.is_empty());
    assert!(h.log.mutating().is_empty());
}

#[tokio::test]
async fn non_empty_bucket_is_deleted_only_with_force_destroy() {
    let h = harness().await;
    let bucket = unique_name("full");
    let me = owner("web");
    let d = decl("s3", json!({"bucket": bucket, "versioning": true}), &me);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    for body in ["one", "two"] {
        h.s3.put_object()
            .bucket(&bucket)
            .key("k")
            .body(ByteStream::from_static(body.as_bytes()))
            .send()
            .await
            .unwrap();
    }
    h.s3.put_object()
        .bucket(&bucket)
        .key("other")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();

    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleting);
    let message = &row(&report).message;
    assert!(
        message.contains("not empty (3 objects or versions)")
            && message.contains("forceDestroy: true"),
        "{message}"
    );
    assert!(!report.delete_finished());
    assert!(report.requeue_after.is_some());
    assert!(h.log.mutating().is_empty());
    assert!(exists(&h, &bucket).await);

    let forced = decl(
        "s3",
        json!({"bucket": bucket, "versioning": true, "forceDestroy": true}),
        &me,
    );
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&forced))
        .await;
    assert_state(&report, State::Deleted);
    assert_eq!(mutating_ops(&h.log), ["DeleteObjects", "DeleteBucket"]);
    assert!(!exists(&h, &bucket).await);
}

#[tokio::test]
async fn create_and_delete_round_trip() {
    let h = harness().await;
    let bucket = unique_name("trip");
    let d = decl("s3", json!({"bucket": bucket}), &owner("web"));
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleted);
    let ops: Vec<String> = h.log.calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(
        ops,
        [
            "HeadBucket",
            "GetBucketTagging",
            "ListObjectVersions",
            "DeleteBucket"
        ]
    );
    assert!(!exists(&h, &bucket).await);
}

#[tokio::test]
async fn a_failing_declaration_does_not_stop_the_others() {
    let h = harness().await;
    let me = owner("web");
    let good = decl("s3", json!({"bucket": unique_name("good")}), &me);
    let secretless = decl(
        "s3",
        json!({"bucket": unique_name("creds"), "credentials": {"secretName": "absent"}}),
        &me,
    );
    let report = h
        .runtime
        .reconcile(
            &ctx_with(KubeReader::fixed("shop", vec![], vec![])),
            &[secretless.clone(), good.clone()],
        )
        .await;
    assert_eq!(report.rows[0].state, State::Error);
    assert_eq!(report.rows[0].message, "Secret shop/absent: not found");
    assert_eq!(report.rows[1].state, State::Ready, "{:?}", report.rows[1]);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].target.name, secretless.name);
    assert!(exists(&h, &good.name).await);
    assert!(!exists(&h, &secretless.name).await);
}

#[tokio::test]
async fn observe_only_may_read_a_foreign_bucket() {
    let h = harness().await;
    let bucket = unique_name("watched");
    let other = owner("someone-else");
    create_directly(&h, &bucket, &[(TAG_OWNER_UID, &other.uid), ("team", "x")]).await;
    let d = decl(
        "s3",
        json!({"bucket": bucket, "managementPolicy": "Observe", "tags": {"team": "x"}, "publicAccessBlock": false}),
        &owner("web"),
    );
    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert_eq!(
        row(&report).message,
        "",
        "no drift: ownership tags are not compared under Observe"
    );
    assert!(h.log.mutating().is_empty());
}

#[tokio::test]
async fn s3_ready_rows_carry_every_declared_output() {
    let h = harness().await;
    let me = owner("web");
    // The default region (no location constraint) and a declared one.
    for region in [None, Some("eu-west-1")] {
        let bucket = unique_name("outputs");
        let mut item = json!({"bucket": bucket, "forceDestroy": true});
        if let Some(r) = region {
            item["region"] = json!(r);
        }
        let d = decl("s3", item, &me);
        let region = region.unwrap_or(&h.moto.region).to_string();
        let expected = json!({
            "bucket": bucket,
            "arn": format!("arn:aws:s3:::{bucket}"),
            "region": region,
            "domainName": format!("{bucket}.s3.{region}.amazonaws.com"),
        });

        // The create's row (apply), then a no-op resync's (observe).
        for pass in ["create", "resync"] {
            let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
            let r = row(&report);
            assert_declared_outputs("s3", r);
            assert_eq!(
                Value::Object(r.outputs.clone()),
                expected,
                "{pass} in {region}"
            );
            assert_eq!(r.id.as_deref(), expected["arn"].as_str(), "{pass}");
        }

        let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
        assert_state(&report, State::Deleted);
    }
}
