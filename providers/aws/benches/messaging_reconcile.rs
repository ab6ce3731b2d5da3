//! Reconcile N CRs (default 200, `ORKESTRA_BENCH_N`) each declaring an SQS queue, an IAM policy
//! allowing ReceiveMessage on it, and a Route 53 CNAME, against the real moto server, and print
//! external calls per CR (create, resync, delete) and wall time, beside a baseline in the same
//! run that issues the minimal SDK calls for the same end state directly.
//!
//! `cargo bench -p orkestra-provider-aws --bench messaging_reconcile`
//!
//! Each orkestra pass gets the CR with the previous pass's `status.external`, as the agent gives
//! it; a "cold" resync repeats the resync with no status, to show what searching costs.
//!
//! Figures only: nothing here asserts a time. The mutating count of the orkestra resyncs is
//! asserted (zero), as the tests assert it: a no-op pass that writes is a bug, not a figure.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use orkestra_provider::{
    Declaration, KubeReader, Owner, ProviderContext, ProviderRuntime, RateLimit, State, StatusRow,
};
use orkestra_provider_aws::route53::record::{
    ownership_name, ownership_text, txt_value, RecordType,
};
use orkestra_provider_aws::{AwsProvider, AwsSettings, CallLog};
use orkestra_testsupport::{unique_name, MotoEnv};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Concurrent reconciles, like agent workers.
const WORKERS: usize = 8;

struct Figures {
    label: &'static str,
    calls: usize,
    mutating: usize,
    /// Mutating requests moto served in the pass that mention the run's unique prefix.
    moto_mutating: usize,
    elapsed: Duration,
    /// Calls by operation, for the breakdown under the table.
    by_operation: BTreeMap<String, usize>,
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

/// Mutating requests moto has served that mention `run` (every name this bench uses holds it).
fn moto_count(moto: &MotoEnv, run: &str) -> usize {
    moto.mutating_requests(run).expect("moto's recording").len()
}

fn measure(
    label: &'static str,
    log: &CallLog,
    elapsed: Duration,
    moto: &MotoEnv,
    run: &str,
    moto_before: &mut usize,
) -> Figures {
    let now = moto_count(moto, run);
    let mut by_operation = BTreeMap::new();
    for c in log.calls() {
        *by_operation.entry(c.operation).or_default() += 1;
    }
    let f = Figures {
        by_operation,
        label,
        calls: log.total(),
        mutating: log.mutating().len(),
        moto_mutating: now - *moto_before,
        elapsed,
    };
    *moto_before = now;
    log.clear();
    f
}

fn owner(run: &str, i: usize) -> Owner {
    Owner {
        uid: format!("{run}-uid-{i}"),
        namespace: "bench".into(),
        name: format!("cr-{i}"),
        katalog: "bench".into(),
    }
}

/// The policy document granting ReceiveMessage on `queue`.
fn document(region: &str, queue: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage"],
            "Resource": format!("arn:aws:sqs:{region}:123456789012:{queue}"),
        }],
    })
}

fn record_set(name: &str, rtype: RrType, value: &str) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(rtype)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(value).build().expect("rr"))
        .build()
        .expect("record set")
}

