//! MOCKS, not moto: IAM rejections that need a change made concurrently, which moto cannot be
//! made to produce in the order the provider calls it (found by trying, see iam.rs):
//!
//! - EntityAlreadyExists: the role appeared between GetRole and CreateRole;
//! - LimitExceeded: someone created a fifth version between ListPolicyVersions and
//!   CreatePolicyVersion;
//! - DeleteConflict: something was attached to the role, or to the policy, after the provider
//!   took everything off (moto never answers DeleteConflict to DeletePolicy at all).
//!
//! The answers come from aws-smithy-mocks rules as raw IAM XML, so the SDK's own error parser
//! runs; everything else (diff, apply, delete, the runtime) is the real code.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::operation::get_policy::GetPolicyOutput;
use aws_sdk_iam::operation::get_policy_version::GetPolicyVersionOutput;
use aws_sdk_iam::operation::get_role::GetRoleOutput;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::operation::list_entities_for_policy::ListEntitiesForPolicyOutput;
use aws_sdk_iam::operation::list_instance_profiles_for_role::ListInstanceProfilesForRoleOutput;
use aws_sdk_iam::operation::list_policies::ListPoliciesOutput;
use aws_sdk_iam::operation::list_policy_versions::ListPolicyVersionsOutput;
use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
use aws_sdk_iam::types::{Policy, PolicyVersion, Role, Tag};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::DateTime;
use common::{decl, owner};
use orkestra_provider::{
    KubeReader, Owner, ProviderContext, ProviderRuntime, RateLimit, RetryPolicy, RunReport, State,
    StatusRow,
};
use orkestra_provider_aws::{AwsProvider, FixedClients};
use serde_json::json;

const ROLE: &str = "mockrole";
const POLICY: &str = "mockpolicy";
const POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/mockpolicy";

fn trust() -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
}

fn document(action: &str) -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action,
        "Resource": "*"}]})
}

fn tags(owner: &Owner) -> Vec<Tag> {
    owner
        .tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
        .collect()
}

/// An IAM error answer, as IAM sends it.
fn iam_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>\
             <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>mock</RequestId></ErrorResponse>"
        )),
    )
}

fn our_role(owner: &Owner) -> Role {
    Role::builder()
        .path("/")
        .role_name(ROLE)
        .role_id("AROAMOCK")
        .arn(format!("arn:aws:iam::123456789012:role/{ROLE}"))
        .create_date(DateTime::from_secs(0))
        .assume_role_policy_document(trust().to_string())
        .set_tags(Some(tags(owner)))
        .build()
        .unwrap()
}

fn our_policy(owner: &Owner, default: &str) -> Policy {
    Policy::builder()
        .policy_name(POLICY)
        .policy_id("ANPAMOCK")
        .arn(POLICY_ARN)
        .path("/")
        .default_version_id(default)
        .set_tags(Some(tags(owner)))
        .build()
}

fn runtime(rules: &[&Rule]) -> ProviderRuntime {
    // SDK retries off: what is retried is the runtime's business.
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, rules, |b| b
        .retry_config(RetryConfig::disabled()));
    let mut rt = ProviderRuntime::new().with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    });
    rt.register(
        Arc::new(AwsProvider::with_fixed_clients(
            FixedClients {
                iam: Some(iam),
                ..FixedClients::default()
            },
            "us-east-1",
        )),
        RateLimit::default(),
    )
    .expect("one provider per name");
    rt
}

fn ctx() -> ProviderContext {
    ProviderContext::new("mock", json!({}), KubeReader::empty())
}

fn only(report: &RunReport) -> &StatusRow {
    assert_eq!(report.rows.len(), 1, "{report:?}");
    &report.rows[0]
}

#[tokio::test]
async fn mock_a_role_created_meanwhile_is_an_entity_already_exists_error_row() {
    let me = owner("shop");
    let get = mock!(aws_sdk_iam::Client::get_role)
        .then_http_response(|| iam_error(404, "NoSuchEntity", "Role mockrole not found"));
    let create = mock!(aws_sdk_iam::Client::create_role).then_http_response(|| {
        iam_error(
            409,
            "EntityAlreadyExists",
            "Role with name mockrole already exists.",
        )
    });
    let rt = runtime(&[&get, &create]);
    let d = decl(
        "iamRole",
        json!({"roleName": ROLE, "assumeRolePolicy": trust()}),
        &me,
    );

    let report = rt.reconcile(&ctx(), &[d]).await;
    let row = only(&report);
    assert_eq!(row.state, State::Error, "{row:?}");
    assert_eq!(
        row.message,
        "CreateRole failed: EntityAlreadyExists: Role with name mockrole already exists. (HTTP 409)"
    );
    assert_eq!(report.errors[0].code(), Some("EntityAlreadyExists"));
    assert_eq!(create.num_calls(), 1, "a rejection is not retried");
}

