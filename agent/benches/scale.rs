//! Benchmark (prints figures, asserts nothing): the agent binary's resident memory idle, with a
//! Katalog of 15 CRD entries, and with N CRs; CR create → Ready and spec change → child updated,
//! p50/p99. Runs against the private control plane of tests/cluster. Each CR has a Deployment and
//! a ConfigMap (no Service: the test cluster's Service range holds 254 addresses).
//!
//! ```sh
//! cargo bench -p orkestra-agent --bench scale            # N = 200
//! BENCH_CRS=1000 cargo bench -p orkestra-agent --bench scale
//! ORKESTRA_TEST_ENV=/tmp/ork cargo bench -p orkestra-agent --bench scale   # systems already up
//! ```

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::{watcher, WatchStreamExt};
use orkestra_testsupport::{cluster, http_get, unique_name, wait_for};
use serde_json::{json, Value};

const ENTRIES: usize = 15;
const TIMEOUT: Duration = Duration::from_secs(600);
/// Upstream Orkestra's published figure, for comparison.
const BASELINE: &str = "upstream Orkestra: 47-98 MB for 5-15 CRDs";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run() {
    let n: usize = std::env::var("BENCH_CRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("bench").await.expect("namespace");
    let id = unique_name("b").replace('-', "");
    let group = format!("{id}.bench.orkestra.io");

    // The Katalog CRD, and 15 CRDs for the entries.
    let katalog_crd: Value =
        serde_yaml_ng::from_str(include_str!("../../deploy/crds/katalog.yaml")).expect("CRD");
    install(&client, katalog_crd).await;
    let mut crds = serde_json::Map::new();
    for i in 0..ENTRIES {
        let (kind, plural) = (format!("Bench{i}"), format!("bench{i}s"));
        install(&client, json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": format!("bench{i}"), "listKind": format!("{kind}List")},
                "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))
        .await;
        crds.insert(format!("bench{i}"), json!({
            "apiTypes": {"group": group, "version": "v1", "kind": kind, "plural": plural},
            "operatorBox": {"reconciler": {"workers": 4, "resync": "5m"}, "onCreate": {
                "deployments": [{"name": "{{ .metadata.name }}", "image": "{{ .spec.image }}", "replicas": "{{ .spec.replicas }}", "reconcile": true}],
                "configMaps": [{"name": "{{ .metadata.name }}-config", "data": {"image": "{{ .spec.image }}"}, "reconcile": true}],
            }}
        }));
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(env.dir.join("logs/bench-agent.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_orkestra-agent"))
        .args(["--kubeconfig", &env.kubeconfig.display().to_string()])
        .args([
            "--leader-election",
            "off",
            "--metrics-addr",
            &addr,
            "--log-format",
            "json",
        ])
        .args([
            "--katalog-selector",
            &format!("orkestra.bench/run={id}"),
            "--namespace",
            ns.name(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("agent binary");
    let agent = Killed(child);
    let pid = agent.0.id();
    wait_for("agent /readyz", TIMEOUT, || async {
        http_get(&addr, "/readyz").await.map(|(code, _)| code) == Some(200)
    })
    .await
    .expect("ready");
    let idle = rss_mb(pid);

    let katalog = json!({"apiVersion": "orkestra.orkspace.io/v1", "kind": "Katalog",
        "metadata": {"name": format!("bench-{id}"), "labels": {"orkestra.bench/run": id}}, "spec": {"crds": crds}});
    let kapi: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("orkestra.orkspace.io", "v1", "Katalog"),
            "katalogs",
        ),
    );
    kapi.create(
        &PostParams::default(),
        &serde_json::from_value(katalog).expect("katalog"),
    )
    .await
    .expect("create Katalog");
    let kname = format!("bench-{id}");
    wait_for("15 controllers running", TIMEOUT, || async {
        let k = serde_json::to_value(kapi.get(&kname).await.ok()?).ok()?;
        let rows = k["status"]["crds"].as_array()?;
        (rows.len() == ENTRIES && rows.iter().all(|r| r["controller"] == "Running")).then_some(())
    })
    .await
    .expect("controllers");
    let with_entries = rss_mb(pid);

    // N CRs of the first kind: create → Ready.
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Bench0"),
        "bench0s",
    );
    let crs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &ar);
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let ready: Arc<Mutex<HashMap<String, Duration>>> = Arc::default();
    let watch = {
        let (created, ready) = (created.clone(), ready.clone());
        let crs = crs.clone();
        tokio::spawn(async move {
            let mut s = watcher::watcher(crs, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Ok(Some(o)) = s.try_next().await {
                let name = o.metadata.name.clone().unwrap_or_default();
                let is_ready = o
                    .data
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    });
                if is_ready {
                    let t0 = created.lock().expect("lock").get(&name).copied();
                    if let Some(t0) = t0 {
                        ready
                            .lock()
                            .expect("lock")
                            .entry(name)
                            .or_insert_with(|| t0.elapsed());
                    }
                }
            }
        })
    };
    let api_version = format!("{group}/v1");
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let (crs, created, api_version) = (crs.clone(), created.clone(), api_version.clone());
            async move {
                let name = format!("cr-{i}");
                let o: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": api_version, "kind": "Bench0",
                    "metadata": {"name": name}, "spec": {"image": "nginx:1.27", "replicas": 1}
                }))
                .expect("cr");
                created.lock().expect("lock").insert(name, Instant::now());
                crs.create(&PostParams::default(), &o)
                    .await
                    .expect("create CR");
            }
        })
        .await;
    wait_for("all CRs Ready", TIMEOUT, || async {
        ready.lock().expect("lock").len() >= n
    })
    .await
    .expect("ready");
    let all_ready = started.elapsed();
    watch.abort();
    let mut to_ready: Vec<Duration> = ready.lock().expect("lock").values().copied().collect();
    to_ready.sort();
    let with_crs = rss_mb(pid);

    // Spec change → child updated.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let patched: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let updated: Arc<Mutex<HashMap<String, Duration>>> = Arc::default();
    let dwatch = {
        let (patched, updated) = (patched.clone(), updated.clone());
        let deployments = deployments.clone();
        tokio::spawn(async move {
            let mut s = watcher::watcher(deployments, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Ok(Some(d)) = s.try_next().await {
                if d.spec.as_ref().and_then(|s| s.replicas) == Some(2) {
                    let name = d.metadata.name.clone().unwrap_or_default();
                    let t0 = patched.lock().expect("lock").get(&name).copied();
                    if let Some(t0) = t0 {
                        updated
                            .lock()
                            .expect("lock")
                            .entry(name)
                            .or_insert_with(|| t0.elapsed());
                    }
                }
            }
        })
    };
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let (crs, patched) = (crs.clone(), patched.clone());
            async move {
                let name = format!("cr-{i}");
                patched
                    .lock()
                    .expect("lock")
                    .insert(name.clone(), Instant::now());
                crs.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicas": 2}})),
                )
                .await
                .expect("patch CR");
            }
        })
        .await;
    wait_for("all children updated", TIMEOUT, || async {
        updated.lock().expect("lock").len() >= n
    })
    .await
    .expect("updated");
    dwatch.abort();
    let mut to_update: Vec<Duration> = updated.lock().expect("lock").values().copied().collect();
    to_update.sort();

    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!(
        "orkestra-agent scale benchmark ({} CRs, {ENTRIES} CRD entries, binary {})",
        n,
        env!("CARGO_BIN_EXE_orkestra-agent")
    );
    println!("  RSS idle (no Katalog)          {idle:>8.1} MB   ({BASELINE})");
    println!("  RSS with {ENTRIES} CRD entries        {with_entries:>8.1} MB");
    println!("  RSS with {ENTRIES} entries + {n} CRs   {with_crs:>8.1} MB");
    println!(
        "  create -> Ready     p50 {:>8}  p99 {:>8}  (all {n} Ready after {})",
        ms(percentile(&to_ready, 0.5)),
        ms(percentile(&to_ready, 0.99)),
        ms(all_ready)
    );
    println!(
        "  spec -> child       p50 {:>8}  p99 {:>8}",
        ms(percentile(&to_update, 0.5)),
        ms(percentile(&to_update, 0.99))
    );

    drop(agent);
    let _ = kapi.delete(&kname, &Default::default()).await;
    // The agent is gone, so the CRs keep their finalizer: strip it so the namespace can go.
    let names: Vec<String> = (0..n).map(|i| format!("cr-{i}")).collect();
    for name in &names {
        let _ = crs
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
    let _ = ns.cleanup().await;
}

async fn install(client: &kube::Client, crd: Value) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(crd).expect("CRD");
    let name = crd.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), &crd).await {
        Ok(_) | Err(kube::Error::Api(_)) => {}
        Err(e) => panic!("creating CRD {name}: {e}"),
    }
    wait_for(&format!("CRD {name} established"), TIMEOUT, || async {
        api.get(&name)
            .await
            .ok()
            .and_then(|c| c.status?.conditions)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    })
    .await
    .expect("established");
}
