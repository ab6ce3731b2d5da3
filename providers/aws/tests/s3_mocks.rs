//! MOCKS, not moto: S3 failures moto cannot be made to produce on demand (a tagging call failing
//! right after CreateBucket). The S3 answers come from aws-smithy-mocks rules; the provider code
//! and the runtime are real.

mod common;

use std::sync::Arc;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::operation::create_bucket::CreateBucketOutput;
use aws_sdk_s3::operation::delete_bucket::DeleteBucketOutput;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::types::error::NotFound;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use common::{decl, owner};
use orkestra_provider::{KubeReader, ProviderContext, ProviderRuntime, RateLimit, State};
use orkestra_provider_aws::AwsProvider;
use serde_json::json;

#[tokio::test]
async fn mock_failed_tagging_after_create_rolls_the_bucket_back() {
    let head = mock!(aws_sdk_s3::Client::head_bucket)
        .then_error(|| HeadBucketError::NotFound(NotFound::builder().build()));
    let create = mock!(aws_sdk_s3::Client::create_bucket)
        .then_output(|| CreateBucketOutput::builder().build());
    // S3's answer as it comes over the wire, so the SDK's own error parser runs and the row
    // shows the real status (`then_error` leaves the mock client's placeholder 418 as the raw
    // response).
    let tagging = mock!(aws_sdk_s3::Client::put_bucket_tagging).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(403).expect("valid status"),
            SdkBody::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                 <Message>tagging denied</Message><RequestId>R1</RequestId></Error>",
            ),
        )
    });
    let delete = mock!(aws_sdk_s3::Client::delete_bucket)
        .match_requests(|r| r.bucket() == Some("rollback-me"))
        .then_output(|| DeleteBucketOutput::builder().build());
    let s3 = mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        &[&head, &create, &tagging, &delete],
        |b| b.retry_config(RetryConfig::disabled())
    );
    let rds = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::Config::builder()
            .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
            .region(aws_sdk_rds::config::Region::new("us-east-1"))
            .build(),
    );
    let mut rt = ProviderRuntime::new();
    rt.register(
        Arc::new(AwsProvider::with_clients(s3, rds, "us-east-1")),
        RateLimit::default(),
    )
    .expect("one provider per name");
    let ctx = ProviderContext::new("mock", json!({}), KubeReader::empty());

    let d = decl("s3", json!({"bucket": "rollback-me"}), &owner("web"));
    let report = rt.reconcile(&ctx, &[d]).await;
    assert_eq!(report.rows[0].state, State::Error, "{report:?}");
    assert_eq!(
        report.rows[0].message,
        "PutBucketTagging failed: AccessDenied: tagging denied (HTTP 403)"
    );
    assert_eq!(create.num_calls(), 1);
    assert_eq!(
        delete.num_calls(),
        1,
        "the untagged bucket was not rolled back"
    );
}
