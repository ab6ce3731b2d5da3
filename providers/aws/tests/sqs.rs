//! `aws.sqs` against the real moto server of the test systems (via orkestra-testsupport).
//! Every test uses its own queue names and owner uid, so tests share one moto safely; mutating
//! calls are counted both in the client's CallLog and at moto's side (its request recording,
//! filtered by the test's queue name).

mod common;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use orkestra_provider::ownership::{TAG_KATALOG, TAG_OWNER, TAG_OWNER_UID};
use orkestra_provider::{Action, Blocked, State};
use orkestra_testsupport::unique_name;
use serde_json::{json, Value};

/// The queue's URL, if it exists.
async fn url(h: &Harness, name: &str) -> Option<String> {
    h.sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.queue_url().map(str::to_string))
}

async fn exists(h: &Harness, name: &str) -> bool {
    url(h, name).await.is_some()
}

/// Every attribute of the queue, read directly.
async fn attributes(h: &Harness, name: &str) -> HashMap<String, String> {
    let url = url(h, name).await.expect("the queue exists");
    h.sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

async fn tags(h: &Harness, name: &str) -> BTreeMap<String, String> {
    let url = url(h, name).await.expect("the queue exists");
    h.sqs
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .unwrap()
        .tags()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Create a queue behind the provider's back.
async fn create_directly(
    h: &Harness,
    name: &str,
    attrs: &[(&str, &str)],
    tag_set: &[(&str, &str)],
) {
    let mut req = h.sqs.create_queue().queue_name(name);
    for (k, v) in attrs {
        req = req.attributes(QueueAttributeName::from(*k), *v);
    }
    for (k, v) in tag_set {
        req = req.tags(*k, *v);
    }
    req.send().await.unwrap();
}

/// Mutating requests moto served that mention `name`.
fn moto_mutations(h: &Harness, name: &str) -> Vec<String> {
    h.moto
        .mutating_requests(name)
        .expect("moto's request recording")
}

fn policy(queue: &str, action: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "send",
            "Effect": "Allow",
            "Principal": "*",
            "Action": action,
            "Resource": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
        }],
    })
}

#[tokio::test]
async fn create_then_noop_second_reconcile_makes_no_mutating_call() {
    let h = harness().await;
    let name = unique_name("sqs-create");
    let me = owner("web");
    let d = decl(
        "sqs",
        json!({
            "queueName": name, "visibilityTimeout": "45", "messageRetentionPeriod": 86400,
            "delaySeconds": 5, "maximumMessageSize": 2048, "receiveMessageWaitTimeSeconds": 10,
            "sqsManagedSse": true, "policy": policy(&name, "sqs:SendMessage"),
            "tags": {"team": "web"},
        }),
        &me,
    );

    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Create);
    let text = plan.render();
    assert!(
        text.contains(&format!("# aws.sqs \"{name}\" will be created")),
        "{text}"
    );
    assert!(text.contains("+ visibilityTimeout"), "{text}");
    assert!(text.contains("(known after apply)"), "{text}");
    assert!(h.log.mutating().is_empty(), "plan must not change anything");

    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    let r = row(&report);
    assert_declared_outputs("sqs", r);
    let arn = format!("arn:aws:sqs:{}:123456789012:{name}", h.moto.region);
    assert_eq!(r.id.as_deref(), Some(arn.as_str()));
    assert_eq!(r.outputs["arn"], json!(arn));
    assert_eq!(r.outputs["name"], json!(name));
    assert_eq!(r.outputs["url"], json!(url(&h, &name).await.unwrap()));
    // One call creates the queue with its attributes and every tag (crash-safe ownership).
    assert_eq!(mutating_ops(&h.log), ["CreateQueue"]);
    let a = attributes(&h, &name).await;
    assert_eq!(a["VisibilityTimeout"], "45");
    assert_eq!(a["MessageRetentionPeriod"], "86400");
    assert_eq!(a["DelaySeconds"], "5");
    assert_eq!(a["MaximumMessageSize"], "2048");
    assert_eq!(a["ReceiveMessageWaitTimeSeconds"], "10");
    assert_eq!(a["SqsManagedSseEnabled"], "true");
    assert!(a["Policy"].contains("sqs:SendMessage"), "{a:?}");
    let t = tags(&h, &name).await;
    assert_eq!(t.get(TAG_OWNER_UID), Some(&me.uid));
    assert_eq!(t.get(TAG_OWNER).map(String::as_str), Some("shop/web"));
    assert_eq!(t.get(TAG_KATALOG).map(String::as_str), Some("shop-katalog"));
    assert_eq!(t.get("team").map(String::as_str), Some("web"));

    h.log.clear();
    let before = moto_mutations(&h, &name);
    assert_eq!(before, ["CreateQueue"], "moto saw the create");
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert_declared_outputs("sqs", row(&report));
    assert!(h.log.total() > 0, "the second reconcile must still look");
    assert_eq!(mutating_ops(&h.log), Vec::<String>::new());
    assert_eq!(report.mutations, 0);
    assert_eq!(
        moto_mutations(&h, &name),
        before,
        "moto served a mutating request during a no-op reconcile"
    );
    let ops: Vec<String> = h.log.calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(ops, ["GetQueueUrl", "GetQueueAttributes", "ListQueueTags"]);

    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleted);
    assert!(!exists(&h, &name).await);
}

