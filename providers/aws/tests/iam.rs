//! `aws.iamRole`, `aws.iamPolicy` and `aws.iamAttachment` against the real moto server.
//!
//! Every test uses its own names and owner uid, so tests share one moto safely. "No mutating
//! call" is checked on both sides: the client's call log and the requests moto itself recorded
//! (`h.moto.mutating_requests(name)`, counted before and after).
//!
//! What moto does not do, found by trying: it deletes a managed policy that is still attached
//! (AWS answers DeleteConflict), and it never answers LimitExceeded, EntityAlreadyExists or
//! DeleteConflict to the calls this provider makes in the order it makes them (those need a
//! concurrent change): iam_mocks.rs covers them.

mod common;

use std::collections::BTreeMap;

use aws_sdk_iam::types::Tag;
use common::*;
use orkestra_provider::ownership::{TAG_OWNER, TAG_OWNER_UID};
use orkestra_provider::{
    Action, Blocked, Declaration, KubeReader, ProviderContext, RunReport, State, StatusRow,
};
use orkestra_testsupport::unique_name;
use serde_json::{json, Value};

fn trust(service: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
}

fn doc(actions: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow",
        "Action": actions, "Resource": "*"}]})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    base
}

fn role_item(name: &str, extra: Value) -> Value {
    with(
        json!({"roleName": name, "assumeRolePolicy": trust("ec2.amazonaws.com")}),
        extra,
    )
}

fn policy_item(name: &str, extra: Value) -> Value {
    with(
        json!({"policyName": name, "document": doc(json!("s3:GetObject"))}),
        extra,
    )
}

/// Mutating requests moto served that mention `needle`.
fn at_moto(h: &Harness, needle: &str) -> Vec<String> {
    h.moto
        .mutating_requests(needle)
        .expect("moto's request recording")
}

/// A context whose CR status holds the rows of `report` (what the agent passes next cycle).
fn ctx_after(reports: &[&RunReport]) -> ProviderContext {
    let rows: Vec<&StatusRow> = reports.iter().flat_map(|r| r.rows.iter()).collect();
    ProviderContext::new(
        unique_name("req"),
        json!({"status": {"external": rows}}),
        KubeReader::empty(),
    )
}

async fn get_role(h: &Harness, name: &str) -> Option<aws_sdk_iam::types::Role> {
    h.iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.role)
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn decoded(text: &str) -> Value {
    orkestra_provider_aws::iam::document::parse_returned(text).expect("a document")
}

async fn create_role_directly(h: &Harness, name: &str, tags: &[(&str, &str)]) {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect();
    h.iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust("ec2.amazonaws.com").to_string())
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
}

async fn create_policy_directly(h: &Harness, name: &str, tags: &[(&str, &str)]) -> String {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect();
    h.iam
        .create_policy()
        .policy_name(name)
        .policy_document(doc(json!("s3:GetObject")).to_string())
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap()
        .policy
        .and_then(|p| p.arn)
        .unwrap()
}

