//! `orkestra-faults`: the fault suite. Each scenario runs in its own namespace with its own
//! agent(s) and its own proxy in front of moto, bounded by a deadline, and checks outcomes:
//! every CR converges, nothing is created twice, nothing is left behind, no secret leaks.
//! The last line printed is "N passed, N failed". Run through `scripts/faults.sh`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use clap::Parser;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use orkestra_bench::agent::{Agent, AgentSpec};
use orkestra_bench::cluster::Cluster;
use orkestra_bench::proxy::{Faults, Proxy};
use orkestra_bench::report::{mib, Report};
use orkestra_bench::rng::Rng;
use orkestra_bench::workload;
use serde_json::{json, Value};

const ALL: &str = "kill9,apiserver,proxy,leader,hostile,canary";

#[derive(Debug, Parser)]
#[command(name = "orkestra-faults", about = "orkestra's fault suite")]
struct Args {
    /// orkestra-agent binary.
    #[arg(long)]
    agent_bin: PathBuf,
    /// kubectl-orkestra binary.
    #[arg(long)]
    plugin_bin: PathBuf,
    /// Repository root.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))]
    repo: PathBuf,
    /// Results directory.
    #[arg(long, env = "BENCH_RESULTS")]
    results: Option<PathBuf>,
    /// Scenarios to run.
    #[arg(long, value_delimiter = ',', default_value = ALL)]
    only: Vec<String>,
    /// Random seed (printed; default from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// CRs converging while the agent is killed.
    #[arg(long, default_value_t = 200)]
    kill_n: usize,
    /// How many times the agent is killed with SIGKILL.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// Mutated CRs sent by the hostile-input scenario.
    #[arg(long, default_value_t = 800)]
    hostile_crs: usize,
    /// Mutated Katalogs sent by the hostile-input scenario.
    #[arg(long, default_value_t = 200)]
    hostile_katalogs: usize,
    /// Resident-memory bound for the hostile-input scenario, MiB.
    #[arg(long, default_value_t = 512)]
    hostile_rss_mib: u64,
    /// Per-scenario deadline, seconds.
    #[arg(long, default_value_t = 900)]
    scenario_secs: u64,
    /// The agents' `--provider-rate` (AWS calls per second). The agent's default, 20/s, is sized
    /// for real AWS accounts; at 20/s the hostile scenario's 300+ accepted CRs with a 30 s resync
    /// need more calls for resyncs alone than the limit allows, so new CRs wait behind them.
    #[arg(long, default_value_t = 200.0)]
    provider_rate: f64,
}

struct Suite {
    args: Args,
    cluster: Cluster,
    work: PathBuf,
    rng: Rng,
    report: Report,
}

/// What a passing scenario measured.
type Figures = Vec<(String, String)>;

impl Suite {
    fn spec(&self, name: &str, endpoint: &str, ns: &str, extra: &[&str]) -> AgentSpec {
        let mut args = vec!["--namespace".to_string(), ns.to_string()];
        if !extra.contains(&"--leader-election") {
            args.extend(["--leader-election".into(), "off".into()]);
        }
        args.push(format!("--provider-rate={}", self.args.provider_rate));
        args.extend(extra.iter().map(|s| s.to_string()));
        AgentSpec {
            bin: self.args.agent_bin.clone(),
            kubeconfig: self.cluster.kubeconfig(),
            aws_endpoint: endpoint.to_string(),
            args,
            log: self.work.join(format!("agent-{name}.log")),
        }
    }

