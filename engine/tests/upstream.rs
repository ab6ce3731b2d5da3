//! Upstream Orkestra's Katalogs, written as upstream writes them (the fixtures under
//! katalogs/upstream/, one folder per layout): each loads with no diagnostic, its `crdFile`
//! read beside it, and renders the objects upstream documents (its default names, its `default`
//! argument order); what `apply` stores for the agent loads to the same entries without files.

use orkestra_engine::katalog::Scope;
use orkestra_engine::load::{load_document, with_api_types};
use orkestra_engine::{load_file, render, Katalog, SourceFile};
use serde_json::Value;

fn dir(folder: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../katalogs/upstream")
        .join(folder)
}

fn load(folder: &str) -> (Katalog, SourceFile) {
    let file = SourceFile::read(&dir(folder).join("katalog.yaml")).unwrap();
    let loaded = load_file(&file, &[]);
    assert!(
        loaded.diagnostics.is_empty(),
        "{folder}: {:#?}",
        loaded.diagnostics
    );
    (loaded.katalog.unwrap(), file)
}

/// The diagnostics of `text` loaded as `folder`'s Katalog (which must not load), each as
/// `code line:column message`.
fn broken(folder: &str, text: String) -> Vec<String> {
    let mut file = SourceFile::new("katalog.yaml", text);
    file.dir = Some(dir(folder));
    let loaded = load_file(&file, &[]);
    assert!(loaded.katalog.is_none());
    loaded
        .diagnostics
        .iter()
        .map(|d| format!("{} {}:{} {}", d.code, d.line, d.column, d.message))
        .collect()
}

