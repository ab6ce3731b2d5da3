//! The third-party provider through the binaries a user of it builds (`acme-orkestra-agent`,
//! `kubectl-orkestra_acme`), against the real control plane and moto: lint knows the `ssm` block
//! and its rules, render coerces it, plan observes it, the agent reconciles it into Parameter
//! Store, status shows its rows, and deleting the CR deletes the parameters.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use orkestra_testsupport::{unique_name, wait_for, TestEnv};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_acme-orkestra-agent");
const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-orkestra_acme");

fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("katalog")
        .join(file)
}

/// A command with only the test systems' variables (moto's endpoint and keys, the kubeconfig).
fn command(bin: &str, env: &TestEnv) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::null());
    for (k, v) in &env.vars {
        if k.starts_with("AWS_") || k == "KUBECONFIG" {
            c.env(k, v);
        }
    }
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn kubectl(env: &TestEnv, args: &[&str], stdin: Option<&str>) {
    let mut c = env.kubectl();
    c.args(args);
    let o = match stdin {
        None => c.output().unwrap(),
        Some(input) => {
            let mut child = c
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        }
    };
    assert!(o.status.success(), "kubectl {args:?}: {}", text(&o));
}

/// Kills the agent when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn ssm(env: &TestEnv) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&env.aws.aws_config().await)
}

async fn parameter(client: &aws_sdk_ssm::Client, name: &str) -> Option<String> {
    client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .ok()
        .and_then(|o| o.parameter().and_then(|p| p.value().map(str::to_string)))
}

