//! Upstream Orkestra's Katalogs (katalogs/upstream/, as upstream writes them) run by the agent
//! against the real API server and its node. Each is stored the way `kubectl orkestra apply`
//! stores it: loaded beside its files, with the apiTypes read from `crdFile` written in by the
//! engine's `with_api_types` (the function apply calls) and the upstream-only metadata dropped
//! (a Katalog object's metadata is Kubernetes ObjectMeta).

mod common;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, PostParams};
use kube::Client;
use orkestra_engine::load::with_api_types;
use orkestra_engine::{load_file, Katalog, SourceFile};
use orkestra_testsupport::{cluster, strip_finalizers, wait_for};
use serde_json::{json, Value};

/// The fixture `katalogs/upstream/<folder>` made unique, and its Katalog as apply stores it.
fn stored(folder: &str, group: &str, name: &str) -> (Fixture, Value) {
    let (f, _, object) = loaded(folder, group, name);
    (f, object)
}

/// The fixture made unique, its Katalog loaded beside its files, and as apply stores it.
fn loaded(folder: &str, group: &str, name: &str) -> (Fixture, Katalog, Value) {
    let f = Fixture::load(&format!("upstream/{folder}"), group, name, "cr.yaml");
    // The renamed files, beside the renamed Katalog, as a user's folder would hold them.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crd.yaml"), f.crd.to_string()).unwrap();
    std::fs::write(dir.path().join("cr.yaml"), f.cr.to_string()).unwrap();
    // Other files the Katalog includes (a notes file), as they are.
    let shared = repo().join(format!("katalogs/upstream/{folder}/notes/shared.yaml"));
    if shared.exists() {
        std::fs::create_dir_all(dir.path().join("notes")).unwrap();
        std::fs::copy(&shared, dir.path().join("notes/shared.yaml")).unwrap();
    }
    let mut file = SourceFile::new("katalog.yaml", f.katalog.to_string());
    file.dir = Some(dir.path().to_path_buf());
    let loaded = load_file(&file, &[]);
    let k = loaded
        .katalog
        .unwrap_or_else(|| panic!("{folder}: {:#?}", loaded.diagnostics));
    let mut object = with_api_types(&f.katalog, &k);
    object["apiVersion"] = json!("orkestra.orkspace.io/v1");
    object["metadata"] = json!({"name": f.katalog_name, "labels": f.katalog["metadata"]["labels"]});
    (f, k, object)
}

async fn install(client: &Client, f: &Fixture, object: &Value) {
    install_katalog_crd(client).await;
    install_crd(client, &f.crd).await;
    create(client, object).await;
}

fn ready(v: &Value) -> bool {
    ready_of(v).is_some_and(|r| r.0 == "True")
}

