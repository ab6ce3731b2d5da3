//! Per-declaration credentials from a Kubernetes Secret, read through the provider's read-only
//! KubeReader from the real kube-apiserver of the test systems, used against the real moto.
//! moto accepts any key, so the test checks which access key id signed each request.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use orkestra_provider::{KubeReader, Owner, State};
use orkestra_testsupport::unique_name;
use serde_json::json;

#[tokio::test]
async fn credentials_come_from_the_declared_secret() {
    let h = harness().await;
    let env = orkestra_testsupport::cluster().await;
    let ns = env.namespace("creds").await.expect("a test namespace");

    let key_id = "AKIAORKESTRASECRET01";
    let mut secret = Secret::default();
    secret.metadata.name = Some("aws-team-a".into());
    secret.string_data = Some(BTreeMap::from([
        ("AWS_ACCESS_KEY_ID".to_string(), key_id.to_string()),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            "team-a-secret-key".to_string(),
        ),
    ]));
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret created");

    let me = Owner {
        namespace: ns.name().to_string(),
        ..owner("web")
    };
    let reader = KubeReader::new(env.client().await, ns.name());
    let with_secret = decl(
        "s3",
        json!({"bucket": unique_name("creds"), "credentials": {"secretName": "aws-team-a"}}),
        &me,
    );
    let default_chain = decl("s3", json!({"bucket": unique_name("chain")}), &me);

    h.log.clear();
    let report = h
        .runtime
        .reconcile(
            &ctx_with(reader.clone()),
            std::slice::from_ref(&with_secret),
        )
        .await;
    assert_state(&report, State::Ready);
    let calls = h.log.calls();
    assert!(!calls.is_empty());
    assert!(
        calls
            .iter()
            .all(|c| c.access_key_id.as_deref() == Some(key_id)),
        "every request must be signed with the Secret's key: {calls:?}"
    );
    let status = serde_json::to_string(&report.rows).unwrap();
    assert!(!status.contains("team-a-secret-key"), "{status}");

    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(
                &ctx_with(reader.clone()),
                std::slice::from_ref(&default_chain),
            )
            .await,
        State::Ready,
    );
    assert!(
        h.log
            .calls()
            .iter()
            .all(|c| c.access_key_id.as_deref() == Some(h.moto.access_key_id.as_str())),
        "a declaration without credentials uses the provider's own: {:?}",
        h.log.calls()
    );

    // A Secret that lacks a key is an Error row naming Secret and key; AWS is not called.
    let mut partial = Secret::default();
    partial.metadata.name = Some("aws-partial".into());
    partial.string_data = Some(BTreeMap::from([(
        "AWS_ACCESS_KEY_ID".to_string(),
        key_id.to_string(),
    )]));
    ns.api::<Secret>()
        .create(&PostParams::default(), &partial)
        .await
        .expect("secret created");
    let broken = decl(
        "s3",
        json!({"bucket": unique_name("broken"), "credentials": {"secretName": "aws-partial"}}),
        &me,
    );
    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx_with(reader.clone()), std::slice::from_ref(&broken))
        .await;
    assert_state(&report, State::Error);
    assert_eq!(
        row(&report).message,
        format!(
            "Secret {}/aws-partial: has no key \"AWS_SECRET_ACCESS_KEY\"",
            ns.name()
        )
    );
    assert_eq!(h.log.total(), 0);

    let deleted = h
        .runtime
        .delete_all(&ctx_with(reader), &[with_secret, default_chain])
        .await;
    assert!(
        deleted.rows.iter().all(|r| r.state == State::Deleted),
        "{:?}",
        deleted.rows
    );
    ns.cleanup().await.expect("namespace deleted");
}
