//! `kubectl orkestra install` / `uninstall` against the private control plane and its node: the
//! agent runs as a Pod from the image loaded into the node's containerd, reaches moto through
//! `--aws-endpoint-url`, and does its work in the cluster as users run it.
//!
//! Each test installs its own agent in its own namespace, scoped to its own Katalog
//! (`--katalog-selector`) and CR namespace (`--watch-namespace`), so tests run in parallel on one
//! cluster. Every test here needs the node: without it in the env file they fail, naming what
//! is missing.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use orkestra_testsupport::{wait_for, NodeEnv, TestEnv, TestNamespace};
use serde_json::{json, Value};

/// Generous: the 2 shared cores also build and run other tests.
const TIMEOUT: Duration = Duration::from_secs(180);
/// The label a test's Katalog carries; its agent runs only that Katalog.
const RUN_LABEL: &str = "orkestra.test/run";

/// Run the plugin off the async runtime's thread.
async fn run_plugin(c: Command) -> Output {
    tokio::task::spawn_blocking(move || run(c))
        .await
        .expect("plugin thread")
}

/// An agent installed in the cluster for one test, and the test's CR namespace and Katalog.
struct InCluster {
    agent_ns: String,
    ns: TestNamespace,
    /// Unique to the test: in the Katalog's name, its API group and its label.
    kid: String,
    /// `KID.platform.example.io`.
    group: String,
    /// The AWS secret key in the credentials Secret: must never appear in output or objects.
    canary: String,
    /// What `install` printed.
    install_output: Output,
    _dir: tempfile::TempDir,
}

impl InCluster {
    fn katalog_name(&self) -> String {
        format!("application-stack-{}", self.kid)
    }

    fn crs(&self, client: &kube::Client) -> Api<DynamicObject> {
        Api::namespaced_with(
            client.clone(),
            self.ns.name(),
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(&self.group, "v1alpha1", "ApplicationStack"),
                "applicationstacks",
            ),
        )
    }

    /// An ApplicationStack CR serving the node's web image.
    fn cr(&self, node: &NodeEnv, name: &str) -> Value {
        json!({
            "apiVersion": format!("{}/v1alpha1", self.group),
            "kind": "ApplicationStack",
            "metadata": {"name": name, "namespace": self.ns.name()},
            "spec": {"image": node.web_image, "replicas": 1, "port": 8080, "team": "orkestra-test"},
        })
    }

    fn bucket(&self, cr: &str) -> String {
        format!("{cr}-{}-assets", self.ns.name())
    }

    /// Remove what the test made cluster-wide (its Katalog, CRD, RBAC), then the agent.
    async fn cleanup(self, env: &TestEnv) {
        let name = self.katalog_name();
        let _ = env
            .kubectl()
            .args(["delete", "--ignore-not-found", "--wait=false"])
            .arg(format!("katalogs.orkestra.orkspace.io/{name}"))
            .arg(format!("crd/applicationstacks.{}", self.group))
            .arg(format!("clusterrole/orkestra-katalog-{name}"))
            .arg(format!("clusterrolebinding/orkestra-katalog-{name}"))
            .output();
        let mut c = plugin(env);
        c.args(["uninstall", "-n", &self.agent_ns, "--yes", "--force"]);
        let o = run_plugin(c).await;
        assert_eq!(o.status.code(), Some(0), "uninstall: {}", stderr(&o));
        self.ns.cleanup().await.unwrap();
    }
}

