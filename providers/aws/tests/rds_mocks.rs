//! MOCKS, not moto: RDS states moto cannot produce (it creates, modifies and deletes at once and
//! never throttles): `creating`, `modifying`, pending modifications, `deleting`, throttling.
//! The RDS answers here come from aws-smithy-mocks rules; everything else (diff, apply, the
//! runtime's retries) is the real code.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_instances::{
    DescribeDBInstancesError, DescribeDbInstancesOutput,
};
use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
use aws_sdk_rds::types::error::DbInstanceNotFoundFault;
use aws_sdk_rds::types::{DbInstance, PendingModifiedValues, Tag};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use common::{decl, owner};
use orkestra_provider::{
    KubeReader, Owner, ProviderContext, ProviderRuntime, RateLimit, RetryPolicy, RunReport, State,
};
use orkestra_provider_aws::AwsProvider;
use serde_json::json;

const ID: &str = "mockdb";

fn instance(
    owner: &Owner,
    status: &str,
    class: &str,
    pending: Option<PendingModifiedValues>,
) -> DbInstance {
    let tags = owner
        .tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    DbInstance::builder()
        .db_instance_identifier(ID)
        .db_instance_arn(format!("arn:aws:rds:us-east-1:123456789012:db:{ID}"))
        .db_instance_status(status)
        .db_instance_class(class)
        .engine("postgres")
        .engine_version("16.4")
        .allocated_storage(20)
        .master_username("app_admin")
        .deletion_protection(false)
        .set_tag_list(Some(tags))
        .set_pending_modified_values(pending)
        .build()
}

fn describing(db: DbInstance) -> Rule {
    mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
        DescribeDbInstancesOutput::builder()
            .db_instances(db.clone())
            .build()
    })
}

fn runtime(rules: &[&Rule]) -> ProviderRuntime {
    // SDK retries off: the runtime's own retry with backoff is what these tests exercise.
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |b| b
        .retry_config(RetryConfig::disabled()));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build(),
    );
    let mut rt = ProviderRuntime::new().with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    });
    rt.register(
        Arc::new(AwsProvider::with_clients(s3, rds, "us-east-1")),
        RateLimit::default(),
    )
    .expect("one provider per name");
    rt
}

fn ctx() -> ProviderContext {
    ProviderContext::new("mock", json!({}), KubeReader::empty())
}

fn db_decl(owner: &Owner, class: &str) -> orkestra_provider::Declaration {
    decl(
        "rds",
        json!({"identifier": ID, "instanceClass": class, "engine": "postgres", "engineVersion": "16",
               "masterUsername": "app_admin", "allocatedStorage": 20, "masterPasswordSecret": {"name": "p"}}),
        owner,
    )
}

fn only(report: &RunReport) -> &orkestra_provider::StatusRow {
    assert_eq!(report.rows.len(), 1, "{report:?}");
    &report.rows[0]
}

#[tokio::test]
async fn mock_creating_instance_reports_creating_and_requeues() {
    let me = owner("shop");
    let describe = describing(instance(&me, "creating", "db.t3.micro", None));
    let modify = mock!(aws_sdk_rds::Client::modify_db_instance)
        .then_output(|| ModifyDbInstanceOutput::builder().build());
    let rt = runtime(&[&describe, &modify]);

    let report = rt.reconcile(&ctx(), &[db_decl(&me, "db.t3.micro")]).await;
    assert_eq!(only(&report).state, State::Creating, "{report:?}");
    assert_eq!(report.requeue_after, Some(Duration::from_secs(30)));
    assert_eq!(modify.num_calls(), 0);
}

#[tokio::test]
async fn mock_modifying_instance_with_a_change_waits_instead_of_modifying_again() {
    let me = owner("shop");
    let describe = describing(instance(&me, "modifying", "db.t3.micro", None));
    let modify = mock!(aws_sdk_rds::Client::modify_db_instance)
        .then_output(|| ModifyDbInstanceOutput::builder().build());
    let rt = runtime(&[&describe, &modify]);

    let report = rt.reconcile(&ctx(), &[db_decl(&me, "db.t3.large")]).await;
    let row = only(&report);
    assert_eq!(row.state, State::Updating, "{row:?}");
    assert!(
        row.message.contains("waiting") && row.message.contains("status is modifying"),
        "{row:?}"
    );
    assert!(report.requeue_after.is_some());
    assert_eq!(modify.num_calls(), 0);
}

#[tokio::test]
async fn mock_pending_modification_is_never_requested_again() {
    let me = owner("shop");
    let pending = PendingModifiedValues::builder()
        .db_instance_class("db.t3.small")
        .build();
    let describe = describing(instance(&me, "available", "db.t3.micro", Some(pending)));
    let modify = mock!(aws_sdk_rds::Client::modify_db_instance)
        .then_output(|| ModifyDbInstanceOutput::builder().build());
    let rt = runtime(&[&describe, &modify]);

    for _ in 0..3 {
        let report = rt.reconcile(&ctx(), &[db_decl(&me, "db.t3.small")]).await;
        let row = only(&report);
        assert_eq!(row.state, State::Ready, "{row:?}");
        assert!(
            row.message.contains(
                "pending modifications (next maintenance window): instanceClass db.t3.small"
            ),
            "{row:?}"
        );
    }
    assert_eq!(
        modify.num_calls(),
        0,
        "a pending modification was requested again"
    );
}

