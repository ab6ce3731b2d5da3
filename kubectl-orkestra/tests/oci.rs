//! Katalogs through a real OCI registry (the CNCF Distribution registry with htpasswd auth, from
//! `tests/cluster/up.sh`), with the ORAS CLI as the independent client: what `push` writes
//! `oras` pulls and reads, what `oras` pushes with orkestra's media types `apply -f oci://`
//! installs and the real agent runs; wrong credentials, a missing tag, a tampered blob and an
//! oversized artifact each end in one clear error and write nothing.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use orkestra_testsupport::{RegistryEnv, TestEnv};
use serde_json::Value;

const CONFIG: &str = "application/vnd.orkestra.katalog.config.v1+json";
const KATALOG: &str = "application/vnd.orkestra.katalog.v1+yaml";
const CRD: &str = "application/vnd.orkestra.katalog.crd.v1+yaml";
const EXAMPLE: &str = "application/vnd.orkestra.katalog.example.v1+yaml";

/// A Docker config file holding the registry's credentials, as `docker login` writes it.
fn docker_config(dir: &Path, r: &RegistryEnv, password: &str) -> PathBuf {
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", r.username));
    write(
        dir,
        "config.json",
        &format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, r.host),
    )
}

/// The plugin with `--plain-http --registry-config CONFIG` after `args`.
fn oci(env: &TestEnv, config: &Path, args: &[&str]) -> Command {
    let mut c = plugin(env);
    c.args(args)
        .arg("--plain-http")
        .arg("--registry-config")
        .arg(config);
    c
}

