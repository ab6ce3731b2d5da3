//! apply, status and plan as a user runs them, against the private control plane and moto.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};

fn site_resource(id: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&format!("{id}.test.orkestra.io"), "v1", "Site"),
        "sites",
    )
}

#[tokio::test]
async fn apply_creates_crd_rbac_and_katalog_then_status_and_plan_read_them() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("cli-apply").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("a");
    let katalog = write(dir.path(), "katalog.yaml", &katalog_text(&id, false));

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
    let changed = katalog_text(&id, false).replace(
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

    // A CR the agent has not reconciled yet.
    let cr = write(dir.path(), "cr.yaml", &cr_text(&id, ns.name(), "blog", 2));
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
        json!({"items": [{"cr": {"kind": "Site", "namespace": ns.name(), "name": "blog"}, "ready": false, "external": []}]})
    );

    // Stand-in for the agent (it is another crate, tested on its own): write the CR status the
    // way agent/src/status.rs does, with one failing external row.
    let sites: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &site_resource(&id));
    let status = json!({"apiVersion": format!("{id}.test.orkestra.io/v1"), "kind": "Site", "status": {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "False", "reason": "ExternalNotReady",
            "message": "aws.s3 blog-assets: AccessDenied: the credentials in Secret aws-creds cannot create buckets",
            "lastTransitionTime": "2026-11-24T10:00:00Z"}],
        "external": [{"provider": "aws", "kind": "s3", "name": "blog-assets", "id": "arn:aws:s3:::blog-assets",
            "state": "Error", "message": "AccessDenied: the credentials in Secret aws-creds cannot create buckets",
            "lastSyncTime": "2026-11-24T10:00:00Z"}]}});
    sites
        .patch_status(
            "blog",
            &PatchParams::apply("orkestra-agent-status").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    let o = run({
        let mut c = plugin(env);
        c.args(["status", &kind, "-n", ns.name()]);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    golden(
        "status-error.txt",
        &stdout(&o).replace(ns.name(), "NS").replace(&id, "ID"),
    );
    let o = run({
        let mut c = plugin(env);
        c.args([
            "status",
            &format!("{kind}/blog"),
            "-n",
            ns.name(),
            "-o",
            "json",
        ]);
        c
    });
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["items"][0]["external"][0]["state"], "Error");
    assert_eq!(
        v["items"][0]["external"][0]["id"],
        "arn:aws:s3:::blog-assets"
    );

    // Plan for the live CR: its children do not exist, so both are created.
    let o = run({
        let mut c = plugin(env);
        c.args(["plan", "-f"]).arg(&katalog).args([
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
    let dir = tempfile::tempdir().unwrap();
    let id = id("w");
    let katalog = write(dir.path(), "katalog.yaml", &katalog_text(&id, false));
    let name = format!("k-{id}");
    let child = {
        let mut c = plugin(env);
        c.args(["apply", "-f"])
            .arg(&katalog)
            .args(["--wait", "--timeout", "60s"]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    // Stand-in for the agent: once the Katalog object is there, report it the way
    // agent/src/supervisor.rs does, first starting, then running.
    let client = env.client().await;
    let katalogs: Api<DynamicObject> = Api::all_with(
        client,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("orkestra.orkspace.io", "v1", "Katalog"),
            "katalogs",
        ),
    );
    let generation =
        orkestra_testsupport::wait_for("the Katalog object", Duration::from_secs(60), || async {
            katalogs
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .and_then(|k| k.metadata.generation)
        })
        .await
        .unwrap();
    let report = |controller: &str| {
        json!({"apiVersion": "orkestra.orkspace.io/v1", "kind": "Katalog", "status": {
            "observedGeneration": generation,
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Loaded", "message": "1 CRD entries",
                "lastTransitionTime": "2026-11-24T10:00:00Z", "observedGeneration": generation}],
            "diagnostics": [],
            "crds": [{"name": "site", "apiVersion": format!("{id}.test.orkestra.io/v1"), "kind": "Site",
                "controller": controller, "message": "", "managed": 0, "failing": 0}]}})
    };
    let pp = PatchParams::apply("orkestra-agent-katalog").force();
    katalogs
        .patch_status(&name, &pp, &Patch::Apply(&report("Running")))
        .await
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 controller(s) running"),
        "{}",
        stderr(&o)
    );

    // Refused: the agent's reason is the error.
    let refused = json!({"apiVersion": "orkestra.orkspace.io/v1", "kind": "Katalog", "status": {
        "observedGeneration": generation,
        "conditions": [{"type": "Accepted", "status": "False", "reason": "Invalid",
            "message": "katalog/x:12:7: unknown-field: unknown field `replicaz`", "lastTransitionTime": "2026-11-24T10:00:00Z"}],
        "diagnostics": [], "crds": []}});
    katalogs
        .patch_status(&name, &pp, &Patch::Apply(&refused))
        .await
        .unwrap();
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"])
            .arg(&katalog)
            .args(["--wait", "--timeout", "30s"]);
        c
    });
    assert_one_line_error(&o, "the agent refused katalog");
    assert!(
        stderr(&o).contains("unknown field `replicaz`"),
        "{}",
        stderr(&o)
    );
    remove_katalog(env, &id);
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
    let katalog = write(dir.path(), "katalog.yaml", &katalog_text(&id, false));
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
    // Stand-in for the agent: the CR turns Ready.
    let sites: Api<DynamicObject> =
        Api::namespaced_with(env.client().await, ns.name(), &site_resource(&id));
    let status = json!({"apiVersion": format!("{id}.test.orkestra.io/v1"), "kind": "Site", "status": {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "", "lastTransitionTime": "2026-11-24T10:00:00Z"}]}});
    sites
        .patch_status(
            "w",
            &PatchParams::apply("orkestra-agent-status").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    orkestra_testsupport::wait_for("the redrawn table", Duration::from_secs(30), || async {
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
    remove_katalog(env, &id);
    ns.cleanup().await.unwrap();
}