    async fn proxy(&mut self) -> Result<Proxy> {
        Ok(Proxy::start(self.cluster.moto_addr(), self.rng.next_u64()).await?)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let repo = args.repo.canonicalize().context("repository root")?;
    let results = args
        .results
        .clone()
        .unwrap_or_else(|| repo.join("target/bench-results"));
    let work = results.join("faults-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let seed = args.seed.unwrap_or_else(Rng::seed_from_clock);
    eprintln!(
        "[faults] seed {seed} (repeat with --seed {seed}); agents run with --provider-rate={}",
        args.provider_rate
    );
    let cluster_dir = PathBuf::from(format!("/tmp/orkestra-faults-{}", std::process::id()));
    let cluster = Cluster::up(&repo, &cluster_dir).await?;
    let mut report = Report::default();
    report.meta.insert(
        "command".into(),
        json!(std::env::args().collect::<Vec<_>>().join(" ")),
    );
    report.meta.insert("seed".into(), json!(seed));
    report
        .meta
        .insert("started".into(), json!(chrono::Utc::now().to_rfc3339()));
    let mut suite = Suite {
        args,
        cluster,
        work,
        rng: Rng::new(seed),
        report,
    };
    let setup = setup(&mut suite).await;
    let (mut passed, mut failed) = (0, 0);
    if let Err(e) = setup {
        eprintln!("[faults] setup failed: {e:#}");
        failed += 1;
    } else {
        let order: Vec<String> = ALL.split(',').map(String::from).collect();
        let chosen: Vec<String> = order
            .into_iter()
            .filter(|n| suite.args.only.contains(n))
            .collect();
        for name in &chosen {
            eprintln!("\n[faults] === {name} ===");
            let t = Instant::now();
            let limit = Duration::from_secs(suite.args.scenario_secs);
            let r = match tokio::time::timeout(limit, scenario(&mut suite, name)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!(
                    "did not finish within {}s",
                    limit.as_secs()
                )),
            };
            let took = format!("{:.1}s", t.elapsed().as_secs_f64());
            // A failed scenario leaves its CRs; its namespace goes so the next one starts clean.
            workload::delete_namespace(&suite.cluster.client, &format!("f-{name}")).await;
            match r {
                Ok(figs) => {
                    passed += 1;
                    let text = figs
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    suite.report.add(
                        "Faults",
                        name,
                        "PASS",
                        took,
                        text,
                        json!(figs.into_iter().collect::<BTreeMap<_, _>>()),
                    );
                }
                Err(e) => {
                    failed += 1;
                    suite
                        .report
                        .add("Faults", name, "FAIL", took, format!("{e:#}"), json!({}));
                }
            }
        }
    }
    suite.cluster.down().await;
    suite
        .report
        .meta
        .insert("finished".into(), json!(chrono::Utc::now().to_rfc3339()));
    suite.report.meta.insert(
        "summary".into(),
        json!(format!("{passed} passed, {failed} failed")),
    );
    std::fs::create_dir_all(&results)?;
    suite
        .report
        .write(&results, "faults", "orkestra fault suite")?;
    println!("{}", suite.report.table());
    println!(
        "results: {}/faults.json, {}/faults.md",
        results.display(),
        results.display()
    );
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

async fn setup(s: &mut Suite) -> Result<()> {
    let st = s
        .cluster
        .kubectl_cmd()
        .args(["apply", "-f"])
        .arg(s.args.repo.join("deploy/crds/katalog.yaml"))
        .stdout(std::process::Stdio::null())
        .status()
        .await?;
    ensure!(
        st.success(),
        "kubectl apply deploy/crds/katalog.yaml failed"
    );
    s.cluster
        .kubectl_cmd()
        .args([
            "wait",
            "--for=condition=Established",
            "crd/katalogs.orkestra.orkspace.io",
            "--timeout=60s",
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .await?;
    // `apply --wait` needs a running agent to report the controllers; a short-lived one.
    workload::ensure_namespace(&s.cluster.client, "f-setup").await?;
    let spec = s.spec("setup", &s.cluster.moto_endpoint(), "f-setup", &[]);
    let mut agent = Agent::start(&spec).await?;
    let katalog = workload::write_file(
        &s.work,
        "application-stack.yaml",
        &workload::app_stack_katalog(&s.args.repo, 30, 8)?,
    )?;
    let r = workload::orkestra_apply(&s.args.plugin_bin, &s.cluster.kubeconfig(), &katalog).await;
    let canary = workload::write_file(&s.work, "canary.yaml", CANARY_KATALOG)?;
    let r2 = workload::orkestra_apply(&s.args.plugin_bin, &s.cluster.kubeconfig(), &canary).await;
    agent.kill9().await;
    r?;
    r2?;
    Ok(())
}

async fn scenario(s: &mut Suite, name: &str) -> Result<Figures> {
    match name {
        "kill9" => kill9(s).await,
        "apiserver" => apiserver(s).await,
        "proxy" => proxy_faults(s).await,
        "leader" => leader(s).await,
        "hostile" => hostile(s).await,
        "canary" => canary(s).await,
        other => bail!("unknown scenario {other}"),
    }
}

// ---- shared checks ---------------------------------------------------------------------------

/// Waits until all `names` in `ns` are Ready; returns when that happened.
async fn wait_all_ready(
    client: &kube::Client,
    ns: &str,
    names: &[String],
    timeout: Duration,
) -> Result<Instant> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &workload::app_stack());
    let want: std::collections::HashSet<&String> = names.iter().collect();
    let r = workload::wait_until(
        &format!("{} CRs Ready in {ns}", names.len()),
        timeout,
        Duration::from_millis(500),
        || {
            let api = api.clone();
            let want = want.clone();
            async move {
                let list = api.list(&ListParams::default()).await.ok()?;
                let ready = list
                    .items
                    .iter()
                    .filter(|o| want.contains(&o.metadata.name.clone().unwrap_or_default()))
                    .filter(|o| workload::is_ready(&serde_json::to_value(o).unwrap_or(Value::Null)))
                    .count();
                (ready == want.len()).then(Instant::now)
            }
        },
    )
    .await;
    match r {
        Ok(t) => Ok(t),
        Err(e) => {
            let crs = workload::list_crs(client, ns).await.unwrap_or_default();
            let ready = crs.iter().filter(|o| workload::is_ready(o)).count();
            let stuck: Vec<String> = crs
                .iter()
                .filter(|o| !workload::is_ready(o))
                .take(5)
                .map(|o| {
                    let name = o
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    let msg = o
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .and_then(|cs| {
                            cs.iter()
                                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                        })
                        .and_then(|c| c.get("message").and_then(Value::as_str))
                        .unwrap_or("no Ready condition");
                    format!("{name}: {msg}")
                })
                .collect();
            bail!("{e} ({ready} Ready; not Ready: {})", stuck.join(" | "))
        }
    }
}

/// Checks the buckets of `ns`: exactly one per CR, tagged with its CR's uid, and never created
/// twice (two successful CreateBucket calls for one name, counted at moto's side).
async fn check_buckets(
    s: &Suite,
    ns: &str,
    names: &[String],
    proxies: &[&Proxy],
) -> Result<Figures> {
    let s3 = s.cluster.s3().await;
    let suffix = format!("-{ns}-assets");
    let buckets: Vec<String> = workload::bucket_names(&s3)
        .await?
        .into_iter()
        .filter(|b| b.ends_with(&suffix))
        .collect();
    let crs = workload::list_crs(&s.cluster.client, ns).await?;
    let uid_of: HashMap<String, String> = crs
        .iter()
        .filter_map(|o| {
            Some((
                o.pointer("/metadata/name")?.as_str()?.to_string(),
                o.pointer("/metadata/uid")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let mut problems = Vec::new();
    for name in names {
        let b = workload::bucket_of(ns, name);
        if !buckets.contains(&b) {
            problems.push(format!("bucket {b} missing"));
            continue;
        }
        let tags = workload::bucket_tags(&s3, &b).await;
        let want = uid_of.get(name).cloned().unwrap_or_default();
        if tags.get("orkestra.orkspace.io/owner-uid") != Some(&want) {
            problems.push(format!(
                "bucket {b}: owner-uid tag {:?}, CR uid {want}",
                tags.get("orkestra.orkspace.io/owner-uid")
            ));
        }
    }
    let extra = buckets.len().saturating_sub(names.len());
    if extra > 0 {
        problems.push(format!("{extra} buckets more than CRs"));
    }
    // Replay what moto answered, in order: a CreateBucket that succeeds while the bucket already
    // exists (moto, like S3 in us-east-1, answers 200 to its owner) is a second create; a
    // create after the provider's own rollback (DeleteBucket) is not.
    let mut exists: HashMap<String, bool> = HashMap::new();
    let (mut twice, mut rollbacks, mut attempts) =
        (Vec::new(), 0usize, HashMap::<String, usize>::new());
    for p in proxies {
        for c in p.calls() {
            if !c.bucket.ends_with(&suffix) || !(200..300).contains(&c.status) {
                if c.op == "CreateBucket" && c.bucket.ends_with(&suffix) {
                    *attempts.entry(c.bucket.clone()).or_default() += 1;
                }
                continue;
            }
            match c.op.as_str() {
                "CreateBucket" => {
                    *attempts.entry(c.bucket.clone()).or_default() += 1;
                    if exists.insert(c.bucket.clone(), true) == Some(true) {
                        twice.push(c.bucket.clone());
                    }
                }
                "DeleteBucket" if exists.insert(c.bucket.clone(), false) == Some(true) => {
                    rollbacks += 1;
                }
                _ => {}
            }
        }
    }
    let retried = attempts.values().filter(|n| **n > 1).count();
    if !twice.is_empty() {
        problems.push(format!(
            "CreateBucket succeeded on an existing bucket (created twice): {}",
            twice.join(", ")
        ));
    }
    if !problems.is_empty() {
        bail!(
            "{} bucket problem(s): {}",
            problems.len(),
            problems
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(vec![
        (
            "buckets".into(),
            format!("{} (one per CR, owner-uid tags match)", buckets.len()),
        ),
        ("created twice".into(), "0".into()),
        (
            "buckets with more than one CreateBucket attempt (failed ones included)".into(),
            retried.to_string(),
        ),
        (
            "buckets deleted and created again (provider rollback after a failed tagging)".into(),
            rollbacks.to_string(),
        ),
    ])
}

/// Deletes every CR of `ns` and checks that no bucket of `ns` is left in moto.
async fn delete_and_check_empty(s: &Suite, ns: &str) -> Result<Figures> {
    let d = workload::delete_all_crs(&s.cluster.client, ns, Duration::from_secs(300)).await?;
    let s3 = s.cluster.s3().await;
    let suffix = format!("-{ns}-assets");
    let left: Vec<String> = workload::bucket_names(&s3)
        .await?
        .into_iter()
        .filter(|b| b.ends_with(&suffix))
        .collect();
    ensure!(
        left.is_empty(),
        "{} bucket(s) left in moto after deleting every CR: {:?}",
        left.len(),
        left.iter().take(5).collect::<Vec<_>>()
    );
    Ok(vec![
        ("delete all CRs".into(), format!("{:.1}s", d.as_secs_f64())),
        ("buckets left in moto".into(), "0".into()),
    ])
}

fn ensure_alive(agent: &mut Agent, what: &str) -> Result<()> {
    if let Some(st) = agent.exited() {
        bail!("{what} exited: {st} (log {})", agent.log.display());
    }
    Ok(())
}

// ---- scenarios -----------------------------------------------------------------------------

async fn kill9(s: &mut Suite) -> Result<Figures> {
    let ns = "f-kill9";
    workload::ensure_namespace(&s.cluster.client, ns).await?;
    let proxy = s.proxy().await?;
    let spec = s.spec("kill9", &proxy.endpoint, ns, &[]);
    let mut agent = Agent::start(&spec).await?;
    let names = workload::names("k", s.args.kill_n);
    let client = s.cluster.client.clone();
    let creator = {
        let (client, names) = (client.clone(), names.clone());
        tokio::spawn(
            async move { workload::create_crs(&client, ns, &names, "nginx:1.27", 8).await },
        )
    };
    let mut at_kill = Vec::new();
    for _ in 0..s.args.kills {
        let wait = Duration::from_millis(300 + s.rng.below(3000));
        tokio::time::sleep(wait).await;
        ensure_alive(&mut agent, "the agent")?;
        agent.kill9().await;
        at_kill.push(workload::count_ready(&client, ns).await.unwrap_or(0));
        agent = Agent::start(&spec).await?;
    }
    creator.await.context("creating CRs")??;
    let t = Instant::now();
    wait_all_ready(&client, ns, &names, Duration::from_secs(240)).await?;
    let after = t.elapsed();
    let mut figs = vec![
        ("CRs".into(), names.len().to_string()),
        ("SIGKILLs".into(), s.args.kills.to_string()),
        ("Ready CRs at each kill".into(), format!("{at_kill:?}")),
        (
            "all Ready after last restart".into(),
            format!("{:.1}s", after.as_secs_f64()),
        ),
    ];
    figs.extend(check_buckets(s, ns, &names, &[&proxy]).await?);
    figs.extend(delete_and_check_empty(s, ns).await?);
    ensure_alive(&mut agent, "the agent")?;
    agent.kill9().await;
    Ok(figs)
}

async fn apiserver(s: &mut Suite) -> Result<Figures> {
    let ns = "f-apiserver";
    workload::ensure_namespace(&s.cluster.client, ns).await?;
    let proxy = s.proxy().await?;
    let spec = s.spec("apiserver", &proxy.endpoint, ns, &[]);
    let mut agent = Agent::start(&spec).await?;
    let first = workload::names("p", 100);
    workload::create_crs(&s.cluster.client, ns, &first, "nginx:1.27", 16).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready_before = workload::count_ready(&s.cluster.client, ns)
        .await
        .unwrap_or(0);
    let t = Instant::now();
    s.cluster.restart_apiserver().await?;
    let down = t.elapsed();
    let second = workload::names("q", 50);
    workload::create_crs(&s.cluster.client, ns, &second, "nginx:1.27", 16).await?;
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    let t = Instant::now();
    wait_all_ready(&s.cluster.client, ns, &all, Duration::from_secs(300)).await?;
    ensure_alive(&mut agent, "the agent")?;
    let mut figs = vec![
        ("CRs".into(), "100 before the restart + 50 after".into()),
        (
            "Ready when kube-apiserver was stopped".into(),
            ready_before.to_string(),
        ),
        (
            "kube-apiserver restart (stop → /readyz)".into(),
            format!("{:.1}s", down.as_secs_f64()),
        ),
        (
            "all Ready after restart".into(),
            format!("{:.1}s", t.elapsed().as_secs_f64()),
        ),
        (
            "watch expiry".into(),
            "covered only by the restart (every watch is cut); a 410 Gone on resume is not forced"
                .into(),
        ),
    ];
    figs.extend(check_buckets(s, ns, &all, &[&proxy]).await?);
    figs.extend(delete_and_check_empty(s, ns).await?);
    agent.kill9().await;
    Ok(figs)
}

fn external_rows(o: &Value) -> Vec<Value> {
    o.pointer("/status/external")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

async fn proxy_faults(s: &mut Suite) -> Result<Figures> {
    let ns = "f-proxy";
    workload::ensure_namespace(&s.cluster.client, ns).await?;
    let proxy = s.proxy().await?;
    // Phase 1: moto unreachable in practice (every call answered 500 or 503 by the proxy).
    proxy.set_faults(Faults {
        error_5xx: 0.5,
        throttle: 1.0,
        reset: 0.0,
        latency_ms: 0,
    });
    let spec = s.spec("proxy", &proxy.endpoint, ns, &[]);
    let mut agent = Agent::start(&spec).await?;
    let names = workload::names("x", 30);
    workload::create_crs(&s.cluster.client, ns, &names, "nginx:1.27", 8).await?;
    let client = s.cluster.client.clone();
    let shown = workload::wait_until(
        "a CR's status to show the AWS error",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || {
            let client = client.clone();
            async move {
                let crs = workload::list_crs(&client, ns).await.ok()?;
                crs.iter().find_map(|o| {
                    external_rows(o).into_iter().find(|r| {
                        r.get("state").and_then(Value::as_str) == Some("Error")
                            && r.get("message")
                                .and_then(Value::as_str)
                                .is_some_and(|m| !m.is_empty())
                    })
                })
            }
        },
    )
    .await?;
    let outage_calls = proxy.calls().len();
    let (with_error, not_ready) = {
        let crs = workload::list_crs(&client, ns).await?;
        let e = crs
            .iter()
            .filter(|o| {
                external_rows(o)
                    .iter()
                    .any(|r| r.get("state").and_then(Value::as_str) == Some("Error"))
            })
            .count();
        let nr = crs.iter().filter(|o| !workload::is_ready(o)).count();
        (e, nr)
    };
    // Phase 2: faults at a set rate: 10% 500, 10% 503 SlowDown, 10% connection resets, 50 ms latency.
    let rates = Faults {
        error_5xx: 0.1,
        throttle: 0.1,
        reset: 0.1,
        latency_ms: 50,
    };
    proxy.set_faults(rates);
    let t = Instant::now();
    wait_all_ready(&client, ns, &names, Duration::from_secs(300)).await?;
    let conv = t.elapsed();
    ensure_alive(&mut agent, "the agent")?;
    let crs = workload::list_crs(&client, ns).await?;
    let stale_errors = crs
        .iter()
        .filter(|o| {
            external_rows(o)
                .iter()
                .any(|r| r.get("state").and_then(Value::as_str) != Some("Ready"))
        })
        .count();
    ensure!(
        stale_errors == 0,
        "{stale_errors} Ready CRs still show a non-Ready external row"
    );
    let calls = proxy.calls();
    let injected = calls.iter().filter(|c| c.injected).count();
    let mut per_bucket: HashMap<&str, usize> = HashMap::new();
    for c in &calls {
        *per_bucket.entry(c.bucket.as_str()).or_default() += 1;
    }
    let max_per_bucket = per_bucket.values().max().copied().unwrap_or(0);
    let mut figs = vec![
        ("CRs".into(), names.len().to_string()),
        (
            "outage: status row shown".into(),
            format!(
                "state Error, message {:?}",
                shown.get("message").and_then(Value::as_str).unwrap_or("")
            ),
        ),
        (
            "outage: CRs with an Error row / not Ready".into(),
            format!("{with_error} / {not_ready} of {}", names.len()),
        ),
        (
            "outage: calls before the first Error row".into(),
            outage_calls.to_string(),
        ),
        (
            "faults then".into(),
            serde_json::to_string(&rates).unwrap_or_default(),
        ),
        (
            "all Ready under faults".into(),
            format!("{:.1}s", conv.as_secs_f64()),
        ),
        (
            "AWS calls / injected faults".into(),
            format!("{} / {injected}", calls.len()),
        ),
        (
            "most calls for one bucket (retries bounded)".into(),
            max_per_bucket.to_string(),
        ),
    ];
    figs.extend(check_buckets(s, ns, &names, &[&proxy]).await?);
    // Deletion under the same fault rates.
    figs.extend(delete_and_check_empty(s, ns).await?);
    agent.kill9().await;
    Ok(figs)
}

async fn lease_holder(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    api.get_opt(name).await.ok()??.spec?.holder_identity
}

async fn leader(s: &mut Suite) -> Result<Figures> {
    let ns = "f-leader";
    let lease = "orkestra-faults";
    workload::ensure_namespace(&s.cluster.client, ns).await?;
    let proxy = s.proxy().await?;
    let mut agents = HashMap::new();
    for id in ["agent-a", "agent-b"] {
        let spec = s.spec(
            id,
            &proxy.endpoint,
            ns,
            &[
                "--leader-election",
                "on",
                "--lease-name",
                lease,
                "--lease-namespace",
                ns,
                "--identity",
                id,
            ],
        );
        agents.insert(id.to_string(), Agent::start(&spec).await?);
    }
    let client = s.cluster.client.clone();
    let holder = workload::wait_until(
        "a leader",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || lease_holder(&client, ns, lease),
    )
    .await?;
    ensure!(
        agents.contains_key(&holder),
        "lease holder {holder:?} is neither agent"
    );
    let names = workload::names("l", 100);
    let creator = {
        let (client, names) = (client.clone(), names.clone());
        tokio::spawn(
            async move { workload::create_crs(&client, ns, &names, "nginx:1.27", 4).await },
        )
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready_at_kill = workload::count_ready(&client, ns).await.unwrap_or(0);
    let t = Instant::now();
    agents.get_mut(&holder).context("leader")?.kill9().await;
    let other = if holder == "agent-a" {
        "agent-b"
    } else {
        "agent-a"
    };
    workload::wait_until(
        "the standby to take the Lease",
        Duration::from_secs(120),
        Duration::from_millis(50),
        || {
            let client = client.clone();
            async move {
                (lease_holder(&client, ns, lease).await.as_deref() == Some(other)).then_some(())
            }
        },
    )
    .await?;
    let failover = t.elapsed();
    // The first CR to become Ready after the kill shows the new leader reconciling.
    let base = workload::count_ready(&client, ns).await.unwrap_or(0);
    let total = names.len();
    workload::wait_until(
        "the new leader to reconcile",
        Duration::from_secs(120),
        Duration::from_millis(50),
        || {
            let client = client.clone();
            async move {
                (workload::count_ready(&client, ns).await.ok()? > base || base == total)
                    .then_some(())
            }
        },
    )
    .await?;
    let first_progress = t.elapsed();
    creator.await.context("creating CRs")??;
    wait_all_ready(&client, ns, &names, Duration::from_secs(300)).await?;
    let all_ready = t.elapsed();
    ensure_alive(agents.get_mut(other).context("standby")?, "the new leader")?;
    let mut figs = vec![
        ("first leader".into(), holder.clone()),
        (
            "Ready CRs when the leader was killed".into(),
            format!("{ready_at_kill} of {}", names.len()),
        ),
        (
            "failover (SIGKILL → standby holds the Lease)".into(),
            format!("{:.2}s", failover.as_secs_f64()),
        ),
        (
            "SIGKILL → next CR Ready".into(),
            format!("{:.2}s", first_progress.as_secs_f64()),
        ),
        (
            "SIGKILL → all Ready".into(),
            format!("{:.2}s", all_ready.as_secs_f64()),
        ),
    ];
    figs.extend(check_buckets(s, ns, &names, &[&proxy]).await?);
    figs.extend(delete_and_check_empty(s, ns).await?);
    for a in agents.values_mut() {
        a.kill9().await;
    }
    Ok(figs)
}

// ---- hostile input ---------------------------------------------------------------------------

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let pick = rng.below(14);
    match pick {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(-(rng.below(1 << 40) as i64)),
        3 => json!(rng.next_u64()),
        4 => json!(1.5e300),
        5 => json!(""),
        6 => json!("x".repeat(rng.below(200_000) as usize)),
        7 => json!(rng
            .pick(&[
                "{{ .metadata }}",
                "{{#each .spec}}{{/each}}",
                "{{ .spec.image | nosuch }}",
                "{{{{raw}}}}",
                "{{> partial}}",
                "{{ lookup . \"x\" }}",
                "{{"
            ])
            .to_string()),
        8 => json!(rng
            .pick(&[
                "ünïcødé-名前-🚀",
                "a\nb\tc\u{0}",
                "../../etc/passwd",
                "${AWS_SECRET_ACCESS_KEY}",
                "Robert'); DROP TABLE",
                "-1",
                "1e999"
            ])
            .to_string()),
        9 if depth < 3 => json!([random_value(rng, depth + 1), random_value(rng, depth + 1)]),
        10 if depth < 3 => {
            json!({"k": random_value(rng, depth + 1), "nested": {"deeper": random_value(rng, depth + 1)}})
        }
        11 => {
            // Deep nesting.
            let mut v = json!("bottom");
            for _ in 0..(20 + rng.below(60)) {
                v = json!({ "n": v });
            }
            v
        }
        12 => json!(rng
            .pick(&["nginx:1.27", "UPPER", "a.b.c", "1.2.3.4", "x y z"])
            .to_string()),
        _ => json!(rng.below(100_000) as i64),
    }
}

/// All JSON pointers of a value's nodes (objects' keys and arrays' items).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

fn mutate(rng: &mut Rng, v: &mut Value, keep: &[&str], times: usize) {
    for _ in 0..times {
        let mut ps = Vec::new();
        pointers(v, String::new(), &mut ps);
        ps.retain(|p| {
            !keep
                .iter()
                .any(|k| p == k || k.starts_with(&format!("{p}/")))
        });
        if ps.is_empty() {
            return;
        }
        let p = rng.pick(&ps).clone();
        let (parent, last) = p.rsplit_once('/').unwrap_or(("", &p));
        let op = rng.below(3);
        let new = random_value(rng, 0);
        if let Some(par) = v.pointer_mut(parent) {
            match (par, op) {
                (Value::Object(m), 0) => {
                    m.remove(last);
                }
                (Value::Object(m), 1) => {
                    m.insert(format!("unknown{}", rng.below(1000)), new);
                }
                (Value::Object(m), _) => {
                    m.insert(last.replace("~1", "/").replace("~0", "~"), new);
                }
                (Value::Array(a), _) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if i < a.len() {
                            a[i] = new;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

async fn hostile(s: &mut Suite) -> Result<Figures> {
    let ns = "f-hostile";
    workload::ensure_namespace(&s.cluster.client, ns).await?;
    let proxy = s.proxy().await?;
    let spec = s.spec("hostile", &proxy.endpoint, ns, &[]);
    let mut agent = Agent::start(&spec).await?;
    let client = s.cluster.client.clone();
    let good1 = workload::names("g", 20);
    workload::create_crs(&client, ns, &good1, "nginx:1.27", 8).await?;
    wait_all_ready(&client, ns, &good1, Duration::from_secs(180)).await?;
    let rss_before = agent.rss_kib().unwrap_or(0);
    let mut rss_max = rss_before;

    // Mutated CRs.
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &workload::app_stack());
    let (mut cr_ok, mut cr_refused) = (0usize, 0usize);
    let mut refusals: BTreeMap<u16, usize> = BTreeMap::new();
    for i in 0..s.args.hostile_crs {
        let name = format!("h{i:05}");
        let mut v = workload::cr(ns, &name, "nginx:1.27");
        let times = 1 + s.rng.below(4) as usize;
        mutate(
            &mut s.rng,
            &mut v,
            &[
                "/apiVersion",
                "/kind",
                "/metadata/name",
                "/metadata/namespace",
                "/metadata",
            ],
            times,
        );
        let obj: DynamicObject = match serde_json::from_value(v) {
            Ok(o) => o,
            Err(_) => {
                cr_refused += 1;
                continue;
            }
        };
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => cr_ok += 1,
            Err(kube::Error::Api(e)) => {
                cr_refused += 1;
                *refusals.entry(e.code).or_default() += 1;
            }
            Err(e) => bail!("creating hostile CR {name}: {e}"),
        }
        if i % 50 == 0 {
            ensure_alive(&mut agent, "the agent")?;
            rss_max = rss_max.max(agent.rss_kib().unwrap_or(0));
        }
    }

    // Mutated Katalogs (their own kinds, so they cannot claim ApplicationStack).
    let kat_ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("orkestra.orkspace.io", "v1", "Katalog"),
        "katalogs",
    );
    let kapi: Api<DynamicObject> = Api::all_with(client.clone(), &kat_ar);
    let base: Value = serde_yaml_ng::from_str(&workload::app_stack_katalog(&s.args.repo, 30, 2)?)?;
    let (mut k_ok, mut k_refused) = (0usize, 0usize);
    for i in 0..s.args.hostile_katalogs {
        let mut v = base.clone();
        v["metadata"] =
            json!({"name": format!("hostile-{i:04}"), "labels": {"orkestra-faults": "hostile"}});
        if let Some(e) = v.pointer_mut("/spec/crds/0/apiTypes") {
            *e = json!({"group": "hostile.orkestra.io", "version": "v1", "kind": format!("Hostile{i}"), "plural": format!("hostile{i}s")});
        }
        let times = 1 + s.rng.below(5) as usize;
        mutate(
            &mut s.rng,
            &mut v,
            &[
                "/apiVersion",
                "/kind",
                "/metadata",
                "/metadata/name",
                "/metadata/labels",
                "/metadata/labels/orkestra-faults",
            ],
            times,
        );
        let obj: DynamicObject = match serde_json::from_value(v) {
            Ok(o) => o,
            Err(_) => {
                k_refused += 1;
                continue;
            }
        };
        match kapi.create(&PostParams::default(), &obj).await {
            Ok(_) => k_ok += 1,
            Err(kube::Error::Api(e)) => {
                k_refused += 1;
                *refusals.entry(e.code).or_default() += 1;
            }
            Err(e) => bail!("creating hostile Katalog {i}: {e}"),
        }
        if i % 20 == 0 {
            ensure_alive(&mut agent, "the agent")?;
            rss_max = rss_max.max(agent.rss_kib().unwrap_or(0));
        }
    }

    // Good CRs keep converging beside the hostile ones.
    let good2 = workload::names("z", 20);
    let t = Instant::now();
    workload::create_crs(&client, ns, &good2, "nginx:1.27", 8).await?;
    wait_all_ready(&client, ns, &good2, Duration::from_secs(300)).await?;
    let good_conv = t.elapsed();
    // Let the agent chew on the hostile input a little longer, sampling memory.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ensure_alive(&mut agent, "the agent")?;
        rss_max = rss_max.max(agent.rss_kib().unwrap_or(0));
    }
    wait_all_ready(&client, ns, &good1, Duration::from_secs(60))
        .await
        .context("the first good CRs after the hostile input")?;
    let rss_after = agent.rss_kib().unwrap_or(0);
    ensure!(
        rss_max / 1024 <= s.args.hostile_rss_mib,
        "agent RSS reached {} (bound {} MiB)",
        mib(rss_max),
        s.args.hostile_rss_mib
    );
    let failing = agent
        .get("/metrics")
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("orkestra_failing") || l.starts_with("orkestra_crs_failing"))
        .map(str::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    // Clean up: hostile Katalogs first, then every CR (good and accepted hostile ones).
    let _ = kapi
        .delete_collection(
            &DeleteParams::background(),
            &ListParams::default().labels("orkestra-faults=hostile"),
        )
        .await;
    let stuck = delete_or_unstick(s, ns).await?;
    let del = delete_and_check_empty(s, ns).await;
    ensure_alive(&mut agent, "the agent")?;
    agent.kill9().await;
    let mut figs = vec![
        (
            "mutated CRs sent / accepted by the API / refused".into(),
            format!("{} / {cr_ok} / {cr_refused}", s.args.hostile_crs),
        ),
        (
            "mutated Katalogs sent / accepted / refused".into(),
            format!("{} / {k_ok} / {k_refused}", s.args.hostile_katalogs),
        ),
        ("API refusals by HTTP code".into(), format!("{refusals:?}")),
        ("agent exits".into(), "0".into()),
        (
            "agent RSS before / max / after".into(),
            format!(
                "{} / {} / {}",
                mib(rss_before),
                mib(rss_max),
                mib(rss_after)
            ),
        ),
        (
            "20 good CRs created after the hostile input: all Ready in".into(),
            format!("{:.1}s", good_conv.as_secs_f64()),
        ),
        ("failing gauge".into(), failing),
    ];
    figs.extend(del?);
    if !stuck.is_empty() {
        bail!(
            "{} hostile CR(s) could not be deleted within 120s (finalizer kept; the harness removed it to clean up), e.g. {}; figures: {}",
            stuck.len(),
            stuck.iter().take(3).cloned().collect::<Vec<_>>().join(" | "),
            figs.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; ")
        );
    }
    Ok(figs)
}

/// Deletes every CR of `ns`; those still there after 120 s are reported with their Ready
/// message and their finalizers are removed so the namespace can be cleaned up.
async fn delete_or_unstick(s: &Suite, ns: &str) -> Result<Vec<String>> {
    let client = &s.cluster.client;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &workload::app_stack());
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    let gone = workload::wait_until(
        "CRs gone",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || {
            let api = api.clone();
            async move {
                api.list_metadata(&ListParams::default())
                    .await
                    .ok()
                    .filter(|l| l.items.is_empty())
                    .map(|_| ())
            }
        },
    )
    .await;
    if gone.is_ok() {
        return Ok(Vec::new());
    }
    let mut stuck = Vec::new();
    for o in workload::list_crs(client, ns).await? {
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let msg = o
            .pointer("/status/conditions/0/message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        stuck.push(format!("{name}: {msg}"));
        let _ = api
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
    Ok(stuck)
}

// ---- secrets -------------------------------------------------------------------------------

const CANARY_KATALOG: &str = r#"apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata:
  name: canary
spec:
  providers:
    - name: aws
      required: true
  crds:
    - name: canary
      apiTypes:
        group: canary.orkestra.io
        version: v1
        kind: CanaryStack
        plural: canarystacks
      operatorBox:
        default: true
        onCreate:
          configMaps:
            - name: "{{ .metadata.name }}"
              data:
                bucket: "{{ .metadata.name }}-{{ .metadata.namespace }}-canary"
          aws:
            - s3:
                bucket: "{{ .metadata.name }}-{{ .metadata.namespace }}-canary"
                credentials:
                  secretName: "{{ .spec.credentialsSecret }}"
"#;

async fn canary(s: &mut Suite) -> Result<Figures> {
    let ns = "f-canary";
    workload::ensure_namespace(&s.cluster.client, ns).await?;
    let client = s.cluster.client.clone();
    let tag = s.rng.next_u64();
    let key_id = format!("AKIACANARY{:010}", tag % 10_000_000_000);
    let secret_key = format!("orkcanarysecret{tag:x}");
    let token = format!("orkcanarytoken{:x}", tag.rotate_left(17));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let sec: Secret = serde_json::from_value(json!({
        "metadata": {"name": "aws-creds"},
        "stringData": {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_SESSION_TOKEN": token}
    }))?;
    secrets
        .create(&PostParams::default(), &sec)
        .await
        .context("creating the canary Secret")?;
    let proxy = s.proxy().await?;
    // Errors first (the paths most likely to print request details), then success.
    proxy.set_faults(Faults {
        error_5xx: 0.5,
        throttle: 1.0,
        reset: 0.0,
        latency_ms: 0,
    });
    let mut spec = s.spec("canary", &proxy.endpoint, ns, &[]);
    spec.log = s.work.join("agent-canary.log");
    std::env::set_var("BENCH_AGENT_LOG", "debug");
    let started = Agent::start(&spec).await;
    std::env::remove_var("BENCH_AGENT_LOG");
    let mut agent = started?;
    let ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("canary.orkestra.io", "v1", "CanaryStack"),
        "canarystacks",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let names = workload::names("c", 5);
    for n in &names {
        let o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "canary.orkestra.io/v1", "kind": "CanaryStack",
            "metadata": {"name": n, "namespace": ns},
            "spec": {"credentialsSecret": "aws-creds"}
        }))?;
        api.create(&PostParams::default(), &o)
            .await
            .with_context(|| format!("creating CanaryStack {n}"))?;
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut statuses = serde_json::to_string(&api.list(&ListParams::default()).await?)?;
    proxy.set_faults(Faults::default());
    workload::wait_until(
        "CanaryStacks Ready",
        Duration::from_secs(180),
        Duration::from_millis(500),
        || {
            let api = api.clone();
            async move {
                let l = api.list(&ListParams::default()).await.ok()?;
                let ready = l
                    .items
                    .iter()
                    .filter(|o| workload::is_ready(&serde_json::to_value(o).unwrap_or(Value::Null)))
                    .count();
                (ready == 5).then_some(())
            }
        },
    )
    .await?;
    // The declaration's credentials reached the wire (so the canary was really in play).
    statuses += &serde_json::to_string(&api.list(&ListParams::default()).await?)?;
    let used = proxy
        .calls()
        .iter()
        .filter(|c| c.session_token.as_deref() == Some(token.as_str()))
        .count();
    ensure!(
        used > 0,
        "no AWS call carried the canary session token: the Secret's credentials were not used"
    );
    let metrics = agent.get("/metrics").await.unwrap_or_default();
    // Delete the CRs too: deletion errors and messages are another place a value could leak.
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    workload::wait_until(
        "CanaryStacks gone",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || {
            let api = api.clone();
            async move {
                api.list(&ListParams::default())
                    .await
                    .ok()
                    .filter(|l| l.items.is_empty())
                    .map(|_| ())
            }
        },
    )
    .await?;
    ensure_alive(&mut agent, "the agent")?;
    agent.kill9().await;
    let log = std::fs::read_to_string(&spec.log).unwrap_or_default();
    let events = s
        .cluster
        .kubectl_cmd()
        .args(["get", "events", "-n", ns, "-o", "json"])
        .output()
        .await?;
    let events = String::from_utf8_lossy(&events.stdout).into_owned();
    let ev_k8s = s
        .cluster
        .kubectl_cmd()
        .args(["get", "events.events.k8s.io", "-n", ns, "-o", "json"])
        .output()
        .await?;
    let events = events + &String::from_utf8_lossy(&ev_k8s.stdout);
    let katalog = s
        .cluster
        .kubectl_cmd()
        .args(["get", "katalog", "canary", "-o", "json"])
        .output()
        .await?;
    let katalog = String::from_utf8_lossy(&katalog.stdout).into_owned();
    let mut leaks = Vec::new();
    for (what, text) in [
        ("agent log", &log),
        ("events", &events),
        ("agent /metrics", &metrics),
        ("Katalog status", &katalog),
        ("CR status", &statuses),
    ] {
        for (label, needle) in [
            ("secret access key", &secret_key),
            ("session token", &token),
        ] {
            if text.contains(needle.as_str()) {
                leaks.push(format!("{label} in {what}"));
            }
        }
    }
    ensure!(
        !leaks.is_empty() || !log.is_empty(),
        "the agent log is empty: nothing was checked"
    );
    ensure!(leaks.is_empty(), "canary leaked: {}", leaks.join(", "));
    let key_id_seen = [&log, &events, &metrics]
        .iter()
        .any(|t| t.contains(&key_id));
    Ok(vec![
        ("places checked".into(), "agent log (RUST_LOG=debug, JSON), events (core + events.k8s.io), CR status, Katalog status, agent /metrics".into()),
        ("agent log size".into(), format!("{} KiB", log.len() / 1024)),
        ("AWS calls carrying the Secret's session token".into(), used.to_string()),
        ("secret key / session token found".into(), "0 / 0".into()),
        ("access key id (not secret) appears".into(), key_id_seen.to_string()),
    ])
}