async fn attached_to(h: &Harness, role: &str) -> Vec<String> {
    h.iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .map(|o| {
            o.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn policy_exists(h: &Harness, arn: &str) -> bool {
    h.iam.get_policy().policy_arn(arn).send().await.is_ok()
}

/// (version ids oldest first, the default one).
async fn versions(h: &Harness, arn: &str) -> (Vec<String>, String) {
    let out = h
        .iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<(u32, String)> = out
        .versions()
        .iter()
        .filter_map(|v| v.version_id().map(str::to_string))
        .map(|id| (id[1..].parse().unwrap(), id))
        .collect();
    ids.sort();
    let default = out
        .versions()
        .iter()
        .find(|v| v.is_default_version())
        .and_then(|v| v.version_id().map(str::to_string))
        .unwrap();
    (ids.into_iter().map(|(_, id)| id).collect(), default)
}

async fn default_document(h: &Harness, arn: &str) -> Value {
    let (_, default) = versions(h, arn).await;
    let v = h
        .iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(default)
        .send()
        .await
        .unwrap();
    decoded(v.policy_version.unwrap().document().unwrap())
}

#[tokio::test]
async fn role_create_noop_update_in_place_and_delete() {
    let h = harness().await;
    let name = unique_name("web");
    let me = owner("web");
    let d = decl(
        "iamRole",
        role_item(
            &name,
            json!({"maxSessionDuration": 3600, "description": "web tier", "tags": {"team": "a", "old": "x"}}),
        ),
        &me,
    );

    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Create);
    let text = plan.render();
    assert!(text.contains("+ assumeRolePolicy.Statement"), "{text}");
    assert!(
        text.contains("+ arn") && text.contains("(known after apply)"),
        "{text}"
    );
    assert!(h.log.mutating().is_empty(), "plan must not change anything");

    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert_eq!(mutating_ops(&h.log), ["CreateRole"]);
    assert_eq!(at_moto(&h, &name), ["CreateRole"]);
    let r = row(&report);
    assert_declared_outputs("iamRole", r);
    assert_eq!(r.outputs.get("name"), Some(&json!(name)));
    let role = get_role(&h, &name).await.expect("created");
    assert_eq!(r.id.as_deref(), Some(role.arn()));
    assert_eq!(r.outputs.get("roleId"), Some(&json!(role.role_id())));
    assert_eq!(role.max_session_duration(), Some(3600));
    assert_eq!(role.description(), Some("web tier"));
    let tags = tags_of(role.tags());
    assert_eq!(tags.get(TAG_OWNER_UID), Some(&me.uid));
    assert_eq!(tags.get(TAG_OWNER).map(String::as_str), Some("shop/web"));
    assert_eq!(tags.get("team").map(String::as_str), Some("a"));

    // A second reconcile looks and changes nothing, at either side.
    let before = at_moto(&h, &name).len();
    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert_declared_outputs("iamRole", row(&report));
    assert_eq!(
        h.log.total(),
        1,
        "one GetRole per resync: {:?}",
        h.log.calls()
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &name).len(), before);
    assert_eq!(report.mutations, 0);

    // The same trust policy written differently (single values, one statement object, another
    // key order) is no change.
    let rewritten = decl(
        "iamRole",
        json!({"roleName": name, "maxSessionDuration": 3600, "description": "web tier",
               "tags": {"old": "x", "team": "a"},
               "assumeRolePolicy": {"Statement": {"Action": ["sts:AssumeRole"],
                   "Principal": {"Service": ["ec2.amazonaws.com"]}, "Effect": "Allow"},
                   "Version": "2012-10-17"}}),
        &me,
    );
    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&rewritten))
        .await;
    assert_state(&report, State::Ready);
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &name).len(), before);

    // Trust policy, session duration, description and tags change in place.
    let v2 = decl(
        "iamRole",
        json!({"roleName": name, "assumeRolePolicy": trust("lambda.amazonaws.com"),
               "maxSessionDuration": 7200, "description": "web and jobs",
               "tags": {"team": "b", "env": "prod"}}),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&v2)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update);
    let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "assumeRolePolicy",
            "maxSessionDuration",
            "description",
            "tags.env",
            "tags.team",
            "tags.old"
        ]
    );
    assert!(plan.render().contains("lambda.amazonaws.com"));
    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&v2)).await;
    assert_state(&report, State::Ready);
    assert_eq!(
        mutating_ops(&h.log),
        [
            "UpdateAssumeRolePolicy",
            "UpdateRole",
            "TagRole",
            "UntagRole"
        ]
    );
    let role = get_role(&h, &name).await.unwrap();
    assert_eq!(role.max_session_duration(), Some(7200));
    assert_eq!(role.description(), Some("web and jobs"));
    assert_eq!(
        decoded(role.assume_role_policy_document().unwrap())["Statement"][0]["Principal"]
            ["Service"],
        json!("lambda.amazonaws.com")
    );
    let tags = tags_of(role.tags());
    assert_eq!(tags.get("team").map(String::as_str), Some("b"));
    assert_eq!(tags.get("env").map(String::as_str), Some("prod"));
    assert!(!tags.contains_key("old"));
    assert_eq!(tags.get(TAG_OWNER_UID), Some(&me.uid), "owner tags stay");

    let before = at_moto(&h, &name).len();
    h.log.clear();
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&v2)).await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &name).len(), before);

    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&v2))
        .await;
    assert_state(&report, State::Deleted);
    assert_eq!(mutating_ops(&h.log), ["DeleteRole"]);
    assert!(get_role(&h, &name).await.is_none());
}

#[tokio::test]
async fn role_path_change_is_a_replacement_that_is_never_made() {
    let h = harness().await;
    let name = unique_name("pathed");
    let me = owner("web");
    let d = decl("iamRole", role_item(&name, json!({"path": "/a/"})), &me);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );

    let moved = decl(
        "iamRole",
        role_item(&name, json!({"path": "/b/", "maxSessionDuration": 7200})),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&moved)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Replace);
    assert_eq!(plan.requires_replacement, ["path"]);
    assert_eq!(plan.blocked, Some(Blocked::ReplacementRequired));
    assert!(
        plan.render()
            .contains("~ path               = \"/a/\" -> \"/b/\" # forces replacement"),
        "{}",
        plan.render()
    );

    let before = at_moto(&h, &name).len();
    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&moved))
        .await;
    assert_state(&report, State::Error);
    assert!(
        row(&report)
            .message
            .contains("requires replacement: path \"/a/\" -> \"/b/\""),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &name).len(), before);
    let role = get_role(&h, &name).await.unwrap();
    assert_eq!(role.path(), "/a/");
    assert_eq!(role.max_session_duration(), Some(3600));
}