#[tokio::test]
async fn the_middle_layout_runs_with_its_crd_file_and_upstream_names() {
    init_logs();
    let env = cluster().await;
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("upstream-box").await.unwrap();
    let (f, object) = stored(
        "operatorbox-map",
        "upstream.orkestra.io",
        "upstream-website",
    );
    assert_eq!(
        object["spec"]["crds"]["website"]["apiTypes"]["version"], "v1",
        "the storage version of crd.yaml"
    );
    install(&client, &f, &object).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let crs = cr_api(&client, &f, ns.name());
    let mut cr = f.cr_in(ns.name(), "hello");
    cr["spec"]["image"] = json!(WEB_IMAGE);
    create(&client, &cr).await;
    let cr = wait_cr(&crs, "hello", "Website Ready", ready).await;
    assert_eq!(
        cr["status"]["url"],
        format!("http://hello-svc.{}:8080", ns.name())
    );
    // Upstream's status rules on the live Deployment: `.children.deployment`, its notes, the last
    // `when` that holds.
    assert_eq!(cr["status"]["phase"], "Running", "{}", cr["status"]);
    assert_eq!(cr["status"]["readyReplicas"], 2, "{}", cr["status"]);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let d = deployments.get("hello-deployment").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    let services: Api<Service> = Api::namespaced(client.clone(), ns.name());
    let s = services.get("hello-svc").await.unwrap().spec.unwrap();
    assert_eq!(s.ports.unwrap()[0].port, 8080);
    // It routes to the Deployment's pods, though the two are named apart.
    let pods = d
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    let selector = s.selector.unwrap();
    assert!(!selector.is_empty());
    for (k, v) in &selector {
        assert_eq!(pods.get(k), Some(v), "{k}");
    }
    // Upstream's random Secret value, made once by the agent from the OS's randomness.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), ns.name());
    let data = secrets.get("hello-secret").await.unwrap().data.unwrap();
    assert_eq!(data["password"].0.len(), 24);
    assert!(data["password"].0.iter().all(u8::is_ascii_alphanumeric));
    assert_eq!(data["user"].0, b"admin");
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_oldest_layout_runs_and_refuses_crs_outside_its_allowed_namespaces() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let allowed = env.namespace("upstream-allowed").await.unwrap();
    let other = env.namespace("upstream-other").await.unwrap();
    let (f, mut object) = stored("reconciler-list", "legacy.orkestra.io", "legacy-frontend");
    object["spec"]["crds"][0]["allowedNamespaces"] = json!([allowed.name()]);
    install(&client, &f, &object).await;
    let mut config = config(&f.id, allowed.name());
    config.namespaces.push(other.name().to_string());
    let agent = start_agent(env, client.clone(), config).await;

    let in_allowed = cr_api(&client, &f, allowed.name());
    create(&client, &f.cr_in(allowed.name(), "shop")).await;
    let cr = wait_cr(&in_allowed, "shop", "Frontend Ready", ready).await;
    assert_eq!(cr["status"]["config"], "shop-config");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), allowed.name());
    let cm = cms.get("shop-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "welcome");

    // A CR without a greeting gets upstream's mutation default, listed under status.mutated.
    let mut bare = f.cr_in(allowed.name(), "bare");
    bare["spec"] = json!({});
    create(&client, &bare).await;
    let cr = wait_cr(&in_allowed, "bare", "Frontend bare Ready", ready).await;
    assert_eq!(
        cr["status"]["mutated"],
        json!(["spec.greeting"]),
        "{}",
        cr["status"]
    );
    let cm = cms.get("bare-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "hello");

    let in_other = cr_api(&client, &f, other.name());
    create(&client, &f.cr_in(other.name(), "shop")).await;
    let refused = |v: &Value| ready_of(v).is_some_and(|r| r.1 == "NamespaceNotAllowed");
    let cr = wait_cr(
        &in_other,
        "shop",
        "Ready=False NamespaceNotAllowed",
        refused,
    )
    .await;
    let (_, _, message) = ready_of(&cr).unwrap();
    assert!(message.contains(allowed.name()), "{message}");
    assert!(
        cr["metadata"]["finalizers"].is_null(),
        "nothing is written for a refused CR: {cr}"
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), other.name());
    assert!(cms.get_opt("shop-config").await.unwrap().is_none());

    agent.stop().await;
    strip_finalizers(&in_allowed).await;
    allowed.cleanup().await.unwrap();
    other.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_newest_layout_runs_reconcile_and_emit() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("upstream-emit").await.unwrap();
    let (f, object) = stored("reconcile-emit", "emit.orkestra.io", "upstream-pipeline");
    install(&client, &f, &object).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "build")).await;
    let cr = wait_cr(&crs, "build", "Pipeline Ready", ready).await;
    assert_eq!(cr["status"]["stages"], "build-stages");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let cm = cms.get("build-stages").await.unwrap();
    assert_eq!(cm.data.unwrap()["stages"], "build,test");
    // forEach: one ConfigMap per step.
    for (step, image) in [("compile", "golang"), ("check", "alpine")] {
        let cm = cms.get(&format!("build-step-{step}")).await.unwrap();
        assert_eq!(cm.data.unwrap()["image"], image);
    }
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

