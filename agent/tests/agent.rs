//! The agent against the real private control plane (tests/cluster): Katalogs in both spellings,
//! children with owner references, status, drift, deletion with garbage collection, a broken
//! Katalog and a failing CR beside good ones, and the agent running with only its own RBAC.

mod common;

use std::time::Instant;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use orkestra_testsupport::{cluster, wait_for};
use orkestra_testsupport::{free_port, http_get, strip_finalizers};
use serde_json::{json, Value};

const FINALIZER: &str = "orkestra.orkspace.io/cleanup";

fn website() -> Fixture {
    Fixture::load(
        "website",
        "demo.orkestra.io",
        "website-operator",
        "cr-blog.yaml",
    )
}

#[tokio::test]
async fn map_form_katalog_creates_children_corrects_drift_and_cleans_up() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-website").await.unwrap();
    install_katalog_crd(&client).await;
    let f = website();
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;

    let crs = cr_api(&client, &f, ns.name());
    let created_at = Instant::now();
    create(&client, &f.cr_in(ns.name(), "blog")).await;
    let cr = wait_cr(&crs, "blog", "blog Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    println!("create -> Ready: {:?}", created_at.elapsed());
    assert_eq!(
        cr["status"]["observedGeneration"],
        cr["metadata"]["generation"]
    );
    assert!(cr["metadata"]["finalizers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == FINALIZER));
    let uid = cr["metadata"]["uid"].as_str().unwrap().to_string();

    // Children exist, owned by the CR (controller reference), with the spec's values.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let services: Api<Service> = Api::namespaced(client.clone(), ns.name());
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let d = deployments.get("blog").await.unwrap();
    let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.kind.as_str(), owner.controller),
        (uid.as_str(), "Website", Some(true))
    );
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    let s = services.get("blog").await.unwrap();
    assert_eq!(s.metadata.owner_references.unwrap()[0].uid, uid);
    let cm = configmaps.get("blog-content").await.unwrap();
    assert_eq!(cm.data.unwrap()["index.html"], "<h1>My blog</h1>");

    // Drift: someone scales the Deployment; the agent puts it back.
    deployments
        .patch(
            "blog",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .unwrap();
    let drifted_at = Instant::now();
    wait_for("replicas restored to 2", TIMEOUT, || async {
        deployments
            .get("blog")
            .await
            .ok()
            .and_then(|d| d.spec?.replicas)
            == Some(2)
    })
    .await
    .unwrap();
    println!("drift corrected in {:?}", drifted_at.elapsed());

    // A spec change reaches the child and moves observedGeneration.
    crs.patch(
        "blog",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    // Ready again only once the third replica is available for the new generation.
    wait_cr(
        &crs,
        "blog",
        "Ready at the observedGeneration of the new spec",
        |v| {
            v["metadata"]["generation"] == 2
                && v["status"]["observedGeneration"] == 2
                && ready_of(v).is_some_and(|r| r.0 == "True")
        },
    )
    .await;
    let d = deployments.get("blog").await.unwrap();
    assert_eq!(
        d.status.as_ref().and_then(|s| s.available_replicas),
        Some(3),
        "a Ready CR has its Deployment available: {:?}",
        d.status
    );
    assert_eq!(
        deployments
            .get("blog")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(3)
    );

    // Events on the CR name the children it created.
    let events: Api<Event> = Api::namespaced(client.clone(), ns.name());
    wait_for("Created events on the CR", TIMEOUT, || async {
        events
            .list(&ListParams::default())
            .await
            .ok()
            .is_some_and(|l| {
                l.items.iter().any(|e| {
                    e.reason.as_deref() == Some("Created")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("blog")
                        && e.note.as_deref().is_some_and(|n| n.contains("Deployment"))
                })
            })
    })
    .await
    .unwrap();

    // Delete: the finalizer runs, the CR goes, garbage collection takes the children.
    crs.delete("blog", &DeleteParams::default()).await.unwrap();
    wait_for("CR gone", TIMEOUT, || async {
        crs.get_opt("blog").await.ok().flatten().is_none()
    })
    .await
    .unwrap();
    wait_for("children garbage collected", TIMEOUT, || async {
        deployments.get_opt("blog").await.ok().flatten().is_none()
            && services.get_opt("blog").await.ok().flatten().is_none()
            && configmaps
                .get_opt("blog-content")
                .await
                .ok()
                .flatten()
                .is_none()
    })
    .await
    .unwrap();

    // Changing the Katalog reaches new and existing CRs without restarting the agent.
    create(&client, &f.cr_in(ns.name(), "later")).await;
    wait_cr(&crs, "later", "later Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    katalog_api(&client)
        .patch(
            &f.katalog_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"crds": {"website": {"operatorBox": {"onCreate": {"deployments": [
                {"name": "{{ .metadata.name }}", "image": "{{ .spec.image }}", "replicas": "{{ .spec.replicas }}",
                 "labels": {"tier": "web"}, "reconcile": true}
            ]}}}}}})),
        )
        .await
        .unwrap();
    wait_for(
        "the new label on the existing CR's Deployment",
        TIMEOUT,
        || async {
            deployments.get("later").await.ok().is_some_and(|d| {
                d.metadata
                    .labels
                    .is_some_and(|l| l.get("tier").map(String::as_str) == Some("web"))
            })
        },
    )
    .await
    .unwrap();

    // The Katalog says it is accepted and runs one controller. Its status is written after the
    // updated controller has started, which may come moments after its first reconciles.
    let katalogs = katalog_api(&client);
    let k = wait_for("the Katalog status after the update", TIMEOUT, || async {
        let k = serde_json::to_value(katalogs.get(&f.katalog_name).await.ok()?).ok()?;
        (k["status"]["crds"][0]["controller"] == "Running").then_some(k)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(k["status"]["conditions"][0]["type"], "Accepted");
    assert_eq!(k["status"]["conditions"][0]["status"], "True");
    assert_eq!(k["status"]["crds"][0]["controller"], "Running");

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn list_form_katalog_with_an_s3_bucket_reports_rows_and_deletes_the_bucket() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-stack").await.unwrap();
    install_katalog_crd(&client).await;
    let mut f = Fixture::load(
        "application-stack",
        "platform.example.io",
        "application-stack",
        "cr-shop.yaml",
    );
    // cr-shop.yaml names nginx, which the node cannot pull.
    f.cr["spec"]["image"] = json!(WEB_IMAGE);
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;

    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "shop")).await;
    let cr = wait_cr(&crs, "shop", "shop Ready with its bucket", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let bucket = format!("shop-{}-assets", ns.name());
    let row = &cr["status"]["external"][0];
    assert_eq!(
        (
            row["provider"].as_str(),
            row["kind"].as_str(),
            row["state"].as_str()
        ),
        (Some("aws"), Some("s3"), Some("Ready"))
    );
    assert_eq!(row["name"], bucket.as_str());
    // status.fields, one of them read from the live Deployment (.children).
    assert_eq!(
        cr["status"]["url"],
        format!("http://shop.{}.svc", ns.name()).as_str()
    );
    assert!(
        cr["status"].get("readyReplicas").is_some(),
        "{}",
        cr["status"]
    );
    let s3 = env.s3_client().await;
    s3.head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket exists in moto");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let d = deployments.get("shop").await.unwrap();
    let env_var = &d.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap()[0];
    assert_eq!(env_var.value.as_deref(), Some(bucket.as_str()));

    crs.delete("shop", &DeleteParams::default()).await.unwrap();
    wait_for("CR gone after provider delete", TIMEOUT, || async {
        crs.get_opt("shop").await.ok().flatten().is_none()
    })
    .await
    .unwrap();
    assert!(
        s3.head_bucket().bucket(&bucket).send().await.is_err(),
        "bucket {bucket} should be deleted"
    );

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_broken_katalog_is_refused_with_diagnostics_and_the_good_one_runs() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-broken").await.unwrap();
    install_katalog_crd(&client).await;
    let f = website();
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let mut broken = f.katalog.clone();
    broken["metadata"]["name"] = json!(format!("broken-{}", f.id));
    broken["spec"]["crds"]["website"]["operatorBox"]["onCreat"] = json!({});
    broken["spec"]["crds"]["website"]["apiTypes"]["kind"] = json!("Brokensite");
    create(&client, &broken).await;
    // A second one whose declarations read each other in a cycle.
    let mut cyclic = f.katalog.clone();
    cyclic["metadata"]["name"] = json!(format!("cyclic-{}", f.id));
    cyclic["spec"]["crds"]["website"]["apiTypes"]["kind"] = json!("Cyclesite");
    cyclic["spec"]["crds"]["website"]["operatorBox"]["onCreate"]["configMaps"] = json!([
        {"id": "a", "name": "a", "data": {"x": "{{ .resources.b.data.x }}"}},
        {"id": "b", "name": "b", "data": {"x": "{{ .resources.a.data.x }}"}},
    ]);
    create(&client, &cyclic).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;

    let katalogs = katalog_api(&client);
    let name = format!("broken-{}", f.id);
    let status = wait_for("the broken Katalog refused", TIMEOUT, || async {
        let k = serde_json::to_value(katalogs.get(&name).await.ok()?).ok()?;
        (k["status"]["conditions"][0]["status"] == "False").then(|| k["status"].clone())
    })
    .await
    .unwrap();
    let diags = status["diagnostics"].as_array().unwrap();
    assert!(
        diags.iter().any(|d| d["severity"] == "error"
            && d["message"].as_str().unwrap().contains("onCreat")
            && d["line"].as_u64() > Some(0)),
        "{status}"
    );
    assert!(status["conditions"][0]["message"]
        .as_str()
        .unwrap()
        .contains("onCreat"));
    let cyclic_name = format!("cyclic-{}", f.id);
    let status = wait_for("the cyclic Katalog refused", TIMEOUT, || async {
        let k = serde_json::to_value(katalogs.get(&cyclic_name).await.ok()?).ok()?;
        (k["status"]["conditions"][0]["status"] == "False").then(|| k["status"].clone())
    })
    .await
    .unwrap();
    assert!(
        status["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "cycle"
                && d["message"]
                    .as_str()
                    .unwrap()
                    .contains("configMaps[a], configMaps[b]")),
        "{status}"
    );

    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "good")).await;
    wait_cr(
        &crs,
        "good",
        "good CR Ready beside the broken Katalog",
        |v| ready_of(v).is_some_and(|r| r.0 == "True"),
    )
    .await;

    // Fixing the Katalog makes it accepted without restarting the agent.
    katalogs
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"crds": {"website": {"operatorBox": {"onCreat": null}}}}}),
            ),
        )
        .await
        .unwrap();
    wait_for("the fixed Katalog accepted", TIMEOUT, || async {
        let k = serde_json::to_value(katalogs.get(&name).await.ok()?).ok()?;
        (k["status"]["conditions"][0]["status"] == "True").then_some(())
    })
    .await
    .unwrap();

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_failing_cr_names_the_field_while_the_others_reconcile() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-failing").await.unwrap();
    install_katalog_crd(&client).await;
    let f = website();
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;

    let crs = cr_api(&client, &f, ns.name());
    let mut bad = f.cr_in(ns.name(), "bad");
    bad["spec"].as_object_mut().unwrap().remove("image");
    create(&client, &bad).await;
    for n in ["good-1", "good-2"] {
        create(&client, &f.cr_in(ns.name(), n)).await;
    }
    for n in ["good-1", "good-2"] {
        wait_cr(&crs, n, "good CR Ready", |v| {
            ready_of(v).is_some_and(|r| r.0 == "True")
        })
        .await;
    }
    let cr = wait_cr(&crs, "bad", "bad CR Ready=False", |v| {
        ready_of(v).is_some_and(|r| r.0 == "False")
    })
    .await;
    let (_, reason, message) = ready_of(&cr).unwrap();
    assert_eq!(reason, "RenderFailed");
    assert!(message.contains("deployments[0].image"), "{message}");
    // Nothing half-written: no child at all for the failing CR.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    assert!(deployments.get_opt("bad").await.unwrap().is_none());
    assert!(configmaps.get_opt("bad-content").await.unwrap().is_none());

    // The Katalog's status counts the CRs of its entry and the failing one.
    let katalogs = katalog_api(&client);
    wait_for("Katalog status: 3 managed, 1 failing", TIMEOUT, || async {
        let k = serde_json::to_value(katalogs.get(&f.katalog_name).await.ok()?).ok()?;
        let row = &k["status"]["crds"][0];
        (row["managed"] == 3 && row["failing"] == 1).then_some(())
    })
    .await
    .unwrap();

    // Fixing the CR heals it (the retry with backoff picks the change up at once through the watch).
    crs.patch(
        "bad",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"image": WEB_IMAGE}})),
    )
    .await
    .unwrap();
    wait_cr(&crs, "bad", "fixed CR Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

/// The per-Katalog ClusterRole `kubectl orkestra apply` generates for the website Katalog: its
/// CRs, status, finalizers and the child kinds it declares (deployments, services, configMaps;
/// the plugin's own tests check that generation).
fn katalog_role(f: &Fixture) -> Vec<Value> {
    let plural = f.crd["spec"]["names"]["plural"].as_str().unwrap();
    let name = format!("orkestra-katalog-{}", f.katalog_name);
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": [
            {"apiGroups": [f.group], "resources": [plural], "verbs": ["get", "list", "watch", "update", "patch"]},
            {"apiGroups": [f.group], "resources": [format!("{plural}/status")], "verbs": ["get", "update", "patch"]},
            {"apiGroups": [f.group], "resources": [format!("{plural}/finalizers")], "verbs": ["update"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "orkestra-agent", "namespace": "orkestra-system"}]}),
    ]
}

