//! `kubectl orkestra plan` walks the composition graph the agent walks (composition.md, rules
//! 3–5), against the real API server and moto: with nothing applied, every value read from
//! another node prints `(known after apply: db.outputs.endpoint)`; once some nodes exist the
//! walk goes on with what they hold; Secret values never show; `status.external` rows no
//! rendered resource matches are shown as orphaned, and a recorded create intent as such.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use orkestra_provider::{Declaration, KubeReader, Owner, Provider, ProviderContext};
use orkestra_provider_aws::AwsProvider;
use serde_json::{json, Value};

const PGHOST: &str = "spec.template.spec.containers[0].env[1].value";
const PGPORT: &str = "spec.template.spec.containers[0].env[2].value";
const ENDPOINT_UNKNOWN: &str = "(known after apply: db.outputs.endpoint)";

fn example(file: &str) -> PathBuf {
    repo().join("katalogs/app-with-database").join(file)
}

/// The example's large CR (a database, a cache), moved into namespace `ns`.
fn large_cr(dir: &Path, ns: &str) -> PathBuf {
    let text = std::fs::read_to_string(example("cr-large-db.yaml")).unwrap();
    write(
        dir,
        "cr.yaml",
        &text.replace("namespace: team-b", &format!("namespace: {ns}")),
    )
}

/// Run `plan -f katalog ARGS…` and check its exit code; its stdout.
fn plan(env: &orkestra_testsupport::TestEnv, katalog: &Path, args: &[&str], expect: i32) -> String {
    let o = run({
        let mut c = plugin(env);
        c.args(["plan", "-f"]).arg(katalog).args(args);
        c
    });
    assert_eq!(
        o.status.code(),
        Some(expect),
        "plan {args:?}:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// [`plan`] with `-o json`: the document and its text.
fn plan_json(
    env: &orkestra_testsupport::TestEnv,
    katalog: &Path,
    args: &[&str],
    expect: i32,
) -> (Value, String) {
    let out = plan(env, katalog, &[args, &["-o", "json"]].concat(), expect);
    (serde_json::from_str(&out).unwrap(), out)
}

/// Run kubectl against the test cluster; its stdout (it must succeed).
fn kubectl(env: &orkestra_testsupport::TestEnv, args: &[&str]) -> String {
    let o = env.kubectl().args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A Secret in `ns` as the agent would have made it (`key` = `value`); the value as its data
/// holds it (base64).
fn make_secret(
    env: &orkestra_testsupport::TestEnv,
    ns: &str,
    name: &str,
    key: &str,
    value: &str,
) -> String {
    let kubectl = |args: &[&str]| kubectl(env, &[&["-n", ns], args].concat());
    kubectl(&[
        "create",
        "secret",
        "generic",
        name,
        &format!("--from-literal={key}={value}"),
    ]);
    let data = kubectl(&[
        "get",
        "secret",
        name,
        "-o",
        &format!("jsonpath={{.data.{key}}}"),
    ]);
    assert!(!data.is_empty());
    data
}

async fn delete_bucket(env: &orkestra_testsupport::TestEnv, bucket: &str) {
    env.s3_client()
        .await
        .delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
}

fn change<'j>(j: &'j Value, kind: &str, name: &str) -> &'j Value {
    j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind && c["name"] == name)
        .unwrap_or_else(|| panic!("no change for {kind} {name}: {j:#}"))
}

fn field<'j>(c: &'j Value, path: &str) -> &'j Value {
    c["diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == path)
        .map(|d| &d["after"])
        .unwrap_or_else(|| panic!("no {path} in {c:#}"))
}