#[tokio::test]
async fn update_in_place_changes_only_what_differs_in_one_attribute_call() {
    let h = harness().await;
    let name = unique_name("sqs-update");
    let me = owner("web");
    let v1 = decl(
        "sqs",
        json!({"queueName": name, "visibilityTimeout": 30, "delaySeconds": 0,
               "policy": policy(&name, "sqs:SendMessage"), "tags": {"team": "a", "old": "x"}}),
        &me,
    );
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&v1)).await,
        State::Ready,
    );

    let v2 = decl(
        "sqs",
        json!({"queueName": name, "visibilityTimeout": 120, "delaySeconds": 0,
               "policy": policy(&name, "sqs:ReceiveMessage"), "tags": {"team": "b", "env": "prod"}}),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&v2)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update);
    let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "visibilityTimeout",
            "policy",
            "tags.env",
            "tags.team",
            "tags.old"
        ]
    );
    let text = plan.render();
    assert!(text.contains("~ visibilityTimeout = 30 -> 120"), "{text}");
    assert!(text.contains("- tags.old"), "{text}");

    h.log.clear();
    let before = moto_mutations(&h, &name).len();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&v2)).await;
    assert_state(&report, State::Ready);
    assert_declared_outputs("sqs", row(&report));
    assert_eq!(
        mutating_ops(&h.log),
        ["SetQueueAttributes", "TagQueue", "UntagQueue"]
    );
    assert_eq!(moto_mutations(&h, &name).len(), before + 3);
    let a = attributes(&h, &name).await;
    assert_eq!(a["VisibilityTimeout"], "120");
    assert!(a["Policy"].contains("sqs:ReceiveMessage"), "{a:?}");
    let t = tags(&h, &name).await;
    assert_eq!(t.get("team").map(String::as_str), Some("b"));
    assert_eq!(t.get("env").map(String::as_str), Some("prod"));
    assert!(!t.contains_key("old"));
    assert_eq!(
        t.get(TAG_OWNER_UID),
        Some(&me.uid),
        "ownership tags must survive a tag update"
    );

    h.log.clear();
    let before = moto_mutations(&h, &name);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&v2)).await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &name), before);

    // Drift made outside is corrected with just that attribute.
    let u = url(&h, &name).await.unwrap();
    h.sqs
        .set_queue_attributes()
        .queue_url(&u)
        .attributes(QueueAttributeName::VisibilityTimeout, "7")
        .send()
        .await
        .unwrap();
    h.log.clear();
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&v2)).await,
        State::Ready,
    );
    assert_eq!(mutating_ops(&h.log), ["SetQueueAttributes"]);
    assert_eq!(attributes(&h, &name).await["VisibilityTimeout"], "120");
    h.runtime
        .delete_all(&ctx(), std::slice::from_ref(&v2))
        .await;
}