#[tokio::test]
async fn a_role_without_our_tags_is_a_conflict_and_never_touched() {
    let h = harness().await;
    let unowned = unique_name("handmade");
    let foreign = unique_name("theirs");
    create_role_directly(&h, &unowned, &[("keep", "me")]).await;
    let other = owner("someone-else");
    create_role_directly(
        &h,
        &foreign,
        &[
            (TAG_OWNER_UID, &other.uid),
            (TAG_OWNER, "other/someone-else"),
        ],
    )
    .await;
    let me = owner("web");
    let not_adopted = decl(
        "iamRole",
        json!({"roleName": unowned, "assumeRolePolicy": trust("lambda.amazonaws.com"),
               "maxSessionDuration": 7200}),
        &me,
    );
    // Even adopt: true does not take a role that carries another owner's tags.
    let theirs = decl(
        "iamRole",
        json!({"roleName": foreign, "assumeRolePolicy": trust("lambda.amazonaws.com"),
               "adopt": true, "tags": {}}),
        &me,
    );
    let before = (at_moto(&h, &unowned).len(), at_moto(&h, &foreign).len());
    h.log.clear();

    let report = h
        .runtime
        .reconcile(&ctx(), &[not_adopted.clone(), theirs.clone()])
        .await;
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

    let deleted = h.runtime.delete_all(&ctx(), &[not_adopted, theirs]).await;
    assert!(
        deleted
            .rows
            .iter()
            .all(|r| r.state == State::Conflict && r.message.starts_with("not deleted")),
        "{:?}",
        deleted.rows
    );
    assert!(deleted.delete_finished());

    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(
        (at_moto(&h, &unowned).len(), at_moto(&h, &foreign).len()),
        before
    );
    for name in [&unowned, &foreign] {
        let role = get_role(&h, name).await.expect("still there");
        assert_eq!(role.max_session_duration(), Some(3600));
        assert_eq!(
            decoded(role.assume_role_policy_document().unwrap()),
            trust("ec2.amazonaws.com")
        );
    }
    let tags = tags_of(get_role(&h, &foreign).await.unwrap().tags());
    assert_eq!(tags.get(TAG_OWNER_UID), Some(&other.uid));
}

#[tokio::test]
async fn an_unowned_role_is_adopted_with_adopt() {
    let h = harness().await;
    let name = unique_name("adopted");
    create_role_directly(&h, &name, &[("keep", "me")]).await;
    let me = owner("web");
    let d = decl(
        "iamRole",
        role_item(&name, json!({"adopt": true, "maxSessionDuration": 7200})),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update);
    assert!(
        plan.notes.iter().any(|n| n.starts_with("adopting")),
        "{plan:?}"
    );

    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert_eq!(mutating_ops(&h.log), ["UpdateRole", "TagRole"]);
    let role = get_role(&h, &name).await.unwrap();
    assert_eq!(role.max_session_duration(), Some(7200));
    let tags = tags_of(role.tags());
    assert_eq!(tags.get(TAG_OWNER_UID), Some(&me.uid));
    assert_eq!(
        tags.get("keep").map(String::as_str),
        Some("me"),
        "undeclared tags are kept when tags are not declared"
    );

    let before = at_moto(&h, &name).len();
    h.log.clear();
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &name).len(), before);
}

#[tokio::test]
async fn observe_only_reads_roles_and_policies() {
    let h = harness().await;
    let name = unique_name("watched");
    let policy = unique_name("watched-policy");
    let other = owner("someone-else");
    create_role_directly(&h, &name, &[(TAG_OWNER_UID, &other.uid)]).await;
    create_policy_directly(&h, &policy, &[]).await;
    let me = owner("web");
    let observe = |item: Value| with(item, json!({"managementPolicy": "Observe"}));
    let drifted = decl(
        "iamRole",
        observe(role_item(&name, json!({"maxSessionDuration": 7200}))),
        &me,
    );
    let policy_drifted = decl(
        "iamPolicy",
        observe(json!({"policyName": policy, "document": doc(json!("s3:PutObject"))})),
        &me,
    );
    let missing = decl(
        "iamRole",
        observe(role_item(&unique_name("absent"), json!({}))),
        &me,
    );
    let decls = [drifted, policy_drifted, missing];
    let before = (at_moto(&h, &name).len(), at_moto(&h, &policy).len());
    h.log.clear();

    let report = h.runtime.reconcile(&ctx(), &decls).await;
    for r in &report.rows[..2] {
        assert_eq!(r.state, State::Ready, "{r:?}");
        assert!(r.message.contains("drift not corrected"), "{r:?}");
    }
    assert!(report.rows[0]
        .message
        .contains("maxSessionDuration 3600 -> 7200"));
    assert!(report.rows[1].message.contains("document"));
    assert_declared_outputs("iamRole", &report.rows[0]);
    assert_declared_outputs("iamPolicy", &report.rows[1]);
    assert_eq!(report.rows[2].state, State::Error, "{:?}", report.rows[2]);
    assert!(report.rows[2].message.contains("does not exist"));

    let deleted = h.runtime.delete_all(&ctx(), &decls).await;
    assert!(
        deleted.rows.iter().all(|r| r.state == State::Orphaned),
        "{:?}",
        deleted.rows
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(
        (at_moto(&h, &name).len(), at_moto(&h, &policy).len()),
        before
    );
    assert!(get_role(&h, &name).await.is_some());
}

#[tokio::test]
async fn orphan_leaves_roles_and_policies() {
    let h = harness().await;
    let name = unique_name("kept");
    let me = owner("web");
    let orphan = json!({"deletionPolicy": "Orphan"});
    let decls = [
        decl("iamRole", role_item(&name, orphan.clone()), &me),
        decl("iamPolicy", policy_item(&name, orphan), &me),
    ];
    let report = h.runtime.reconcile(&ctx(), &decls).await;
    assert!(report.all_ready(), "{:?}", report.rows);
    let arn = report.rows[1].id.clone().unwrap();

    h.log.clear();
    let before = at_moto(&h, &name).len();
    let report = h.runtime.delete_all(&ctx(), &decls).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Orphaned),
        "{:?}",
        report.rows
    );
    assert!(report.delete_finished());
    assert!(h.log.mutating().is_empty());
    assert_eq!(at_moto(&h, &name).len(), before);
    assert!(get_role(&h, &name).await.is_some());
    assert!(policy_exists(&h, &arn).await);
}