/// Install the node's agent image in a namespace of its own, aimed at moto through the address
/// Pods reach it on, with credentials from a Secret; apply the application-stack Katalog (its
/// group and name made unique) and wait until the in-cluster agent reports it active.
async fn install_agent(env: &TestEnv, prefix: &str) -> InCluster {
    let node = env.node();
    let client = env.client().await;
    let agent_ns = id(&format!("{prefix}-agent"));
    let ns = env.namespace(&format!("{prefix}-crs")).await.unwrap();
    let kid = id("k").replace('-', "");
    let group = format!("{kid}.platform.example.io");
    let canary = id("orkestra-canary-secret");

    // The credentials Secret lives in the agent's namespace, so that namespace comes first.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": agent_ns}})).unwrap(),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &agent_ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "aws-credentials"},
                "stringData": {"AWS_ACCESS_KEY_ID": env.aws.access_key_id, "AWS_SECRET_ACCESS_KEY": canary},
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    let mut c = plugin(env);
    c.args(["install", "-n", &agent_ns, "--image", &node.agent_image])
        .args(["--aws-endpoint-url", &node.aws_endpoint_in_cluster])
        .args(["--aws-region", &env.aws.region])
        .args(["--aws-credentials-secret", "aws-credentials"])
        .args(["--watch-namespace", ns.name()])
        .args(["--katalog-selector", &format!("{RUN_LABEL}={kid}")])
        .args(["--wait", "--timeout", "180s"]);
    let started = Instant::now();
    let install_output = run_plugin(c).await;
    assert_eq!(
        install_output.status.code(),
        Some(0),
        "install: {}",
        stderr(&install_output)
    );
    eprintln!(
        "install → agent ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("katalogs/application-stack/katalog.yaml"))
        .unwrap()
        .replace("platform.example.io", &group)
        .replacen(
            "metadata:\n  name: application-stack\n",
            &format!(
                "metadata:\n  name: application-stack-{kid}\n  labels: {{{RUN_LABEL}: {kid}}}\n"
            ),
            1,
        );
    assert!(
        text.contains(&format!("application-stack-{kid}")),
        "katalogs/application-stack/katalog.yaml changed its metadata layout"
    );
    let katalog = write(dir.path(), "katalog.yaml", &text);
    let mut c = plugin(env);
    c.args(["apply", "-f"]).arg(&katalog).args([
        "--agent-namespace",
        &agent_ns,
        "--wait",
        "--timeout",
        "120s",
    ]);
    let o = run_plugin(c).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "apply --wait against the in-cluster agent: {}",
        stderr(&o)
    );
    InCluster {
        agent_ns,
        ns,
        kid,
        group,
        canary,
        install_output,
        _dir: dir,
    }
}

/// The `Ready` condition's status of an object.
fn ready(v: &Value) -> Option<&str> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .get("status")?
        .as_str()
}

/// Wait until every CR in `names` is Ready=True; on timeout, show them.
async fn wait_all_ready(crs: &Api<DynamicObject>, names: &[String]) {
    let result = wait_for("every CR Ready", TIMEOUT, || async {
        for n in names {
            let o = crs.get_opt(n).await.ok().flatten()?;
            let v = serde_json::to_value(o).ok()?;
            (ready(&v) == Some("True")).then_some(())?;
        }
        Some(())
    })
    .await;
    if let Err(e) = result {
        let now: Vec<Value> = crs
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .map(|o| json!({"name": o.metadata.name, "status": o.data.get("status")}))
                    .collect()
            })
            .unwrap_or_default();
        panic!(
            "{e}; the CRs now: {}",
            serde_json::to_string_pretty(&now).unwrap_or_default()
        );
    }
}

/// The agent Pods of a namespace.
async fn agent_pods(client: &kube::Client, ns: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.list(&ListParams::default().labels("app.kubernetes.io/name=orkestra-agent"))
        .await
        .unwrap()
        .items
}