#[tokio::test]
async fn a_semantically_equal_policy_is_a_noop() {
    let h = harness().await;
    let name = unique_name("sqs-policy");
    let me = owner("web");
    let resource = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    let d = decl(
        "sqs",
        json!({"queueName": name, "policy": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*",
                           "Action": ["sqs:SendMessage", "sqs:ReceiveMessage"], "Resource": resource}],
        }}),
        &me,
    );
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );

    // The same document written differently behind the provider's back: other key order,
    // whitespace, actions in another order, a lone Resource as a list, Statement as a map.
    let same = format!(
        "{{\n  \"Statement\" : {{ \"Resource\": [\"{resource}\"],\n    \"Action\":[ \"sqs:ReceiveMessage\",\"sqs:SendMessage\" ],\n    \"Principal\":{{\"AWS\":\"*\"}}, \"Effect\":\"Allow\" }},\n  \"Version\":\"2012-10-17\"\n}}"
    );
    let u = url(&h, &name).await.unwrap();
    h.sqs
        .set_queue_attributes()
        .queue_url(&u)
        .attributes(QueueAttributeName::Policy, &same)
        .send()
        .await
        .unwrap();
    // moto keeps the key order (and re-spaces the text): the stored document is still written
    // differently from the declared one.
    let stored = attributes(&h, &name).await["Policy"].clone();
    assert!(stored.starts_with("{\"Statement\""), "{stored}");
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap(),
        serde_json::from_str::<Value>(&same).unwrap()
    );

    // And the declaration with its keys in another order too.
    let reordered = decl(
        "sqs",
        json!({"policy": {
            "Statement": [{"Resource": resource, "Action": ["sqs:ReceiveMessage", "sqs:SendMessage"],
                           "Principal": "*", "Effect": "Allow"}],
            "Version": "2012-10-17",
        }, "queueName": name}),
        &me,
    );
    for declared in [&d, &reordered] {
        let plans = h.runtime.plan(&ctx(), std::slice::from_ref(declared)).await;
        let (_, plan) = plans[0].as_ref().unwrap();
        assert_eq!(plan.action, Action::Noop, "{:?}", plan.changes);
        h.log.clear();
        let before = moto_mutations(&h, &name);
        assert_state(
            &h.runtime
                .reconcile(&ctx(), std::slice::from_ref(declared))
                .await,
            State::Ready,
        );
        assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
        assert_eq!(moto_mutations(&h, &name), before);
    }
    assert_eq!(
        attributes(&h, &name).await["Policy"],
        stored,
        "never rewritten"
    );
    h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
}

/// SQS cannot change a queue's type, and on AWS the name fixes it (only FIFO queues may end in
/// .fifo), so the type can only differ from the declaration under the same name where the name
/// rule is not enforced: moto creates a *standard* queue named `X.fifo`, which AWS refuses. That
/// queue stands in for "the declared type changed".
#[tokio::test]
async fn fifo_change_is_reported_as_replacement_and_never_done() {
    let h = harness().await;
    let name = format!("{}.fifo", unique_name("sqs-replace"));
    let me = owner("web");
    let owner_tags = me.tags();
    let tag_set: Vec<(&str, &str)> = owner_tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    create_directly(&h, &name, &[], &tag_set).await;
    assert!(!attributes(&h, &name).await.contains_key("FifoQueue"));

    let d = decl(
        "sqs",
        json!({"queueName": name, "fifo": true, "visibilityTimeout": 99}),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Replace);
    assert_eq!(plan.requires_replacement, ["fifo"]);
    assert_eq!(plan.blocked, Some(Blocked::ReplacementRequired));
    let text = plan.render();
    assert!(text.contains("must be replaced"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("~ fifo ") && l.ends_with("false -> true # forces replacement")),
        "{text}"
    );

    h.log.clear();
    let before = moto_mutations(&h, &name);
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Error);
    let message = &row(&report).message;
    assert!(
        message.contains("requires replacement: fifo false -> true"),
        "{message}"
    );
    assert!(
        h.log.mutating().is_empty(),
        "a replacement must never be carried out: {:?}",
        h.log.mutating()
    );
    assert_eq!(moto_mutations(&h, &name), before);
    assert_eq!(attributes(&h, &name).await["VisibilityTimeout"], "30");
    h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
}