#[tokio::test]
async fn deleting_what_does_not_exist_is_success() {
    let h = harness().await;
    let me = owner("web");
    let name = unique_name("never");
    let decls = [
        decl("iamRole", role_item(&name, json!({})), &me),
        decl("iamPolicy", policy_item(&name, json!({})), &me),
        decl(
            "iamAttachment",
            json!({"name": "never", "role": name,
                   "policyArn": format!("arn:aws:iam::123456789012:policy/{name}")}),
            &me,
        ),
    ];
    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), &decls).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Deleted),
        "{:?}",
        report.rows
    );
    assert!(report.delete_finished());
    assert!(report.errors.is_empty());
    assert!(h.log.mutating().is_empty());
    assert!(at_moto(&h, &name).is_empty());
}

#[tokio::test]
async fn deleting_a_role_takes_off_what_hangs_on_it() {
    let h = harness().await;
    let name = unique_name("busy");
    let me = owner("web");
    let d = decl("iamRole", role_item(&name, json!({})), &me);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    // Put a managed policy, an inline policy and an instance profile on it behind our back.
    let policy = unique_name("busy-policy");
    let arn = create_policy_directly(&h, &policy, &[]).await;
    h.iam
        .attach_role_policy()
        .role_name(&name)
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    h.iam
        .put_role_policy()
        .role_name(&name)
        .policy_name("inline")
        .policy_document(doc(json!("s3:ListBucket")).to_string())
        .send()
        .await
        .unwrap();
    let profile = unique_name("busy-profile");
    h.iam
        .create_instance_profile()
        .instance_profile_name(&profile)
        .send()
        .await
        .unwrap();
    h.iam
        .add_role_to_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&name)
        .send()
        .await
        .unwrap();

    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Deleted);
    assert_eq!(
        mutating_ops(&h.log),
        [
            "DetachRolePolicy",
            "DeleteRolePolicy",
            "RemoveRoleFromInstanceProfile",
            "DeleteRole"
        ]
    );
    assert!(get_role(&h, &name).await.is_none());
    // Only the memberships went: the policy and the profile are still there.
    assert!(policy_exists(&h, &arn).await);
    let p = h
        .iam
        .get_instance_profile()
        .instance_profile_name(&profile)
        .send()
        .await
        .unwrap();
    assert!(p.instance_profile.unwrap().roles().is_empty());
}

