//! Shared setup for the aws provider's tests against the real moto server of the test systems.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::Arc;

use orkestra_provider::{
    Declaration, FieldType, KubeReader, Owner, ProviderContext, ProviderRuntime, RateLimit,
    RetryPolicy, RunReport, State, StatusRow,
};
use orkestra_provider_aws::{AwsProvider, AwsSettings, CallLog};
use orkestra_testsupport::{unique_name, MotoEnv};
use serde_json::Value;

/// The provider wired to moto, its call log, a runtime around it, and a direct client for
/// arranging and inspecting state behind the provider's back.
pub struct Harness {
    pub moto: &'static MotoEnv,
    pub provider: Arc<AwsProvider>,
    pub runtime: ProviderRuntime,
    pub log: CallLog,
    pub s3: aws_sdk_s3::Client,
    pub rds: aws_sdk_rds::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub iam: aws_sdk_iam::Client,
    pub route53: aws_sdk_route53::Client,
}

/// Settings that reach `moto` with its credentials, recording every request in `log`.
pub fn moto_settings(moto: &MotoEnv, log: &CallLog) -> AwsSettings {
    AwsSettings {
        endpoint_url: Some(moto.endpoint.clone()),
        region: Some(moto.region.clone()),
        credentials: Some(aws_sdk_s3::config::Credentials::new(
            &moto.access_key_id,
            &moto.secret_access_key,
            None,
            None,
            "test",
        )),
        call_log: Some(log.clone()),
        ..AwsSettings::default()
    }
}

pub async fn harness() -> Harness {
    let moto = orkestra_testsupport::moto().await;
    let log = CallLog::new();
    let provider = Arc::new(AwsProvider::new(moto_settings(moto, &log)));
    let mut runtime = ProviderRuntime::new().with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: std::time::Duration::from_millis(50),
        max_delay: std::time::Duration::from_secs(1),
    });
    runtime
        .register(provider.clone(), RateLimit::default())
        .expect("one provider per name");
    Harness {
        moto,
        provider,
        runtime,
        log,
        s3: moto.s3_client().await,
        rds: moto.rds_client().await,
        sqs: moto.sqs_client().await,
        iam: moto.iam_client().await,
        route53: moto.route53_client().await,
    }
}

/// A CR owner with a fresh uid.
pub fn owner(name: &str) -> Owner {
    Owner {
        uid: unique_name("uid"),
        namespace: "shop".into(),
        name: name.into(),
        katalog: "shop-katalog".into(),
    }
}

/// A declaration of `kind` built the way the agent builds it (coerced and checked by the schema).
pub fn decl(kind: &str, item: Value, owner: &Owner) -> Declaration {
    let schema = orkestra_provider_aws::schema();
    let kind = schema.kind(kind).expect("kind");
    Declaration::from_rendered(
        "aws",
        kind,
        item.as_object().expect("an object"),
        owner.clone(),
    )
    .expect("a valid declaration")
}

pub fn ctx() -> ProviderContext {
    ctx_with(KubeReader::empty())
}

pub fn ctx_with(kube: KubeReader) -> ProviderContext {
    ProviderContext::new(unique_name("req"), serde_json::json!({}), kube)
}

/// The only row of a one-declaration report.
pub fn row(report: &RunReport) -> &StatusRow {
    assert_eq!(report.rows.len(), 1, "{report:?}");
    &report.rows[0]
}

/// Assert the row's state, printing the row when it differs.
pub fn assert_state(report: &RunReport, state: State) {
    let r = row(report);
    assert_eq!(r.state, state, "row: {r:?}, errors: {:?}", report.errors);
}

/// Operation names of the mutating calls recorded since the last clear.
pub fn mutating_ops(log: &CallLog) -> Vec<String> {
    log.mutating().into_iter().map(|c| c.operation).collect()
}

/// Whether `v` has the JSON type `ty` declares, as it stands (no coercion).
fn has_type(ty: FieldType, v: &Value) -> bool {
    match ty {
        FieldType::String => v.is_string(),
        FieldType::Integer => v.is_i64() || v.is_u64(),
        FieldType::Boolean => v.is_boolean(),
        FieldType::StringMap => v
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string)),
        FieldType::List => v.is_array(),
        FieldType::Object => v.is_object(),
        FieldType::Any => true,
    }
}

/// The row is Ready and its outputs are exactly the outputs `kind` declares in the schema, each
/// with the declared JSON type: an output declared but not produced fails.
pub fn assert_declared_outputs(kind: &str, r: &StatusRow) {
    assert_eq!(r.state, State::Ready, "{r:?}");
    let schema = orkestra_provider_aws::schema();
    let declared = &schema.kind(kind).expect("kind").outputs;
    assert!(!declared.is_empty(), "aws.{kind} declares no outputs");
    for o in declared {
        let v = r
            .outputs
            .get(o.name)
            .unwrap_or_else(|| panic!("aws.{kind} output {} is missing: {r:?}", o.name));
        assert!(
            has_type(o.ty, v),
            "aws.{kind} output {} is {v}, not {}",
            o.name,
            o.ty.describe()
        );
    }
    for name in r.outputs.keys() {
        assert!(
            declared.iter().any(|o| o.name == name),
            "aws.{kind} produces output {name} its schema does not declare: {r:?}"
        );
    }
}