#[tokio::test]
async fn a_foreign_queue_is_a_conflict_and_never_touched() {
    let h = harness().await;
    let me = owner("web");

    // Created outside orkestra: no owner tags.
    let unowned = unique_name("sqs-foreign");
    create_directly(
        &h,
        &unowned,
        &[("VisibilityTimeout", "30")],
        &[("team", "x")],
    )
    .await;
    // Carrying another CR's owner tags: not even adopt: true takes it.
    let theirs = unique_name("sqs-theirs");
    let other = owner("someone-else");
    create_directly(
        &h,
        &theirs,
        &[],
        &[
            (TAG_OWNER_UID, &other.uid),
            (TAG_OWNER, "other/someone-else"),
        ],
    )
    .await;
    let d1 = decl(
        "sqs",
        json!({"queueName": unowned, "visibilityTimeout": 60, "tags": {"team": "y"}}),
        &me,
    );
    let d2 = decl(
        "sqs",
        json!({"queueName": theirs, "visibilityTimeout": 60, "adopt": true}),
        &me,
    );

    h.log.clear();
    let before = (moto_mutations(&h, &unowned), moto_mutations(&h, &theirs));
    let report = h.runtime.reconcile(&ctx(), &[d1.clone(), d2.clone()]).await;
    assert_eq!(
        report.rows[0].state,
        State::Conflict,
        "{:?}",
        report.rows[0]
    );
    assert!(
        report.rows[0].message.contains("set adopt: true"),
        "{:?}",
        report.rows[0]
    );
    assert_eq!(
        report.rows[1].state,
        State::Conflict,
        "{:?}",
        report.rows[1]
    );
    assert!(
        report.rows[1]
            .message
            .contains("belongs to other/someone-else"),
        "{:?}",
        report.rows[1]
    );

    let deleted = h.runtime.delete_all(&ctx(), &[d1, d2]).await;
    assert!(
        deleted
            .rows
            .iter()
            .all(|r| r.state == State::Conflict && r.message.starts_with("not deleted")),
        "{:?}",
        deleted.rows
    );
    assert!(
        deleted.delete_finished(),
        "a conflict must not hold the finalizer forever"
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(
        (moto_mutations(&h, &unowned), moto_mutations(&h, &theirs)),
        before
    );
    assert_eq!(attributes(&h, &unowned).await["VisibilityTimeout"], "30");
    assert_eq!(
        tags(&h, &unowned).await,
        BTreeMap::from([("team".to_string(), "x".to_string())])
    );
    assert_eq!(tags(&h, &theirs).await.get(TAG_OWNER_UID), Some(&other.uid));
}

#[tokio::test]
async fn adopt_takes_over_an_unowned_queue_and_adds_owner_tags() {
    let h = harness().await;
    let name = unique_name("sqs-adopt");
    create_directly(&h, &name, &[("VisibilityTimeout", "30")], &[("keep", "me")]).await;
    let me = owner("web");
    let d = decl(
        "sqs",
        json!({"queueName": name, "visibilityTimeout": 45, "adopt": true}),
        &me,
    );

    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update);
    assert!(
        plan.notes.iter().any(|n| n.contains("adopting")),
        "{:?}",
        plan.notes
    );

    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert_declared_outputs("sqs", row(&report));
    assert_eq!(mutating_ops(&h.log), ["SetQueueAttributes", "TagQueue"]);
    let t = tags(&h, &name).await;
    assert_eq!(t.get(TAG_OWNER_UID), Some(&me.uid));
    assert_eq!(
        t.get("keep").map(String::as_str),
        Some("me"),
        "undeclared tags are kept when tags are not declared"
    );
    assert_eq!(attributes(&h, &name).await["VisibilityTimeout"], "45");

    h.log.clear();
    let before = moto_mutations(&h, &name);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &name), before);

    // Ours now: deleting the CR deletes it.
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleted);
    assert!(!exists(&h, &name).await);
}