/// Every value of every Secret's `data`/`stringData` is `(sensitive)`, before and after.
fn assert_secrets_masked(j: &Value) {
    let mut seen = 0;
    for c in j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "Secret")
    {
        for d in c["diff"].as_array().unwrap() {
            let path = d["path"].as_str().unwrap();
            if path.starts_with("data") || path.starts_with("stringData") {
                seen += 1;
                for v in [&d["before"], &d["after"]] {
                    assert!(
                        v.is_null() || *v == "(sensitive)",
                        "a Secret value is shown at {path}: {c:#}"
                    );
                }
            }
        }
    }
    assert!(seen > 0, "no Secret value planned at all: {j:#}");
}

#[tokio::test]
async fn before_anything_is_applied_values_from_other_nodes_are_known_after_apply() {
    let env = orkestra_testsupport::cluster().await;
    let ns = env.namespace("cli-compose").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let katalog = example("katalog.yaml");
    let cr = large_cr(dir.path(), ns.name());
    let cr_arg = cr.display().to_string();

    let text = plan(env, &katalog, &["--cr", &cr_arg, "--detailed-exitcode"], 2);
    let pghost = text
        .lines()
        .find(|l| l.contains(&format!("+ {PGHOST} ")))
        .unwrap_or_else(|| panic!("no PGHOST value: {text}"));
    assert!(
        pghost.ends_with(&format!("= {ENDPOINT_UNKNOWN}")),
        "{pghost}"
    );
    assert!(
        text.contains("(known after apply: db.outputs.port)"),
        "{text}"
    );
    assert!(
        text.contains(
            "# deployments[web] waits for aws.rds db (waiting itself): outputs.endpoint; neither created nor changed until then, so not dry-run"
        ),
        "{text}"
    );
    assert!(
        text.contains("# aws.rds db waits for secrets[dbPassword] (not created yet): metadata.name; neither created nor changed until then"),
        "{text}"
    );
    // The generated password, the connection URL composed from it, the RDS password input.
    for masked in ["data.password", "stringData.url", "masterPasswordSecret"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("+ {masked} ")))
            .unwrap_or_else(|| panic!("no {masked}: {text}"));
        assert!(line.ends_with("= (sensitive)"), "{line}");
    }
    assert!(!text.contains("postgres://"), "{text}");
    assert!(
        text.contains("# generates password (made once and kept; never shown)"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 5 to create, 0 to update, 0 to replace, 0 to delete.\n"),
        "{text}"
    );

    let (j, out) = plan_json(env, &katalog, &["--cr", &cr_arg, "--detailed-exitcode"], 2);
    assert_eq!(
        j["summary"],
        json!({"create": 5, "update": 0, "replace": 0, "delete": 0})
    );
    let web = change(&j, "Deployment", "billing");
    assert_eq!(web["action"], "create");
    assert_eq!(*field(web, PGHOST), ENDPOINT_UNKNOWN);
    assert_eq!(*field(web, PGPORT), "(known after apply: db.outputs.port)");
    assert_eq!(
        web["waiting"],
        json!({"node": "deployments[web]", "waitsFor": "aws.rds db", "state": "waiting itself", "value": "outputs.endpoint"})
    );
    assert!(
        web["notes"][0].as_str().unwrap().starts_with(
            "deployments[web] waits for aws.rds db (waiting itself): outputs.endpoint"
        ),
        "{web:#}"
    );
    let db = change(&j, "rds", &format!("billing-{}-db", ns.name()));
    assert_eq!(db["action"], "create");
    assert_eq!(db["target"], "external");
    assert_eq!(db["waiting"]["waitsFor"], "secrets[dbPassword]");
    assert_eq!(*field(db, "masterPasswordSecret"), "(sensitive)");
    let password = change(&j, "Secret", "billing-db-password");
    assert_eq!(password["action"], "create");
    assert!(password.get("waiting").is_none(), "{password:#}");
    let conn = change(&j, "Secret", "billing-db-conn");
    assert_eq!(conn["waiting"]["node"], "secrets[conn]");
    assert_secrets_masked(&j);
    assert!(!out.contains("postgres://"), "{out}");
    ns.cleanup().await.unwrap();
}

