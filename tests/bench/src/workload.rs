//! The load: the application-stack Katalog, ApplicationStack CRs, namespaces, and watching them
//! become Ready.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Value};

use crate::error::{Context, Error, Result};

/// The ApplicationStack kind of katalogs/application-stack.
pub fn app_stack() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("platform.example.io", "v1alpha1", "ApplicationStack"),
        "applicationstacks",
    )
}

/// The Deployment replicas line of katalogs/application-stack/katalog.yaml, which the benchmark
/// Katalog replaces with [`BENCH_REPLICAS_LINE`].
const REPLICAS_LINE: &str = "              replicas: \"{{ .spec.replicas | default 1 }}\"\n";

/// The benchmark Deployments run 0 replicas: a CR is Ready only once its Deployment is Available
/// for its generation (engine/src/readiness.rs), and the test systems run no node (one node would
/// hold ~110 Pods, not thousands). A Deployment scaled to 0 becomes Available as soon as the real
/// kube-controller-manager has observed its generation, so Ready still waits on that controller's
/// status. A literal, not `.spec.replicas`: `default` treats 0 as empty, and no CR (the hostile
/// scenario mutates them) can make the controller manager create Pods.
const BENCH_REPLICAS_LINE: &str = "              replicas: 0\n";

/// katalogs/application-stack/katalog.yaml with a reconciler block (resync, workers) added and
/// the Deployment at 0 replicas ([`BENCH_REPLICAS_LINE`]).
pub fn app_stack_katalog(repo: &Path, resync_secs: u64, workers: u16) -> Result<String> {
    let p = repo.join("katalogs/application-stack/katalog.yaml");
    let text = std::fs::read_to_string(&p).ctx(|| format!("reading {}", p.display()))?;
    let needle = "      operatorBox:\n        default: true\n";
    if !text.contains(needle) {
        return Err(Error::msg(format!(
            "{}: expected `operatorBox:\\n  default: true` to add the reconciler block after",
            p.display()
        )));
    }
    if text.matches(REPLICAS_LINE).count() != 1 {
        return Err(Error::msg(format!(
            "{}: expected exactly one Deployment line `{}` to set 0 replicas in",
            p.display(),
            REPLICAS_LINE.trim()
        )));
    }
    Ok(text
        .replacen(
            needle,
            &format!(
                "      operatorBox:\n        reconciler:\n          default: true\n          workers: {workers}\n          resync: {resync_secs}s\n"
            ),
            1,
        )
        .replacen(REPLICAS_LINE, BENCH_REPLICAS_LINE, 1))
}

/// A Katalog with `n` CRD entries (kinds Bench1..BenchN in group bench.orkestra.io), each with a
/// Deployment (0 replicas, as in [`app_stack_katalog`]), a Service and a bucket, like
/// application-stack.
pub fn many_entries_katalog(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata:\n  name: bench-many\nspec:\n  providers:\n    - name: aws\n  crds:\n",
    );
    for i in 1..=n {
        s.push_str(&format!(
            r#"    - name: bench{i}
      apiTypes:
        group: bench.orkestra.io
        version: v1
        kind: Bench{i}
        plural: bench{i}s
      operatorBox:
        default: true
        onCreate:
          deployments:
            - name: "{{{{ .metadata.name }}}}"
              image: "{{{{ .spec.image }}}}"
              replicas: 0
              reconcile: true
          services:
            - name: "{{{{ .metadata.name }}}}"
              port: 80
              targetPort: 8080
              reconcile: true
          aws:
            - s3:
                bucket: "{{{{ .metadata.name }}}}-{{{{ .metadata.namespace }}}}-b{i}"
"#
        ));
    }
    s
}

/// One ApplicationStack CR. `replicas: 0` says what the benchmark Katalog does anyway (its
/// Deployment is fixed at 0 replicas, see [`app_stack_katalog`]).
pub fn cr(ns: &str, name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "platform.example.io/v1alpha1",
        "kind": "ApplicationStack",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"image": image, "replicas": 0, "port": 8080, "team": "bench"}
    })
}

/// The bucket the application-stack Katalog declares for a CR.
pub fn bucket_of(ns: &str, name: &str) -> String {
    format!("{name}-{ns}-assets")
}

/// Creates a namespace (fine if it exists).
pub async fn ensure_namespace(client: &kube::Client, ns: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))
        .map_err(|e| Error::msg(format!("namespace {ns}: {e}")))?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).ctx(|| format!("creating namespace {ns}")),
    }
}

/// Deletes a namespace without waiting.
pub async fn delete_namespace(client: &kube::Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(ns, &DeleteParams::background()).await;
}

/// Deletes a namespace and waits until it is gone (so the controller manager's clean-up does
/// not overlap the next measurement).
pub async fn delete_namespace_wait(
    client: &kube::Client,
    ns: &str,
    timeout: Duration,
) -> Result<()> {
    delete_namespace(client, ns).await;
    let api: Api<Namespace> = Api::all(client.clone());
    wait_until(
        &format!("namespace {ns} to be gone"),
        timeout,
        Duration::from_millis(250),
        || {
            let api = api.clone();
            async move {
                match api.get_opt(ns).await {
                    Ok(None) => Some(()),
                    _ => None,
                }
            }
        },
    )
    .await
}

