//! Engine benchmarks: figures printed beside a baseline measured in the same run.
//!
//! - `render/application-stack` renders one CR of the application-stack Katalog (Deployment,
//!   Service, S3 declaration), beside `render/hand-written`, the same three objects built directly
//!   with `json!` from the CR's fields: the floor a hand-written controller pays.
//! - `lint/100-katalogs` lints 100 Katalog files, beside `lint/yaml-parse-only`, which only parses
//!   the same files with serde_yaml_ng.
//!
//! Run: `cargo bench -p orkestra-engine --bench engine`.

use criterion::{criterion_group, criterion_main, Criterion};
use orkestra_engine::lint::{lint, Input};
use orkestra_engine::{load_file, render, SourceFile};
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

criterion_group!(benches, bench);
criterion_main!(benches);