#[tokio::test]
async fn policy_create_noop_new_versions_pruned_and_delete() {
    let h = harness().await;
    let name = unique_name("reads");
    let me = owner("web");
    let d = decl(
        "iamPolicy",
        policy_item(&name, json!({"tags": {"team": "a", "old": "x"}})),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Create);
    assert!(
        plan.render().contains("+ document.Statement"),
        "{}",
        plan.render()
    );

    let created = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&created, State::Ready);
    assert_eq!(mutating_ops(&h.log), ["CreatePolicy"]);
    assert_eq!(at_moto(&h, &name), ["CreatePolicy"]);
    let r = row(&created);
    assert_declared_outputs("iamPolicy", r);
    let arn = r.id.clone().unwrap();
    assert_eq!(r.outputs.get("arn"), Some(&json!(arn)));
    assert!(arn.ends_with(&format!(":policy/{name}")), "{arn}");
    let tags = tags_of(
        h.iam
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
            .tags(),
    );
    assert_eq!(tags.get(TAG_OWNER_UID), Some(&me.uid));

    // No-op, first found by name (no row yet), then by the ARN the row recorded.
    let before = at_moto(&h, &name).len();
    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    assert_state(&report, State::Ready);
    assert_declared_outputs("iamPolicy", row(&report));
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx_after(&[&created]), std::slice::from_ref(&d))
        .await;
    assert_state(&report, State::Ready);
    let ops: Vec<String> = h.log.calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(ops, ["GetPolicy", "GetPolicyVersion"]);
    assert_eq!(at_moto(&h, &name).len(), before);

    // The same document written differently is no change.
    let rewritten = decl(
        "iamPolicy",
        json!({"policyName": name, "tags": {"old": "x", "team": "a"},
               "document": {"Statement": {"Resource": ["*"], "Effect": "Allow",
                   "Action": ["s3:GetObject"], "Sid": "Read"}, "Version": "2012-10-17"}}),
        &me,
    );
    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&rewritten))
            .await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &name).len(), before);

    // Six changes: a new default version each; from the fifth on the oldest non-default
    // version makes room, so there are never more than 5.
    for i in 1..=6 {
        let action = format!("s3:GetObjectVersion{i}");
        let changed = decl(
            "iamPolicy",
            with(
                policy_item(&name, json!({"tags": {"team": "a", "old": "x"}})),
                json!({"document": doc(json!(["s3:GetObject", action]))}),
            ),
            &me,
        );
        let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&changed)).await;
        let (_, plan) = plans[0].as_ref().unwrap();
        assert_eq!(plan.action, Action::Update);
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].path, "document");
        h.log.clear();
        let report = h
            .runtime
            .reconcile(&ctx(), std::slice::from_ref(&changed))
            .await;
        assert_state(&report, State::Ready);
        let expected: &[&str] = if i >= 5 {
            &["DeletePolicyVersion", "CreatePolicyVersion"]
        } else {
            &["CreatePolicyVersion"]
        };
        assert_eq!(mutating_ops(&h.log), expected, "change {i}");
        let (ids, default) = versions(&h, &arn).await;
        assert!(ids.len() <= 5, "change {i}: {ids:?}");
        assert_eq!(default, format!("v{}", i + 1));
        assert_eq!(
            default_document(&h, &arn).await["Statement"][0]["Action"],
            json!(["s3:GetObject", action])
        );
        h.log.clear();
        h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&changed))
            .await;
        assert!(h.log.mutating().is_empty(), "change {i} asked again");
    }
    assert_eq!(versions(&h, &arn).await.0, ["v3", "v4", "v5", "v6", "v7"]);

    // Tags change in place.
    let retagged = decl(
        "iamPolicy",
        json!({"policyName": name, "tags": {"team": "b"},
               "document": doc(json!(["s3:GetObject", "s3:GetObjectVersion6"]))}),
        &me,
    );
    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&retagged))
            .await,
        State::Ready,
    );
    assert_eq!(mutating_ops(&h.log), ["TagPolicy", "UntagPolicy"]);

    // Delete: the non-default versions first, then the policy.
    h.log.clear();
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&retagged))
        .await;
    assert_state(&report, State::Deleted);
    assert_eq!(
        mutating_ops(&h.log),
        [
            "DeletePolicyVersion",
            "DeletePolicyVersion",
            "DeletePolicyVersion",
            "DeletePolicyVersion",
            "DeletePolicy"
        ]
    );
    assert!(!policy_exists(&h, &arn).await);
}

#[tokio::test]
async fn policy_path_change_conflict_and_adoption() {
    let h = harness().await;
    let me = owner("web");

    // Path: found by name under its old path, reported, never replaced.
    let name = unique_name("pathed-policy");
    let d = decl("iamPolicy", policy_item(&name, json!({"path": "/a/"})), &me);
    assert_state(
        &h.runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await,
        State::Ready,
    );
    let moved = decl(
        "iamPolicy",
        with(
            policy_item(&name, json!({"path": "/b/"})),
            json!({"document": doc(json!("s3:PutObject"))}),
        ),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&moved)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Replace);
    assert_eq!(plan.requires_replacement, ["path"]);
    let before = at_moto(&h, &name).len();
    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&moved))
        .await;
    assert_state(&report, State::Error);
    assert!(
        row(&report)
            .message
            .contains("requires replacement: path \"/a/\" -> \"/b/\""),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty());
    assert_eq!(at_moto(&h, &name).len(), before);

    // A policy made by hand is a Conflict, then adopted with adopt: true.
    let handmade = unique_name("handmade-policy");
    let arn = create_policy_directly(&h, &handmade, &[("keep", "me")]).await;
    let not_adopted = decl(
        "iamPolicy",
        with(
            policy_item(&handmade, json!({})),
            json!({"document": doc(json!("s3:PutObject"))}),
        ),
        &me,
    );
    let before = at_moto(&h, &handmade).len();
    h.log.clear();
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&not_adopted))
        .await;
    assert_state(&report, State::Conflict);
    assert!(row(&report).message.contains("set adopt: true"));
    let deleted = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&not_adopted))
        .await;
    assert_state(&deleted, State::Conflict);
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &handmade).len(), before);
    assert_eq!(default_document(&h, &arn).await, doc(json!("s3:GetObject")));

    let adopted = decl(
        "iamPolicy",
        with(
            policy_item(&handmade, json!({"adopt": true})),
            json!({"document": doc(json!("s3:PutObject"))}),
        ),
        &me,
    );
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&adopted))
        .await;
    assert_state(&report, State::Ready);
    assert_eq!(mutating_ops(&h.log), ["CreatePolicyVersion", "TagPolicy"]);
    assert_eq!(default_document(&h, &arn).await, doc(json!("s3:PutObject")));
    h.log.clear();
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&adopted))
            .await,
        State::Ready,
    );
    assert!(h.log.mutating().is_empty());
}