#[tokio::test]
async fn the_agent_reconciles_with_only_its_service_account_rbac_and_leader_election() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let admin = env.client().await;
    let ns = env.namespace("agent-rbac").await.unwrap();
    install_katalog_crd(&admin).await;
    // deploy/namespace.yaml and deploy/rbac.yaml exactly as shipped.
    for file in ["deploy/namespace.yaml", "deploy/rbac.yaml"] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            if !v.is_null() {
                apply(&admin, &v).await;
            }
        }
    }
    // A reused test cluster may still hold the cluster-wide child binding earlier versions of
    // deploy/rbac.yaml shipped (now the opt-in deploy/rbac-children.yaml): it must not count here.
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(admin.clone());
    let _ = bindings
        .delete("orkestra-agent-children", &DeleteParams::default())
        .await;
    let f = website();
    install_crd(&admin, &f.crd).await;
    for o in katalog_role(&f) {
        apply(&admin, &o).await;
    }
    create(&admin, &f.katalog).await;
    let sa = env
        .service_account_client("orkestra-system", "orkestra-agent")
        .await
        .unwrap();
    // The service account cannot do what it was not granted.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(sa.clone());
    assert!(
        namespaces.list(&ListParams::default()).await.is_err(),
        "listing Namespaces must be forbidden"
    );
    // Secrets: `get` for provider credentials, but no cluster-wide list/watch (the website
    // Katalog declares no secrets block, and deploy/rbac.yaml grants no child kinds).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(sa.clone());
    assert!(
        secrets.list(&ListParams::default()).await.is_err(),
        "listing Secrets in every namespace must be forbidden"
    );

    let mut cfg = config(&f.id, ns.name());
    cfg.leader_election = orkestra_agent::Toggle::On;
    cfg.lease_name = format!("orkestra-agent-{}", f.id);
    cfg.lease_namespace = "orkestra-system".into();
    let agent = start_agent(env, sa, cfg).await;

    let crs = cr_api(&admin, &f, ns.name());
    create(&admin, &f.cr_in(ns.name(), "rbac")).await;
    wait_cr(&crs, "rbac", "CR Ready by the service-account agent", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), ns.name());
    assert!(deployments.get_opt("rbac").await.unwrap().is_some());
    crs.delete("rbac", &DeleteParams::default()).await.unwrap();
    wait_for("CR gone", TIMEOUT, || async {
        crs.get_opt("rbac").await.ok().flatten().is_none()
    })
    .await
    .unwrap();

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_stops() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-failover").await.unwrap();
    install_katalog_crd(&client).await;
    let lease_ns = env.namespace("agent-lease").await.unwrap();
    let f = website();
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;
    let leader_cfg = |id: &str| {
        let mut c = config(&f.id, ns.name());
        c.leader_election = orkestra_agent::Toggle::On;
        c.lease_name = "orkestra-agent".into();
        c.lease_namespace = lease_ns.name().to_string();
        c.identity = Some(id.into());
        c
    };
    let first = start_agent(env, client.clone(), leader_cfg("first")).await;
    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "one")).await;
    wait_cr(&crs, "one", "first CR Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let second = start_agent(env, client.clone(), leader_cfg("second")).await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), lease_ns.name());
    let holder = || async {
        leases
            .get_opt("orkestra-agent")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
    };
    assert_eq!(holder().await.as_deref(), Some("first"));

    let stopped = Instant::now();
    first.stop().await;
    wait_for("second holds the Lease", TIMEOUT, || async {
        (holder().await.as_deref() == Some("second")).then_some(())
    })
    .await
    .unwrap();
    create(&client, &f.cr_in(ns.name(), "two")).await;
    wait_cr(&crs, "two", "CR Ready after failover", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    println!(
        "failover: leader stopped -> new CR Ready in {:?}",
        stopped.elapsed()
    );

    second.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
    lease_ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_katalog_file_runs_without_katalog_objects_and_metrics_count_reconciles() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-file").await.unwrap();
    let f = website();
    install_crd(&client, &f.crd).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("katalog.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&f.katalog).unwrap()).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let cfg = orkestra_agent::Config {
        katalog_files: vec![path],
        metrics_addr: addr.clone(),
        ..config(&f.id, ns.name())
    };
    let agent = start_agent(env, client.clone(), cfg).await;
    wait_for("/readyz 200", TIMEOUT, || async {
        http_get(&addr, "/readyz")
            .await
            .is_some_and(|(c, _)| c == 200)
    })
    .await
    .unwrap();
    assert_eq!(http_get(&addr, "/healthz").await.unwrap().0, 200);

    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "fromfile")).await;
    wait_cr(&crs, "fromfile", "CR Ready from a file Katalog", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    let crd = f.crd["metadata"]["name"].as_str().unwrap().to_string();
    let (code, metrics) = http_get(&addr, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    let ok_line = format!("orkestra_reconciles_total{{crd=\"{crd}\",result=\"ok\"}}");
    assert!(metrics.contains(&ok_line), "{ok_line} not in\n{metrics}");
    assert!(metrics.contains("orkestra_controllers 1"), "{metrics}");
    assert!(
        metrics.contains("orkestra_reconcile_duration_seconds_bucket"),
        "{metrics}"
    );
    // The Ready CR waits for its drift check in the drift schedule, not in kube-runtime's queue.
    let scheduled = format!("orkestra_drift_checks_scheduled{{crd=\"{crd}\"}} 1");
    let lag = format!("orkestra_drift_lag_seconds{{crd=\"{crd}\"}}");
    wait_for(
        "the Ready CR filed for its drift check",
        TIMEOUT,
        || async {
            http_get(&addr, "/metrics")
                .await
                .is_some_and(|(_, m)| m.contains(&scheduled) && m.contains(&lag))
        },
    )
    .await
    .unwrap();

    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_katalog_file_that_does_not_load_stops_the_agent_with_its_diagnostics() {
    let env = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {name: bad}\nspec:\n  crdz: {}\n").unwrap();
    let cfg = orkestra_agent::Config {
        katalog_files: vec![path],
        ..orkestra_agent::Config::local()
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let err = orkestra_agent::run_with(cfg, env.client().await, providers(env).await, shutdown)
        .await
        .expect_err("a Katalog file with errors must not run");
    let text = err.to_string();
    assert!(
        text.contains("bad.yaml:5:3") && text.contains("crdz"),
        "{text}"
    );
}