/// `oras` with the registry's credentials and plain HTTP, in `cwd`.
fn oras(r: &RegistryEnv, cwd: &Path, args: &[&str]) -> Output {
    let o = Command::new(&r.oras)
        .current_dir(cwd)
        .args(args)
        .args(["--plain-http", "-u", &r.username, "-p", &r.password])
        .output()
        .expect("run oras");
    assert!(
        o.status.success(),
        "oras {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `kubectl ARGS -o json`, parsed (`Null` when kubectl fails, e.g. the object is not there).
fn kubectl_json(env: &TestEnv, args: &[&str]) -> Value {
    let o = env
        .kubectl()
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("kubectl");
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

/// No output of any command shows the registry password.
fn assert_no_password(o: &Output, r: &RegistryEnv) {
    assert!(
        !stdout(o).contains(&r.password) && !stderr(o).contains(&r.password),
        "the registry password was printed"
    );
}

#[tokio::test]
async fn push_is_read_by_oras_and_pulls_back_by_tag_and_by_digest() {
    let env = orkestra_testsupport::cluster().await;
    let r = env.registry();
    let tmp = tempfile::tempdir().unwrap();
    let config = docker_config(tmp.path(), r, &r.password);
    let source = repo().join("katalogs/website");
    let target = format!("oci://{}/{}/website:1.0.0", r.host, id("push"));

    let o = run(oci(
        env,
        &config,
        &["push", source.to_str().unwrap(), &target],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_no_password(&o, r);
    let pinned = stdout(&o).trim().to_string();
    let digest = pinned
        .split_once('@')
        .expect("pinned reference")
        .1
        .to_string();
    assert!(
        pinned.starts_with(&target) && digest.starts_with("sha256:"),
        "{pinned}"
    );

    // The same files push to the same digest: no timestamps in the artifact.
    let again = run(oci(
        env,
        &config,
        &["push", source.to_str().unwrap(), &target],
    ));
    assert_eq!(stdout(&again).trim(), pinned, "{}", stderr(&again));

    // oras reads it: our media types, a title per file, and `oras pull` writes the same files.
    let bare = target.trim_start_matches("oci://");
    let manifest: Value =
        serde_json::from_slice(&oras(r, tmp.path(), &["manifest", "fetch", bare]).stdout).unwrap();
    assert_eq!(manifest["config"]["mediaType"], CONFIG);
    let layers: Vec<(String, String)> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["annotations"]["org.opencontainers.image.title"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                l["mediaType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        layers,
        [
            ("cr-blog.yaml".to_string(), EXAMPLE.to_string()),
            ("crd.yaml".to_string(), CRD.to_string()),
            ("katalog.yaml".to_string(), KATALOG.to_string()),
        ]
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "website-operator"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "0.1.0"
    );
    let cfg: Value =
        serde_json::from_slice(&oras(r, tmp.path(), &["manifest", "fetch-config", bare]).stdout)
            .unwrap();
    assert_eq!(cfg["name"], "website-operator");
    assert_eq!(cfg["kinds"][0]["kind"], "Website");
    let oras_dir = tmp.path().join("oras");
    std::fs::create_dir(&oras_dir).unwrap();
    oras(r, &oras_dir, &["pull", bare]);
    assert_eq!(files_of(&oras_dir), files_of(&source));

    // Our pull, by tag and by digest, writes the same files.
    for (reference, dir) in [(target.clone(), "by-tag"), (pinned.clone(), "by-digest")] {
        let out = tmp.path().join(dir);
        let o = run(oci(
            env,
            &config,
            &["pull", &reference, "-d", out.to_str().unwrap()],
        ));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(files_of(&out), files_of(&source), "pull {reference}");
    }

    // --username with --password-stdin works too, and pull -o json reports what it wrote.
    let mut c = plugin(env);
    c.args(["pull", &target, "-o", "json", "--plain-http", "-d"])
        .arg(tmp.path().join("stdin"))
        .args(["--username", &r.username, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{}", r.password).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(json["katalog"], "website-operator");
    assert_eq!(json["files"].as_array().unwrap().len(), 3);
}

/// A Katalog with one ConfigMap per CR (Ready without the node), kind Site unique to `id`,
/// run only by this test's agent; `title` changes between versions.
fn configmap_katalog(id: &str, version: &str) -> String {
    labelled(
        &format!(
            "apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata:
  name: k-{id}
  version: {version}
spec:
{}
        onCreate:
          configMaps:
            - name: \"{{{{ .metadata.name }}}}-content\"
              reconcile: true
              data:
                version: \"{version}\"
",
            site_entry(id)
        ),
        id,
    )
}

#[tokio::test]
async fn an_artifact_pushed_by_oras_is_applied_from_the_registry_and_run_by_the_agent() {
    let env = orkestra_testsupport::cluster().await;
    let r = env.registry();
    install_katalog_crd(env);
    let ns = env.namespace("oci-apply").await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = docker_config(tmp.path(), r, &r.password);
    let id = id("o");
    let repo_ref = format!("{}/{id}/site", r.host);
    let target = format!("oci://{repo_ref}:1.0.0");

    // ORAS pushes the Katalog with orkestra's media types (no orkestra code involved).
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    write(&src, "katalog.yaml", &configmap_katalog(&id, "1.0.0"));
    write(
        &src,
        "config.json",
        &format!(r#"{{"name":"k-{id}","version":"1.0.0"}}"#),
    );
    let push = |version: &str| {
        write(&src, "katalog.yaml", &configmap_katalog(&id, version));
        let o = oras(
            r,
            &src,
            &[
                "push",
                &format!("{repo_ref}:1.0.0"),
                "--config",
                &format!("config.json:{CONFIG}"),
                &format!("katalog.yaml:{KATALOG}"),
            ],
        );
        stdout(&o)
            .lines()
            .find_map(|l| l.strip_prefix("Digest: "))
            .expect("oras prints the digest")
            .trim()
            .to_string()
    };
    let first = push("1.0.0");

    let agent = Agent::start(env, &id, ns.name(), false).await;
    let o = run_async(oci(
        env,
        &config,
        &["apply", "-f", &target, "--wait", "--timeout", "90s"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("applied from {target}@{first}")),
        "{}",
        stderr(&o)
    );
    assert_no_password(&o, r);

    // The Katalog object records the reference and the digest it resolved to.
    let katalog = kubectl_json(env, &["get", "katalog", &format!("k-{id}")]);
    let annotations = &katalog["metadata"]["annotations"];
    assert_eq!(annotations["orkestra.orkspace.io/source"], target.as_str());
    assert_eq!(annotations["orkestra.orkspace.io/digest"], first.as_str());

    // The agent runs it: a CR gets its ConfigMap and is Ready; status names the version.
    let cr = write(tmp.path(), "cr.yaml", &cr_text(&id, ns.name(), "one", 1));
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&cr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let kind = format!("site.{id}.test.orkestra.io");
    let status = orkestra_testsupport::wait_for(
        "the CR of the registry's Katalog Ready",
        Duration::from_secs(90),
        || async {
            let v = status_json(env, &format!("{kind}/one"), ns.name()).await;
            (v["items"][0]["ready"] == true).then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(status["katalogs"][0]["source"], target.as_str());
    assert_eq!(status["katalogs"][0]["digest"], first.as_str());
    let cm = kubectl_json(env, &["get", "configmap", "one-content", "-n", ns.name()]);
    assert_eq!(cm["data"]["version"], "1.0.0");

    // plan says which version runs and which one it plans.
    let o = run_async(oci(
        env,
        &config,
        &[
            "plan",
            "-f",
            &target,
            &format!("{kind}/one"),
            "-n",
            ns.name(),
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "the cluster runs {target}@{first}; planning {target}@{first}"
        )),
        "{}",
        stdout(&o)
    );

    // The tag moves to a new version: --verify-digest refuses it and changes nothing.
    let second = push("1.1.0");
    assert_ne!(first, second);
    let o = run_async(oci(
        env,
        &config,
        &["apply", "-f", &target, "--verify-digest"],
    ))
    .await;
    assert_one_line_error(&o, "the tag moved");
    let o = run_async(oci(
        env,
        &config,
        &["apply", "-f", &target, &format!("--verify-digest={first}")],
    ))
    .await;
    assert_one_line_error(&o, "the tag moved");
    let still = kubectl_json(env, &["get", "katalog", &format!("k-{id}")]);
    assert_eq!(
        still["metadata"]["annotations"]["orkestra.orkspace.io/digest"],
        first.as_str()
    );

    // Without it, the new version is applied and the agent follows it.
    let o = run_async(oci(env, &config, &["apply", "-f", &target])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    orkestra_testsupport::wait_for(
        "the ConfigMap at the new version",
        Duration::from_secs(90),
        || async {
            let cm = kubectl_json(env, &["get", "configmap", "one-content", "-n", ns.name()]);
            (cm["data"]["version"] == "1.1.0").then_some(())
        },
    )
    .await
    .unwrap();
    let v = status_json(env, &format!("{kind}/one"), ns.name()).await;
    assert_eq!(v["katalogs"][0]["digest"], second.as_str());

    // Deleted while the agent runs (kubectl must not block this runtime, which runs the agent).
    let o = env
        .kubectl()
        .args(["delete", "--wait=false", "-f"])
        .arg(&cr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let crs = sites(env.client().await, ns.name(), &id);
    orkestra_testsupport::wait_for(
        "the CR gone after the agent's cleanup",
        Duration::from_secs(60),
        || async { crs.get_opt("one").await.ok()?.is_none().then_some(()) },
    )
    .await
    .unwrap();
    agent.stop().await;
    remove_katalog(env, &id);
}

#[tokio::test]
async fn registry_failures_end_in_one_clear_error_and_write_nothing() {
    let env = orkestra_testsupport::cluster().await;
    let r = env.registry();
    let tmp = tempfile::tempdir().unwrap();
    let good = docker_config(tmp.path(), r, &r.password);
    let wrong_dir = tmp.path().join("wrong");
    std::fs::create_dir(&wrong_dir).unwrap();
    let wrong = docker_config(&wrong_dir, r, "not-the-password");
    let repo_name = id("bad");
    let target = format!("oci://{}/{repo_name}/website:1.0.0", r.host);
    // A copy with content of its own: the registry stores blobs once across repositories, and
    // this test tampers with one.
    let source = tmp.path().join("website");
    std::fs::create_dir(&source).unwrap();
    for f in ["katalog.yaml", "crd.yaml", "cr-blog.yaml"] {
        std::fs::copy(repo().join("katalogs/website").join(f), source.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(source.join("katalog.yaml")).unwrap();
    write(&source, "katalog.yaml", &format!("# {repo_name}\n{text}"));
    let o = run(oci(
        env,
        &good,
        &["push", source.to_str().unwrap(), &target],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = tmp.path().join("out");
    let pull = |config: &Path, reference: &str| {
        run(oci(
            env,
            config,
            &["pull", reference, "-d", out.to_str().unwrap()],
        ))
    };

    // Wrong password.
    let o = pull(&wrong, &target);
    assert_one_line_error(&o, "refused user \"orkestra\"");
    assert!(!stderr(&o).contains("not-the-password"));
    assert!(!out.exists());
    let o = run(oci(
        env,
        &wrong,
        &["push", source.to_str().unwrap(), &target],
    ));
    assert_one_line_error(&o, "401 unauthorized");

    // A tag that does not exist.
    let o = pull(
        &good,
        &format!("oci://{}/{repo_name}/website:9.9.9", r.host),
    );
    assert_one_line_error(&o, "does not exist in the registry");
    assert!(!out.exists());

    // A Katalog with a lint error is not pushed.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    write(
        &broken,
        "katalog.yaml",
        &std::fs::read_to_string(source.join("katalog.yaml"))
            .unwrap()
            .replacen("image:", "imagee:", 1),
    );
    let broken_ref = format!("oci://{}/{repo_name}/broken:1", r.host);
    let o = run(oci(
        env,
        &good,
        &["push", broken.to_str().unwrap(), &broken_ref],
    ));
    assert_one_line_error(&o, "nothing was pushed");
    assert!(stderr(&o).contains("unknown-field"), "{}", stderr(&o));
    let o = pull(&good, &broken_ref);
    assert_one_line_error(&o, "does not exist");

    // An oversized artifact (pushed by oras with our media types) is refused before download.
    let big = tmp.path().join("big");
    std::fs::create_dir(&big).unwrap();
    std::fs::copy(source.join("katalog.yaml"), big.join("katalog.yaml")).unwrap();
    write(&big, "examples.yaml", &"# padding\n".repeat(500_000));
    write(&big, "config.json", r#"{"name":"big"}"#);
    let big_ref = format!("{}/{repo_name}/big:1", r.host);
    oras(
        r,
        &big,
        &[
            "push",
            &big_ref,
            "--config",
            &format!("config.json:{CONFIG}"),
            &format!("katalog.yaml:{KATALOG}"),
            &format!("examples.yaml:{EXAMPLE}"),
        ],
    );
    let o = pull(&good, &format!("oci://{big_ref}"));
    assert_one_line_error(&o, "over the limit");
    assert!(!out.exists());
    let o = run(oci(env, &good, &["push", big.to_str().unwrap(), &target]));
    assert_one_line_error(&o, "nothing was pushed");

    // A tampered blob: same size, one byte changed in the registry's storage.
    let manifest: Value = serde_json::from_slice(
        &oras(
            r,
            tmp.path(),
            &["manifest", "fetch", target.trim_start_matches("oci://")],
        )
        .stdout,
    )
    .unwrap();
    let katalog_layer = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mediaType"] == KATALOG)
        .unwrap();
    let blob = r.blob_path(katalog_layer["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    let original = bytes.clone();
    let at = bytes.iter().position(|b| *b == b'W').unwrap_or(0);
    bytes[at] = if bytes[at] == b'X' { b'Y' } else { b'X' };
    std::fs::write(&blob, &bytes).unwrap();
    let o = pull(&good, &target);
    // apply -f reads through the same verified fetch: it stops before reaching the cluster.
    let applied = run(oci(env, &good, &["apply", "-f", &target]));
    std::fs::write(&blob, &original).unwrap();
    assert_one_line_error(&applied, "does not match its digest");
    assert_one_line_error(&o, "does not match its digest");
    assert!(stderr(&o).contains("katalog.yaml"), "{}", stderr(&o));
    assert!(!out.exists());

    // A reference to something that is no Katalog artifact, and a bad reference.
    let o = pull(&good, &format!("oci://{}/{repo_name}", r.host));
    assert_one_line_error(&o, "does not exist");
    let o = pull(&good, "oci://nohost");
    assert_one_line_error(&o, "names no repository");
    assert!(!out.exists());
}