/// A composed Katalog of this test's own on S3 (moto's RDS model breaks the whole-state
/// snapshot `plan_writes_nothing` compares, in a set tests share): a generated token, a bucket,
/// a ConfigMap and a connection Secret that read the bucket's outputs (and the token), and a
/// Deployment that reads the bucket and comes after the ConfigMap.
fn composed_katalog(id: &str) -> String {
    let entry = site_entry(id);
    format!(
        r#"apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata:
  name: k-{id}
spec:
  providers:
    - name: aws
      required: true
{entry}
        onCreate:
          secrets:
            - id: token
              name: "{{{{ .metadata.name }}}}-token"
              generate:
                token: {{length: 24}}
          aws:
            - id: bucket
              s3:
                bucket: "{{{{ .metadata.name }}}}-{{{{ .metadata.namespace }}}}"
                region: us-east-1
        onReconcile:
          configMaps:
            - id: where
              name: "{{{{ .metadata.name }}}}-where"
              data:
                arn: "{{{{ .resources.bucket.outputs.arn }}}}"
          secrets:
            - name: "{{{{ .metadata.name }}}}-conn"
              stringData:
                url: "https://app:{{{{ .resources.token.data.token }}}}@{{{{ .resources.bucket.outputs.domainName }}}}"
          deployments:
            - name: "{{{{ .metadata.name }}}}"
              image: nginx:1.27
              env:
                - {{name: BUCKET_ARN, value: "{{{{ .resources.bucket.outputs.arn }}}}"}}
              after: [where]
"#
    )
}

