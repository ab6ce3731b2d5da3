//! The test node is real: the scheduler places Pods on it, containerd runs them from the images
//! built by `tests/cluster/images.sh`, the API server reaches the kubelet for logs, Pods reach
//! the API server through the `kubernetes` Service and moto through the bridge's gateway, and
//! the images rebuild to the digests the node runs. These tests need the node and fail without
//! it (`TestEnv::node` panics naming what the env file lacks).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{LogParams, PostParams};
use kube::Api;
use orkestra_testsupport::{cluster, wait_for};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cache() -> PathBuf {
    std::env::var_os("ORKESTRA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/orkestra"))
}

/// A Pod that runs `script` in the shell image to completion, as the restricted Pod Security
/// profile wants it (non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp).
fn shell_pod(name: &str, image: &str, script: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "sh", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    }))
    .unwrap()
}

async fn phase(pods: &Api<Pod>, name: &str) -> String {
    pods.get(name)
        .await
        .ok()
        .and_then(|p| p.status)
        .and_then(|s| s.phase)
        .unwrap_or_default()
}

#[tokio::test]
async fn the_node_is_ready_and_schedulable() {
    let env = cluster().await;
    let node = env.node();
    let nodes: Api<Node> = Api::all(env.client().await);
    let n = nodes.get(&node.name).await.unwrap();
    let ready = n
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status);
    assert_eq!(ready.as_deref(), Some("True"), "node {} Ready", node.name);
    let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
    assert!(
        taints.iter().all(|t| t.effect != "NoSchedule"),
        "node {} has NoSchedule taints: {taints:?}",
        node.name
    );
}

/// A Pod is scheduled, runs to completion, and its log comes back through the API server
/// (which needs the kubelet's serving endpoint and the API server's kubelet client cert).
/// Inside, the Pod reaches moto at AWS_ENDPOINT_URL_IN_CLUSTER (the bridge gateway's DNAT) and
/// the API server at KUBERNETES_SERVICE_HOST:443 (the `kubernetes` Service's DNAT).
#[tokio::test]
async fn a_pod_runs_logs_and_reaches_the_api_server_and_moto() {
    let env = cluster().await;
    let node = env.node();
    let ns = env.namespace("node-pod").await.unwrap();
    let pods: Api<Pod> = ns.api();
    let endpoint = node
        .aws_endpoint_in_cluster
        .strip_prefix("http://")
        .unwrap();
    let (host, port) = endpoint.split_once(':').unwrap();
    // moto through the gateway's DNAT and the API server through the Service's DNAT each accept
    // a TCP connection (busybox nc exits 0 only when it connected; it has no -z, and it closes
    // on stdin's end before a reply arrives, so this checks the connection, not HTTP). HTTP and
    // TLS from a Pod are what the in-cluster agent tests exercise.
    let script = format!(
        "echo hello-from-the-node; \
         nc -w 5 {host} {port} </dev/null && echo moto-reachable; \
         nc -w 5 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT </dev/null && echo apiserver-reachable"
    );
    pods.create(
        &PostParams::default(),
        &shell_pod("hello", &node.shell_image, &script),
    )
    .await
    .unwrap();
    wait_for("pod hello to succeed", TIMEOUT, || async {
        let p = phase(&pods, "hello").await;
        assert_ne!(p, "Failed", "pod hello failed");
        p == "Succeeded"
    })
    .await
    .unwrap();
    let p = pods.get("hello").await.unwrap();
    assert_eq!(
        p.spec.unwrap().node_name.as_deref(),
        Some(node.name.as_str())
    );
    let log = pods.logs("hello", &LogParams::default()).await.unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "hello-from-the-node",
            "moto-reachable",
            "apiserver-reachable"
        ],
        "{log}"
    );
    ns.cleanup().await.unwrap();
}

/// The images rebuild to the same digests (same inputs, same bytes), and those are the digests
/// the node's containerd holds under each image's name.
#[tokio::test]
async fn images_rebuild_to_the_digests_the_node_runs() {
    let env = cluster().await;
    let node = env.node();
    let images = cache().join("images");
    let recorded = |name: &str| {
        std::fs::read_to_string(images.join(format!("{name}.digest")))
            .unwrap_or_else(|e| panic!("{name}.digest in {}: {e}", images.display()))
            .trim()
            .to_string()
    };
    let before: Vec<(String, String)> = ["pause", "web", "shell"]
        .iter()
        .map(|n| (n.to_string(), recorded(n)))
        .collect();
    let o = Command::new(repo().join("tests/cluster/images.sh"))
        .arg("build")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "images.sh build: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for (name, digest) in &before {
        assert_eq!(&recorded(name), digest, "{name} rebuilt to another digest");
    }

    let ctr = std::fs::read_dir(cache().join("bin"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("containerd-") && !n.contains(".tmp."))
        })
        .expect("containerd in the cache")
        .join("ctr");
    let o = Command::new(ctr)
        .arg("-a")
        .arg(&node.containerd_address)
        .args(["-n", "k8s.io", "images", "ls"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listing = String::from_utf8_lossy(&o.stdout);
    let mut names: Vec<&str> = vec!["web", "shell", "pause"];
    if images.join("agent.digest").exists() {
        names.push("agent");
    }
    for name in names {
        let reference = std::fs::read_to_string(images.join(format!("{name}.ref")))
            .unwrap()
            .trim()
            .to_string();
        let digest = recorded(name);
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(&format!("{reference} ")) && l.contains(&digest)),
            "containerd holds no {reference} at {digest}:\n{listing}"
        );
    }
}