#[tokio::test]
async fn role_policy_and_attachment_together() {
    let h = harness().await;
    let name = unique_name("app");
    let me = owner("web");
    let role = decl("iamRole", role_item(&name, json!({})), &me);
    let policy = decl("iamPolicy", policy_item(&name, json!({})), &me);
    let report = h
        .runtime
        .reconcile(&ctx(), &[role.clone(), policy.clone()])
        .await;
    assert!(report.all_ready(), "{:?}", report.rows);
    // What `{{ .resources.policy.outputs.arn }}` renders to.
    let arn = report.rows[1].outputs["arn"].as_str().unwrap().to_string();
    let attachment = decl(
        "iamAttachment",
        json!({"name": format!("{name}-reads"), "role": name, "policyArn": arn}),
        &me,
    );
    let decls = [role, policy, attachment];

    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), &decls).await;
    assert!(report.all_ready(), "{:?}", report.rows);
    assert_eq!(mutating_ops(&h.log), ["AttachRolePolicy"]);
    let r = &report.rows[2];
    assert_declared_outputs("iamAttachment", r);
    assert_eq!(r.id, Some(format!("{name}/{arn}")));
    assert_eq!(attached_to(&h, &name).await, std::slice::from_ref(&arn));

    let before = at_moto(&h, &name).len();
    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), &decls).await;
    assert!(report.all_ready(), "{:?}", report.rows);
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &name).len(), before);
    assert_eq!(report.mutations, 0);

    // Deleted in reverse order: the attachment, the policy, the role.
    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), &decls).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Deleted),
        "{:?}",
        report.rows
    );
    assert_eq!(
        mutating_ops(&h.log),
        ["DetachRolePolicy", "DeletePolicy", "DeleteRole"]
    );
    assert!(get_role(&h, &name).await.is_none());
    assert!(!policy_exists(&h, &arn).await);
}

#[tokio::test]
async fn deleting_a_policy_detaches_it_from_our_roles_but_never_from_others() {
    let h = harness().await;
    let name = unique_name("shared");
    let me = owner("web");
    let role = decl("iamRole", role_item(&name, json!({})), &me);
    let policy = decl("iamPolicy", policy_item(&name, json!({})), &me);
    let report = h.runtime.reconcile(&ctx(), &[role, policy.clone()]).await;
    assert!(report.all_ready(), "{:?}", report.rows);
    let arn = report.rows[1].id.clone().unwrap();
    let attachment = decl(
        "iamAttachment",
        json!({"name": "shared", "role": name, "policyArn": arn}),
        &me,
    );
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&attachment))
            .await,
        State::Ready,
    );
    // Someone else's role uses the policy too.
    let foreign = unique_name("shared-theirs");
    create_role_directly(&h, &foreign, &[]).await;
    h.iam
        .attach_role_policy()
        .role_name(&foreign)
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();

    let before = at_moto(&h, &name).len();
    h.log.clear();
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&policy))
        .await;
    assert_state(&report, State::Deleting);
    let message = &row(&report).message;
    assert!(
        message.contains(&format!("attached to role {foreign} (not this resource's)"))
            && message.contains("deletionPolicy: Orphan"),
        "{message}"
    );
    assert!(!report.delete_finished());
    assert!(report.requeue_after.is_some());
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(at_moto(&h, &name).len(), before);
    assert_eq!(attached_to(&h, &foreign).await, std::slice::from_ref(&arn));
    assert_eq!(attached_to(&h, &name).await, std::slice::from_ref(&arn));

    // Once the other role lets go, the policy is detached from ours and deleted.
    h.iam
        .detach_role_policy()
        .role_name(&foreign)
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    h.log.clear();
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&policy))
        .await;
    assert_state(&report, State::Deleted);
    assert_eq!(mutating_ops(&h.log), ["DetachRolePolicy", "DeletePolicy"]);
    assert!(attached_to(&h, &name).await.is_empty());
    assert!(!policy_exists(&h, &arn).await);
}

