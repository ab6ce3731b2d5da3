//! Reconcile N CRs (default 500, `ORKESTRA_BENCH_N`) each declaring one bucket, against the real
//! moto server, and print external calls per CR (create, resync, delete) and wall time, beside a
//! baseline in the same run that issues the minimal SDK calls for the same end state directly.
//!
//! `cargo bench -p orkestra-provider-aws --bench s3_reconcile`
//!
//! Figures only: nothing here asserts a time.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{PublicAccessBlockConfiguration, Tag, Tagging};
use orkestra_provider::{
    Declaration, KubeReader, Owner, ProviderContext, ProviderRuntime, RateLimit, State,
};
use orkestra_provider_aws::{AwsProvider, AwsSettings, CallLog};
use orkestra_testsupport::unique_name;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Concurrent reconciles, like agent workers.
const WORKERS: usize = 8;

struct Figures {
    label: &'static str,
    calls: usize,
    mutating: usize,
    elapsed: Duration,
}

async fn run_all<F, Fut>(n: usize, f: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(WORKERS));
    let mut set = JoinSet::new();
    let start = Instant::now();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let fut = f(i);
        set.spawn(async move {
            fut.await;
            drop(permit);
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
    start.elapsed()
}

fn measure(label: &'static str, log: &CallLog, elapsed: Duration) -> Figures {
    let f = Figures {
        label,
        calls: log.total(),
        mutating: log.mutating().len(),
        elapsed,
    };
    log.clear();
    f
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("ORKESTRA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let moto = orkestra_testsupport::moto().await;
    let creds = aws_sdk_s3::config::Credentials::new(
        &moto.access_key_id,
        &moto.secret_access_key,
        None,
        None,
        "bench",
    );
    let log = CallLog::new();
    let settings = AwsSettings {
        endpoint_url: Some(moto.endpoint.clone()),
        region: Some(moto.region.clone()),
        credentials: Some(creds),
        call_log: Some(log.clone()),
        ..AwsSettings::default()
    };
    let mut runtime = ProviderRuntime::new();
    // A limit high enough not to shape the figures: this measures the provider, not the limiter.
    runtime
        .register(
            Arc::new(AwsProvider::new(settings)),
            RateLimit {
                per_second: 10_000.0,
                burst: 10_000,
            },
        )
        .expect("one provider per name");
    let runtime = Arc::new(runtime);
    let schema = orkestra_provider_aws::schema();
    let kind = schema.kind("s3").expect("s3").clone();
    let run = unique_name("bench");
    let decls: Arc<Vec<Declaration>> = Arc::new(
        (0..n)
            .map(|i| {
                let owner = Owner {
                    uid: format!("{run}-uid-{i}"),
                    namespace: "bench".into(),
                    name: format!("cr-{i}"),
                    katalog: "bench".into(),
                };
                let item = json!({"bucket": format!("{run}-p{i}")});
                Declaration::from_rendered("aws", &kind, item.as_object().expect("object"), owner)
                    .expect("valid")
            })
            .collect(),
    );
    let ctx = ProviderContext::new("bench", json!({}), KubeReader::empty());

    let mut rows = Vec::new();
    for (label, op) in [
        ("orkestra create", 0),
        ("orkestra resync", 1),
        ("orkestra delete", 2),
    ] {
        let elapsed = run_all(n, |i| {
            let (rt, decls, ctx) = (runtime.clone(), decls.clone(), ctx.clone());
            async move {
                let d = std::slice::from_ref(&decls[i]);
                let report = match op {
                    0 | 1 => rt.reconcile(&ctx, d).await,
                    _ => rt.delete_all(&ctx, d).await,
                };
                let want = if op == 2 {
                    State::Deleted
                } else {
                    State::Ready
                };
                assert_eq!(report.rows[0].state, want, "{:?}", report.rows[0]);
            }
        })
        .await;
        rows.push(measure(label, &log, elapsed));
    }

    // Baseline: the fewest direct calls giving the same end state (bucket, ownership tags,
    // public access block) and checking it on resync (HeadBucket, GetBucketTagging,
    // GetPublicAccessBlock), with no diff, no status and no runtime.
    let base_log = CallLog::new();
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.aws_config().await)
            .force_path_style(true)
            .interceptor(base_log.clone())
            .build(),
    );
    let names: Arc<Vec<String>> = Arc::new((0..n).map(|i| format!("{run}-b{i}")).collect());
    for (label, op) in [
        ("baseline create", 0),
        ("baseline resync", 1),
        ("baseline delete", 2),
    ] {
        let elapsed = run_all(n, |i| {
            let (c, names) = (client.clone(), names.clone());
            async move {
                let b = names[i].as_str();
                match op {
                    0 => {
                        c.create_bucket().bucket(b).send().await.expect("create");
                        let tag = Tag::builder()
                            .key("orkestra.orkspace.io/owner-uid")
                            .value(b)
                            .build()
                            .expect("tag");
                        let tagging = Tagging::builder().tag_set(tag).build().expect("tagging");
                        c.put_bucket_tagging()
                            .bucket(b)
                            .tagging(tagging)
                            .send()
                            .await
                            .expect("tag");
                        let pab = PublicAccessBlockConfiguration::builder()
                            .block_public_acls(true)
                            .ignore_public_acls(true)
                            .block_public_policy(true)
                            .restrict_public_buckets(true)
                            .build();
                        c.put_public_access_block()
                            .bucket(b)
                            .public_access_block_configuration(pab)
                            .send()
                            .await
                            .expect("pab");
                    }
                    1 => {
                        c.head_bucket().bucket(b).send().await.expect("head");
                        c.get_bucket_tagging().bucket(b).send().await.expect("tags");
                        c.get_public_access_block()
                            .bucket(b)
                            .send()
                            .await
                            .expect("pab");
                    }
                    _ => {
                        c.delete_bucket().bucket(b).send().await.expect("delete");
                    }
                }
            }
        })
        .await;
        rows.push(measure(label, &base_log, elapsed));
    }

    println!("\n{n} CRs x 1 bucket against moto ({} workers)", WORKERS);
    println!(
        "{:<18} {:>12} {:>16} {:>12} {:>12}",
        "pass", "calls/CR", "mutating/CR", "total s", "CR/s"
    );
    for f in &rows {
        println!(
            "{:<18} {:>12.2} {:>16.2} {:>12.2} {:>12.1}",
            f.label,
            f.calls as f64 / n as f64,
            f.mutating as f64 / n as f64,
            f.elapsed.as_secs_f64(),
            n as f64 / f.elapsed.as_secs_f64()
        );
    }
}
