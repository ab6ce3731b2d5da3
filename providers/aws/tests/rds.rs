//! `aws.rds` against the real moto server. moto creates, modifies and deletes instances at once
//! (status `available` straight away), so the in-between states are covered by the
//! aws-smithy-mocks tests in rds_mocks.rs.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use orkestra_provider::ownership::TAG_OWNER_UID;
use orkestra_provider::{Action, KubeReader, State};
use orkestra_testsupport::unique_name;
use serde_json::json;

const PASSWORD: &str = "s3cr3t-Passw0rd";

fn password_reader(namespace: &str) -> KubeReader {
    let mut s = Secret::default();
    s.metadata.namespace = Some(namespace.into());
    s.metadata.name = Some("db-pass".into());
    s.data = Some(BTreeMap::from([(
        "password".to_string(),
        ByteString(PASSWORD.as_bytes().to_vec()),
    )]));
    KubeReader::fixed(namespace, vec![s], vec![])
}

fn db(identifier: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({
        "identifier": identifier,
        "instanceClass": "db.t3.micro",
        "engine": "postgres",
        "engineVersion": "16",
        "allocatedStorage": 20,
        "masterUsername": "app_admin",
        "masterPasswordSecret": {"name": "db-pass"},
        "tags": {"team": "data"},
    });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

async fn describe(h: &Harness, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
    h.rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.db_instances().first().cloned())
}

#[tokio::test]
async fn create_noop_modify_delete_with_final_snapshot() {
    let h = harness().await;
    let id = unique_name("shopdb");
    let me = owner("shop");
    let ctx = || ctx_with(password_reader("shop"));
    let d = decl("rds", db(&id, json!({})), &me);

    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Create);
    let text = plan.render();
    assert!(
        text.contains("+ endpoint") && text.contains("(known after apply)"),
        "{text}"
    );
    assert!(
        text.contains("+ masterPasswordSecret") && text.contains("(sensitive value)"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD));

    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    let r = row(&report);
    assert!(matches!(r.state, State::Ready | State::Creating), "{r:?}");
    assert_eq!(mutating_ops(&h.log), ["CreateDBInstance"]);
    let status_json = serde_json::to_string(&report.rows).unwrap();
    assert!(
        !status_json.contains(PASSWORD),
        "the password reached the status: {status_json}"
    );
    let inst = describe(&h, &id).await.expect("created");
    assert_eq!(inst.db_instance_class(), Some("db.t3.micro"));
    assert!(inst
        .tag_list()
        .iter()
        .any(|t| t.key() == Some(TAG_OWNER_UID) && t.value() == Some(me.uid.as_str())));

    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    let r = row(&report);
    assert!(r.outputs.contains_key("endpoint"), "{r:?}");
    assert_eq!(r.outputs.get("status"), Some(&json!("available")));
    assert!(
        r.id.as_deref()
            .is_some_and(|a| a.starts_with("arn:aws:rds:")),
        "{r:?}"
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());

    // Modify only what differs.
    let bigger = decl(
        "rds",
        db(
            &id,
            json!({"instanceClass": "db.t3.small", "allocatedStorage": 30, "applyImmediately": true}),
        ),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&bigger)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update);
    let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["instanceClass", "allocatedStorage"]);
    h.log.clear();
    h.runtime
        .reconcile(&ctx(), std::slice::from_ref(&bigger))
        .await;
    assert_eq!(mutating_ops(&h.log), ["ModifyDBInstance"]);
    let inst = describe(&h, &id).await.unwrap();
    assert_eq!(inst.db_instance_class(), Some("db.t3.small"));
    assert_eq!(inst.allocated_storage(), Some(30));

    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&bigger))
        .await;
    assert_state(&report, State::Ready);
    assert!(
        h.log.mutating().is_empty(),
        "modification asked again: {:?}",
        h.log.mutating()
    );

    // Immutable fields are reported, never changed.
    let other_engine = decl(
        "rds",
        db(
            &id,
            json!({"engine": "mysql", "instanceClass": "db.t3.small", "allocatedStorage": 30}),
        ),
        &me,
    );
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&other_engine))
        .await;
    assert_state(&report, State::Error);
    assert!(
        row(&report)
            .message
            .contains("requires replacement: engine \"postgres\" -> \"mysql\""),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty());

    // Delete takes a final snapshot by default.
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&bigger))
        .await;
    let r = row(&report);
    assert!(matches!(r.state, State::Deleting | State::Deleted), "{r:?}");
    assert_eq!(mutating_ops(&h.log), ["DeleteDBInstance"]);
    let snapshots = h
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    assert!(
        snapshots.db_snapshots().iter().any(|s| s
            .db_snapshot_identifier()
            .is_some_and(|n| n.starts_with(&format!("{id}-final-")))),
        "no final snapshot: {snapshots:?}"
    );
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&bigger))
        .await;
    assert_state(&report, State::Deleted);
    assert!(describe(&h, &id).await.is_none());
}