#[tokio::test]
async fn attachments_to_a_role_that_is_not_ours_need_adopt() {
    let h = harness().await;
    let role = unique_name("attach-theirs");
    create_role_directly(&h, &role, &[]).await;
    let me = owner("web");
    let policy = decl("iamPolicy", policy_item(&role, json!({})), &me);
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&policy))
        .await;
    let arn = row(&report).id.clone().unwrap();
    let attachment = |extra: Value| {
        decl(
            "iamAttachment",
            with(json!({"name": "a", "role": role, "policyArn": arn}), extra),
            &me,
        )
    };

    let before = at_moto(&h, &role).len();
    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), &[attachment(json!({}))]).await;
    assert_state(&report, State::Conflict);
    assert!(
        row(&report).message.starts_with(&format!(
            "role {role} exists but was not created by orkestra"
        )),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty());
    assert_eq!(at_moto(&h, &role).len(), before);
    assert!(attached_to(&h, &role).await.is_empty());

    let adopted = attachment(json!({"adopt": true}));
    let report = h
        .runtime
        .reconcile(&ctx(), std::slice::from_ref(&adopted))
        .await;
    assert_state(&report, State::Ready);
    assert_eq!(mutating_ops(&h.log), ["AttachRolePolicy"]);
    assert_eq!(attached_to(&h, &role).await, std::slice::from_ref(&arn));

    // Without adopt, the attachment on a role that is not ours is never detached.
    h.log.clear();
    let report = h.runtime.delete_all(&ctx(), &[attachment(json!({}))]).await;
    assert_state(&report, State::Conflict);
    assert!(
        row(&report)
            .message
            .starts_with(&format!("not detached: role {role}")),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty());
    let report = h.runtime.delete_all(&ctx(), &[adopted]).await;
    assert_state(&report, State::Deleted);
    assert!(attached_to(&h, &role).await.is_empty());
}

#[tokio::test]
async fn an_attachment_whose_pair_changed_is_a_replacement() {
    let h = harness().await;
    let name = unique_name("pair");
    let me = owner("web");
    let setup = [
        decl("iamRole", role_item(&name, json!({})), &me),
        decl("iamPolicy", policy_item(&name, json!({})), &me),
        decl(
            "iamPolicy",
            policy_item(&format!("{name}-2"), json!({})),
            &me,
        ),
    ];
    let report = h.runtime.reconcile(&ctx(), &setup).await;
    assert!(report.all_ready(), "{:?}", report.rows);
    let (first, second) = (
        report.rows[1].id.clone().unwrap(),
        report.rows[2].id.clone().unwrap(),
    );
    let attach = |arn: &str| {
        decl(
            "iamAttachment",
            json!({"name": "reads", "role": name, "policyArn": arn}),
            &me,
        )
    };
    let attached = h.runtime.reconcile(&ctx(), &[attach(&first)]).await;
    assert_state(&attached, State::Ready);

    // Next cycle, the same label names another policy: what exists is the recorded pair.
    let next = || ctx_after(&[&attached]);
    let plans = h.runtime.plan(&next(), &[attach(&second)]).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Replace);
    assert_eq!(plan.requires_replacement, ["policyArn"]);
    let before = at_moto(&h, &name).len();
    h.log.clear();
    let report = h.runtime.reconcile(&next(), &[attach(&second)]).await;
    assert_state(&report, State::Error);
    assert!(
        row(&report)
            .message
            .contains("requires replacement: policyArn"),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty());
    assert_eq!(at_moto(&h, &name).len(), before);
    assert_eq!(attached_to(&h, &name).await, std::slice::from_ref(&first));

    // A delete detaches the pair this row attached.
    let report = h.runtime.delete_all(&next(), &[attach(&second)]).await;
    assert_state(&report, State::Deleted);
    assert_eq!(mutating_ops(&h.log), ["DetachRolePolicy"]);
    assert!(attached_to(&h, &name).await.is_empty());
}