fn cr(folder: &str) -> Value {
    let text = std::fs::read_to_string(dir(folder).join("cr.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The kinds and names `folder`'s CR renders to.
fn rendered(k: &Katalog, folder: &str) -> Vec<(String, String)> {
    let cr = cr(folder);
    let entry = k
        .entry_for(
            cr["apiVersion"].as_str().unwrap(),
            cr["kind"].as_str().unwrap(),
        )
        .unwrap_or_else(|| panic!("{folder}: no entry for its CR"));
    let d = render(k, entry, &cr, &[]).unwrap_or_else(|e| panic!("{folder}: {e:?}"));
    d.children
        .iter()
        .map(|c| (c.kind.clone(), c.name.clone()))
        .collect()
}

#[test]
fn the_middle_layout_reads_its_crd_file_and_names_children_as_upstream() {
    let (k, file) = load("operatorbox-map");
    let e = &k.entries[0];
    // From crd.yaml: the storage version (v1, not the first listed), kind, plural, scope.
    assert_eq!(e.api.api_version(), "upstream.orkestra.io/v1");
    assert_eq!(
        (e.api.kind.as_str(), e.api.plural.as_str()),
        ("Website", "websites")
    );
    assert_eq!(e.api.scope, Scope::Namespaced);
    assert!(e.schema.as_ref().unwrap()["properties"]["spec"]["properties"]["image"].is_object());
    assert_eq!(
        e.crd_file.as_ref().unwrap()["metadata"]["name"],
        "websites.upstream.orkestra.io"
    );
    assert_eq!(
        (e.reconciler.workers, e.reconciler.resync.as_secs()),
        (3, 30)
    );
    assert_eq!(e.status[0].path, "url");
    assert_eq!(
        rendered(&k, "operatorbox-map"),
        [
            ("Deployment".to_string(), "hello-deployment".to_string()),
            ("Service".to_string(), "hello-svc".to_string()),
            ("Secret".to_string(), "hello-secret".to_string()),
        ]
    );
    // The Service, written without a selector, selects the pods of the entry's one Deployment,
    // whose name differs from its own.
    let d = render(&k, e, &cr("operatorbox-map"), &[]).unwrap();
    let selector = &d.children[1].object["spec"]["selector"];
    let pods = &d.children[0].object["spec"]["template"]["metadata"]["labels"];
    assert_eq!(selector["app.kubernetes.io/name"], "hello-deployment");
    for (key, v) in selector.as_object().unwrap() {
        assert_eq!(&pods[key], v, "{key}");
    }
    // `randomAlphanumeric` in a Secret's data becomes a generated key; `once` makes it create-only.
    let secret = &e.kube[2];
    assert!(!secret.enforce);
    assert_eq!(secret.generate[0].key, "password");
    assert_eq!(secret.generate[0].length, 24);
    // Status: `.children.deployment` (upstream's singular), its notes, the last `when` that
    // holds wins.
    let cr = cr("operatorbox-map");
    let live = serde_json::json!({"metadata": {"name": "hello-deployment"},
        "spec": {"replicas": 2}, "status": {"readyReplicas": 1}});
    let children = orkestra_engine::render::children_value([("deployments", &live)]);
    let status = |children: &Value| {
        orkestra_engine::render_status(&k, e, &cr, children, &Default::default()).unwrap()
    };
    let s = status(&children);
    assert_eq!(
        (s["phase"].as_str(), s["readyReplicas"].as_i64()),
        (Some("Pending"), Some(1))
    );
    let mut all = live.clone();
    all["status"]["readyReplicas"] = serde_json::json!(2);
    let s = status(&orkestra_engine::render::children_value([(
        "deployments",
        &all,
    )]));
    assert_eq!(s["phase"], "Running");
    assert_eq!(s["url"], "http://hello-svc.default:8080");
    // What apply stores: the apiTypes written in, read back with no directory to read from.
    let (docs, _) = file.documents();
    let stored = with_api_types(&docs[0].value, &k);
    assert_eq!(
        stored["spec"]["crds"]["website"]["apiTypes"]["version"],
        "v1"
    );
    let text = serde_json::to_string(&stored).unwrap();
    let agent_side = SourceFile::new("katalog/upstream-website", text);
    let (docs, _) = agent_side.documents();
    let loaded = load_document(&agent_side, &docs[0], &[]);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let again = loaded.katalog.unwrap();
    assert_eq!(again.entries[0].api, e.api);
    assert_eq!(
        rendered(&again, "operatorbox-map"),
        rendered(&k, "operatorbox-map")
    );
}

#[test]
fn the_oldest_layout_loads_with_the_legacy_api_version() {
    let (k, _) = load("reconciler-list");
    let e = k.entry("frontend").unwrap();
    assert_eq!(
        (e.reconciler.workers, e.reconciler.resync.as_secs()),
        (2, 60)
    );
    assert_eq!(e.status[0].path, "config");
    assert_eq!(
        rendered(&k, "reconciler-list"),
        [("ConfigMap".to_string(), "shop-config".to_string())]
    );
    // normalize (trimSpace) and the mutation default give the CR its greeting before rendering.
    let mut bare = cr("reconciler-list");
    bare["spec"] = serde_json::json!({"greeting": "  "});
    let d = render(&k, e, &bare, &[]).unwrap();
    assert_eq!(d.children[0].object["data"]["greeting"], "hello");
    assert_eq!(d.mutated, ["spec.greeting"]);
    let d = render(&k, e, &cr("reconciler-list"), &[]).unwrap();
    assert!(d.mutated.is_empty(), "{:?}", d.mutated);
    assert_eq!(e.refuses_namespace(Some("default")), None);
    let why = e.refuses_namespace(Some("team-b")).unwrap();
    assert!(
        why.contains("allowedNamespaces (default, frontends)"),
        "{why}"
    );
}

#[test]
fn the_newest_layout_reads_reconcile_and_emit() {
    let (k, _) = load("reconcile-emit");
    let e = &k.entries[0];
    assert_eq!(
        (e.reconciler.workers, e.reconciler.resync.as_secs()),
        (4, 10)
    );
    assert_eq!(e.status[0].path, "stages");
    assert!(
        e.kube[0].enforce,
        "onReconcile under `reconcile` is enforced"
    );
    assert_eq!(
        rendered(&k, "reconcile-emit"),
        [
            ("ConfigMap".to_string(), "build-stages".to_string()),
            ("ConfigMap".to_string(), "build-step-compile".to_string()),
            ("ConfigMap".to_string(), "build-step-check".to_string()),
        ]
    );
    let d = render(&k, e, &cr("reconcile-emit"), &[]).unwrap();
    assert_eq!(
        d.children[0].object["metadata"]["labels"]["pipeline"],
        "build"
    );
}

#[test]
fn a_crd_file_that_cannot_be_read_is_an_error_naming_it() {
    let text = std::fs::read_to_string(dir("operatorbox-map").join("katalog.yaml"))
        .unwrap()
        .replace("./crd.yaml", "./missing.yaml");
    // Read "from" the fixture folder, so the path is resolved there.
    let mut file = SourceFile::new("katalog.yaml", text);
    file.dir = Some(dir("operatorbox-map"));
    let loaded = load_file(&file, &[]);
    let d = &loaded.diagnostics[0];
    assert_eq!(d.code, "unreadable-file");
    assert!(d.message.contains("crdFile \"./missing.yaml\""), "{d:?}");
    assert!(d.message.contains("missing.yaml"), "{d:?}");
    assert!(loaded.katalog.is_none());
}

#[test]
fn user_defined_notes_expand_in_every_template_and_travel_with_the_stored_katalog() {
    let (k, file) = load("notes");
    let names: Vec<&str> = k.notes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["fullImage", "teamLabel", "summary", "serviceHost"]);
    let check = |k: &Katalog| {
        let e = &k.entries[0];
        let d = render(k, e, &cr("notes"), &[]).unwrap();
        let cm = &d.children[0].object;
        assert_eq!(cm["metadata"]["name"], "api-image");
        assert_eq!(cm["metadata"]["labels"]["team"], "payments");
        assert_eq!(cm["data"]["image"], "ghcr.io/orkspace/orkestra-web:latest");
        assert_eq!(
            cm["data"]["summary"],
            "ghcr.io/orkspace/orkestra-web:latest for payments at api.default.svc.cluster.local"
        );
        let s =
            orkestra_engine::render_status(k, e, &cr("notes"), &Value::Null, &Default::default())
                .unwrap();
        assert_eq!(s["host"], "api.default.svc.cluster.local");
    };
    check(&k);
    // What apply stores: the notes (the included file's too) under spec, nothing at the top.
    let (docs, _) = file.documents();
    let stored = with_api_types(&docs[0].value, &k);
    assert!(stored.get("notes").is_none());
    assert_eq!(stored["spec"]["notes"].as_array().map(Vec::len), Some(4));
    let agent_side = SourceFile::new(
        "katalog/upstream-noted",
        serde_json::to_string(&stored).unwrap(),
    );
    let (docs, _) = agent_side.documents();
    let loaded = load_document(&agent_side, &docs[0], &[]);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    check(&loaded.katalog.unwrap());
}

#[test]
fn notes_that_loop_take_arguments_or_hide_a_function_are_errors_naming_them() {
    let base = std::fs::read_to_string(dir("notes").join("katalog.yaml")).unwrap();
    let diags = |text: String| broken("notes", text);
    let looped = diags(base.replace(
        "expression: \"{{ .metadata.name }}.{{ .metadata.namespace }}.svc.cluster.local\"",
        "expression: \"{{ summary }}\"",
    ));
    assert!(
        looped
            .iter()
            .any(|d| d.contains("note `summary` calls itself (summary → serviceHost → summary)")),
        "{looped:#?}"
    );
    let args = diags(base.replace(
        "value: \"{{ serviceHost }}\"",
        "value: \"{{ serviceHost .spec.team }}\"",
    ));
    assert!(
        args.iter().any(|d| d.starts_with("wrong-arity 18:")
            && d.contains("`serviceHost` is a note of this Katalog and takes no arguments")),
        "{args:#?}"
    );
    let hidden = diags(base.replace("- name: serviceHost", "- name: upper"));
    assert!(
        hidden
            .iter()
            .any(|d| d.contains("note `upper` has the name of a template function")),
        "{hidden:#?}"
    );
    let missing = diags(base.replace("./notes/shared.yaml", "./notes/gone.yaml"));
    assert!(
        missing.iter().any(|d| d.contains("gone.yaml")),
        "{missing:#?}"
    );
}

#[test]
fn depends_on_orders_entries_and_refuses_unknown_names_cycles_and_conditions() {
    use orkestra_engine::katalog::{Dependency, DependencyCondition};
    let (k, _) = load("depends-on");
    assert_eq!(
        k.entry("app").unwrap().depends_on,
        [Dependency {
            entry: "database".into(),
            condition: DependencyCondition::Healthy
        }]
    );
    assert!(k.entry("database").unwrap().depends_on.is_empty());
    let base = std::fs::read_to_string(dir("depends-on").join("katalog.yaml")).unwrap();
    let diags = |text: String| broken("depends-on", text);
    let unknown = diags(base.replace("database: healthy", "databse: healthy"));
    assert!(
        unknown.iter().any(|d| d.starts_with("invalid-value 21:")
            && d.contains("dependsOn names \"databse\", which is not an entry of this Katalog")
            && d.contains("database")),
        "{unknown:#?}"
    );
    let cycle = diags(base.replace(
        "      apiTypes: {group: ordered",
        "      dependsOn: [app]\n      apiTypes: {group: ordered",
    ));
    assert!(
        cycle
            .iter()
            .filter(|d| d.contains("dependency cycle: database → app → database"))
            .count()
            == 1,
        "{cycle:#?}"
    );
    let condition = diags(base.replace("database: healthy", "database: {condition: alive}"));
    assert!(
        condition
            .iter()
            .any(|d| d.contains("dependsOn condition \"alive\"")),
        "{condition:#?}"
    );
}

#[test]
fn a_once_secret_with_rotate_after_carries_its_age_and_without_once_is_warned() {
    let (k, _) = load("rotation");
    let e = &k.entries[0];
    assert_eq!(e.reconciler.resync.as_secs(), 2);
    let secret = &e.kube[0];
    assert!(!secret.enforce);
    assert_eq!(secret.rotate_after, Some(std::time::Duration::from_secs(4)));
    assert_eq!(secret.generate[0].key, "password");
    let d = render(&k, e, &cr("rotation"), &[]).unwrap();
    assert_eq!(d.children[0].rotate_after_seconds, Some(4));
    let text = std::fs::read_to_string(dir("rotation").join("katalog.yaml"))
        .unwrap()
        .replace("once: true", "reconcile: true");
    let mut file = SourceFile::new("katalog.yaml", text);
    file.dir = Some(dir("rotation"));
    let loaded = load_file(&file, &[]);
    assert!(loaded.katalog.is_some(), "a warning only");
    let w = &loaded.diagnostics[0];
    assert_eq!((w.code, w.line), ("rotate-without-once", 20), "{w:?}");
}

#[test]
fn cross_reads_render_found_and_missing_crs_and_gate_children() {
    let (k, _) = load("cross");
    let e = k.entry("app").unwrap();
    let cr = cr("cross");
    let reqs = orkestra_engine::cross::requests(&k, e, &cr).unwrap();
    assert_eq!(reqs[0].name.as_deref(), Some("shop-db"));
    assert_eq!(reqs[0].namespace.as_deref(), Some("default"));
    let with = |found: Vec<Value>| {
        let tree = orkestra_engine::cross::value(&reqs, &[found]);
        orkestra_engine::cross::with_cross(&cr, tree)
    };
    // Missing: found is false, the gated ConfigMap is left out, the status says so.
    let missing = with(vec![]);
    let d = render(&k, e, &missing, &[]).unwrap();
    let names: Vec<&str> = d.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["shop-lookup"]);
    assert_eq!(d.children[0].object["data"]["found"], "false");
    let s =
        orkestra_engine::render_status(&k, e, &missing, &Value::Null, &Default::default()).unwrap();
    assert_eq!(s["database"], "missing");
    // Found: its spec and status flow in.
    let db = serde_json::json!({"metadata": {"name": "shop-db", "namespace": "default"},
        "spec": {"host": "pg.internal"}, "status": {"phase": "Available"}});
    let d = render(&k, e, &with(vec![db]), &[]).unwrap();
    assert_eq!(d.children[0].object["data"]["found"], "true");
    assert_eq!(d.children[1].object["data"]["host"], "pg.internal");
    assert_eq!(d.children[1].object["data"]["phase"], "Available");
}

#[test]
fn copy_blocks_name_their_source_and_stay_in_a_namespaced_crs_namespace() {
    let (k, _) = load("copy");
    let e = &k.entries[0];
    assert!(
        e.kube.iter().all(|k| k.enforce),
        "copies follow their source"
    );
    let d = render(&k, e, &cr("copy"), &[]).unwrap();
    let copies: Vec<(String, String, String)> = d
        .children
        .iter()
        .map(|c| {
            let from = c.copy_from.as_ref().unwrap();
            (
                c.name.clone(),
                c.namespace.clone().unwrap(),
                format!("{}/{}", from.namespace, from.name),
            )
        })
        .collect();
    assert_eq!(
        copies,
        [
            (
                "registry-creds".into(),
                "default".into(),
                "platform/registry-creds".into()
            ),
            (
                "payments-ca".into(),
                "default".into(),
                "platform/shared-ca".into()
            ),
        ]
    );
    // The body carries the source's data, not the Katalog's.
    let source = serde_json::json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}});
    let (body, _) = orkestra_engine::apply::body(
        &d.children[0],
        orkestra_engine::apply::Placement::Namespaced(Some("default")),
        None,
        Some(&source),
    )
    .unwrap();
    assert_eq!(body["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(body["data"][".dockerconfigjson"], "e30=");
    let base = std::fs::read_to_string(dir("copy").join("katalog.yaml")).unwrap();
    // Into another namespace: refused at render, naming the field.
    let other = base.replace(
        "[\"{{ .metadata.namespace }}\"]",
        "[\"{{ .metadata.namespace }}\", kube-system]",
    );
    let mut file = SourceFile::new("katalog.yaml", other);
    file.dir = Some(dir("copy"));
    let k2 = load_file(&file, &[]).katalog.unwrap();
    let err = render(&k2, &k2.entries[0], &cr("copy"), &[]).unwrap_err();
    assert!(err.field.ends_with("secrets[0].toNamespaces"), "{err:?}");
    assert!(
        err.message.contains(
            "\"kube-system\": a namespaced CR's copies go into its own namespace (default)"
        ),
        "{err:?}"
    );
    // A templated source: a load error.
    let templated = broken(
        "copy",
        base.replace(
            "fromSecret: registry-creds",
            "fromSecret: \"{{ .spec.owner }}\"",
        ),
    );
    assert!(
        templated
            .iter()
            .any(|d| d.contains("`fromSecret` is written out, not templated")),
        "{templated:#?}"
    );
}