/// User-defined notes (an included file's too) reach the agent inside the stored Katalog and
/// render in children and status as they do offline.
#[tokio::test]
async fn user_defined_notes_run_in_the_agent() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("upstream-notes").await.unwrap();
    let (f, object) = stored("notes", "noted.orkestra.io", "upstream-noted");
    assert!(object.get("notes").is_none() && object["spec"]["notes"].is_array());
    install(&client, &f, &object).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "api")).await;
    let cr = wait_cr(&crs, "api", "Workload Ready", ready).await;
    let host = format!("api.{}.svc.cluster.local", ns.name());
    assert_eq!(cr["status"]["host"], host.as_str());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let cm = cms.get("api-image").await.unwrap();
    assert_eq!(cm.metadata.labels.unwrap()["team"], "payments");
    let data = cm.data.unwrap();
    assert_eq!(data["image"], "ghcr.io/orkspace/orkestra-web:latest");
    assert_eq!(
        data["summary"],
        format!("ghcr.io/orkspace/orkestra-web:latest for payments at {host}")
    );
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

/// `once` + `rotateAfter: 4s` (resync 2s): the agent makes the Secret with a generated-at stamp,
/// keeps it while it is young, and makes it again with a new password once it is that old; the
/// templated key stays what the CR says.
#[tokio::test]
async fn a_once_secret_is_made_again_when_rotate_after_has_passed() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("upstream-rotation").await.unwrap();
    let (f, object) = stored("rotation", "rotated.orkestra.io", "upstream-rotated");
    install(&client, &f, &object).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "billing")).await;
    wait_cr(&crs, "billing", "Credential Ready", ready).await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), ns.name());
    let read = || async {
        let s = secrets.get("billing-creds").await.unwrap();
        let at = s.metadata.annotations.unwrap_or_default()
            [orkestra_engine::generate::GENERATED_AT]
            .clone();
        let data = s.data.unwrap();
        (at, data["password"].0.clone(), data["user"].0.clone())
    };
    let (at, password, user) = read().await;
    assert_eq!(password.len(), 32);
    assert_eq!(user, b"billing-app");
    let (at2, password2, user2) = wait_for("the Secret made again", TIMEOUT, || async {
        let now = read().await;
        (now.0 != at).then_some(now)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(at2 > at, "{at2} after {at}");
    assert_ne!(password2, password, "a new password");
    assert_eq!(password2.len(), 32);
    assert_eq!(user2, b"billing-app");
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

/// `operatorBox.cross`: an App reads the Database CR `<app>-db` in its namespace. Before the
/// Database exists the App renders `found: false` and its gated child waits; once it exists (and
/// its entry wrote its status), its spec and status reach the App's children on the App's
/// resync.
#[tokio::test]
async fn cross_reads_bring_another_crs_spec_and_status_into_the_children() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("upstream-cross").await.unwrap();
    let (f, katalog, object) = loaded("cross", "crossed.orkestra.io", "upstream-crossed");
    install(&client, &f, &object).await;
    let db_crd = orkestra_engine::crd::generate(katalog.entry("database").unwrap(), &katalog.name);
    install_crd(&client, &db_crd).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "shop")).await;
    let app = wait_cr(&crs, "shop", "App Ready", ready).await;
    assert_eq!(app["status"]["database"], "missing");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let data = |name: &'static str| {
        let cms = cms.clone();
        async move { cms.get_opt(name).await.unwrap().and_then(|c| c.data) }
    };
    assert_eq!(data("shop-lookup").await.unwrap()["found"], "false");
    assert!(
        data("shop-wiring").await.is_none(),
        "gated on cross.db.found"
    );
    let db = json!({
        "apiVersion": format!("{}/v1", f.group), "kind": "Database",
        "metadata": {"name": "shop-db", "namespace": ns.name()},
        "spec": {"host": "pg.internal"},
    });
    create(&client, &db).await;
    let wiring = wait_for(
        "the wiring ConfigMap with the Database's status",
        TIMEOUT,
        || async {
            data("shop-wiring")
                .await
                .filter(|d| d.get("phase").map(String::as_str) == Some("Available"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wiring["host"], "pg.internal");
    assert_eq!(data("shop-lookup").await.unwrap()["found"], "true");
    agent.stop().await;
    strip_finalizers(&crs).await;
    let databases = Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        ns.name(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(&f.group, "v1", "Database"),
            "databases",
        ),
    );
    strip_finalizers(&databases).await;
    ns.cleanup().await.unwrap();
}

/// Copy blocks: the platform namespace's Secret and ConfigMap are copied into the Team's
/// namespace with their data and type, follow a change of the source, and a missing source is
/// the CR's error naming it.
#[tokio::test]
async fn copies_carry_their_sources_data_and_follow_it() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("upstream-copy").await.unwrap();
    let platform = env.namespace("upstream-platform").await.unwrap();
    let (f, object) = stored("copy", "copied.orkestra.io", "upstream-copied");
    // The source namespace of the fixture, made this test's own.
    let object: Value = serde_json::from_str(&object.to_string().replace(
        "\"fromNamespace\":\"platform\"",
        &format!("\"fromNamespace\":\"{}\"", platform.name()),
    ))
    .unwrap();
    install(&client, &f, &object).await;
    create(
        &client,
        &json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "registry-creds", "namespace": platform.name()},
            "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}}),
    )
    .await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "payments")).await;
    // The ConfigMap's source is missing: the CR says which.
    let cr = wait_cr(
        &crs,
        "payments",
        "Team failing on its missing source",
        |v| {
            ready_of(v).is_some_and(|r| {
                r.0 == "False" && v.to_string().contains("shared-ca, which does not exist")
            })
        },
    )
    .await;
    assert!(
        !cr.to_string().contains("eyJhdXRocyI6e319"),
        "no copied value in status"
    );
    create(
        &client,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shared-ca", "namespace": platform.name()},
            "data": {"ca.crt": "v1"}}),
    )
    .await;
    wait_cr(&crs, "payments", "Team Ready", ready).await;
    let copies: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), ns.name());
    let copy = copies.get("registry-creds").await.unwrap();
    assert_eq!(
        copy.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    assert_eq!(copy.data.unwrap()[".dockerconfigjson"].0, b"{\"auths\":{}}");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    assert_eq!(
        cms.get("payments-ca").await.unwrap().data.unwrap()["ca.crt"],
        "v1"
    );
    // The source changes: the copy follows on the next cycle.
    let sources: Api<ConfigMap> = Api::namespaced(client.clone(), platform.name());
    sources
        .patch(
            "shared-ca",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"data": {"ca.crt": "v2"}})),
        )
        .await
        .unwrap();
    wait_for("the copy following its source", TIMEOUT, || async {
        let d = cms.get("payments-ca").await.ok()?.data?;
        (d.get("ca.crt").map(String::as_str) == Some("v2")).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
    platform.cleanup().await.unwrap();
}

/// The entry of Katalog status `k` named `name`.
fn entry_row(k: &Value, name: &str) -> Value {
    k["status"]["crds"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == name).cloned())
        .unwrap_or_default()
}