#[tokio::test]
async fn a_bad_document_is_an_error_before_any_call() {
    let me = owner("web");
    let name = unique_name("bad-doc");
    // The grammar is a schema validator: the declaration cannot even be built (the agent and
    // render report it on the field; lint does too when the document has no template).
    let schema = orkestra_provider_aws::schema();
    let build = |kind: &str, item: serde_json::Value| {
        Declaration::from_rendered(
            "aws",
            schema.kind(kind).unwrap(),
            item.as_object().unwrap(),
            me.clone(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let e = build(
        "iamRole",
        json!({"roleName": name, "assumeRolePolicy": {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole", "Resource": "*"}]}}),
    );
    assert!(
        e.ends_with("field assumeRolePolicy: Statement[0].Resource: a trust policy applies to the role itself and names no resource"),
        "{e}"
    );
    let e = build(
        "iamPolicy",
        json!({"policyName": name, "document": {"Version": "2012-10-17",
            "Statement": {"Effect": "Maybe", "Action": "s3:GetObject", "Resource": "*"}}}),
    );
    assert!(
        e.ends_with("field document: Statement[0].Effect: \"Maybe\" is not Allow or Deny"),
        "{e}"
    );
}

#[tokio::test]
async fn aws_rejections_become_error_rows_with_the_code() {
    let h = harness().await;
    let me = owner("web");
    let name = unique_name("rejected");
    // Lint cannot tell that an IAM ARN must not name a region; IAM (and moto) can.
    let policy = decl(
        "iamPolicy",
        json!({"policyName": name, "document": {"Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "iam:GetRole",
                "Resource": "arn:aws:iam:us-east-1:123456789012:role/x"}}}),
        &me,
    );
    let role = decl("iamRole", role_item(&name, json!({})), &me);
    let missing_policy = decl(
        "iamAttachment",
        json!({"name": "missing", "role": name,
               "policyArn": format!("arn:aws:iam::123456789012:policy/{name}-absent")}),
        &me,
    );
    let report = h
        .runtime
        .reconcile(&ctx(), &[policy, role, missing_policy])
        .await;
    let r = &report.rows[0];
    assert_eq!(r.state, State::Error, "{r:?}");
    assert!(
        r.message
            .starts_with("CreatePolicy failed: MalformedPolicyDocument: "),
        "{r:?}"
    );
    assert_eq!(report.rows[1].state, State::Ready);
    let r = &report.rows[2];
    assert_eq!(r.state, State::Error, "{r:?}");
    assert!(
        r.message
            .starts_with("AttachRolePolicy failed: NoSuchEntity: "),
        "{r:?}"
    );
    let codes: Vec<Option<&str>> = report.errors.iter().map(|e| e.code()).collect();
    assert_eq!(
        codes,
        [Some("MalformedPolicyDocument"), Some("NoSuchEntity")]
    );
}

#[tokio::test]
async fn deleting_a_role_detaches_our_attachment_first() {
    let h = harness().await;
    let name = unique_name("holder");
    let me = owner("web");
    let role = decl("iamRole", role_item(&name, json!({})), &me);
    let policy = decl("iamPolicy", policy_item(&name, json!({})), &me);
    let report = h
        .runtime
        .reconcile(&ctx(), &[role.clone(), policy.clone()])
        .await;
    assert!(report.all_ready(), "{:?}", report.rows);
    let arn = report.rows[1].id.clone().unwrap();
    let attachment = decl(
        "iamAttachment",
        json!({"name": "holder", "role": name, "policyArn": arn}),
        &me,
    );
    assert_state(
        &h.runtime
            .reconcile(&ctx(), std::slice::from_ref(&attachment))
            .await,
        State::Ready,
    );

    // The role alone (its attachment declared elsewhere, or dropped from the Katalog).
    h.log.clear();
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&role))
        .await;
    assert_state(&report, State::Deleted);
    assert_eq!(mutating_ops(&h.log), ["DetachRolePolicy", "DeleteRole"]);
    assert!(get_role(&h, &name).await.is_none());
    assert!(
        policy_exists(&h, &arn).await,
        "the policy is not the role's to delete"
    );

    // The attachment went with its role: deleting it is success, with nothing to do.
    let before = at_moto(&h, &name).len();
    h.log.clear();
    let report = h
        .runtime
        .delete_all(&ctx(), std::slice::from_ref(&attachment))
        .await;
    assert_state(&report, State::Deleted);
    assert!(h.log.mutating().is_empty());
    assert_eq!(at_moto(&h, &name).len(), before);
    let report = h.runtime.delete_all(&ctx(), &[policy]).await;
    assert_state(&report, State::Deleted);
    assert!(!policy_exists(&h, &arn).await);
}

#[tokio::test]
async fn a_document_broken_since_does_not_stop_a_delete() {
    let h = harness().await;
    let name = unique_name("broken-later");
    let me = owner("web");
    let good = [
        decl("iamRole", role_item(&name, json!({})), &me),
        decl("iamPolicy", policy_item(&name, json!({})), &me),
    ];
    let report = h.runtime.reconcile(&ctx(), &good).await;
    assert!(report.all_ready(), "{:?}", report.rows);
    // The Katalog changes the documents into ones IAM's grammar refuses: they can no longer be
    // declared, so the CR's delete works from its status rows, as the agent's does.
    let schema = orkestra_provider_aws::schema();
    for (kind, item) in [
        (
            "iamRole",
            json!({"roleName": name, "assumeRolePolicy": {"Statement": {"Effect": "Allow",
                "Action": "sts:AssumeRole"}}}),
        ),
        (
            "iamPolicy",
            json!({"policyName": name, "document": {"Statement": {"Effect": "Allow",
                "Action": "s3:GetObject"}}}),
        ),
    ] {
        let built = Declaration::from_rendered(
            "aws",
            schema.kind(kind).unwrap(),
            item.as_object().unwrap(),
            me.clone(),
        );
        assert!(built.is_err(), "{kind}: {built:?}");
    }
    let from_rows: Vec<Declaration> = report
        .rows
        .iter()
        .zip(["iamRole", "iamPolicy"])
        .map(|(row, kind)| Declaration::from_row(row, schema.kind(kind).unwrap(), me.clone()))
        .collect();
    let report = h.runtime.delete_all(&ctx(), &from_rows).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Deleted),
        "{:?}",
        report.rows
    );
    assert!(get_role(&h, &name).await.is_none());
}
