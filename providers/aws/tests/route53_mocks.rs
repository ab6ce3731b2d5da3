//! MOCKS, not moto: Route 53 answers moto cannot give. moto reports every change INSYNC at once,
//! so the PENDING → requeue → INSYNC path needs mocked ChangeResourceRecordSets and GetChange
//! answers; and moto accepts a CREATE of a record that already exists, where Route 53 rejects
//! the whole batch with InvalidChangeBatch. The Route 53 answers come from aws-smithy-mocks
//! rules; the provider and the runtime are the real code.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_route53::config::retry::RetryConfig;
use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput;
use aws_sdk_route53::operation::get_change::GetChangeOutput;
use aws_sdk_route53::operation::list_hosted_zones_by_name::ListHostedZonesByNameOutput;
use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
use aws_sdk_route53::types::{
    ChangeInfo, ChangeStatus, HostedZone, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::DateTime;
use common::{decl, owner};
use orkestra_provider::{
    KubeReader, Owner, ProviderContext, ProviderRuntime, RateLimit, RunReport, State, StatusRow,
};
use orkestra_provider_aws::route53::record::{ownership_text, txt_value};
use orkestra_provider_aws::{AwsProvider, FixedClients};
use serde_json::json;

const NAME: &str = "www.example.com.";
const MARK: &str = "_orkestra-a.www.example.com.";

fn zones() -> Rule {
    mock!(aws_sdk_route53::Client::list_hosted_zones_by_name).then_output(|| {
        ListHostedZonesByNameOutput::builder()
            .hosted_zones(
                HostedZone::builder()
                    .id("/hostedzone/ZMOCK")
                    .name("example.com.")
                    .caller_reference("ref")
                    .build()
                    .expect("zone"),
            )
            .is_truncated(false)
            .max_items(10)
            .build()
            .expect("output")
    })
}

fn set(name: &str, rtype: RrType, value: &str) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(rtype)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(value).build().expect("rr"))
        .build()
        .expect("set")
}

/// ListResourceRecordSets from `start`, answering `sets`.
fn listing(start: &'static str, sets: Vec<ResourceRecordSet>) -> Rule {
    mock!(aws_sdk_route53::Client::list_resource_record_sets)
        .match_requests(move |r| r.start_record_name() == Some(start))
        .then_output(move || {
            ListResourceRecordSetsOutput::builder()
                .set_resource_record_sets(Some(sets.clone()))
                .is_truncated(false)
                .max_items(20)
                .build()
                .expect("output")
        })
}

fn info(status: ChangeStatus) -> ChangeInfo {
    ChangeInfo::builder()
        .id("/change/CMOCK42")
        .status(status)
        .submitted_at(DateTime::from_secs(0))
        .build()
        .expect("change info")
}

fn change_answer(status: ChangeStatus) -> Rule {
    mock!(aws_sdk_route53::Client::change_resource_record_sets).then_output(move || {
        ChangeResourceRecordSetsOutput::builder()
            .change_info(info(status.clone()))
            .build()
    })
}

fn get_change(status: ChangeStatus) -> Rule {
    mock!(aws_sdk_route53::Client::get_change)
        .match_requests(|r| r.id() == Some("CMOCK42"))
        .then_output(move || {
            GetChangeOutput::builder()
                .change_info(info(status.clone()))
                .build()
        })
}

fn runtime(rules: &[&Rule]) -> ProviderRuntime {
    let route53 = mock_client!(aws_sdk_route53, RuleMode::MatchAny, rules, |b| b
        .retry_config(RetryConfig::disabled()));
    let mut rt = ProviderRuntime::new();
    rt.register(
        Arc::new(AwsProvider::with_fixed_clients(
            FixedClients {
                route53: Some(route53),
                ..FixedClients::default()
            },
            "us-east-1",
        )),
        RateLimit::default(),
    )
    .expect("one provider per name");
    rt
}

fn ctx_after(rows: &[StatusRow]) -> ProviderContext {
    ProviderContext::new(
        "mock",
        json!({"status": {"external": rows}}),
        KubeReader::empty(),
    )
}

fn the_row(report: &RunReport) -> &StatusRow {
    assert_eq!(report.rows.len(), 1, "{report:?}");
    &report.rows[0]
}

fn record_decl(me: &Owner) -> orkestra_provider::Declaration {
    decl(
        "route53",
        json!({"name": "www.example.com", "zone": "example.com", "type": "A", "ttl": 60,
               "values": ["192.0.2.1"]}),
        me,
    )
}

