//! Engine benchmarks: figures printed beside a baseline measured in the same run.
//!
//! - `render/application-stack` renders one CR of the application-stack Katalog (Deployment,
//!   Service, S3 declaration), beside `render/hand-written`, the same three objects built directly
//!   with `json!` from the CR's fields: the floor a hand-written controller pays.
//! - `lint/100-katalogs` lints 100 Katalog files, beside `lint/yaml-parse-only`, which only parses
//!   the same files with serde_yaml_ng.
//!
//! - `compose/*` renders one CR of the composed app-with-database Katalog (password Secret → RDS →
//!   connection Secret → Deployment with the endpoint): `one-walk` with every node observed,
//!   `agent-waves` the four walks the agent makes while what it observed grows, beside
//!   `without-references`, the same Katalog with each `.resources` read replaced by a literal
//!   (the render orkestra did before composition).
//!
//! Run: `cargo bench -p orkestra-engine --bench engine`.

use criterion::{criterion_group, criterion_main, Criterion};
use orkestra_engine::lint::{lint, Input};
use orkestra_engine::readiness::Readiness;
use orkestra_engine::{load_file, render, walk, Observed, Seen, SourceFile, Unknown};
use serde_json::{json, Value};
use std::hint::black_box;

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../katalogs")
            .join(rel),
    )
    .unwrap()
}

fn hand_written(cr: &Value) -> Vec<Value> {
    let name = cr["metadata"]["name"].as_str().unwrap();
    let ns = cr["metadata"]["namespace"].as_str().unwrap();
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name});
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"replicas": cr["spec"]["replicas"], "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                            "name": name, "image": cr["spec"]["image"],
                            "ports": [{"containerPort": cr["spec"]["port"]}],
                            "env": [{"name": "ASSETS_BUCKET", "value": format!("{name}-{ns}-assets")}]}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": cr["spec"]["port"]}]}}),
        json!({"bucket": format!("{name}-{ns}-assets"), "region": cr["spec"]["region"], "versioning": true,
               "tags": {"team": cr["spec"]["team"]}}),
    ]
}

fn bench(c: &mut Criterion) {
    let schemas = [orkestra_provider_aws::schema()];
    let k = load_file(
        &SourceFile::new("k.yaml", fixture("application-stack/katalog.yaml")),
        &schemas,
    )
    .katalog
    .unwrap();
    let cr: Value = serde_yaml_ng::from_str(&fixture("application-stack/cr-shop.yaml")).unwrap();
    let mut g = c.benchmark_group("render");
    g.bench_function("application-stack", |b| {
        b.iter(|| render(&k, &k.entries[0], black_box(&cr), &schemas).unwrap())
    });
    g.bench_function("hand-written", |b| b.iter(|| hand_written(black_box(&cr))));
    g.finish();

    compose(c, &schemas);

    let text = fixture("application-stack/katalog.yaml");
    let files: Vec<SourceFile> = (0..100)
        .map(|i| {
            SourceFile::new(
                format!("k{i}.yaml"),
                text.replace("name: application-stack", &format!("name: stack-{i}")),
            )
        })
        .collect();
    let mut g = c.benchmark_group("lint");
    g.sample_size(20);
    g.bench_function("100-katalogs", |b| {
        b.iter(|| {
            let inputs: Vec<Input> = files
                .iter()
                .map(|f| Input {
                    file: f.clone(),
                    explicit: true,
                })
                .collect();
            let r = lint(&inputs, &[], &schemas);
            assert_eq!(r.katalogs, 100);
        })
    });
    g.bench_function("yaml-parse-only", |b| {
        b.iter(|| {
            for f in &files {
                black_box(serde_yaml_ng::from_str::<Value>(&f.text).unwrap());
            }
        })
    });
    g.finish();
}

fn compose(c: &mut Criterion, schemas: &[orkestra_provider_schema::ProviderSchema]) {
    let text = fixture("app-with-database/katalog.yaml");
    let composed = load_file(&SourceFile::new("k.yaml", text.clone()), schemas)
        .katalog
        .unwrap();
    let literal = text
        .replace("{{ .resources.db.outputs.endpoint }}", "db.example")
        .replace("{{ .resources.db.outputs.port }}", "5432")
        .replace("{{ .resources.dbPassword.data.password }}", "secret")
        .replace(
            "{{ .resources.dbPassword.metadata.name }}",
            "{{ .metadata.name }}-db-password",
        )
        .replace("after: [conn]", "");
    let flat = load_file(&SourceFile::new("flat.yaml", literal), schemas)
        .katalog
        .unwrap();
    assert!(!flat.entries[0].graph.has_edges());
    let cr = json!({"apiVersion": "apps.example.io/v1", "kind": "App",
        "metadata": {"name": "billing", "namespace": "team-b", "uid": "u-1"},
        "spec": {"image": "web:1", "tier": "large", "database": {"enabled": true}}});
    let g = &composed.entries[0].graph;
    let src = |id: &str| g.nodes[g.by_id(id).unwrap()].source.clone();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "billing-db-password"},
        "data": {"password": "c2VjcmV0"}});
    let conn =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "billing-db-conn"}});
    let mut outputs = serde_json::Map::new();
    outputs.insert("endpoint".into(), json!("db.example"));
    outputs.insert("port".into(), json!(5432));
    let steps = [
        (src("dbPassword"), Seen::child(&secret, &Readiness::Ready)),
        (
            src("db"),
            Seen::external("billing-team-b-db", None, "Ready", &outputs, true),
        ),
        (src("conn"), Seen::child(&conn, &Readiness::Ready)),
    ];
    let all: Observed = steps.iter().cloned().collect();
    let d = walk(
        &composed,
        &composed.entries[0],
        &cr,
        schemas,
        &all,
        Unknown::Wait,
    )
    .unwrap();
    assert!(d.waiting.is_empty());
    let mut grp = c.benchmark_group("compose");
    grp.bench_function("one-walk", |b| {
        b.iter(|| {
            walk(
                &composed,
                &composed.entries[0],
                black_box(&cr),
                schemas,
                &all,
                Unknown::Wait,
            )
            .unwrap()
        })
    });
    grp.bench_function("agent-waves", |b| {
        b.iter(|| {
            let mut seen = Observed::new();
            for i in 0..=steps.len() {
                black_box(
                    walk(
                        &composed,
                        &composed.entries[0],
                        black_box(&cr),
                        schemas,
                        &seen,
                        Unknown::Wait,
                    )
                    .unwrap(),
                );
                if let Some((k, v)) = steps.get(i) {
                    seen.insert(k.clone(), v.clone());
                }
            }
        })
    });
    grp.bench_function("without-references", |b| {
        b.iter(|| render(&flat, &flat.entries[0], black_box(&cr), schemas).unwrap())
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