#[tokio::test]
async fn mock_modification_without_apply_immediately_is_requested_once() {
    let me = owner("shop");
    let modify = mock!(aws_sdk_rds::Client::modify_db_instance)
        .match_requests(|r| {
            r.db_instance_class() == Some("db.t3.small") && r.apply_immediately() == Some(false)
        })
        .then_output(|| ModifyDbInstanceOutput::builder().build());
    // Before: micro. After the modify RDS reports the new class as pending.
    let pending = PendingModifiedValues::builder()
        .db_instance_class("db.t3.small")
        .build();
    let (before, after) = (
        instance(&me, "available", "db.t3.micro", None),
        instance(&me, "available", "db.t3.micro", Some(pending)),
    );
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(before.clone())
                .build()
        })
        .output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(after.clone())
                .build()
        })
        .repeatedly()
        .build();
    let rt = runtime(&[&describe, &modify]);

    let first = rt.reconcile(&ctx(), &[db_decl(&me, "db.t3.small")]).await;
    assert_eq!(only(&first).state, State::Updating, "{first:?}");
    assert!(
        only(&first).message.contains("next maintenance window"),
        "{first:?}"
    );
    for _ in 0..2 {
        let report = rt.reconcile(&ctx(), &[db_decl(&me, "db.t3.small")]).await;
        assert_eq!(only(&report).state, State::Ready, "{report:?}");
    }
    assert_eq!(modify.num_calls(), 1);
}

#[tokio::test]
async fn mock_create_returns_at_once_with_creating() {
    let me = owner("shop");
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_error(|| {
        DescribeDBInstancesError::DbInstanceNotFoundFault(
            DbInstanceNotFoundFault::builder()
                .message("not found")
                .build(),
        )
    });
    let created = instance(&me, "creating", "db.t3.micro", None);
    let create = mock!(aws_sdk_rds::Client::create_db_instance)
        .match_requests(|r| r.master_user_password() == Some("pw-from-secret"))
        .then_output(move || {
            CreateDbInstanceOutput::builder()
                .db_instance(created.clone())
                .build()
        });
    let rt = runtime(&[&describe, &create]);
    let mut secret = k8s_openapi::api::core::v1::Secret::default();
    secret.metadata.namespace = Some("shop".into());
    secret.metadata.name = Some("p".into());
    secret.string_data = Some([("password".to_string(), "pw-from-secret".to_string())].into());
    let ctx = ProviderContext::new(
        "mock",
        json!({}),
        KubeReader::fixed("shop", vec![secret], vec![]),
    );

    let report = rt.reconcile(&ctx, &[db_decl(&me, "db.t3.micro")]).await;
    let row = only(&report);
    assert_eq!(row.state, State::Creating, "{report:?}");
    assert_eq!(report.requeue_after, Some(Duration::from_secs(30)));
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn mock_deleting_instance_is_not_deleted_twice() {
    let me = owner("shop");
    let describe = describing(instance(&me, "deleting", "db.t3.micro", None));
    let delete = mock!(aws_sdk_rds::Client::delete_db_instance)
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let rt = runtime(&[&describe, &delete]);

    let report = rt.delete_all(&ctx(), &[db_decl(&me, "db.t3.micro")]).await;
    assert_eq!(only(&report).state, State::Deleting);
    assert!(!report.delete_finished());
    assert_eq!(delete.num_calls(), 0);
}

fn throttled() -> DescribeDBInstancesError {
    DescribeDBInstancesError::generic(
        ErrorMetadata::builder()
            .code("Throttling")
            .message("Rate exceeded")
            .build(),
    )
}

/// RDS's throttling answer as it comes over the wire (Query protocol, HTTP 400), so the SDK's
/// own error parser runs and the row shows the real status (`then_error` leaves the mock
/// client's placeholder 418 as the raw response).
fn throttled_response() -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(400).expect("valid status"),
        SdkBody::from(
            "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error>\
             <Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>\
             <RequestId>7b8f1f3e-0000-4000-8000-000000000000</RequestId></ErrorResponse>",
        ),
    )
}

#[tokio::test]
async fn mock_throttling_is_retried_by_the_runtime() {
    let me = owner("shop");
    let ok = instance(&me, "available", "db.t3.micro", None);
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .error(throttled)
        .times(2)
        .output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(ok.clone())
                .build()
        })
        .build();
    let rt = runtime(&[&describe]);

    let report = rt.reconcile(&ctx(), &[db_decl(&me, "db.t3.micro")]).await;
    assert_eq!(only(&report).state, State::Ready, "{report:?}");
    assert_eq!(describe.num_calls(), 3);
    assert!(report.errors.is_empty());
}

#[tokio::test]
async fn mock_persistent_throttling_is_a_retryable_error_row_with_aws_code() {
    let me = owner("shop");
    let describe =
        mock!(aws_sdk_rds::Client::describe_db_instances).then_http_response(throttled_response);
    let rt = runtime(&[&describe]);

    let report = rt.reconcile(&ctx(), &[db_decl(&me, "db.t3.micro")]).await;
    let row = only(&report);
    assert_eq!(row.state, State::Error);
    assert_eq!(
        row.message,
        "DescribeDBInstances failed: Throttling: Rate exceeded (HTTP 400)"
    );
    assert_eq!(describe.num_calls(), 3, "max_attempts is 3");
    assert!(report.errors[0].retryable());
    assert_eq!(report.errors[0].code(), Some("Throttling"));
    assert!(report.requeue_after.is_some());
}

#[tokio::test]
async fn mock_non_retryable_error_is_not_retried() {
    let me = owner("shop");
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_error(|| {
        DescribeDBInstancesError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("no")
                .build(),
        )
    });
    let rt = runtime(&[&describe]);
    let report = rt.reconcile(&ctx(), &[db_decl(&me, "db.t3.micro")]).await;
    assert_eq!(only(&report).state, State::Error);
    assert_eq!(describe.num_calls(), 1);
    assert!(!report.errors[0].retryable());
    assert_eq!(report.requeue_after, None);
}
