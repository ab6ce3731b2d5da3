//! The runtime's rate limit counts the provider's AWS requests, not its operations, against the
//! real moto server: `--provider-rate` is calls per second (issue 17: counted per operation,
//! 20 operations/s let about 80 calls/s through).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use orkestra_provider::runtime::RuntimeMetrics;
use orkestra_provider::{ProviderRuntime, RateLimit, State};
use orkestra_provider_aws::{AwsProvider, CallLog};
use orkestra_testsupport::unique_name;
use serde_json::json;

#[derive(Default)]
struct Waits(Mutex<Duration>);

impl RuntimeMetrics for Waits {
    fn throttled(&self, _provider: &str, waited: Duration) {
        *self.0.lock().unwrap() += waited;
    }
}

#[tokio::test]
async fn every_aws_request_takes_a_token() {
    let moto = orkestra_testsupport::moto().await;
    let log = CallLog::new();
    let provider = Arc::new(AwsProvider::new(moto_settings(moto, &log)));
    let waits = Arc::new(Waits::default());
    let mut runtime = ProviderRuntime::new().with_metrics(waits.clone());
    // One token to start with, then one every 100 ms.
    let per_second = 10.0;
    runtime
        .register(
            provider,
            RateLimit {
                per_second,
                burst: 1,
            },
        )
        .unwrap();
    let d = decl(
        "s3",
        json!({"bucket": unique_name("metered"), "versioning": "true", "tags": {"team": "web"}}),
        &owner("web"),
    );
    let started = std::time::Instant::now();
    let report = runtime.reconcile(&ctx(), std::slice::from_ref(&d)).await;
    let took = started.elapsed();
    assert_state(&report, State::Ready);
    let calls = log.total();
    // An observe and a create of a tagged, versioned bucket are many requests, two operations.
    assert!(calls >= 4, "{:?}", log.calls());
    // Every request after the first took its own token, so they cannot all have gone out in
    // less than (calls - 1) intervals; counted per operation, two operations need one.
    let interval = Duration::from_secs_f64(1.0 / per_second);
    let least = interval * u32::try_from(calls - 1).unwrap();
    assert!(
        took >= least,
        "{calls} requests went out in {took:?}, less than {least:?}"
    );
    let waited = *waits.0.lock().unwrap();
    assert!(waited > interval, "the throttling metric saw {waited:?}");
    println!("{calls} AWS requests in {took:?} at {per_second}/s, burst 1 ({waited:?} waiting for tokens); counted per operation they could go out in {interval:?}");
}