/// Creates the CRs with `concurrency` requests in flight; returns the creation times by name.
pub async fn create_crs(
    client: &kube::Client,
    ns: &str,
    names: &[String],
    image: &str,
    concurrency: usize,
) -> Result<HashMap<String, Instant>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &app_stack());
    let results: Vec<Result<(String, Instant)>> = futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let api = api.clone();
            let obj: DynamicObject =
                serde_json::from_value(cr(ns, &name, image)).expect("a CR is a valid object");
            async move {
                let t = Instant::now();
                api.create(&PostParams::default(), &obj)
                    .await
                    .ctx(|| format!("creating ApplicationStack {ns}/{name}"))?;
                Ok((name, t))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Names `prefix00000..` of n CRs.
pub fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

/// Whether a CR's status has Ready=True for its current generation.
pub fn is_ready(o: &Value) -> bool {
    let gen = o.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = o
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let ready = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        });
    ready && (gen.is_none() || gen == observed)
}

/// Records, per object name, the first moment a watched object satisfies a predicate.
#[derive(Clone)]
pub struct Tracker {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Tracker {
    /// Watches objects of `api` and records when `pred` first holds for each name.
    pub fn start(
        api: Api<DynamicObject>,
        pred: impl Fn(&Value) -> bool + Send + Sync + 'static,
    ) -> Tracker {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let s2 = seen.clone();
        let task = tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            loop {
                match stream.try_next().await {
                    Ok(Some(obj)) => {
                        let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
                        if pred(&v) {
                            let name = obj.metadata.name.clone().unwrap_or_default();
                            s2.lock()
                                .expect("tracker")
                                .entry(name)
                                .or_insert_with(Instant::now);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => continue,
                }
            }
        });
        Tracker {
            seen,
            task: Arc::new(task),
        }
    }

    /// When `name` first satisfied the predicate.
    pub fn at(&self, name: &str) -> Option<Instant> {
        self.seen.lock().expect("tracker").get(name).copied()
    }

    /// Forgets `name` (to time it again).
    pub fn forget(&self, name: &str) {
        self.seen.lock().expect("tracker").remove(name);
    }

    /// How many names have satisfied the predicate.
    pub fn count(&self) -> usize {
        self.seen.lock().expect("tracker").len()
    }

    /// The latest recorded moment among `names`, once all are recorded.
    pub fn all_at(&self, names: &[String]) -> Option<Instant> {
        let seen = self.seen.lock().expect("tracker");
        names
            .iter()
            .map(|n| seen.get(n).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    /// Stops watching.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Polls `check` every `every` until it returns Some, at most `timeout`.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// Lists the CRs of a namespace as JSON.
pub async fn list_crs(client: &kube::Client, ns: &str) -> Result<Vec<Value>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &app_stack());
    let list = api
        .list(&ListParams::default())
        .await
        .ctx(|| format!("listing ApplicationStacks in {ns}"))?;
    Ok(list
        .items
        .iter()
        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
        .collect())
}

/// Number of Ready CRs in a namespace.
pub async fn count_ready(client: &kube::Client, ns: &str) -> Result<usize> {
    Ok(list_crs(client, ns)
        .await?
        .iter()
        .filter(|o| is_ready(o))
        .count())
}

/// Deletes every CR of a namespace (their finalizers run in the agent) and waits until none is
/// left; returns how long that took.
pub async fn delete_all_crs(
    client: &kube::Client,
    ns: &str,
    timeout: Duration,
) -> Result<Duration> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &app_stack());
    let t = Instant::now();
    // One collection delete of thousands of CRs can outlast the API server's request timeout
    // (it keeps deleting): the request is retried a few times before the run gives up.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api
            .delete_collection(&DeleteParams::background(), &ListParams::default())
            .await
        {
            Ok(_) => break,
            Err(e) if attempt < 5 => {
                eprintln!("deleting ApplicationStacks in {ns} (attempt {attempt}): {e}; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                return Err(e).ctx(|| format!("deleting ApplicationStacks in {ns}"));
            }
        }
    }
    wait_until(
        &format!("every ApplicationStack in {ns} to be gone"),
        timeout,
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
    .await?;
    Ok(t.elapsed())
}

/// `kubectl orkestra apply -f FILE --wait` (the plugin as a black box).
pub async fn orkestra_apply(plugin: &Path, kubeconfig: &Path, file: &Path) -> Result<()> {
    let out = tokio::process::Command::new(plugin)
        .args(["apply", "--wait", "--timeout", "180s", "-f"])
        .arg(file)
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .ctx(|| format!("running {} apply", plugin.display()))?;
    if !out.status.success() {
        return Err(Error::msg(format!(
            "kubectl orkestra apply -f {} failed: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let p = dir.join(name);
    std::fs::write(&p, text).ctx(|| format!("writing {}", p.display()))?;
    Ok(p)
}

/// Bucket names in moto (straight to moto, not through any proxy).
pub async fn bucket_names(s3: &aws_sdk_s3::Client) -> Result<Vec<String>> {
    let out = s3.list_buckets().send().await.map_err(|e| {
        Error::msg(format!(
            "ListBuckets on moto: {}",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ))
    })?;
    Ok(out
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect())
}

/// A bucket's tags (empty when it has none).
pub async fn bucket_tags(s3: &aws_sdk_s3::Client, bucket: &str) -> HashMap<String, String> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(o) => o
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(_) => HashMap::new(),
    }
}
