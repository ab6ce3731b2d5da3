//! apply, status and plan as a user runs them, against the private control plane and moto. What
//! `status`, `plan` and `apply --wait` read from a CR's or a Katalog's status is written by the
//! real agent (run in this process, see common::Agent) from real Katalogs and CRs.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use orkestra_provider::CrStatus;
use orkestra_testsupport::strip_finalizers;
use serde_json::{json, Value};

/// How long the agent gets to report (the machine is shared with other builds).
const AGENT_TIMEOUT: Duration = Duration::from_secs(90);

/// [`katalog_text`] without its Deployment: a Site is then Ready as soon as its ConfigMap exists,
/// which the agent reports in one status write.
fn configmap_only(text: &str) -> String {
    let (head, rest) = text
        .split_once("          deployments:\n")
        .expect("a deployments block");
    let (_, tail) = rest
        .split_once("          configMaps:\n")
        .expect("a configMaps block");
    format!("{head}          configMaps:\n{tail}")
}

#[tokio::test]
async fn apply_creates_crd_rbac_and_katalog_then_status_and_plan_read_them() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-apply").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("a");
    // With a bucket per CR; only the agent of this test runs it.
    let text = labelled(&katalog_text(&id, true), &id);
    let katalog = write(dir.path(), "katalog.yaml", &text);

    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(&katalog);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).is_empty(),
        "apply writes progress to stderr only"
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "customresourcedefinition.apiextensions.k8s.io/sites.{id}.test.orkestra.io created"
        )),
        "{err}"
    );

    // The Katalog object: spec as written, description moved to an annotation.
    let client = env.client().await;
    let katalogs: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("orkestra.orkspace.io", "v1", "Katalog"),
            "katalogs",
        ),
    );
    let k = serde_json::to_value(katalogs.get(&format!("k-{id}")).await.unwrap()).unwrap();
    assert_eq!(
        k["metadata"]["annotations"]["orkestra.orkspace.io/description"],
        format!("test Katalog {id}")
    );
    assert_eq!(k["spec"]["crds"][0]["apiTypes"]["kind"], "Site");

    // RBAC: exactly the CRs (+status, finalizers) and the two child kinds.
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role = roles
        .get(&format!("orkestra-katalog-k-{id}"))
        .await
        .unwrap();
    let mut granted: Vec<String> = role
        .rules
        .unwrap_or_default()
        .iter()
        .flat_map(|r| {
            let g = r.api_groups.clone().unwrap_or_default().join(",");
            r.resources
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(move |res| format!("{g}/{res}"))
        })
        .collect();
    granted.sort();
    let group = format!("{id}.test.orkestra.io");
    let mut expected = vec![
        "/configmaps".to_string(),
        "apps/deployments".into(),
        format!("{group}/sites"),
        format!("{group}/sites/finalizers"),
        format!("{group}/sites/status"),
    ];
    expected.sort();
    assert_eq!(granted, expected);

    // Applying again leaves the CRD alone and succeeds.
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(&katalog);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("sites.{id}.test.orkestra.io unchanged")),
        "{}",
        stderr(&o)
    );
    // A CRD this Katalog generated follows the Katalog's apiTypes.
    let short = format!("s{}", id.replace('-', ""));
    let changed = text.replace(
        "plural: sites}",
        &format!("plural: sites, shortNames: [{short}]}}"),
    );
    let changed_path = write(dir.path(), "katalog-short.yaml", &changed);
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(&changed_path);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("sites.{id}.test.orkestra.io configured")),
        "{}",
        stderr(&o)
    );
    let o = env
        .kubectl()
        .args([
            "get",
            "crd",
            &format!("sites.{id}.test.orkestra.io"),
            "-o",
            "jsonpath={.spec.names.shortNames[0]}",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), short);

    // A CR the agent has not reconciled yet (no agent runs yet). No replicas, so that its
    // Deployment is available at once and only the bucket keeps it from Ready.
    let cr = write(dir.path(), "cr.yaml", &cr_text(&id, ns.name(), "blog", 0));
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&cr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kind = format!("site.{id}.test.orkestra.io");
    let o = run({
        let mut c = plugin(env);
        c.args(["status", &kind, "-n", ns.name(), "-o", "json"]);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v,
        json!({"items": [{"cr": {"kind": "Site", "namespace": ns.name(), "name": "blog"}, "ready": false, "external": [], "waiting": []}],
               "katalogs": [{"name": format!("k-{id}"), "source": null, "digest": null}]})
    );

    // The CR's bucket name is taken already, by a bucket orkestra did not create (no owner
    // tags): the real agent, started now, leaves it alone and reports a failing external row.
    let bucket = format!("blog-{}", ns.name());
    let s3 = env.s3_client().await;
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let agent = Agent::start(env, &id, ns.name(), true).await;
    let sites = sites(client.clone(), ns.name(), &id);
    let conflict =
        "exists but was not created by orkestra (no owner tags); set adopt: true to manage it";
    let reported = orkestra_testsupport::wait_for(
        "the agent's report of the bucket it may not touch",
        AGENT_TIMEOUT,
        || async {
            let cr = serde_json::to_value(sites.get_opt("blog").await.ok()??).ok()?;
            let s = CrStatus::of(&cr).ok()?;
            let ready = s.ready()?;
            // Only the bucket is left: the children are ready.
            (ready.reason == "ExternalNotReady" && ready.message.ends_with(conflict)).then_some(s)
        },
    )
    .await
    .unwrap();
    let o = run_async({
        let mut c = plugin(env);
        c.args(["status", &kind, "-n", ns.name()]);
        c
    })
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The sync time is the agent's; a placeholder of the same width keeps the columns.
    golden(
        "status-error.txt",
        &stdout(&o)
            .replace(&reported.external[0].last_sync_time, "YYYY-MM-DDTHH:MM:SSZ")
            .replace(ns.name(), "NS")
            .replace(&id, "ID"),
    );
    let v = status_json(env, &format!("{kind}/blog"), ns.name()).await;
    assert_eq!(v["items"][0]["external"][0]["state"], "Conflict");
    assert_eq!(
        v["items"][0]["external"][0]["id"],
        format!("arn:aws:s3:::{bucket}")
    );

    // Once the foreign bucket is gone, the agent (restarted, so it looks again at once) makes
    // its own and the CR turns Ready with a Ready row.
    agent.stop().await;
    s3.delete_bucket().bucket(&bucket).send().await.unwrap();
    let agent = Agent::start(env, &id, ns.name(), true).await;
    let target = format!("{kind}/blog");
    orkestra_testsupport::wait_for("the CR Ready with its bucket", AGENT_TIMEOUT, || async {
        let v = status_json(env, &target, ns.name()).await;
        let item = &v["items"][0];
        (item["ready"] == true && item["external"][0]["state"] == "Ready").then_some(())
    })
    .await
    .unwrap();

    // Plan for the live CR with the bucket taken out of the file. The agent is stopped, and what
    // it made is gone (its children deleted, its bucket too): both children are created, and
    // the bucket's row the agent wrote is shown orphaned.
    agent.stop().await;
    let o = env
        .kubectl()
        .args([
            "delete",
            "-n",
            ns.name(),
            "deployment/blog",
            "configmap/blog-content",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s3.delete_bucket().bucket(&bucket).send().await.unwrap();
    let without_bucket = write(
        dir.path(),
        "katalog-no-bucket.yaml",
        &labelled(&katalog_text(&id, false), &id),
    );
    let o = run({
        let mut c = plugin(env);
        c.args(["plan", "-f"]).arg(&without_bucket).args([
            "site/blog",
            "-n",
            ns.name(),
            "--detailed-exitcode",
        ]);
        c
    });
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    golden(
        "plan-create.txt",
        &stdout(&o).replace(ns.name(), "NS").replace(&id, "ID"),
    );
    strip_finalizers(&sites).await;
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn plan_shows_updates_from_a_dry_run_and_no_changes_when_converged() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-plan").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("p");
    let katalog = write(dir.path(), "katalog.yaml", &katalog_text(&id, false));
    // The user's own CRD for the kind (not generated by orkestra): apply leaves it alone.
    let crd = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: sites.{id}.test.orkestra.io}}\nspec:\n  group: {id}.test.orkestra.io\n  names: {{kind: Site, plural: sites, singular: site, listKind: SiteList}}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    subresources: {{status: {{}}}}\n    schema:\n      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
    );
    let crd_path = write(dir.path(), "crd.yaml", &crd);
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&crd_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env
        .kubectl()
        .args([
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            &format!("crd/sites.{id}.test.orkestra.io"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(&katalog);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unchanged (exists, not generated by this Katalog)"),
        "{}",
        stderr(&o)
    );
    let cr = write(dir.path(), "cr.yaml", &cr_text(&id, ns.name(), "shop", 2));
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&cr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Make the children exist as the agent would: render them for the live CR (its uid makes
    // the owner references) and server-side apply them with the agent's field manager.
    let o = env
        .kubectl()
        .args([
            "get",
            "-n",
            ns.name(),
            &format!("sites.{id}.test.orkestra.io"),
            "shop",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let live = write(dir.path(), "live.json", &String::from_utf8_lossy(&o.stdout));
    let o = run({
        let mut c = plugin(env);
        c.args(["render", "-f"])
            .arg(&katalog)
            .arg("--cr")
            .arg(&live)
            .args(["-o", "json"]);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rendered: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let objects = rendered["items"][0]["objects"].as_array().unwrap().clone();
    let manifest = dir.path().join("children.json");
    std::fs::write(
        &manifest,
        serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": objects}))
            .unwrap(),
    )
    .unwrap();
    let o = env
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager=orkestra-agent",
            "-f",
        ])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Same spec: nothing to do (exit 0 with --detailed-exitcode).
    let o = run({
        let mut c = plugin(env);
        c.args(["plan", "-f"])
            .arg(&katalog)
            .arg("--cr")
            .arg(&cr)
            .args(["--detailed-exitcode", "-o", "json"]);
        c
    });
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["summary"],
        json!({"create": 0, "update": 0, "replace": 0, "delete": 0}),
        "{v:#}"
    );

    // A changed spec in the file: the reconciled Deployment is updated in place; the onCreate
    // ConfigMap (created once, not enforced) stays.
    let changed = write(
        dir.path(),
        "cr2.yaml",
        &cr_text(&id, ns.name(), "shop", 5).replace("title: Hello", "title: Changed"),
    );
    let o = run({
        let mut c = plugin(env);
        c.args(["plan", "-f"])
            .arg(&katalog)
            .arg("--cr")
            .arg(&changed)
            .args(["--detailed-exitcode"]);
        c
    });
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    golden(
        "plan-update.txt",
        &stdout(&o).replace(ns.name(), "NS").replace(&id, "ID"),
    );
    let o = run({
        let mut c = plugin(env);
        c.args(["plan", "-f"])
            .arg(&katalog)
            .arg("--cr")
            .arg(&changed)
            .args(["-o", "json"]);
        c
    });
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let update = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "update")
        .expect("an update");
    assert_eq!(update["target"], "kubernetes");
    assert_eq!(update["kind"], "Deployment");
    assert_eq!(
        update["diff"],
        json!([{"path": "spec.replicas", "before": 2, "after": 5}])
    );
    assert_eq!(v["summary"]["update"], 1);
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn apply_wait_follows_the_agents_report() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-wait").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("w");
    let text = labelled(&katalog_text(&id, false), &id);
    let katalog = write(dir.path(), "katalog.yaml", &text);
    // The real agent, a build without the aws provider.
    let agent = Agent::start(env, &id, ns.name(), false).await;
    let o = run_async({
        let mut c = plugin(env);
        c.args(["apply", "-f"])
            .arg(&katalog)
            .args(["--wait", "--timeout", "60s"]);
        c
    })
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 controller(s) running"),
        "{}",
        stderr(&o)
    );

    // Refused: the Katalog now requires the aws provider. The plugin has it (its lint passes),
    // this agent does not, so it refuses the Katalog (Accepted=False, with its diagnostics), and
    // the agent's reason is the error.
    let requires_aws = text.replacen(
        "spec:\n",
        "spec:\n  providers:\n    - {name: aws, required: true}\n",
        1,
    );
    let requires_aws = write(dir.path(), "katalog-aws.yaml", &requires_aws);
    let o = run_async({
        let mut c = plugin(env);
        c.args(["apply", "-f"])
            .arg(&requires_aws)
            .args(["--wait", "--timeout", "60s"]);
        c
    })
    .await;
    assert_one_line_error(&o, "the agent refused katalog");
    assert!(
        stderr(&o).contains("provider `aws` is not registered with this build of orkestra"),
        "{}",
        stderr(&o)
    );
    agent.stop().await;
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn status_watch_prints_again_when_the_status_changes() {
    use std::io::Read as _;
    use std::sync::{Arc, Mutex};
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-watch").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("s");
    let katalog = write(
        dir.path(),
        "katalog.yaml",
        &labelled(&configmap_only(&katalog_text(&id, false)), &id),
    );
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"]).arg(&katalog);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cr = write(dir.path(), "cr.yaml", &cr_text(&id, ns.name(), "w", 1));
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&cr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let kind = format!("site.{id}.test.orkestra.io");
    let mut child = {
        let mut c = plugin(env);
        c.args(["status", &kind, "-n", ns.name(), "--watch"]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let seen = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let text = || seen.lock().unwrap().clone();
    orkestra_testsupport::wait_for("the first table", Duration::from_secs(30), || async {
        text().contains("NotReady")
    })
    .await
    .unwrap();
    // The real agent, started now, reconciles the CR: it turns Ready.
    let agent = Agent::start(env, &id, ns.name(), false).await;
    orkestra_testsupport::wait_for("the redrawn table", AGENT_TIMEOUT, || async {
        text()
            .lines()
            .any(|l| l.contains("site/w") && l.contains("True") && l.contains("Ready"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", text()));
    assert_eq!(
        text().matches("NAMESPACE").count(),
        2,
        "one table per change: {}",
        text()
    );
    child.kill().unwrap();
    let _ = child.wait();
    reader.join().unwrap();
    agent.stop().await;
    strip_finalizers(&sites(env.client().await, ns.name(), &id)).await;
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}
