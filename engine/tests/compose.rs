//! The composition walk (composition.md) over `katalogs/app-with-database`, as pure functions of
//! what has been observed: who renders, who waits and with which message, what `plan` shows as
//! known after apply, and that a changed output changes the enforced dependent. The agent feeds
//! the same function what the API server and the providers returned (agent/tests/compose.rs).

use orkestra_engine::readiness::Readiness;
use orkestra_engine::{load_file, walk, Desired, Katalog, Observed, Seen, SourceFile, Unknown};
use serde_json::{json, Map, Value};

fn schemas() -> Vec<orkestra_provider_schema::ProviderSchema> {
    vec![orkestra_provider_aws::schema()]
}

fn katalog() -> Katalog {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../katalogs/app-with-database/katalog.yaml");
    let loaded = load_file(&SourceFile::read(&p).unwrap(), &schemas());
    loaded
        .katalog
        .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics))
}

fn cr() -> Value {
    json!({"apiVersion": "apps.example.io/v1", "kind": "App",
        "metadata": {"name": "billing", "namespace": "team-b", "uid": "u-1"},
        "spec": {"image": "web:1", "tier": "small", "database": {"enabled": true}}})
}

fn source(k: &Katalog, id: &str) -> String {
    let g = &k.entries[0].graph;
    g.nodes[g.by_id(id).unwrap()].source.clone()
}

fn run(k: &Katalog, seen: &Observed, unknown: Unknown) -> Desired {
    walk(k, &k.entries[0], &cr(), &schemas(), seen, unknown).unwrap()
}

fn names(d: &Desired) -> Vec<String> {
    d.children
        .iter()
        .map(|c| format!("{} {}", c.kind, c.name))
        .chain(d.external.iter().map(|x| format!("{} {}", x.kind, x.name)))
        .collect()
}

fn secret_seen() -> Seen {
    let live = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "billing-db-password"}, "data": {"password": "czNjcjN0"}});
    Seen::child(&live, &Readiness::Ready)
}

fn db_seen(state: &str, endpoint: Option<&str>) -> Seen {
    let mut outputs = Map::new();
    if let Some(e) = endpoint {
        outputs.insert("endpoint".into(), json!(e));
        outputs.insert("port".into(), json!(5432));
    }
    Seen::external("billing-team-b-db", None, state, &outputs, state == "Ready")
}

#[test]
fn nothing_observed_renders_only_what_reads_nothing() {
    let k = katalog();
    let d = run(&k, &Observed::new(), Unknown::Wait);
    assert_eq!(names(&d), ["Secret billing-db-password"]);
    let messages: Vec<String> = d.waiting.iter().map(|w| w.message()).collect();
    assert_eq!(
        messages,
        [
            "aws.rds db waits for secrets[dbPassword] (not created yet): metadata.name",
            "secrets[conn] waits for secrets[dbPassword] (not created yet): data.password",
            "deployments[web] waits for aws.rds db (waiting itself): outputs.endpoint",
        ]
    );
}

#[test]
fn dependents_wait_while_the_instance_is_creating_with_the_exact_message() {
    let k = katalog();
    let mut seen = Observed::new();
    seen.insert(source(&k, "dbPassword"), secret_seen());
    let d = run(&k, &seen, Unknown::Wait);
    assert_eq!(
        names(&d),
        ["Secret billing-db-password", "rds billing-team-b-db"]
    );
    assert_eq!(
        d.external[0].fields["masterPasswordSecret"],
        json!({"name": "billing-db-password", "key": "password"})
    );
    assert_eq!(
        d.external[0].fields["allocatedStorage"],
        json!(20),
        "converted to the schema's integer"
    );
    seen.insert(source(&k, "db"), db_seen("Creating", None));
    let d = run(&k, &seen, Unknown::Wait);
    let w = d.waiting_for(&source(&k, "web")).unwrap();
    assert_eq!(
        w.message(),
        "deployments[web] waits for aws.rds db (Creating): outputs.endpoint"
    );
    assert!(d.children.iter().all(|c| c.kind != "Deployment"));
}

#[test]
fn a_ready_instance_without_the_output_leaves_dependents_waiting_never_empty() {
    let k = katalog();
    let mut seen = Observed::new();
    seen.insert(source(&k, "dbPassword"), secret_seen());
    seen.insert(source(&k, "db"), db_seen("Ready", None));
    let d = run(&k, &seen, Unknown::Wait);
    assert_eq!(
        d.waiting_for(&source(&k, "conn")).unwrap().message(),
        "secrets[conn] waits for aws.rds db (ready, but the value is not set): outputs.endpoint"
    );
    assert!(d.children.iter().all(|c| c.kind != "Deployment"));
}