/// The holder of the agent's leader Lease.
async fn leader(client: &kube::Client, ns: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    leases
        .get_opt("orkestra-agent")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

async fn bucket_exists(s3: &aws_sdk_s3::Client, bucket: &str) -> bool {
    s3.head_bucket().bucket(bucket).send().await.is_ok()
}

/// The secret value must not have leaked into what users and logs see.
async fn assert_no_canary(env: &TestEnv, inst: &InCluster) {
    let client = env.client().await;
    let out = format!(
        "{}{}",
        stdout(&inst.install_output),
        stderr(&inst.install_output)
    );
    assert!(!out.contains(&inst.canary), "install printed the secret");
    let d: Api<Deployment> = Api::namespaced(client.clone(), &inst.agent_ns);
    let dep = serde_json::to_string(&d.get("orkestra-agent").await.unwrap()).unwrap();
    assert!(
        !dep.contains(&inst.canary),
        "the Deployment holds the secret"
    );
    assert!(dep.contains("secretKeyRef"), "{dep}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &inst.agent_ns);
    for p in agent_pods(&client, &inst.agent_ns).await {
        let name = p.metadata.name.unwrap_or_default();
        let log = pods
            .logs(
                &name,
                &kube::api::LogParams {
                    container: Some("agent".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("log of pod {}/{name}: {e}", inst.agent_ns));
        assert!(!log.contains(&inst.canary), "pod {name} logged the secret");
    }
    for ns in [inst.agent_ns.as_str(), inst.ns.name()] {
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        let all = serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items)
            .unwrap();
        assert!(
            !all.contains(&inst.canary),
            "an event in {ns} holds the secret"
        );
    }
}

#[tokio::test]
async fn the_agent_runs_in_the_cluster_from_install_to_delete() {
    let env = orkestra_testsupport::cluster().await;
    let node = env.node();
    let inst = install_agent(env, "node-e2e").await;
    let client = env.client().await;
    let err = stderr(&inst.install_output);
    assert!(
        err.contains("2/2 ready, leader orkestra-agent-"),
        "install did not report the agent ready and leading: {err}"
    );
    // Installed as users get it: the release image, leader election, non-root.
    let d: Api<Deployment> = Api::namespaced(client.clone(), &inst.agent_ns);
    let dep = serde_json::to_value(d.get("orkestra-agent").await.unwrap()).unwrap();
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], node.agent_image.as_str());
    assert!(
        c["args"].to_string().contains("--leader-election=on"),
        "{c}"
    );
    let env_of = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        env_of("AWS_ENDPOINT_URL")["value"],
        node.aws_endpoint_in_cluster.as_str()
    );
    assert_eq!(
        env_of("AWS_SECRET_ACCESS_KEY")["valueFrom"]["secretKeyRef"]["name"],
        "aws-credentials"
    );

    let crs = inst.crs(&client);
    let cr = inst.cr(node, "shop");
    let cr_file = write(
        inst._dir.path(),
        "cr.yaml",
        &serde_json::to_string(&cr).unwrap(),
    );
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&cr_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let started = Instant::now();
    wait_all_ready(&crs, &["shop".to_string()]).await;
    eprintln!(
        "CR Ready {:.1}s after it was created",
        started.elapsed().as_secs_f64()
    );
    // The CR's Deployment really runs the web image on the node.
    let deployments: Api<Deployment> = inst.ns.api();
    wait_for("deployment shop available", TIMEOUT, || async {
        deployments
            .get_opt("shop")
            .await
            .ok()
            .flatten()
            .and_then(|d| d.status)
            .and_then(|s| s.available_replicas)
            .is_some_and(|n| n >= 1)
    })
    .await
    .unwrap();
    let s3 = env.s3_client().await;
    let bucket = inst.bucket("shop");
    assert!(
        bucket_exists(&s3, &bucket).await,
        "no bucket {bucket} in moto"
    );

    let mut c = plugin(env);
    c.args([
        "status",
        &format!("applicationstack.{}/shop", inst.group),
        "-n",
        inst.ns.name(),
        "-o",
        "json",
    ]);
    let o = run_plugin(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let status: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let item = &status["items"][0];
    assert_eq!(item["ready"], true, "{status}");
    assert_eq!(item["external"][0]["name"], bucket.as_str(), "{status}");
    assert_eq!(item["external"][0]["state"], "Ready", "{status}");

    // Deleting the CR: the agent deletes the bucket, then its children go with their owner.
    let o = env
        .kubectl()
        .args(["delete", "--wait=false", "-f"])
        .arg(&cr_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for("the CR gone after the agent's cleanup", TIMEOUT, || async {
        crs.get_opt("shop").await.ok().flatten().is_none()
    })
    .await
    .unwrap();
    assert!(
        !bucket_exists(&s3, &bucket).await,
        "the agent left bucket {bucket}"
    );
    let pods: Api<Pod> = inst.ns.api();
    wait_for("the CR's Pods gone", TIMEOUT, || async {
        pods.list(&ListParams::default())
            .await
            .is_ok_and(|l| l.items.is_empty())
    })
    .await
    .unwrap();
    assert_no_canary(env, &inst).await;
    inst.cleanup(env).await;
}

#[tokio::test]
async fn the_leader_killed_mid_run_is_replaced_and_nothing_is_created_twice() {
    const CRS: usize = 8;
    let env = orkestra_testsupport::cluster().await;
    let node = env.node();
    let inst = install_agent(env, "node-kill").await;
    let client = env.client().await;
    let crs = inst.crs(&client);
    let names: Vec<String> = (0..CRS).map(|i| format!("app-{i}")).collect();
    let create = |name: &String| {
        let crs = crs.clone();
        let cr: DynamicObject = serde_json::from_value(inst.cr(node, name)).unwrap();
        async move {
            crs.create(&PostParams::default(), &cr).await.unwrap();
        }
    };
    // Half the CRs, then the leader dies as soon as it has started on them; the other half
    // arrive while there is no leader.
    for n in &names[..CRS / 2] {
        create(n).await;
    }
    let killed = wait_for("a leader", TIMEOUT, || leader(&client, &inst.agent_ns))
        .await
        .unwrap();
    wait_for("the agent at work on the first CR", TIMEOUT, || async {
        crs.get_opt(&names[0])
            .await
            .ok()
            .flatten()
            .is_some_and(|o| !o.metadata.finalizers.unwrap_or_default().is_empty())
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &inst.agent_ns);
    let ready_before = {
        let mut n = 0;
        for name in &names[..CRS / 2] {
            let v = serde_json::to_value(crs.get(name).await.unwrap()).unwrap();
            n += usize::from(ready(&v) == Some("True"));
        }
        n
    };
    pods.delete(
        &killed,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    eprintln!(
        "killed leader {}/{killed} with {ready_before} of {} CRs Ready",
        inst.agent_ns,
        CRS / 2
    );
    for n in &names[CRS / 2..] {
        create(n).await;
    }

    // Another Pod leads, and the Deployment has replaced the killed one.
    let new_leader = wait_for("a new leader", TIMEOUT, || async {
        leader(&client, &inst.agent_ns)
            .await
            .filter(|h| *h != killed)
    })
    .await
    .unwrap();
    let d: Api<Deployment> = Api::namespaced(client.clone(), &inst.agent_ns);
    wait_for(
        "deployment orkestra-agent back to 2 available Pods, the killed one gone",
        TIMEOUT,
        || async {
            let available = d
                .get("orkestra-agent")
                .await
                .ok()
                .and_then(|d| d.status)
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            let pods = agent_pods(&client, &inst.agent_ns).await;
            available == 2
                && pods.len() == 2
                && pods
                    .iter()
                    .all(|p| p.metadata.name.as_deref() != Some(killed.as_str()))
        },
    )
    .await
    .unwrap();
    eprintln!("new leader {new_leader}");
    wait_all_ready(&crs, &names).await;

    // Nothing twice: one bucket per CR in moto, one status row each, one Deployment, Service and
    // ReplicaSet per CR, and no child the agent reported creating more than once.
    let s3 = env.s3_client().await;
    let suffix = format!("-{}-assets", inst.ns.name());
    let listed = s3.list_buckets().send().await.unwrap();
    let mut buckets: Vec<&str> = listed
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| n.ends_with(&suffix))
        .collect();
    buckets.sort_unstable();
    let mut want: Vec<String> = names.iter().map(|n| inst.bucket(n)).collect();
    want.sort();
    assert_eq!(buckets, want);
    for n in &names {
        let v = serde_json::to_value(crs.get(n).await.unwrap()).unwrap();
        let rows = v
            .pointer("/status/external")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert_eq!(rows.len(), 1, "CR {n}: {rows:?}");
        assert_eq!(rows[0]["name"], inst.bucket(n).as_str());
        assert_eq!(rows[0]["state"], "Ready", "CR {n}: {rows:?}");
    }
    let deployments: Api<Deployment> = inst.ns.api();
    assert_eq!(
        deployments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        CRS
    );
    let services: Api<k8s_openapi::api::core::v1::Service> = inst.ns.api();
    assert_eq!(
        services
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        CRS
    );
    let sets: Api<ReplicaSet> = inst.ns.api();
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        CRS,
        "a Deployment was replaced or its template changed"
    );
    let events: Api<Event> = inst.ns.api();
    let mut created: std::collections::BTreeMap<String, i32> = Default::default();
    for e in events.list(&ListParams::default()).await.unwrap().items {
        if e.reporting_controller.as_deref() == Some("orkestra-agent")
            && e.reason.as_deref() == Some("Created")
        {
            *created
                .entry(e.note.clone().unwrap_or_default())
                .or_default() += e.series.map_or(1, |s| s.count);
        }
    }
    assert!(
        created.values().all(|&n| n == 1),
        "a child was created more than once: {created:?}"
    );
    assert!(!created.is_empty(), "the agent reported no child created");

    for n in &names {
        crs.delete(n, &DeleteParams::default()).await.unwrap();
    }
    wait_for(
        "every CR gone after the agent's cleanup",
        TIMEOUT,
        || async {
            crs.list(&ListParams::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
        },
    )
    .await
    .unwrap();
    for b in &want {
        assert!(!bucket_exists(&s3, b).await, "the agent left bucket {b}");
    }
    assert_no_canary(env, &inst).await;
    inst.cleanup(env).await;
}

/// A wrong image: install names the Pod and the kubelet's reason well before its timeout. Then,
/// with the agent's objects there (and never running), uninstall refuses while a CR still holds
/// external resources.
#[tokio::test]
async fn install_with_a_wrong_image_reports_the_pod_reason_then_uninstall_refuses_while_resources_are_held(
) {
    let env = orkestra_testsupport::cluster().await;
    // A node must be there to try (and fail) to pull the image.
    let _node = env.node();
    let client = env.client().await;
    let agent_ns = id("ork-agent");
    let image = "ghcr.io/orkspace/does-not-exist:0";
    let started = Instant::now();
    let mut c = plugin(env);
    c.args(["install", "-n", &agent_ns, "--image", image])
        .args(["--katalog-selector", "orkestra.test/run=none"])
        .args(["--timeout", "170s"]);
    let o = run_plugin(c).await;
    let took = started.elapsed();
    assert_one_line_error(
        &o,
        &format!("the agent (deployment {agent_ns}/orkestra-agent) cannot become ready: 0/2 replicas ready; pod {agent_ns}/orkestra-agent-"),
    );
    let last = stderr(&o).lines().last().unwrap_or_default().to_string();
    assert!(
        last.contains("ErrImagePull") || last.contains("ImagePullBackOff"),
        "{last}"
    );
    assert!(last.contains(&format!("image {image}")), "{last}");
    assert!(
        took < Duration::from_secs(120),
        "install waited {took:?} for an image that cannot be pulled"
    );
    eprintln!("wrong image reported after {:.1}s", took.as_secs_f64());

    // What install wrote is there: the Deployment with that image, its ServiceAccount, and the
    // cluster-wide binding of this namespace's agent.
    let d: Api<Deployment> = Api::namespaced(client.clone(), &agent_ns);
    let dep = d.get("orkestra-agent").await.unwrap();
    assert_eq!(
        dep.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some(image)
    );
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &agent_ns);
    sa.get("orkestra-agent").await.unwrap();
    let crb: Api<ClusterRoleBinding> = Api::all(client.clone());
    let b = crb
        .get(&format!("orkestra-agent-{agent_ns}"))
        .await
        .unwrap();
    assert_eq!(
        b.subjects.unwrap()[0].namespace.as_deref(),
        Some(agent_ns.as_str())
    );
    assert_eq!(b.role_ref.name, format!("orkestra-agent-{agent_ns}"));
    // --no-wait returns once everything is applied (idempotent).
    let mut c = plugin(env);
    c.args(["install", "-n", &agent_ns, "--image", image])
        .args(["--katalog-selector", "orkestra.test/run=none", "--no-wait"]);
    let o = run_plugin(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A credentials Secret that is not there is refused before anything is applied.
    let mut c = plugin(env);
    c.args(["install", "-n", &agent_ns, "--image", image])
        .args(["--aws-credentials-secret", "nope", "--no-wait"]);
    let o = run_plugin(c).await;
    assert_one_line_error(
        &o,
        &format!("secret {agent_ns}/nope (--aws-credentials-secret) not found"),
    );

    // A CR whose status (written here as the agent would) still lists a bucket.
    let ns = env.namespace("cli-uninst").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kid = id("u");
    let katalog = write(dir.path(), "katalog.yaml", &katalog_text(&kid, true));
    let mut c = plugin(env);
    c.args(["apply", "-f"])
        .arg(&katalog)
        .args(["--agent-namespace", &agent_ns]);
    let o = run_plugin(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cr = write(dir.path(), "cr.yaml", &cr_text(&kid, ns.name(), "web", 1));
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&cr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sites: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns.name(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&format!("{kid}.test.orkestra.io"), "v1", "Site"),
            "sites",
        ),
    );
    let bucket = format!("web-{}", ns.name());
    let status = json!({"apiVersion": format!("{kid}.test.orkestra.io/v1"), "kind": "Site", "status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "", "lastTransitionTime": "2026-11-24T10:00:00Z"}],
        "external": [{"provider": "aws", "kind": "s3", "name": bucket, "state": "Ready", "message": "", "lastSyncTime": "2026-11-24T10:00:00Z"}]}});
    sites
        .patch_status(
            "web",
            &PatchParams::apply("orkestra-agent-status").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();

    let mut c = plugin(env);
    c.args(["uninstall", "-n", &agent_ns, "--yes"]);
    let o = run_plugin(c).await;
    assert_one_line_error(&o, "still hold external resources");
    assert!(
        stderr(&o).contains(&format!("Site {}/web (aws.s3 {bucket})", ns.name())),
        "{}",
        stderr(&o)
    );
    d.get("orkestra-agent")
        .await
        .expect("refused uninstall deleted nothing");
    let mut c = plugin(env);
    c.args(["uninstall", "-n", &agent_ns, "--force"]);
    let o = run_plugin(c).await;
    assert_one_line_error(&o, "uninstall needs --yes when not on a terminal");
    let mut c = plugin(env);
    c.args(["uninstall", "-n", &agent_ns, "--force", "--yes"]);
    let o = run_plugin(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(d.get_opt("orkestra-agent").await.unwrap().is_none());
    assert!(
        crb.get_opt(&format!("orkestra-agent-{agent_ns}"))
            .await
            .unwrap()
            .is_none(),
        "uninstall left this namespace's ClusterRoleBinding"
    );
    let nss: Api<Namespace> = Api::all(client.clone());
    let gone_or_going = nss
        .get_opt(&agent_ns)
        .await
        .unwrap()
        .is_none_or(|n| n.metadata.deletion_timestamp.is_some());
    assert!(
        gone_or_going,
        "the agent's namespace is neither gone nor terminating"
    );
    // The Katalog CRD (and so every Katalog) stays unless --crds.
    let o = env
        .kubectl()
        .args(["get", "crd", "katalogs.orkestra.orkspace.io"])
        .output()
        .unwrap();
    assert!(o.status.success());
    remove_katalog(env, &kid);
    ns.cleanup().await.unwrap();
}