#[tokio::test]
async fn tags_are_changed_without_modifying_the_instance() {
    let h = harness().await;
    let id = unique_name("tagdb");
    let me = owner("shop");
    let ctx = || ctx_with(password_reader("shop"));
    let d = decl("rds", db(&id, json!({"skipFinalSnapshot": true})), &me);
    h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;

    let retagged = decl(
        "rds",
        db(
            &id,
            json!({"tags": {"team": "payments", "tier": "1"}, "skipFinalSnapshot": true}),
        ),
        &me,
    );
    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&retagged))
            .await,
        State::Ready,
    );
    assert_eq!(mutating_ops(&h.log), ["AddTagsToResource"]);
    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&retagged))
            .await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty());

    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&retagged))
        .await;
    assert!(
        row(&report).message.contains("no final snapshot"),
        "{:?}",
        row(&report)
    );
    let snapshots = h
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    assert!(snapshots.db_snapshots().is_empty(), "{snapshots:?}");
}

#[tokio::test]
async fn deletion_protection_is_honoured() {
    let h = harness().await;
    let id = unique_name("protected");
    let me = owner("shop");
    let ctx = || ctx_with(password_reader("shop"));
    let d = decl("rds", db(&id, json!({"deletionProtection": true})), &me);
    h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;

    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleting);
    assert!(
        row(&report).message.contains("deletion protection is on"),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty());
    assert!(describe(&h, &id).await.is_some());

    let unprotected = decl(
        "rds",
        db(
            &id,
            json!({"deletionProtection": false, "skipFinalSnapshot": true}),
        ),
        &me,
    );
    h.runtime
        .reconcile(&ctx(), std::slice::from_ref(&unprotected))
        .await;
    assert_eq!(mutating_ops(&h.log), ["ModifyDBInstance"]);
    h.runtime
        .delete_all(&ctx(), std::slice::from_ref(&unprotected))
        .await;
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&unprotected))
        .await;
    assert_state(&report, State::Deleted);
}

#[tokio::test]
async fn missing_password_secret_is_an_error_naming_it() {
    let h = harness().await;
    let id = unique_name("nopass");
    let d = decl(
        "rds",
        db(
            &id,
            json!({"masterPasswordSecret": {"name": "db-pass", "key": "pw"}}),
        ),
        &owner("shop"),
    );
    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx_with(password_reader("shop")), std::slice::from_ref(&d))
        .await;
    assert_state(&report, State::Error);
    assert_eq!(
        row(&report).message,
        "Secret shop/db-pass: has no key \"pw\""
    );
    assert!(h.log.mutating().is_empty());
    assert!(describe(&h, &id).await.is_none());
}

#[tokio::test]
async fn rds_ready_rows_carry_every_declared_output() {
    let h = harness().await;
    let id = unique_name("outdb");
    let d = decl(
        "rds",
        db(&id, json!({"skipFinalSnapshot": true})),
        &owner("shop"),
    );
    let ctx = || ctx_with(password_reader("shop"));

    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    let created = row(&report);
    assert!(
        matches!(created.state, State::Ready | State::Creating),
        "{created:?}, errors: {:?}",
        report.errors
    );
    if created.state == State::Ready {
        assert_declared_outputs("rds", created);
    }

    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    let r = row(&report);
    assert_declared_outputs("rds", r);
    let out = &r.outputs;
    assert_eq!(out["port"], json!(5432), "{r:?}");
    assert_eq!(out["status"], json!("available"), "{r:?}");
    let arn = out["arn"].as_str().unwrap();
    assert!(
        arn.starts_with(&format!("arn:aws:rds:{}:", h.moto.region)),
        "{arn}"
    );
    assert!(arn.ends_with(&format!(":db:{id}")), "{arn}");
    assert_eq!(r.id.as_deref(), Some(arn));
    assert!(
        out["engineVersion"]
            .as_str()
            .is_some_and(|v| v == "16" || v.starts_with("16.")),
        "{r:?}"
    );

    // The values are the instance's own, as RDS describes it.
    let inst = describe(&h, &id).await.expect("the instance");
    let ep = inst.endpoint().expect("an endpoint");
    assert_eq!(out["endpoint"].as_str(), ep.address());
    assert_eq!(out["port"].as_i64(), ep.port().map(i64::from));
    assert_eq!(out["arn"].as_str(), inst.db_instance_arn());
    assert_eq!(out["engineVersion"].as_str(), inst.engine_version());
    assert!(
        !serde_json::to_string(&report.rows)
            .unwrap()
            .contains(PASSWORD),
        "the password reached the row"
    );

    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert!(
        matches!(row(&report).state, State::Deleting | State::Deleted),
        "{:?}",
        row(&report)
    );
}