fn env(d: &Desired, name: &str) -> Value {
    let dep = d.children.iter().find(|c| c.kind == "Deployment").unwrap();
    dep.object["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["value"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn once_everything_is_ready_the_endpoint_flows_and_a_changed_one_follows() {
    let k = katalog();
    let mut seen = Observed::new();
    seen.insert(source(&k, "dbPassword"), secret_seen());
    seen.insert(source(&k, "db"), db_seen("Ready", Some("db1.example")));
    let d = run(&k, &seen, Unknown::Wait);
    let conn = d
        .children
        .iter()
        .find(|c| c.name == "billing-db-conn")
        .unwrap();
    assert_eq!(
        conn.object["stringData"]["url"],
        "postgres://app:s3cr3t@db1.example:5432/app"
    );
    // The Deployment comes after the connection Secret.
    assert!(d.waiting_for(&source(&k, "web")).is_some());
    let conn_live =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "billing-db-conn"}});
    seen.insert(
        source(&k, "conn"),
        Seen::child(&conn_live, &Readiness::Ready),
    );
    let d = run(&k, &seen, Unknown::Wait);
    assert!(d.waiting.is_empty(), "{:?}", d.waiting);
    assert_eq!(env(&d, "PGHOST"), "db1.example");
    assert_eq!(env(&d, "PGPORT"), "5432", "environment values are strings");
    // A replaced instance: the enforced Deployment renders the new endpoint.
    seen.insert(source(&k, "db"), db_seen("Ready", Some("db2.example")));
    assert_eq!(env(&run(&k, &seen, Unknown::Wait), "PGHOST"), "db2.example");
}

#[test]
fn plan_renders_waiting_nodes_with_known_after_apply() {
    let k = katalog();
    let d = run(&k, &Observed::new(), Unknown::Placeholder);
    assert_eq!(
        env(&d, "PGHOST"),
        "(known after apply: db.outputs.endpoint)"
    );
    assert_eq!(env(&d, "PGPORT"), "(known after apply: db.outputs.port)");
    let rds = &d.external[0];
    assert_eq!(
        rds.fields["masterPasswordSecret"]["name"],
        "(known after apply: dbPassword.metadata.name)"
    );
    assert_eq!(d.waiting.len(), 3, "{:?}", d.waiting);
}

#[test]
fn a_disabled_database_leaves_out_everything_that_reads_it() {
    let k = katalog();
    let mut c = cr();
    c["spec"]["database"]["enabled"] = json!(false);
    let d = walk(
        &k,
        &k.entries[0],
        &c,
        &schemas(),
        &Observed::new(),
        Unknown::Wait,
    )
    .unwrap();
    assert_eq!(names(&d), ["Deployment billing"]);
    assert!(d.waiting.is_empty());
}

#[test]
fn a_thousand_node_katalog_loads_and_orders_without_recursion() {
    let mut y = String::from(
        "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {name: big}\nspec:\n  crds:\n    - name: x\n      apiTypes: {group: demo.example.io, version: v1, kind: Big}\n      operatorBox:\n        onCreate:\n          configMaps:\n",
    );
    let n = 1000;
    for i in 0..n {
        let reads = if i + 1 < n {
            format!("{{{{ .resources.n{}.data.v }}}}", i + 1)
        } else {
            "end".to_string()
        };
        y.push_str(&format!(
            "            - {{id: n{i}, name: n{i}, data: {{v: \"{reads}\"}}}}\n"
        ));
    }
    let loaded = load_file(&SourceFile::new("big.yaml", y.clone()), &schemas());
    let k = loaded.katalog.expect("loads");
    assert_eq!(k.entries[0].graph.order.first(), Some(&(n - 1)));
    // Closing the chain into a cycle is one diagnostic naming all 1,000 nodes.
    let cyclic = y.replace("v: \"end\"", "v: \"{{ .resources.n0.data.v }}\"");
    let loaded = load_file(&SourceFile::new("big.yaml", cyclic), &schemas());
    let cycles: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == "cycle")
        .collect();
    assert_eq!(cycles.len(), 1);
    assert!(
        cycles[0].message.contains("configMaps[n0]")
            && cycles[0].message.contains("configMaps[n999]")
    );
}

#[test]
fn ready_when_replaces_a_kinds_default_readiness() {
    let y = r#"
apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata: {name: rw}
spec:
  providers: [{name: aws, required: true}]
  crds:
    - name: x
      apiTypes: {group: demo.example.io, version: v1, kind: Rw}
      operatorBox:
        onCreate:
          configMaps:
            - id: conf
              name: conf
              readyWhen:
                - {field: data.phase, equals: done}
          aws:
            - id: bucket
              s3: {bucket: rw-bucket}
              readyWhen:
                - {field: outputs.region, equals: eu-west-1}
"#;
    let loaded = load_file(&SourceFile::new("rw.yaml", y), &schemas());
    let k = loaded
        .katalog
        .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics));
    let e = &k.entries[0];
    let conf = &e.kube[0].source;
    let live = |phase: &str| json!({"kind": "ConfigMap", "metadata": {"name": "conf"}, "data": {"phase": phase}});
    let r = orkestra_engine::render::child_readiness(&k, e, conf, "ConfigMap", &live("running"));
    assert_eq!(
        r.message(),
        Some("ConfigMap conf: its readyWhen does not hold yet"),
        "a ConfigMap is ready once it exists, unless readyWhen says otherwise"
    );
    assert!(
        orkestra_engine::render::child_readiness(&k, e, conf, "ConfigMap", &live("done"))
            .is_ready()
    );
    let bucket = &e.external[0].source;
    let mut outputs = Map::new();
    outputs.insert("region".into(), json!("us-east-1"));
    let seen = Seen::external("rw-bucket", None, "Ready", &outputs, true);
    assert!(!orkestra_engine::render::external_ready(
        &k, e, bucket, &seen, true
    ));
    outputs.insert("region".into(), json!("eu-west-1"));
    let seen = Seen::external("rw-bucket", None, "Ready", &outputs, true);
    assert!(orkestra_engine::render::external_ready(
        &k, e, bucket, &seen, true
    ));
}