/// One change batch writing (or deleting) a CNAME and its ownership TXT together, as the
/// provider writes them.
fn record_batch(action: ChangeAction, name: &str, target: &str, owner: &Owner) -> ChangeBatch {
    let fqdn = format!("{name}.");
    let sets = [
        record_set(&fqdn, RrType::Cname, target),
        record_set(
            &ownership_name(&fqdn, RecordType::Cname),
            RrType::Txt,
            &txt_value(&ownership_text(owner)),
        ),
    ];
    let mut batch = ChangeBatch::builder();
    for set in sets {
        batch = batch.changes(
            Change::builder()
                .action(action.clone())
                .resource_record_set(set)
                .build()
                .expect("change"),
        );
    }
    batch.build().expect("batch")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("ORKESTRA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
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
    let run = unique_name("bench");

    // One hosted zone for the run, made directly (not measured): the records of both passes
    // live in it, the orkestra ones deleted before the baseline writes its own.
    let config = moto.aws_config().await;
    let zone = format!("{run}.orkestra.test");
    let zone_id = {
        let r53 = aws_sdk_route53::Client::new(&config);
        let out = r53
            .create_hosted_zone()
            .name(&zone)
            .caller_reference(unique_name("ref"))
            .send()
            .await
            .expect("CreateHostedZone");
        let id = out.hosted_zone().expect("zone").id();
        id.strip_prefix("/hostedzone/").unwrap_or(id).to_string()
    };

    let schema = orkestra_provider_aws::schema();
    let (sqs, policy, record) = (
        schema.kind("sqs").expect("sqs"),
        schema.kind("iamPolicy").expect("iamPolicy"),
        schema.kind("route53").expect("route53"),
    );
    let decls: Arc<Vec<Vec<Declaration>>> = Arc::new(
        (0..n)
            .map(|i| {
                let owner = owner(&run, i);
                let queue = format!("{run}-q{i}");
                let items = [
                    (sqs, json!({"queueName": queue, "visibilityTimeout": 60})),
                    (
                        policy,
                        json!({
                            "policyName": format!("{run}-p{i}"),
                            "document": document(&moto.region, &queue),
                        }),
                    ),
                    (
                        record,
                        json!({
                            "name": format!("cr-{i}.{zone}"),
                            "zone": zone,
                            "type": "CNAME",
                            "ttl": 60,
                            "values": [format!("target-{i}.example.com")],
                        }),
                    ),
                ];
                items
                    .iter()
                    .map(|(kind, item)| {
                        Declaration::from_rendered(
                            "aws",
                            kind,
                            item.as_object().expect("object"),
                            owner.clone(),
                        )
                        .expect("valid")
                    })
                    .collect()
            })
            .collect(),
    );
    // Each CR's rows after its last pass: the agent hands a pass the CR with the previous pass's
    // `status.external`, and kinds use it (a policy is read by the ARN it holds, not listed).
    let statuses: Arc<Vec<Mutex<Vec<StatusRow>>>> =
        Arc::new((0..n).map(|_| Mutex::new(Vec::new())).collect());

    let mut moto_before = moto_count(moto, &run);
    let mut rows = Vec::new();
    for (label, op) in [
        ("orkestra create", 0),
        ("orkestra resync", 1),
        // The same resync with no status (a CR whose status was lost, or an agent's first pass
        // over resources that already exist): what the kinds do when they must search.
        ("orkestra resync cold", 2),
        ("orkestra delete", 3),
    ] {
        let elapsed = run_all(n, |i| {
            let (rt, decls, statuses) = (runtime.clone(), decls.clone(), statuses.clone());
            async move {
                let d = decls[i].as_slice();
                let previous = if op == 2 {
                    Vec::new()
                } else {
                    statuses[i].lock().expect("status").clone()
                };
                let cr = json!({"status": {"external": previous}});
                let ctx = ProviderContext::new(format!("bench-{i}"), cr, KubeReader::empty());
                let report = match op {
                    0..=2 => rt.reconcile(&ctx, d).await,
                    _ => rt.delete_all(&ctx, d).await,
                };
                let want = if op == 3 {
                    State::Deleted
                } else {
                    State::Ready
                };
                assert_eq!(report.rows.len(), d.len(), "{report:?}");
                for row in &report.rows {
                    assert_eq!(row.state, want, "{row:?}, errors: {:?}", report.errors);
                }
                *statuses[i].lock().expect("status") = report.rows;
            }
        })
        .await;
        rows.push(measure(label, &log, elapsed, moto, &run, &mut moto_before));
    }

    // Baseline: the fewest direct calls giving the same end state (a tagged queue, a tagged
    // policy, a CNAME with its ownership TXT in one batch), reading it back on resync
    // (GetQueueAttributes, GetPolicy + GetPolicyVersion, ListResourceRecordSets), with no diff,
    // no status and no runtime.
    let base_log = CallLog::new();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&config)
            .interceptor(base_log.clone())
            .build(),
    );
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&config)
            .interceptor(base_log.clone())
            .build(),
    );
    let r53 = aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::config::Builder::from(&config)
            .interceptor(base_log.clone())
            .build(),
    );
    struct Base {
        owner: Owner,
        queue: String,
        policy: String,
        record: String,
        target: String,
        /// Learnt at create, as a direct caller would keep them.
        queue_url: OnceLock<String>,
        policy_arn: OnceLock<String>,
    }
    let bases: Arc<Vec<Base>> = Arc::new(
        (0..n)
            .map(|i| Base {
                owner: owner(&run, n + i),
                queue: format!("{run}-bq{i}"),
                policy: format!("{run}-bp{i}"),
                record: format!("base-{i}.{zone}"),
                target: format!("target-{i}.example.com"),
                queue_url: OnceLock::new(),
                policy_arn: OnceLock::new(),
            })
            .collect(),
    );
    let region = Arc::new(moto.region.clone());
    let zone_id = Arc::new(zone_id);
    for (label, op) in [
        ("baseline create", 0),
        ("baseline resync", 1),
        ("baseline delete", 2),
    ] {
        let elapsed = run_all(n, |i| {
            let (sqs, iam, r53) = (sqs.clone(), iam.clone(), r53.clone());
            let (bases, region, zone_id) = (bases.clone(), region.clone(), zone_id.clone());
            async move {
                let b = &bases[i];
                match op {
                    0 => {
                        let tags: HashMap<String, String> = b.owner.tags().into_iter().collect();
                        let out = sqs
                            .create_queue()
                            .queue_name(&b.queue)
                            .attributes(QueueAttributeName::VisibilityTimeout, "60")
                            .set_tags(Some(tags.clone()))
                            .send()
                            .await
                            .expect("CreateQueue");
                        let url = out.queue_url().expect("url").to_string();
                        b.queue_url.set(url).expect("once");
                        let iam_tags = tags
                            .iter()
                            .map(|(k, v)| {
                                aws_sdk_iam::types::Tag::builder()
                                    .key(k)
                                    .value(v)
                                    .build()
                                    .expect("tag")
                            })
                            .collect();
                        let out = iam
                            .create_policy()
                            .policy_name(&b.policy)
                            .policy_document(document(&region, &b.queue).to_string())
                            .set_tags(Some(iam_tags))
                            .send()
                            .await
                            .expect("CreatePolicy");
                        let arn = out.policy().and_then(|p| p.arn()).expect("arn");
                        b.policy_arn.set(arn.to_string()).expect("once");
                        r53.change_resource_record_sets()
                            .hosted_zone_id(zone_id.as_str())
                            .change_batch(record_batch(
                                ChangeAction::Create,
                                &b.record,
                                &b.target,
                                &b.owner,
                            ))
                            .send()
                            .await
                            .expect("ChangeResourceRecordSets");
                    }
                    1 => {
                        let url = b.queue_url.get().expect("created");
                        sqs.get_queue_attributes()
                            .queue_url(url)
                            .attribute_names(QueueAttributeName::All)
                            .send()
                            .await
                            .expect("GetQueueAttributes");
                        let arn = b.policy_arn.get().expect("created");
                        let out = iam
                            .get_policy()
                            .policy_arn(arn)
                            .send()
                            .await
                            .expect("GetPolicy");
                        let version = out
                            .policy()
                            .and_then(|p| p.default_version_id())
                            .unwrap_or("v1");
                        iam.get_policy_version()
                            .policy_arn(arn)
                            .version_id(version)
                            .send()
                            .await
                            .expect("GetPolicyVersion");
                        r53.list_resource_record_sets()
                            .hosted_zone_id(zone_id.as_str())
                            .start_record_name(&b.record)
                            .max_items(2)
                            .send()
                            .await
                            .expect("ListResourceRecordSets");
                    }
                    _ => {
                        sqs.delete_queue()
                            .queue_url(b.queue_url.get().expect("created"))
                            .send()
                            .await
                            .expect("DeleteQueue");
                        iam.delete_policy()
                            .policy_arn(b.policy_arn.get().expect("created"))
                            .send()
                            .await
                            .expect("DeletePolicy");
                        r53.change_resource_record_sets()
                            .hosted_zone_id(zone_id.as_str())
                            .change_batch(record_batch(
                                ChangeAction::Delete,
                                &b.record,
                                &b.target,
                                &b.owner,
                            ))
                            .send()
                            .await
                            .expect("ChangeResourceRecordSets");
                    }
                }
            }
        })
        .await;
        rows.push(measure(
            label,
            &base_log,
            elapsed,
            moto,
            &run,
            &mut moto_before,
        ));
    }

    // The zone is empty again (both passes deleted their records): remove it, not measured.
    aws_sdk_route53::Client::new(&config)
        .delete_hosted_zone()
        .id(zone_id.as_str())
        .send()
        .await
        .expect("DeleteHostedZone");

    let per_cr = |x: usize| x as f64 / n as f64;
    println!(
        "\n{n} CRs x (1 queue + 1 policy + 1 record) against moto ({} workers)",
        WORKERS
    );
    println!(
        "{:<22} {:>8} {:>10} {:>9} {:>12} {:>12} {:>10} {:>8}",
        "pass", "calls", "calls/CR", "mutating", "mutating/CR", "moto mut/CR", "total s", "CR/s"
    );
    for f in &rows {
        println!(
            "{:<22} {:>8} {:>10.2} {:>9} {:>12.2} {:>12.2} {:>10.2} {:>8.1}",
            f.label,
            f.calls,
            per_cr(f.calls),
            f.mutating,
            per_cr(f.mutating),
            per_cr(f.moto_mutating),
            f.elapsed.as_secs_f64(),
            n as f64 / f.elapsed.as_secs_f64()
        );
    }
    for (what, o, b) in [
        ("create", 0, 4),
        ("resync", 1, 5),
        ("resync cold", 2, 5),
        ("delete", 3, 6),
    ] {
        println!(
            "orkestra/baseline calls per CR, {what}: {:.2}",
            rows[o].calls as f64 / rows[b].calls as f64
        );
    }
    println!("\ncalls per CR by operation:");
    for f in &rows {
        let ops: Vec<String> = f
            .by_operation
            .iter()
            .map(|(op, c)| format!("{op} {:.2}", per_cr(*c)))
            .collect();
        println!("{:<22} {}", f.label, ops.join(", "));
    }
    for f in &rows[1..3] {
        println!(
            "{} mutating calls: {} (expected 0), at moto: {}",
            f.label, f.mutating, f.moto_mutating
        );
    }
    // After the table, so a failing run still shows its figures.
    for f in &rows[1..3] {
        assert_eq!(
            (f.mutating, f.moto_mutating),
            (0, 0),
            "{}: a resync with nothing to change made mutating calls",
            f.label
        );
    }
}