#[tokio::test]
async fn the_walk_goes_on_with_what_exists_and_never_shows_secret_values() {
    let env = orkestra_testsupport::cluster().await;
    let ns = env.namespace("cli-compose").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("w");
    let katalog = write(dir.path(), "katalog.yaml", &composed_katalog(&id));
    let cr_text = format!(
        "apiVersion: {id}.test.orkestra.io/v1\nkind: Site\nmetadata:\n  name: web\n  namespace: {}\n  uid: 3f0c1b1e-52a4-4c55-9a55-0d5b8a3e7c21\nspec: {{}}\n",
        ns.name()
    );
    let cr = write(dir.path(), "cr.yaml", &cr_text);
    let cr_arg = cr.display().to_string();
    let bucket = format!("web-{}", ns.name());
    const ARN: &str = "spec.template.spec.containers[0].env[0].value";

    // Nothing exists: the bucket renders at once, everything reading it waits.
    let (j, _) = plan_json(env, &katalog, &["--cr", &cr_arg, "--detailed-exitcode"], 2);
    let where_ = change(&j, "ConfigMap", "web-where");
    assert_eq!(
        *field(where_, "data.arn"),
        "(known after apply: bucket.outputs.arn)"
    );
    assert_eq!(where_["waiting"]["waitsFor"], "aws.s3 bucket");
    assert_eq!(where_["waiting"]["state"], "not created yet");
    let web = change(&j, "Deployment", "web");
    assert_eq!(*field(web, ARN), "(known after apply: bucket.outputs.arn)");
    assert!(change(&j, "s3", &bucket).get("waiting").is_none());
    assert_secrets_masked(&j);

    // The token Secret as the agent made it, and the bucket as the agent's provider made it.
    let token = format!("T0ken{}", id.replace('-', ""));
    let b64 = make_secret(env, ns.name(), "web-token", "token", &token);
    let cr_json: Value = serde_yaml_ng::from_str(&cr_text).unwrap();
    let aws = AwsProvider::with_clients(
        env.s3_client().await,
        env.rds_client().await,
        &env.aws.region,
    );
    let decl = Declaration::from_rendered(
        "aws",
        aws.schema().kind("s3").unwrap(),
        json!({"bucket": bucket, "region": "us-east-1"})
            .as_object()
            .unwrap(),
        Owner::of_cr(&cr_json, &format!("k-{id}")),
    )
    .unwrap();
    let ctx = ProviderContext::new(
        "test",
        cr_json.clone(),
        KubeReader::new(env.client().await, ns.name()),
    );
    let obs = aws.observe(&ctx, &decl).await.unwrap();
    aws.apply(&ctx, &decl, &obs, &aws.diff(&decl, &obs))
        .await
        .unwrap();
    let obs = aws.observe(&ctx, &decl).await.unwrap();
    let arn = obs.outputs["arn"].as_str().unwrap().to_string();

    // The walk goes on with what exists: the bucket is Ready, so its readers render with its
    // outputs; the Deployment waits only for the ConfigMap (`after: [where]`).
    let (j, out) = plan_json(env, &katalog, &["--cr", &cr_arg], 0);
    assert_eq!(change(&j, "s3", &bucket)["action"], "noop", "{j:#}");
    let where_ = change(&j, "ConfigMap", "web-where");
    assert_eq!(where_["action"], "create");
    assert!(where_.get("waiting").is_none(), "{where_:#}");
    assert_eq!(*field(where_, "data.arn"), arn.as_str());
    let web = change(&j, "Deployment", "web");
    assert_eq!(*field(web, ARN), arn.as_str(), "{web:#}");
    assert_eq!(
        web["waiting"],
        json!({"node": "deployments[0]", "waitsFor": "configMaps[where]", "state": "not created yet", "value": ""})
    );
    let conn = change(&j, "Secret", "web-conn");
    assert_eq!(conn["action"], "create");
    assert!(conn.get("waiting").is_none(), "{conn:#}");
    assert_eq!(change(&j, "Secret", "web-token")["action"], "noop");
    assert_secrets_masked(&j);

    let text = plan(env, &katalog, &["--cr", &cr_arg], 0);
    assert!(
        text.contains(&format!("= \"{arn}\"")) && text.contains("+ stringData.url"),
        "{text}"
    );
    for output in [&out, &text] {
        assert!(
            !output.contains(&token) && !output.contains(&b64),
            "a Secret value is in plan's output:\n{output}"
        );
    }
    delete_bucket(env, &bucket).await;
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn orphaned_rows_and_recorded_create_intents_are_shown_not_planned_again() {
    let env = orkestra_testsupport::cluster().await;
    let ns = env.namespace("cli-rows").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The example under a group of this test's own, so no other test shares its CRD.
    let group = format!("{}.test.orkestra.io", id("r"));
    let retarget = |text: String| text.replace("apps.example.io", &group);
    let katalog = write(
        dir.path(),
        "katalog.yaml",
        &retarget(std::fs::read_to_string(example("katalog.yaml")).unwrap()),
    );
    let crd = write(
        dir.path(),
        "crd.yaml",
        &retarget(std::fs::read_to_string(example("crd.yaml")).unwrap()),
    );
    let kubectl = |args: &[&str]| kubectl(env, args);
    kubectl(&["apply", "-f", crd.to_str().unwrap()]);
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        &format!("crd/apps.{group}"),
    ]);
    let cr_text = retarget(std::fs::read_to_string(example("cr-large-db.yaml")).unwrap())
        .replace("namespace: team-b", &format!("namespace: {}", ns.name()))
        .lines()
        .filter(|l| !l.trim_start().starts_with("uid:"))
        .collect::<Vec<_>>()
        .join("\n");
    let cr = write(dir.path(), "cr.yaml", &cr_text);
    kubectl(&["apply", "-f", cr.to_str().unwrap()]);
    // Rows as an earlier Katalog left them: a bucket it no longer declares (still there), one
    // already gone, and the instance's create recorded before its create call.
    let kept = id("orphan");
    let gone = id("gone");
    env.s3_client()
        .await
        .create_bucket()
        .bucket(&kept)
        .send()
        .await
        .unwrap();
    let identifier = format!("billing-{}-db", ns.name());
    let row = |kind: &str, name: &str, state: &str| {
        json!({"provider": "aws", "kind": kind, "name": name, "state": state,
               "lastSyncTime": "2026-01-01T00:00:00Z"})
    };
    let mut intent = row("rds", &identifier, "Creating");
    intent["intent"] = json!("Create");
    let status = json!({"status": {"external": [
        row("s3", &kept, "Ready"), row("s3", &gone, "Ready"), intent,
    ]}});
    kubectl(&[
        "patch",
        "-n",
        ns.name(),
        &format!("apps.{group}"),
        "billing",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);

    let cr_arg = cr.display().to_string();
    for args in [
        vec!["app/billing", "-n", ns.name(), "--detailed-exitcode"],
        // From the file, the live CR's rows are taken over with its uid.
        vec!["--cr", cr_arg.as_str(), "--detailed-exitcode"],
    ] {
        let (j, _) = plan_json(env, &katalog, &args, 2);
        let kept_row = change(&j, "s3", &kept);
        assert_eq!(kept_row["action"], "noop", "{kept_row:#}");
        assert_eq!(kept_row["orphaned"], true);
        assert!(
            kept_row["notes"][0]
                .as_str()
                .unwrap()
                .starts_with("no longer declared: left in place"),
            "{kept_row:#}"
        );
        let gone_row = change(&j, "s3", &gone);
        assert_eq!(gone_row["orphaned"], true);
        assert!(
            gone_row["notes"][0]
                .as_str()
                .unwrap()
                .contains("its resource is gone: the agent drops the row"),
            "{gone_row:#}"
        );
        // The recorded create is the one create: planned once, said to be recorded.
        let db: Vec<&Value> = j["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == "rds")
            .collect();
        assert_eq!(db.len(), 1, "{j:#}");
        assert_eq!(db[0]["action"], "create");
        assert_eq!(db[0]["intent"], "Create");
        assert!(
            db[0]["notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.as_str().unwrap().contains("a create is recorded for it")),
            "{:#}",
            db[0]
        );
        assert_eq!(j["summary"]["delete"], 0, "{j:#}");
    }
    let text = plan(env, &katalog, &["app/billing", "-n", ns.name()], 0);
    assert!(
        text.contains(&format!(
            "# aws.s3 {kept:?} is no longer declared (orphaned row in status.external)\n  # no longer declared: left in place"
        )),
        "{text}"
    );
    assert!(text.contains("(status.external intent: Create)"), "{text}");

    delete_bucket(env, &kept).await;
    let _ = env
        .kubectl()
        .args(["delete", "--ignore-not-found", "--wait=false"])
        .arg(format!("crd/apps.{group}"))
        .output();
    ns.cleanup().await.unwrap();
}

/// `operatorBox.cross`: plan reads the other CR as the agent does, so the children it shows
/// carry the Database's spec (katalogs/upstream/cross, in a group of its own).
#[tokio::test]
async fn plan_reads_cross_crs_as_the_agent_does() {
    let env = orkestra_testsupport::cluster().await;
    let ns = env.namespace("plan-cross").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("x").replace('-', "");
    let group = format!("{id}.crossed.orkestra.io");
    let src = repo().join("katalogs/upstream/cross");
    for f in ["katalog.yaml", "crd.yaml", "cr.yaml"] {
        let text = std::fs::read_to_string(src.join(f))
            .unwrap()
            .replace("crossed.orkestra.io", &group)
            .replace("namespace: default", &format!("namespace: {}", ns.name()));
        write(dir.path(), f, &text);
    }
    let db_crd = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: databases.{group}}}\nspec:\n  group: {group}\n  names: {{kind: Database, plural: databases, singular: database, listKind: DatabaseList}}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    subresources: {{status: {{}}}}\n    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}\n"
    );
    let db_crd = write(dir.path(), "db-crd.yaml", &db_crd);
    let crd = dir.path().join("crd.yaml");
    kubectl(
        env,
        &[
            "create",
            "-f",
            crd.to_str().unwrap(),
            "-f",
            db_crd.to_str().unwrap(),
        ],
    );
    for name in [format!("apps.{group}"), format!("databases.{group}")] {
        kubectl(
            env,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                &format!("crd/{name}"),
            ],
        );
    }
    let db = write(
        dir.path(),
        "db.yaml",
        &format!("apiVersion: {group}/v1\nkind: Database\nmetadata: {{name: shop-db, namespace: {}}}\nspec: {{host: pg.internal}}\n", ns.name()),
    );
    kubectl(env, &["create", "-f", db.to_str().unwrap()]);
    let cr = dir.path().join("cr.yaml");
    let (j, _) = plan_json(
        env,
        &dir.path().join("katalog.yaml"),
        &["--cr", cr.to_str().unwrap(), "--detailed-exitcode"],
        2,
    );
    assert_eq!(
        field(change(&j, "ConfigMap", "shop-wiring"), "data.host"),
        "pg.internal"
    );
    assert_eq!(
        field(change(&j, "ConfigMap", "shop-lookup"), "data.found"),
        "true"
    );
    ns.cleanup().await.unwrap();
    let _ = env
        .kubectl()
        .args(["delete", "--ignore-not-found", "--wait=false"])
        .arg(format!("crd/apps.{group}"))
        .arg(format!("crd/databases.{group}"))
        .output();
}

