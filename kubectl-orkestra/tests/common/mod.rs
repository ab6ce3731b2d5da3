//! Running `kubectl orkestra` as a user types it, against the real test systems.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use orkestra_agent::{Config, Toggle};
use orkestra_testsupport::TestEnv;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Label a test puts on its Katalogs; the agent it runs selects only those.
pub const RUN_LABEL: &str = "test.orkestra.io/run";
/// The web-server image loaded into the test node (no registry can be reached from the node), for
/// a CR whose Deployment must become available.
pub const WEB_IMAGE: &str = "ghcr.io/orkspace/orkestra-web:0.1.0";

/// The plugin binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-orkestra");

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A command for the plugin with a clean environment pointing at `env`'s cluster and moto
/// (KUBECONFIG, AWS_*), stdout and stderr captured (so never a terminal: no colour, no prompts).
pub fn plugin(env: &TestEnv) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear();
    c.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c.env("HOME", std::env::temp_dir());
    for (k, v) in &env.vars {
        if k.starts_with("AWS_") || k == "KUBECONFIG" {
            c.env(k, v);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Run and capture.
pub fn run(mut c: Command) -> Output {
    c.output().expect("run kubectl-orkestra")
}

/// [`run`] off the async runtime, so an agent running in this test's runtime keeps working
/// while the plugin waits for it.
pub async fn run_async(c: Command) -> Output {
    tokio::task::spawn_blocking(move || run(c))
        .await
        .expect("run kubectl-orkestra")
}

/// `kubectl orkestra status TARGET -n NS -o json`, parsed (`Null` when it printed no JSON).
pub async fn status_json(env: &TestEnv, target: &str, ns: &str) -> serde_json::Value {
    let mut c = plugin(env);
    c.args(["status", target, "-n", ns, "-o", "json"]);
    serde_json::from_str(&stdout(&run_async(c).await)).unwrap_or_default()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert a failure the way the contract wants it: exit 1, the last stderr line one clear
/// `error: …` line containing `needle`, and no panic or backtrace.
pub fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr:\n{err}");
    assert!(
        !err.contains("panicked")
            && !err.contains("RUST_BACKTRACE")
            && !err.contains("stack backtrace"),
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: "),
        "last line is not an error line: {err}"
    );
    assert!(last.contains(needle), "expected {needle:?} in {last:?}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{err}"
    );
}

/// Install the Katalog CRD: the agent's deploy/crds/katalog.yaml when it is there, else the
/// stand-in in tests/fixtures (same group, kind and scope).
pub fn install_katalog_crd(env: &TestEnv) {
    let real = repo().join("deploy/crds/katalog.yaml");
    let file = if real.exists() {
        real
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/katalog-crd.yaml")
    };
    let o = env
        .kubectl()
        .args(["apply", "--server-side", "--force-conflicts", "-f"])
        .arg(&file)
        .output()
        .expect("kubectl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env
        .kubectl()
        .args([
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/katalogs.orkestra.orkspace.io",
        ])
        .output()
        .expect("kubectl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A Katalog's `crds:` with one entry, kind Site in a group unique to `id`, up to its
/// `operatorBox:` hooks (which follow at eight spaces).
pub fn site_entry(id: &str) -> String {
    format!(
        "  crds:
    - name: site
      apiTypes: {{group: {id}.test.orkestra.io, version: v1, kind: Site, plural: sites}}
      operatorBox:
        default: true"
    )
}

/// A Website-like Katalog with a kind and group unique to `id`, so tests sharing one cluster
/// never share CRDs. With `bucket`, each CR also gets an S3 bucket.
pub fn katalog_text(id: &str, bucket: bool) -> String {
    let aws = if bucket {
        "
          aws:
            - s3:
                bucket: \"{{ .metadata.name }}-{{ .metadata.namespace }}\"
                region: us-east-1
                versioning: true"
    } else {
        ""
    };
    let entry = site_entry(id);
    format!(
        "apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata:
  name: k-{id}
  description: test Katalog {id}
spec:
{entry}
        onCreate:
          deployments:
            - name: \"{{{{ .metadata.name }}}}\"
              image: \"{{{{ .spec.image }}}}\"
              replicas: \"{{{{ .spec.replicas }}}}\"
              reconcile: true
          configMaps:
            - name: \"{{{{ .metadata.name }}}}-content\"
              data:
                title: \"{{{{ .spec.title | default \\\"Welcome\\\" }}}}\"{aws}
"
    )
}

/// A CR of [`katalog_text`]'s kind.
pub fn cr_text(id: &str, ns: &str, name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: {id}.test.orkestra.io/v1
kind: Site
metadata:
  name: {name}
  namespace: {ns}
spec:
  image: nginx:1.27
  replicas: {replicas}
  title: Hello
"
    )
}

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// A lower-case id unique to this run.
pub fn id(prefix: &str) -> String {
    orkestra_testsupport::unique_name(prefix)
}

/// Compare with a golden file (`UPDATE_GOLDEN=1` rewrites it).
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden {}; run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

/// Remove what `apply` of [`katalog_text`]`(id)` made cluster-wide: the Katalog, its CRD, its RBAC.
pub fn remove_katalog(env: &TestEnv, id: &str) {
    let _ = env
        .kubectl()
        .args(["delete", "--ignore-not-found", "--wait=false"])
        .arg(format!("katalogs.orkestra.orkspace.io/k-{id}"))
        .arg(format!("crd/sites.{id}.test.orkestra.io"))
        .arg(format!("clusterrole/orkestra-katalog-k-{id}"))
        .arg(format!("clusterrolebinding/orkestra-katalog-k-{id}"))
        .output();
}

/// Delete Katalog `name` as `apply` installed it: the object and the agent's RBAC for its kinds
/// (left behind, that RBAC would widen what the agent's service account may do in later tests).
pub fn remove_applied_katalog(env: &TestEnv, name: &str) {
    let _ = env
        .kubectl()
        .args(["delete", "--ignore-not-found", "--wait=false"])
        .arg(format!("katalogs.orkestra.orkspace.io/{name}"))
        .arg(format!("clusterrole/orkestra-katalog-{name}"))
        .arg(format!("clusterrolebinding/orkestra-katalog-{name}"))
        .output();
}

/// `text` (a [`katalog_text`]) labelled so that only the agent of run `id` runs it.
pub fn labelled(text: &str, id: &str) -> String {
    text.replacen(
        "metadata:\n",
        &format!("metadata:\n  labels: {{{RUN_LABEL}: {id}}}\n"),
        1,
    )
}

/// The Site CRs of [`katalog_text`]`(id)` in `ns`.
pub fn sites(client: kube::Client, ns: &str, id: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client,
        ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&format!("{id}.test.orkestra.io"), "v1", "Site"),
            "sites",
        ),
    )
}

/// The real agent, run in this test's process against the test systems.
pub struct Agent {
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), orkestra_agent::Error>>,
}