#[tokio::test]
async fn observe_only_reads_and_never_writes() {
    let h = harness().await;
    let name = unique_name("sqs-observed");
    create_directly(&h, &name, &[("VisibilityTimeout", "30")], &[]).await;
    let me = owner("web");
    let d = decl(
        "sqs",
        json!({"queueName": name, "visibilityTimeout": 90, "managementPolicy": "Observe"}),
        &me,
    );
    let missing = decl(
        "sqs",
        json!({"queueName": unique_name("sqs-absent"), "managementPolicy": "Observe"}),
        &me,
    );

    h.log.clear();
    let before = moto_mutations(&h, &name);
    let report = h
        .runtime
        .reconcile(&ctx(), &[d.clone(), missing.clone()])
        .await;
    assert_eq!(report.rows[0].state, State::Ready, "{:?}", report.rows[0]);
    assert!(
        report.rows[0].message.contains(
            "drift not corrected (managementPolicy: Observe): visibilityTimeout 30 -> 90"
        ),
        "{:?}",
        report.rows[0]
    );
    assert_declared_outputs("sqs", &report.rows[0]);
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
    assert_eq!(moto_mutations(&h, &name), before);
    assert!(exists(&h, &name).await);
    assert!(!exists(&h, &missing.name).await);
    assert_eq!(attributes(&h, &name).await["VisibilityTimeout"], "30");
    assert!(tags(&h, &name).await.is_empty());
}

#[tokio::test]
async fn orphan_policy_leaves_the_queue() {
    let h = harness().await;
    let name = unique_name("sqs-orphan");
    let d = decl(
        "sqs",
        json!({"queueName": name, "deletionPolicy": "Orphan"}),
        &owner("web"),
    );
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );

    h.log.clear();
    let before = moto_mutations(&h, &name);
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Orphaned);
    assert!(report.delete_finished());
    assert!(h.log.mutating().is_empty());
    assert_eq!(moto_mutations(&h, &name), before);
    assert!(exists(&h, &name).await);
}

#[tokio::test]
async fn delete_of_a_missing_queue_is_success_and_delete_removes_ours() {
    let h = harness().await;
    let never = decl(
        "sqs",
        json!({"queueName": unique_name("sqs-never")}),
        &owner("web"),
    );
    h.log.clear();
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&never))
        .await;
    assert_state(&report, State::Deleted);
    assert!(report.delete_finished());
    assert!(report.errors.is_empty());
    assert!(h.log.mutating().is_empty());

    let name = unique_name("sqs-trip");
    let d = decl("sqs", json!({"queueName": name}), &owner("web"));
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleted);
    assert_eq!(mutating_ops(&h.log), ["DeleteQueue"]);
    assert_eq!(moto_mutations(&h, &name), ["CreateQueue", "DeleteQueue"]);
    assert!(!exists(&h, &name).await);
}

#[tokio::test]
async fn a_queue_redrives_to_a_dead_letter_queue_named_by_its_arn_output() {
    let h = harness().await;
    let me = owner("web");
    let dlq_name = unique_name("sqs-dlq");
    let dlq = decl(
        "sqs",
        json!({"queueName": dlq_name, "messageRetentionPeriod": 1_209_600}),
        &me,
    );
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&dlq))
        .await;
    assert_state(&report, State::Ready);
    // What `{{ .resources.dlq.outputs.arn }}` renders to once the DLQ is Ready.
    let dlq_arn = row(&report).outputs["arn"]
        .as_str()
        .expect("arn output")
        .to_string();

    let name = unique_name("sqs-main");
    let main = decl(
        "sqs",
        json!({"queueName": name, "deadLetterQueue": {"arn": dlq_arn, "maxReceiveCount": "5"}}),
        &me,
    );
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&main))
        .await;
    assert_state(&report, State::Ready);
    let redrive: Value =
        serde_json::from_str(&attributes(&h, &name).await["RedrivePolicy"]).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], json!(dlq_arn));
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );

    // No-op, then a change of maxReceiveCount only.
    h.log.clear();
    let before = moto_mutations(&h, &name);
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&main))
            .await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &name), before);
    let main2 = decl(
        "sqs",
        json!({"queueName": name, "deadLetterQueue": {"arn": dlq_arn, "maxReceiveCount": 3}}),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&main2)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["deadLetterQueue.maxReceiveCount"]);
    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&main2))
            .await,
        State::Ready,
    );
    assert_eq!(mutating_ops(&h.log), ["SetQueueAttributes"]);

    // Reverse declared order: the queue goes before its dead-letter queue.
    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), &[dlq, main2]).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Deleted),
        "{:?}",
        report.rows
    );
    assert_eq!(mutating_ops(&h.log), ["DeleteQueue", "DeleteQueue"]);
    assert_eq!(
        moto_mutations(&h, &name).last().map(String::as_str),
        Some("DeleteQueue")
    );
    assert!(!exists(&h, &name).await && !exists(&h, &dlq_name).await);
}

