//! `kubectl orkestra install` / `uninstall` against the private control plane.
//!
//! The control plane has no nodes, so the agent's pods are never scheduled: install is checked
//! for what it writes and for how it reports an agent that does not become ready.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

#[tokio::test]
async fn install_then_uninstall_refusing_while_external_resources_are_held() {
    let env = orkestra_testsupport::cluster().await;
    let client = env.client().await;
    let agent_ns = id("ork-agent");
    let o = run({
        let mut c = plugin(env);
        c.args([
            "install",
            "-n",
            &agent_ns,
            "--image",
            "example.invalid/orkestra-agent:test",
            "--timeout",
            "3s",
        ]);
        c
    });
    // Written, but not ready: no node runs the pods.
    assert_one_line_error(&o, &format!("the agent (deployment {agent_ns}/orkestra-agent) is not ready after 3s: 0/2 replicas ready"));
    assert!(
        stderr(&o).contains("Pending, not scheduled") || stderr(&o).contains("no pods yet"),
        "{}",
        stderr(&o)
    );
    let d: Api<Deployment> = Api::namespaced(client.clone(), &agent_ns);
    let dep = d.get("orkestra-agent").await.unwrap();
    assert_eq!(
        dep.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("example.invalid/orkestra-agent:test")
    );
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &agent_ns);
    sa.get("orkestra-agent").await.unwrap();
    let crb: Api<ClusterRoleBinding> = Api::all(client.clone());
    let b = crb.get("orkestra-agent").await.unwrap();
    assert_eq!(
        b.subjects.unwrap()[0].namespace.as_deref(),
        Some(agent_ns.as_str())
    );
    // --no-wait returns once everything is applied (idempotent).
    let o = run({
        let mut c = plugin(env);
        c.args([
            "install",
            "-n",
            &agent_ns,
            "--image",
            "example.invalid/orkestra-agent:test",
            "--no-wait",
        ]);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A CR whose status (written here as the agent would) still lists a bucket.
    let ns = env.namespace("cli-uninst").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kid = id("u");
    let katalog = write(dir.path(), "katalog.yaml", &katalog_text(&kid, true));
    let o = run({
        let mut c = plugin(env);
        c.args(["apply", "-f"])
            .arg(&katalog)
            .args(["--agent-namespace", &agent_ns]);
        c
    });
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

    let o = run({
        let mut c = plugin(env);
        c.args(["uninstall", "-n", &agent_ns, "--yes"]);
        c
    });
    assert_one_line_error(&o, "still hold external resources");
    assert!(
        stderr(&o).contains(&format!("Site {}/web (aws.s3 {bucket})", ns.name())),
        "{}",
        stderr(&o)
    );
    d.get("orkestra-agent")
        .await
        .expect("refused uninstall deleted nothing");
    let o = run({
        let mut c = plugin(env);
        c.args(["uninstall", "-n", &agent_ns, "--force"]);
        c
    });
    assert_one_line_error(&o, "uninstall needs --yes when not on a terminal");
    let o = run({
        let mut c = plugin(env);
        c.args(["uninstall", "-n", &agent_ns, "--force", "--yes"]);
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(d.get_opt("orkestra-agent").await.unwrap().is_none());
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