/// Copy blocks: plan reads each copy's source as the agent does, so a copy to be created shows
/// the source's data (a Secret's masked, as every Secret value is).
#[tokio::test]
async fn plan_shows_copies_with_their_sources_data() {
    let env = orkestra_testsupport::cluster().await;
    let ns = env.namespace("plan-copy").await.unwrap();
    let platform = env.namespace("plan-copy-src").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("c").replace('-', "");
    let group = format!("{id}.copied.orkestra.io");
    let src = repo().join("katalogs/upstream/copy");
    for f in ["katalog.yaml", "crd.yaml", "cr.yaml"] {
        let text = std::fs::read_to_string(src.join(f))
            .unwrap()
            .replace("copied.orkestra.io", &group)
            .replace(
                "fromNamespace: platform",
                &format!("fromNamespace: {}", platform.name()),
            )
            .replace("namespace: default", &format!("namespace: {}", ns.name()));
        write(dir.path(), f, &text);
    }
    let crd = dir.path().join("crd.yaml");
    kubectl(env, &["create", "-f", crd.to_str().unwrap()]);
    kubectl(
        env,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            &format!("crd/teams.{group}"),
        ],
    );
    let p = platform.name();
    kubectl(
        env,
        &[
            "-n",
            p,
            "create",
            "secret",
            "generic",
            "registry-creds",
            "--from-literal=token=s3cr3t-copy-value",
        ],
    );
    kubectl(
        env,
        &[
            "-n",
            p,
            "create",
            "configmap",
            "shared-ca",
            "--from-literal=ca.crt=the-ca",
        ],
    );
    let cr = dir.path().join("cr.yaml");
    let (j, text) = plan_json(
        env,
        &dir.path().join("katalog.yaml"),
        &["--cr", cr.to_str().unwrap(), "--detailed-exitcode"],
        2,
    );
    assert_eq!(
        field(change(&j, "ConfigMap", "payments-ca"), "data[\"ca.crt\"]"),
        "the-ca"
    );
    let secret = change(&j, "Secret", "registry-creds");
    assert!(
        secret["diff"].to_string().contains("data.token"),
        "{secret:#}"
    );
    assert!(
        !text.contains("s3cr3t-copy-value") && !text.contains("czNjcjN0"),
        "{text}"
    );
    ns.cleanup().await.unwrap();
    platform.cleanup().await.unwrap();
    let _ = env
        .kubectl()
        .args(["delete", "--ignore-not-found", "--wait=false"])
        .arg(format!("crd/teams.{group}"))
        .output();
}