/// `dependsOn: {database: healthy}`: the app entry's controller waits, saying so on the
/// Katalog's status, while the database entry cannot run (its CRD is not installed yet); its CR
/// waits untouched; once the database CRD is served, app starts and reconciles it.
#[tokio::test]
async fn depends_on_holds_an_entry_until_the_other_runs_healthy() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("upstream-depends").await.unwrap();
    let (f, katalog, object) = loaded("depends-on", "ordered.orkestra.io", "upstream-ordered");
    install(&client, &f, &object).await;
    let agent = start_agent(env, client.clone(), config(&f.id, ns.name())).await;
    let katalogs = katalog_api(&client);
    let status = wait_for("app waiting for database", TIMEOUT, || async {
        let k = serde_json::to_value(katalogs.get(&f.katalog_name).await.ok()?).ok()?;
        // Both rows are written by their own controllers, in either order: wait for both.
        (entry_row(&k, "app")["controller"] == "WaitingForDependency"
            && entry_row(&k, "database")["controller"] == "WaitingForCRD")
            .then_some(k)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let why = entry_row(&status, "app")["message"].to_string();
    assert!(
        why.contains("waits for entry database to be healthy"),
        "{why}"
    );
    let crs = cr_api(&client, &f, ns.name());
    create(&client, &f.cr_in(ns.name(), "shop")).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let shop = serde_json::to_value(crs.get("shop").await.unwrap()).unwrap();
    assert!(
        shop["status"].is_null(),
        "not reconciled before its dependency runs: {shop}"
    );
    // The database CRD arrives: database runs, app starts and reconciles the waiting CR.
    let db_crd = orkestra_engine::crd::generate(katalog.entry("database").unwrap(), &katalog.name);
    install_crd(&client, &db_crd).await;
    wait_cr(&crs, "shop", "App Ready", ready).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let cm = cms.get("shop-app").await.unwrap();
    assert_eq!(cm.data.unwrap()["image"], WEB_IMAGE);
    agent.stop().await;
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}

/// Upstream's `validation` rules are enforced by the API server: a CRD orkestra generates (here
/// from the fixture's schema, without its crdFile) carries the deny rules compiled to CEL, refuses
/// each bad CR with its rule's message and accepts the good one. (The crdFile path, where `apply`
/// writes ValidatingAdmissionPolicies instead, is kubectl-orkestra's tests/validation.rs.)
#[tokio::test]
async fn validation_rules_are_enforced_by_the_api_server() {
    init_logs();
    let env = cluster().await;
    let client = env.client().await;
    let ns = env.namespace("upstream-validation").await.unwrap();
    let (f, k, _) = loaded("validation", "validated.orkestra.io", "upstream-validated");
    let mut entry = k.entries[0].clone();
    entry.schema = entry.crd_file.take().and_then(|c| {
        c.pointer("/spec/versions/0/schema/openAPIV3Schema")
            .cloned()
    });
    let crd = orkestra_engine::crd::generate(&entry, &k.name);
    let rules =
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"];
    assert_eq!(rules.as_array().map(Vec::len), Some(3), "{crd}");
    install_crd(&client, &crd).await;
    let crs = cr_api(&client, &f, ns.name());
    let good = f.cr_in(ns.name(), "good");
    let post = |v: &Value| serde_json::from_value(v.clone()).unwrap();
    crs.create(&PostParams::default(), &post(&good))
        .await
        .unwrap_or_else(|e| panic!("the good CR is accepted: {e}"));
    for (field, value, message) in [
        (
            "image",
            json!("docker.io/nginx"),
            "images come from ghcr.io/orkspace/",
        ),
        ("replicas", json!(0), "replicas must be at least 1"),
        (
            "environment",
            json!("qa"),
            "environment is dev, staging or prod",
        ),
    ] {
        let mut bad = f.cr_in(ns.name(), &format!("bad-{field}"));
        bad["spec"][field] = value;
        let err = crs
            .create(&PostParams::default(), &post(&bad))
            .await
            .expect_err(field);
        let text = err.to_string();
        assert!(text.contains(message), "{field}: {text}");
    }
    // Upstream's rule for a missing field: it fails every comparison.
    let mut bare = f.cr_in(ns.name(), "bare");
    bare["spec"].as_object_mut().unwrap().remove("environment");
    let err = crs
        .create(&PostParams::default(), &post(&bare))
        .await
        .expect_err("a CR without spec.environment");
    assert!(err.to_string().contains("environment is dev"), "{err}");
    strip_finalizers(&crs).await;
    ns.cleanup().await.unwrap();
}