/// Output of a command that must succeed.
fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        o.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a set with a node makes outside its directory, by slot: (bridge, nat chain, cgroups).
fn outside_traces(slot: &str) -> (bool, bool, Vec<PathBuf>) {
    let bridge = Command::new("ip")
        .args(["link", "show", &format!("orkbr{slot}")])
        .output()
        .unwrap()
        .status
        .success();
    let chain = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S", &format!("ORKESTRA-{slot}")])
        .output()
        .unwrap()
        .status
        .success();
    let cgroups = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join(format!("orkestra-{slot}"))))
        .filter(|p| p.is_dir())
        .collect();
    (bridge, chain, cgroups)
}

/// A second set with a node starts beside the shared one without touching it (its own slot,
/// node name, bridge, chain and cgroup), runs a Pod, and `down.sh` removes everything it made
/// outside its directory while the first node stays Ready.
#[tokio::test]
async fn a_second_set_runs_beside_the_first_and_down_removes_all_it_made() {
    let env = cluster().await;
    let first = env.node().name.clone();
    let dir = std::env::temp_dir().join(orkestra_testsupport::unique_name("ork-second"));
    let up = repo().join("tests/cluster/up.sh");
    let down = repo().join("tests/cluster/down.sh");
    // down.sh runs when this test ends, passed or not (it is safe to run twice).
    struct Down(PathBuf, PathBuf);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = Command::new(&self.0).arg(&self.1).output();
        }
    }
    let _down = Down(down.clone(), dir.clone());
    ok(Command::new(&up)
        .args(["--only", "kube,node"])
        .arg(&dir)
        .env("ORKESTRA_OWNER_PID", std::process::id().to_string()));
    let slot = std::fs::read_to_string(dir.join("slot"))
        .unwrap()
        .trim()
        .to_string();
    let vars = std::fs::read_to_string(dir.join("env")).unwrap();
    let second = vars
        .lines()
        .find_map(|l| l.strip_prefix("ORKESTRA_NODE="))
        .expect("ORKESTRA_NODE in the second env")
        .to_string();
    assert_ne!(first, second, "two sets share a node name");
    let kubeconfig = dir.join("kubeconfig");
    let kubectl = || {
        let mut c = env.kubectl();
        c.arg("--kubeconfig").arg(&kubeconfig);
        c
    };
    ok(kubectl().args([
        "run",
        "hello",
        "--restart=Never",
        "--image-pull-policy=IfNotPresent",
        &format!("--image={}", env.node().shell_image),
        "--",
        "/bin/sh",
        "-c",
        "echo second",
    ]));
    ok(kubectl().args([
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/hello",
        "--timeout=90s",
    ]));
    let node = ok(kubectl().args(["get", "pod", "hello", "-o", "jsonpath={.spec.nodeName}"]));
    assert_eq!(node, second);
    // The bridge appears with the first Pod (the CNI plugin makes it).
    let (bridge, chain, cgroups) = outside_traces(&slot);
    assert!(
        bridge && chain && !cgroups.is_empty(),
        "slot {slot}: bridge {bridge}, chain {chain}, cgroups {cgroups:?}"
    );

    ok(Command::new(&down).arg(&dir));
    let (bridge, chain, cgroups) = outside_traces(&slot);
    assert!(
        !bridge && !chain && cgroups.is_empty(),
        "left behind by slot {slot}: bridge {bridge}, chain {chain}, cgroups {cgroups:?}"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = format!("{}/", dir.display());
    assert!(
        !mountinfo.lines().any(|l| l.contains(&prefix)),
        "mounts left under {prefix}"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());

    // The shared set's node is untouched.
    let nodes: Api<Node> = Api::all(env.client().await);
    let ready = nodes
        .get(&first)
        .await
        .unwrap()
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    assert!(
        ready,
        "node {first} not Ready after the second set went down"
    );
}