#[tokio::test]
async fn fifo_queue_with_a_fifo_dead_letter_queue() {
    let h = harness().await;
    let me = owner("web");
    let dlq_name = format!("{}.fifo", unique_name("sqs-fdlq"));
    let name = format!("{}.fifo", unique_name("sqs-fifo"));
    let dlq = decl("sqs", json!({"queueName": dlq_name, "fifo": true}), &me);
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&dlq))
        .await;
    assert_state(&report, State::Ready);
    let dlq_arn = row(&report).outputs["arn"].as_str().unwrap().to_string();
    let d = decl(
        "sqs",
        json!({"queueName": name, "fifo": "true", "contentBasedDeduplication": true,
               "deadLetterQueue": {"arn": dlq_arn, "maxReceiveCount": 2}}),
        &me,
    );
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert_declared_outputs("sqs", row(&report));
    let a = attributes(&h, &name).await;
    assert_eq!(a["FifoQueue"], "true");
    assert_eq!(a["ContentBasedDeduplication"], "true");
    assert!(a["RedrivePolicy"].contains(&dlq_arn), "{a:?}");

    h.log.clear();
    let before = moto_mutations(&h, &name);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &name), before);

    let report = h.runtime.delete_all(&ctx(), &[dlq, d]).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Deleted),
        "{:?}",
        report.rows
    );
}

#[tokio::test]
async fn kms_encryption_then_back_to_sqs_managed() {
    let h = harness().await;
    let me = owner("web");
    let name = unique_name("sqs-kms");
    let kms = decl(
        "sqs",
        json!({"queueName": name, "kmsMasterKeyId": "alias/aws/sqs"}),
        &me,
    );
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&kms))
            .await,
        State::Ready,
    );
    assert_eq!(
        attributes(&h, &name).await["KmsMasterKeyId"],
        "alias/aws/sqs"
    );
    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&kms))
            .await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());

    let sse = decl(
        "sqs",
        json!({"queueName": name, "sqsManagedSse": true}),
        &me,
    );
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&sse))
            .await,
        State::Ready,
    );
    assert_eq!(mutating_ops(&h.log), ["SetQueueAttributes"]);
    let a = attributes(&h, &name).await;
    assert!(!a.contains_key("KmsMasterKeyId"), "{a:?}");
    assert_eq!(a["SqsManagedSseEnabled"], "true");
    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&sse))
            .await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    h.runtime
        .delete_all(&ctx(), std::slice::from_ref(&sse))
        .await;
}

#[tokio::test]
async fn aws_rejections_become_error_rows_with_aws_code() {
    let h = harness().await;
    let me = owner("web");
    let name = unique_name("sqs-rejected");
    let d = decl(
        "sqs",
        json!({"queueName": name, "deadLetterQueue": {
            "arn": format!("arn:aws:sqs:us-east-1:123456789012:{}", unique_name("sqs-nodlq")),
            "maxReceiveCount": 5}}),
        &me,
    );
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Error);
    let message = &row(&report).message;
    assert!(
        message.starts_with("CreateQueue failed: AWS.SimpleQueueService.NonExistentQueue: Could not find DLQ for arn:aws:sqs:"),
        "{message}"
    );
    assert!(message.ends_with("(HTTP 400)"), "{message}");
    assert_eq!(
        report.errors[0].code(),
        Some("AWS.SimpleQueueService.NonExistentQueue")
    );
    assert!(!report.errors[0].retryable());
    assert!(!exists(&h, &name).await);
}

#[tokio::test]
async fn invalid_combinations_fail_before_any_call() {
    let h = harness().await;
    let me = owner("web");
    let name = unique_name("sqs-invalid");
    let d = decl("sqs", json!({"queueName": name, "fifo": true}), &me);
    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Error);
    assert_eq!(
        row(&report).message,
        format!("field queueName: a FIFO queue's name must end in .fifo (fifo: true), {name:?} does not")
    );
    assert_eq!(h.log.total(), 0, "{:?}", h.log.calls());
    assert!(!exists(&h, &name).await);
    // A delete is not held back by it: nothing exists, so it is done.
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleted);
}