#[tokio::test]
async fn mock_a_pending_change_is_a_requeue_until_insync() {
    let me = owner("web");
    let d = record_decl(&me);
    let started = Instant::now();

    // Pass 1: nothing there; the change batch is accepted as PENDING.
    let (zones1, empty, no_mark) = (zones(), listing(NAME, vec![]), listing(MARK, vec![]));
    let write = change_answer(ChangeStatus::Pending);
    let rt = runtime(&[&zones1, &empty, &no_mark, &write]);
    let report = rt
        .reconcile(&ctx_after(&[]), std::slice::from_ref(&d))
        .await;
    let first = the_row(&report).clone();
    assert_eq!(first.state, State::Creating, "{first:?}");
    assert!(first.message.contains("change CMOCK42"), "{first:?}");
    assert_eq!(report.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(first.outputs.get("zoneId"), Some(&json!("ZMOCK")));
    assert_eq!(write.num_calls(), 1);

    // Pass 2: the record is there; GetChange still says PENDING: no new change, still Creating.
    let ours = txt_value(&ownership_text(&me));
    let (zones2, record, mark) = (
        zones(),
        listing(NAME, vec![set(NAME, RrType::A, "192.0.2.1")]),
        listing(MARK, vec![set(MARK, RrType::Txt, &ours)]),
    );
    let (rewrite, pending) = (
        change_answer(ChangeStatus::Insync),
        get_change(ChangeStatus::Pending),
    );
    let rt = runtime(&[&zones2, &record, &mark, &rewrite, &pending]);
    let report = rt
        .reconcile(&ctx_after(&report.rows), std::slice::from_ref(&d))
        .await;
    let second = the_row(&report).clone();
    assert_eq!(second.state, State::Creating, "{second:?}");
    assert!(second.message.contains("change CMOCK42"), "{second:?}");
    assert_eq!(report.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(pending.num_calls(), 1);
    assert_eq!(rewrite.num_calls(), 0, "the change was sent again");

    // Pass 3: INSYNC: Ready.
    let (zones3, record3, mark3) = (
        zones(),
        listing(NAME, vec![set(NAME, RrType::A, "192.0.2.1")]),
        listing(MARK, vec![set(MARK, RrType::Txt, &ours)]),
    );
    let insync = get_change(ChangeStatus::Insync);
    let rt = runtime(&[&zones3, &record3, &mark3, &insync]);
    let report = rt
        .reconcile(&ctx_after(&report.rows), std::slice::from_ref(&d))
        .await;
    let third = the_row(&report);
    assert_eq!(third.state, State::Ready, "{third:?}");
    assert_eq!(third.message, "");
    assert_eq!(report.requeue_after, None);
    assert_eq!(insync.num_calls(), 1);

    // A Ready row waits for nothing: no GetChange.
    let (zones4, record4, mark4) = (
        zones(),
        listing(NAME, vec![set(NAME, RrType::A, "192.0.2.1")]),
        listing(MARK, vec![set(MARK, RrType::Txt, &ours)]),
    );
    let unused = get_change(ChangeStatus::Insync);
    let rt = runtime(&[&zones4, &record4, &mark4, &unused]);
    let report = rt
        .reconcile(&ctx_after(&report.rows), std::slice::from_ref(&d))
        .await;
    assert_eq!(the_row(&report).state, State::Ready);
    assert_eq!(unused.num_calls(), 0);
    // Never a wait: three passes and a check in well under the requeue delay.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn mock_an_aws_rejection_is_an_error_row_with_its_code() {
    let me = owner("web");
    let d = record_decl(&me);
    let (zones1, empty, no_mark) = (zones(), listing(NAME, vec![]), listing(MARK, vec![]));
    // Route 53's answer as it comes over the wire (its standard ErrorResponse form).
    let rejected = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .then_http_response(|| {
            HttpResponse::new(
                StatusCode::try_from(400).expect("status"),
                SdkBody::from(
                    "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
                     <Error><Type>Sender</Type><Code>InvalidChangeBatch</Code>\
                     <Message>[Tried to create resource record set [name='www.example.com.', type='A'] but it already exists]</Message>\
                     </Error><RequestId>R1</RequestId></ErrorResponse>",
                ),
            )
        });
    let rt = runtime(&[&zones1, &empty, &no_mark, &rejected]);
    let report = rt
        .reconcile(&ctx_after(&[]), std::slice::from_ref(&d))
        .await;
    let r = the_row(&report);
    assert_eq!(r.state, State::Error, "{r:?}");
    assert_eq!(
        r.message,
        "ChangeResourceRecordSets failed: InvalidChangeBatch: [Tried to create resource record set [name='www.example.com.', type='A'] but it already exists] (HTTP 400)"
    );
    assert_eq!(report.errors[0].code(), Some("InvalidChangeBatch"));
    assert_eq!(rejected.num_calls(), 1, "a 400 is not retried");
}