impl Agent {
    /// Start the agent for the Katalogs labelled [`labelled`]`(_, id)` and the CRs in `ns`; with
    /// `aws`, the aws provider is registered, aimed at moto (without it, the agent is a build
    /// without that provider).
    pub async fn start(env: &TestEnv, id: &str, ns: &str, aws: bool) -> Self {
        let config = Config {
            namespaces: vec![ns.to_string()],
            katalog_selector: Some(format!("{RUN_LABEL}={id}")),
            leader_election: Toggle::Off,
            ..Config::local()
        };
        let mut providers = orkestra_provider::ProviderRuntime::new();
        if aws {
            let aws = orkestra_provider_aws::AwsProvider::with_fixed_clients(
                orkestra_provider_aws::FixedClients {
                    s3: Some(env.s3_client().await),
                    rds: Some(env.rds_client().await),
                    sqs: Some(env.aws.sqs_client().await),
                    iam: Some(env.aws.iam_client().await),
                    route53: Some(env.aws.route53_client().await),
                },
                &env.aws.region,
            );
            providers
                .register(
                    std::sync::Arc::new(aws),
                    orkestra_provider::RateLimit::default(),
                )
                .expect("one provider per name");
        }
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(orkestra_agent::run_with(
            config,
            env.client().await,
            providers,
            shutdown.clone(),
        ));
        Self { shutdown, task }
    }

    /// Stop it and wait until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(60), self.task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("the agent did not stop cleanly: {other:?}"),
        }
    }
}