#[test]
fn lint_knows_the_block_and_its_rules() {
    let o = Command::new(PLUGIN)
        .args(["lint"])
        .arg(example("katalog.yaml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let dir = tempfile::tempdir().unwrap();
    let bad = std::fs::read_to_string(example("katalog.yaml"))
        .unwrap()
        .replace("description: \"log level", "descriptio: \"log level")
        .replace(
            "\"/acme/{{ .metadata.namespace }}/{{ .metadata.name }}/api-token\"",
            "\"/aws/reserved\"",
        );
    let path = dir.path().join("katalog.yaml");
    std::fs::write(&path, bad).unwrap();
    let o = Command::new(PLUGIN)
        .arg("lint")
        .arg(&path)
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("katalog.yaml:40:17") && out.contains("descriptio"),
        "{out}"
    );
    assert!(
        out.contains("parameter name \"/aws/reserved\" must not begin with aws or ssm"),
        "{out}"
    );
}

#[test]
fn render_shows_the_block_as_the_agent_builds_it() {
    let o = Command::new(PLUGIN)
        .args(["render", "-o", "json", "-f"])
        .arg(example("katalog.yaml"))
        .arg("--cr")
        .arg(example("cr.yaml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let external = &doc["items"][0]["external"];
    assert_eq!(external[0]["provider"], "ssm");
    assert_eq!(external[0]["name"], "/acme/default/web/log-level");
    assert_eq!(external[0]["fields"]["value"], "debug");
    assert_eq!(external[1]["fields"]["type"], "SecureString");
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_then_the_agent_reconciles_shows_and_deletes_parameters() {
    let env = orkestra_testsupport::cluster().await;
    let ns = env.namespace("acme-ssm").await.unwrap();
    let name = unique_name("web");
    let token = unique_name("token-value");
    // The Katalog CRD, as `kubectl orkestra install` puts it (this test does not install the
    // agent: it runs this build's agent binary itself).
    let katalog_crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds/katalog.yaml");
    kubectl(
        env,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            katalog_crd.to_str().unwrap(),
        ],
        None,
    );
    kubectl(
        env,
        &[
            "wait",
            "--for=condition=Established",
            "crd/katalogs.orkestra.orkspace.io",
        ],
        None,
    );
    // Installed as its users would: this build's plugin applies the CRD and the Katalog object
    // (which `status` reads to know the kind).
    let o = command(PLUGIN, env)
        .args(["apply", "-f"])
        .arg(example("katalog.yaml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "apply: {}", text(&o));
    kubectl(
        env,
        &[
            "-n",
            ns.name(),
            "create",
            "secret",
            "generic",
            &format!("{name}-token"),
            &format!("--from-literal=token={token}"),
        ],
        None,
    );
    let cr = format!(
        "apiVersion: acme.example.io/v1\nkind: AppConfig\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{logLevel: warn, tokenSecret: {name}-token}}\n",
        ns = ns.name()
    );
    let dir = tempfile::tempdir().unwrap();
    let cr_file = dir.path().join("cr.yaml");
    std::fs::write(&cr_file, &cr).unwrap();
    let level = format!("/acme/{}/{name}/log-level", ns.name());
    let api_token = format!("/acme/{}/{name}/api-token", ns.name());

    // plan: this build observes the ssm block in moto (the stock plugin reports it unknown).
    let o = command(PLUGIN, env)
        .args(["plan", "-f"])
        .arg(example("katalog.yaml"))
        .arg("--cr")
        .arg(&cr_file)
        .output()
        .unwrap();
    let plan = text(&o);
    assert!(o.status.success(), "{plan}");
    let line = |field: &str| {
        plan.lines()
            .find(|l| l.trim_start().starts_with(&format!("+ {field} ")))
            .unwrap_or_else(|| panic!("no {field} line: {plan}"))
            .to_string()
    };
    assert!(
        plan.contains(&format!("+ ssm.parameter \"{level}\" {{")),
        "{plan}"
    );
    assert!(line("value").ends_with("= \"warn\""), "{plan}");
    assert!(line("valueSecret").ends_with("= (sensitive)"), "{plan}");
    assert!(!plan.contains(&token), "{plan}");

    // The agent of this build, restricted to the test's namespace.
    let agent = command(AGENT, env)
        .args(["--katalog"])
        .arg(example("katalog.yaml"))
        .args([
            "--leader-election",
            "off",
            "--metrics-addr",
            "off",
            "--log-format",
            "json",
        ])
        .args(["-n", ns.name()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut agent = Running(agent);
    kubectl(env, &["apply", "-f", "-"], Some(&cr));

    let client = ssm(env).await;
    let got = wait_for(
        "both parameters in Parameter Store",
        Duration::from_secs(90),
        || {
            let client = client.clone();
            let (level, api_token) = (level.clone(), api_token.clone());
            async move {
                match (
                    parameter(&client, &level).await,
                    parameter(&client, &api_token).await,
                ) {
                    (Some(l), Some(t)) => Some((l, t)),
                    _ => None,
                }
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(got, ("warn".to_string(), token.clone()));

    // status: both rows Ready, through this build's plugin; the token never shown.
    let status = wait_for(
        "the CR Ready with two rows",
        Duration::from_secs(60),
        || {
            let c = command(PLUGIN, env);
            let ns = ns.name().to_string();
            let name = name.clone();
            async move {
                let mut c = c;
                let o = c
                    .args([
                        "status",
                        &format!("appconfig/{name}"),
                        "-n",
                        &ns,
                        "-o",
                        "json",
                    ])
                    .output()
                    .ok()?;
                let doc: Value = serde_json::from_slice(&o.stdout).ok()?;
                let rows = doc.pointer("/items/0/external")?.as_array()?.clone();
                (rows.len() == 2 && rows.iter().all(|r| r["state"] == "Ready")).then_some(doc)
            }
        },
    )
    .await
    .unwrap();
    let shown = status.to_string();
    assert!(shown.contains(&level) && !shown.contains(&token), "{shown}");

    // Deleting the CR deletes both parameters, then the CR goes.
    kubectl(
        env,
        &[
            "-n",
            ns.name(),
            "delete",
            "appconfig",
            &name,
            "--wait=false",
        ],
        None,
    );
    wait_for("both parameters deleted", Duration::from_secs(90), || {
        let client = client.clone();
        let (level, api_token) = (level.clone(), api_token.clone());
        async move {
            parameter(&client, &level).await.is_none()
                && parameter(&client, &api_token).await.is_none()
        }
    })
    .await
    .unwrap();

    if let Ok(Some(status)) = agent.0.try_wait() {
        panic!("the agent exited early: {status}");
    }
    let _ = agent.0.kill();
    let mut logs = String::new();
    if let Some(mut err) = agent.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut logs);
    }
    assert!(!logs.contains(&token), "the token reached the agent's logs");
    // What `apply` installed: the Katalog object and the agent's RBAC for its kinds.
    kubectl(
        env,
        &[
            "delete",
            "--ignore-not-found",
            "katalogs.orkestra.orkspace.io/app-config",
            "clusterrole/orkestra-katalog-app-config",
            "clusterrolebinding/orkestra-katalog-app-config",
        ],
        None,
    );
    let _ = ns.cleanup().await;
}