#[tokio::test]
async fn mock_a_version_made_meanwhile_is_a_limit_exceeded_error_row() {
    let me = owner("shop");
    let list = mock!(aws_sdk_iam::Client::list_policies).then_output(|| {
        ListPoliciesOutput::builder()
            .policies(
                Policy::builder()
                    .policy_name(POLICY)
                    .arn(POLICY_ARN)
                    .build(),
            )
            .build()
    });
    let policy = our_policy(&me, "v4");
    let get = mock!(aws_sdk_iam::Client::get_policy)
        .then_output(move || GetPolicyOutput::builder().policy(policy.clone()).build());
    let version = mock!(aws_sdk_iam::Client::get_policy_version).then_output(|| {
        GetPolicyVersionOutput::builder()
            .policy_version(
                PolicyVersion::builder()
                    .version_id("v4")
                    .is_default_version(true)
                    .document(document("s3:GetObject").to_string())
                    .build(),
            )
            .build()
    });
    // Four versions: room for one more, so nothing is pruned...
    let versions = mock!(aws_sdk_iam::Client::list_policy_versions).then_output(|| {
        ListPolicyVersionsOutput::builder()
            .set_versions(Some(
                (1..=4)
                    .map(|i| {
                        PolicyVersion::builder()
                            .version_id(format!("v{i}"))
                            .is_default_version(i == 4)
                            .build()
                    })
                    .collect(),
            ))
            .build()
    });
    // ...but someone made a fifth in between.
    let create = mock!(aws_sdk_iam::Client::create_policy_version).then_http_response(|| {
        iam_error(
            409,
            "LimitExceeded",
            "A managed policy can have up to 5 versions.",
        )
    });
    let prune = mock!(aws_sdk_iam::Client::delete_policy_version)
        .then_http_response(|| iam_error(500, "ServiceFailure", "must not be called"));
    let rt = runtime(&[&list, &get, &version, &versions, &create, &prune]);
    let d = decl(
        "iamPolicy",
        json!({"policyName": POLICY, "document": document("s3:PutObject")}),
        &me,
    );

    let report = rt.reconcile(&ctx(), &[d]).await;
    let row = only(&report);
    assert_eq!(row.state, State::Error, "{row:?}");
    assert_eq!(
        row.message,
        "CreatePolicyVersion failed: LimitExceeded: A managed policy can have up to 5 versions. (HTTP 409)"
    );
    assert_eq!(report.errors[0].code(), Some("LimitExceeded"));
    assert_eq!(prune.num_calls(), 0);
}

#[tokio::test]
async fn mock_something_attached_meanwhile_is_a_delete_conflict_error_row() {
    let me = owner("shop");
    let role = our_role(&me);
    let get_role = mock!(aws_sdk_iam::Client::get_role)
        .then_output(move || GetRoleOutput::builder().role(role.clone()).build());
    let attached = mock!(aws_sdk_iam::Client::list_attached_role_policies)
        .then_output(|| ListAttachedRolePoliciesOutput::builder().build());
    let inline = mock!(aws_sdk_iam::Client::list_role_policies).then_output(|| {
        ListRolePoliciesOutput::builder()
            .set_policy_names(Some(vec![]))
            .build()
            .unwrap()
    });
    let profiles = mock!(aws_sdk_iam::Client::list_instance_profiles_for_role).then_output(|| {
        ListInstanceProfilesForRoleOutput::builder()
            .set_instance_profiles(Some(vec![]))
            .build()
            .unwrap()
    });
    let delete_role = mock!(aws_sdk_iam::Client::delete_role).then_http_response(|| {
        iam_error(
            409,
            "DeleteConflict",
            "Cannot delete entity, must detach all policies first.",
        )
    });
    // The policy: nothing attached, only its default version, yet IAM says it is attached.
    let list = mock!(aws_sdk_iam::Client::list_policies).then_output(|| {
        ListPoliciesOutput::builder()
            .policies(
                Policy::builder()
                    .policy_name(POLICY)
                    .arn(POLICY_ARN)
                    .build(),
            )
            .build()
    });
    let policy = our_policy(&me, "v1");
    let get_policy = mock!(aws_sdk_iam::Client::get_policy)
        .then_output(move || GetPolicyOutput::builder().policy(policy.clone()).build());
    let entities = mock!(aws_sdk_iam::Client::list_entities_for_policy)
        .then_output(|| ListEntitiesForPolicyOutput::builder().build());
    let versions = mock!(aws_sdk_iam::Client::list_policy_versions).then_output(|| {
        ListPolicyVersionsOutput::builder()
            .versions(
                PolicyVersion::builder()
                    .version_id("v1")
                    .is_default_version(true)
                    .build(),
            )
            .build()
    });
    let delete_policy = mock!(aws_sdk_iam::Client::delete_policy).then_http_response(|| {
        iam_error(
            409,
            "DeleteConflict",
            "Cannot delete a policy attached to entities.",
        )
    });
    let rt = runtime(&[
        &get_role,
        &attached,
        &inline,
        &profiles,
        &delete_role,
        &list,
        &get_policy,
        &entities,
        &versions,
        &delete_policy,
    ]);
    let decls = [
        decl(
            "iamRole",
            json!({"roleName": ROLE, "assumeRolePolicy": trust()}),
            &me,
        ),
        decl(
            "iamPolicy",
            json!({"policyName": POLICY, "document": document("s3:GetObject")}),
            &me,
        ),
    ];

    let report = rt.delete_all(&ctx(), &decls).await;
    assert_eq!(report.rows[0].state, State::Error, "{:?}", report.rows[0]);
    assert_eq!(
        report.rows[0].message,
        "DeleteRole failed: DeleteConflict: Cannot delete entity, must detach all policies first. (HTTP 409)"
    );
    assert_eq!(report.rows[1].state, State::Error, "{:?}", report.rows[1]);
    assert_eq!(
        report.rows[1].message,
        "DeletePolicy failed: DeleteConflict: Cannot delete a policy attached to entities. (HTTP 409)"
    );
    let codes: Vec<Option<&str>> = report.errors.iter().map(|e| e.code()).collect();
    assert_eq!(codes, [Some("DeleteConflict"), Some("DeleteConflict")]);
    assert!(!report.delete_finished());
    assert_eq!(delete_role.num_calls(), 1);
}
