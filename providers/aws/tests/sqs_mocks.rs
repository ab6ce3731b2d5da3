//! MOCKS, not moto: an SQS answer moto never gives. SQS refuses to create a queue under a name
//! deleted less than 60 s ago (`QueueDeletedRecently`); moto 5.2.5 re-creates the name at once
//! (tried: DeleteQueue then CreateQueue succeeds), so the refusal comes from an aws-smithy-mocks
//! rule, sent as SQS sends it over the wire so the SDK's own error parser runs. The provider code
//! and the runtime are real.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::error::QueueDoesNotExist;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use common::{decl, owner};
use orkestra_provider::{
    KubeReader, ProviderContext, ProviderRuntime, RateLimit, RetryPolicy, State,
};
use orkestra_provider_aws::{AwsProvider, FixedClients};
use serde_json::json;

#[tokio::test]
async fn mock_queue_deleted_recently_is_a_retryable_error_row_with_aws_code() {
    let get_url = mock!(aws_sdk_sqs::Client::get_queue_url)
        .then_error(|| GetQueueUrlError::QueueDoesNotExist(QueueDoesNotExist::builder().build()));
    let create = mock!(aws_sdk_sqs::Client::create_queue)
        .match_requests(|r| r.queue_name() == Some("recently-gone"))
        .then_http_response(|| {
            let mut response = HttpResponse::new(
                StatusCode::try_from(400).expect("valid status"),
                SdkBody::from(
                    r#"{"__type":"com.amazonaws.sqs#QueueDeletedRecently","message":"You must wait 60 seconds after deleting a queue before you can create another with the same name."}"#,
                ),
            );
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            response.headers_mut().insert(
                "x-amzn-query-error",
                "AWS.SimpleQueueService.QueueDeletedRecently;Sender",
            );
            response
        });
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&get_url, &create], |b| b
        .retry_config(RetryConfig::disabled()));
    let mut rt = ProviderRuntime::new().with_retry(RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    });
    rt.register(
        Arc::new(AwsProvider::with_fixed_clients(
            FixedClients {
                sqs: Some(sqs),
                ..FixedClients::default()
            },
            "us-east-1",
        )),
        RateLimit::default(),
    )
    .expect("one provider per name");
    let ctx = ProviderContext::new("mock", json!({}), KubeReader::empty());

    let d = decl("sqs", json!({"queueName": "recently-gone"}), &owner("web"));
    let report = rt.reconcile(&ctx, &[d]).await;
    let row = &report.rows[0];
    assert_eq!(row.state, State::Error, "{report:?}");
    assert_eq!(
        row.message,
        "CreateQueue failed: AWS.SimpleQueueService.QueueDeletedRecently: You must wait 60 \
         seconds after deleting a queue before you can create another with the same name. (HTTP 400)"
    );
    let err = &report.errors[0];
    assert_eq!(
        err.code(),
        Some("AWS.SimpleQueueService.QueueDeletedRecently")
    );
    assert!(err.retryable(), "waiting cures it: {err:?}");
    // Not a failure loop: the runtime's bounded retries (each after a fresh observe), then the
    // row waits for the next cycle.
    assert_eq!(create.num_calls(), 2);
    assert_eq!(get_url.num_calls(), 2);
    assert!(report.requeue_after.is_some(), "{report:?}");
}
