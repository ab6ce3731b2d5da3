//! Property tests: the parser, loader and renderer never panic, whatever they are fed.
//!
//! `tests/fuzz_corpus/` keeps the inputs that once found problems or that cover tricky corners;
//! every run replays them before the random cases. Raise `PROPTEST_CASES` for a longer run.

use orkestra_engine::template::{Scope, TemplateSet};
use orkestra_engine::{load_file, render, SourceFile};
use proptest::prelude::*;
use serde_json::json;

fn corpus() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}

fn template_roundtrip(src: &str) {
    let mut set = TemplateSet::new();
    if let Ok(t) = set.compile(src) {
        let cr = json!({"metadata": {"name": "n"}, "spec": {"a": [1, {"b": null}], "s": "x"}});
        let _ = set.render(&t, &Scope::new(&cr));
    }
}

const KATALOG: &str = "apiVersion: orkestra.orkspace.io/v1\nkind: Katalog\nmetadata: {name: f}\nspec:\n  crds:\n    - name: f\n      apiTypes: {group: f.example.io, version: v1, kind: F}\n      operatorBox:\n        onCreate:\n          deployments:\n            - name: \"{{ .metadata.name }}\"\n              image: \"{{ .spec.image }}\"\n              replicas: \"{{ .spec.replicas }}\"\n              env: \"{{ .spec.env }}\"\n          aws:\n            - s3: {bucket: \"{{ .spec.bucket }}\", tags: \"{{ .spec.tags }}\"}\n";

#[test]
fn corpus_never_panics() {
    for input in corpus() {
        template_roundtrip(&input);
        let _ = load_file(
            &SourceFile::new("corpus.yaml", input.clone()),
            &[orkestra_provider_aws::schema()],
        );
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn templates_never_panic(src in r"(\{\{|\}\}|[ .|()$a-z0-9\x22`-]|default|upper|trunc|index|\\){0,30}") {
        template_roundtrip(&src);
    }

    /// Plain paths take a fast path around handlebars; both must give the same value.
    #[test]
    fn fast_path_agrees_with_handlebars(cr in json_value(), path in prop::collection::vec("[a-z0-9]{1,3}", 0..4), text in "[a-z -]{0,5}") {
        let mut set = TemplateSet::new();
        let dotted: String = path.iter().map(|p| format!(".{p}")).collect();
        let scope = Scope::new(&json!({"spec": cr}));
        for src in [format!("{{{{ .spec{dotted} }}}}"), format!("{text}{{{{ .spec{dotted} }}}}{text}")] {
            let t = set.compile(&src).unwrap();
            prop_assert_eq!(set.render(&t, &scope), set.render_with_handlebars(&t, &scope), "{}", src);
        }
    }

    #[test]
    fn loader_never_panics(text in r"[a-zA-Z0-9:{}\[\],\x22' \n-]{0,200}") {
        let _ = load_file(&SourceFile::new("f.yaml", text), &[orkestra_provider_aws::schema()]);
    }

    #[test]
    fn mutated_katalogs_never_panic(pos in 0usize..KATALOG.len(), insert in r"[ \n:{}\[\]\x22a-z-]{0,6}") {
        let mut text = KATALOG.to_string();
        let pos = (0..=pos).rev().find(|p| text.is_char_boundary(*p)).unwrap_or(0);
        text.insert_str(pos, &insert);
        let _ = load_file(&SourceFile::new("f.yaml", text), &[orkestra_provider_aws::schema()]);
    }

    #[test]
    fn rendering_any_cr_never_panics(spec in json_value(), name in "[a-z0-9.-]{0,70}") {
        let schemas = [orkestra_provider_aws::schema()];
        let k = load_file(&SourceFile::new("f.yaml", KATALOG), &schemas).katalog.expect("fixture loads");
        let cr = json!({"apiVersion": "f.example.io/v1", "kind": "F",
                        "metadata": {"name": name, "namespace": "ns"}, "spec": spec});
        let _ = render(&k, &k.entries[0], &cr, &schemas);
    }
}
