//! Rendering the example Katalogs (the fixtures under katalogs/) and the typing and safety rules
//! of katalog.md: typed single expressions, conversion at the Kubernetes boundary with the field
//! named, per-scalar rendering (no YAML injection), `when`/`or`.

use orkestra_engine::{load_file, render, Desired, Katalog, SourceFile};
use serde_json::{json, Value};

fn schemas() -> Vec<orkestra_provider_schema::ProviderSchema> {
    vec![orkestra_provider_aws::schema()]
}

fn katalog(rel: &str) -> Katalog {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../katalogs")
        .join(rel);
    let loaded = load_file(&SourceFile::read(&p).unwrap(), &schemas());
    loaded
        .katalog
        .unwrap_or_else(|| panic!("{rel}: {:#?}", loaded.diagnostics))
}

fn cr_file(rel: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../katalogs")
        .join(rel);
    serde_yaml_ng::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn render_cr(k: &Katalog, cr: &Value) -> Result<Desired, orkestra_engine::RenderError> {
    let entry = k
        .entry_for(
            cr["apiVersion"].as_str().unwrap(),
            cr["kind"].as_str().unwrap(),
        )
        .expect("entry");
    render(k, entry, cr, &schemas())
}

fn find<'a>(d: &'a Desired, kind: &str) -> &'a Value {
    &d.children
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .object
}

#[test]
fn application_stack_renders_deployment_service_and_bucket() {
    let k = katalog("application-stack/katalog.yaml");
    let d = render_cr(&k, &cr_file("application-stack/cr-shop.yaml")).unwrap();
    let dep = find(&d, "Deployment");
    assert_eq!(dep["metadata"]["namespace"], "prod");
    assert_eq!(dep["spec"]["replicas"], json!(3), "typed single expression");
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/orkspace/orkestra-web:0.1.0"
    );
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        json!(8080)
    );
    // The selector matches the pod labels.
    let sel = dep["spec"]["selector"]["matchLabels"].as_object().unwrap();
    let pod = dep["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap();
    assert!(sel.iter().all(|(k, v)| pod.get(k) == Some(v)));
    assert_eq!(pod["app.kubernetes.io/managed-by"], "orkestra");
    let svc = find(&d, "Service");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], json!(8080));
    assert_eq!(
        svc["spec"]["selector"],
        dep["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(d.external.len(), 1);
    let b = &d.external[0];
    assert_eq!(
        (b.provider.as_str(), b.kind.as_str(), b.name.as_str()),
        ("aws", "s3", "shop-prod-assets")
    );
    assert_eq!(b.fields["region"], "eu-west-1");
    assert_eq!(b.fields["versioning"], json!(true));
    assert_eq!(b.fields["tags"], json!({"team": "storefront"}));
    assert!(
        d.children.iter().all(|c| c.enforce),
        "reconcile: true entries are enforced"
    );
}

#[test]
fn owner_reference_only_with_a_uid() {
    let k = katalog("application-stack/katalog.yaml");
    let mut cr = cr_file("application-stack/cr-shop.yaml");
    let d = render_cr(&k, &cr).unwrap();
    assert!(find(&d, "Deployment")["metadata"]
        .get("ownerReferences")
        .is_none());
    cr["metadata"]["uid"] = json!("0b5c9a8e-1111-2222-3333-444455556666");
    let d = render_cr(&k, &cr).unwrap();
    let r = &find(&d, "Deployment")["metadata"]["ownerReferences"][0];
    assert_eq!(r["uid"], "0b5c9a8e-1111-2222-3333-444455556666");
    assert_eq!(r["kind"], "ApplicationStack");
    assert_eq!(r["controller"], json!(true));
}

#[test]
fn defaults_fill_missing_values() {
    let k = katalog("application-stack/katalog.yaml");
    let cr = json!({"apiVersion": "platform.example.io/v1alpha1", "kind": "ApplicationStack",
                    "metadata": {"name": "a", "namespace": "n"}, "spec": {"image": "x"}});
    let d = render_cr(&k, &cr).unwrap();
    assert_eq!(find(&d, "Deployment")["spec"]["replicas"], json!(1));
    assert_eq!(d.external[0].fields["region"], "us-east-1");
}

#[test]
fn a_value_that_cannot_convert_names_the_field() {
    let k = katalog("application-stack/katalog.yaml");
    let cr = json!({"apiVersion": "platform.example.io/v1alpha1", "kind": "ApplicationStack",
                    "metadata": {"name": "a", "namespace": "n"}, "spec": {"image": "x", "replicas": "three"}});
    let e = render_cr(&k, &cr).unwrap_err();
    assert_eq!(
        e.field,
        "spec.crds[0].operatorBox.onCreate.deployments[0].replicas"
    );
    assert!(e.message.contains("expected an integer"), "{e}");
    // "3" converts at the boundary.
    let cr = json!({"apiVersion": "platform.example.io/v1alpha1", "kind": "ApplicationStack",
                    "metadata": {"name": "a", "namespace": "n"}, "spec": {"image": "x", "replicas": "3"}});
    assert_eq!(
        find(&render_cr(&k, &cr).unwrap(), "Deployment")["spec"]["replicas"],
        json!(3)
    );
}

#[test]
fn a_required_field_that_renders_empty_is_an_error() {
    let k = katalog("application-stack/katalog.yaml");
    let cr = json!({"apiVersion": "platform.example.io/v1alpha1", "kind": "ApplicationStack",
                    "metadata": {"name": "a", "namespace": "n"}, "spec": {}});
    let e = render_cr(&k, &cr).unwrap_err();
    assert!(e.field.ends_with("deployments[0].image"), "{e}");
}

#[test]
fn a_bucket_name_invalid_after_rendering_is_caught_before_any_call() {
    let k = katalog("application-stack/katalog.yaml");
    let cr = json!({"apiVersion": "platform.example.io/v1alpha1", "kind": "ApplicationStack",
                    "metadata": {"name": "Shop", "namespace": "n"}, "spec": {"image": "x"}});
    // The Deployment name is invalid too; the first failing entry is reported.
    let e = render_cr(&k, &cr).unwrap_err();
    assert!(
        e.message.contains("not a valid Kubernetes name") || e.message.contains("bucket name"),
        "{e}"
    );
}

#[test]
fn cr_values_cannot_inject_yaml() {
    let k = katalog("application-stack/katalog.yaml");
    let hostile = "nginx\n  hostNetwork: true\nprivileged: true";
    let cr = json!({"apiVersion": "platform.example.io/v1alpha1", "kind": "ApplicationStack",
                    "metadata": {"name": "a", "namespace": "n"}, "spec": {"image": hostile}});
    let d = render_cr(&k, &cr).unwrap();
    let pod = &find(&d, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], hostile);
    assert!(pod.get("hostNetwork").is_none());
    assert!(!serde_json::to_string(&d.children)
        .unwrap()
        .contains("\"privileged\""));
}

#[test]
fn when_selects_entries() {
    let k = katalog("app-with-database/katalog.yaml");
    let small = render_cr(&k, &cr_file("app-with-database/cr-small.yaml")).unwrap();
    assert_eq!(
        small
            .children
            .iter()
            .map(|c| c.kind.as_str())
            .collect::<Vec<_>>(),
        ["Deployment"]
    );
    assert!(small.external.is_empty());
    let large = render_cr(&k, &cr_file("app-with-database/cr-large-db.yaml")).unwrap();
    let kinds: Vec<&str> = large.children.iter().map(|c| c.kind.as_str()).collect();
    // With nothing observed, only what reads no other node renders (tests/compose.rs walks on).
    assert_eq!(kinds, ["Secret", "ConfigMap"]);
    assert!(large.external.is_empty());
    assert_eq!(large.waiting.len(), 3);
    assert_eq!(large.on_delete.len(), 1);
    assert_eq!(large.on_delete[0].kind, "Job");
    assert_eq!(
        find(&small, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        "small"
    );
}

#[test]
fn status_fields_render_with_children() {
    let k = katalog("application-stack/katalog.yaml");
    let cr = cr_file("application-stack/cr-shop.yaml");
    let entry = &k.entries[0];
    let children = json!({"deployments": {"shop": {"status": {"readyReplicas": 2}}}});
    let s = orkestra_engine::render_status(&k, entry, &cr, &children, &Default::default()).unwrap();
    assert_eq!(s["url"], "http://shop.prod.svc");
    assert_eq!(s["readyReplicas"], json!(2));
    let s =
        orkestra_engine::render_status(&k, entry, &cr, &json!({}), &Default::default()).unwrap();
    assert_eq!(s["readyReplicas"], json!(0));
}

/// The map spelling, the list spelling and `operatorBox.providers` load to the same model.
#[test]
fn both_spellings_load_to_the_same_model() {
    let map_form = r#"
apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata: {name: k}
spec:
  crds:
    website:
      apiTypes: {group: demo.orkestra.io, version: v1alpha1, kind: Website, plural: websites}
      operatorBox:
        reconciler: {default: true, workers: 3, resync: 30s}
        onCreate:
          deployments:
            - {name: "{{ .metadata.name }}", image: "{{ .spec.image }}", replicas: "{{ .spec.replicas }}", reconcile: true}
        providers:
          aws:
            - s3: {bucket: "{{ .metadata.name }}-assets"}
"#;
    let list_form = r#"
apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata: {name: k}
spec:
  crds:
    - name: website
      apiTypes: {group: demo.orkestra.io, version: v1alpha1, kind: Website, plural: websites}
      operatorBox:
        default: true
        reconciler: {workers: 3, resync: 30s}
        onCreate:
          deployments:
            - name: "{{ .metadata.name }}"
              image: "{{ .spec.image }}"
              replicas: "{{ .spec.replicas }}"
              reconcile: true
          aws:
            - s3:
                bucket: "{{ .metadata.name }}-assets"
"#;
    let load = |s: &str| {
        let l = load_file(&SourceFile::new("k.yaml", s), &schemas());
        l.katalog.unwrap_or_else(|| panic!("{:#?}", l.diagnostics))
    };
    let (a, b) = (load(map_form), load(list_form));
    let (ea, eb) = (&a.entries[0], &b.entries[0]);
    assert_eq!(ea.name, eb.name);
    assert_eq!(ea.api, eb.api);
    assert_eq!(ea.reconciler, eb.reconciler);
    assert_eq!(ea.reconciler.workers, 3);
    assert_eq!(ea.reconciler.resync.as_secs(), 30);
    let cr = json!({"apiVersion": "demo.orkestra.io/v1alpha1", "kind": "Website",
                    "metadata": {"name": "blog", "namespace": "d"}, "spec": {"image": "nginx", "replicas": 2}});
    let (da, db) = (
        render(&a, ea, &cr, &schemas()).unwrap(),
        render(&b, eb, &cr, &schemas()).unwrap(),
    );
    let strip = |d: &Desired| {
        d.children
            .iter()
            .map(|c| (c.enforce, c.object.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&da), strip(&db));
    assert_eq!(
        da.external
            .iter()
            .map(|e| (&e.kind, &e.name, &e.fields))
            .collect::<Vec<_>>(),
        db.external
            .iter()
            .map(|e| (&e.kind, &e.name, &e.fields))
            .collect::<Vec<_>>()
    );
}

#[test]
fn every_kubernetes_block_builds_a_valid_shape() {
    let src = r#"
apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata: {name: all}
spec:
  crds:
    - name: all
      apiTypes: {group: demo.example.io, version: v1, kind: All}
      operatorBox:
        onCreate:
          serviceAccounts: [{name: sa}]
          configMaps: [{name: cm, data: {k: "{{ .spec.n }}"}}]
          secrets: [{name: s, stringData: {password: x}}]
          jobs: [{name: j, image: busybox, command: [echo, hi]}]
          cronJobs: [{name: cj, image: busybox, schedule: "*/5 * * * *"}]
          statefulSets: [{name: db, image: postgres, storage: 1Gi, port: 5432}]
          ingresses: [{name: ing, host: a.example.com, serviceName: web, servicePort: 80}]
          persistentVolumeClaims: [{name: data, storage: 5Gi}]
          custom:
            - apiVersion: rbac.authorization.k8s.io/v1
              kind: ClusterRole
              metadata: {name: "{{ .metadata.name }}-reader"}
              rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
"#;
    let l = load_file(&SourceFile::new("all.yaml", src), &schemas());
    let k = l.katalog.unwrap_or_else(|| panic!("{:#?}", l.diagnostics));
    let cr = json!({"apiVersion": "demo.example.io/v1", "kind": "All",
                    "metadata": {"name": "x", "namespace": "ns", "uid": "u-1"}, "spec": {"n": 7}});
    let d = render(&k, &k.entries[0], &cr, &schemas()).unwrap();
    let kinds: Vec<&str> = d.children.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ConfigMap",
            "Secret",
            "Job",
            "CronJob",
            "StatefulSet",
            "Ingress",
            "PersistentVolumeClaim",
            "ClusterRole"
        ]
    );
    assert_eq!(
        find(&d, "ConfigMap")["data"]["k"],
        "7",
        "ConfigMap data are strings"
    );
    assert_eq!(
        find(&d, "Job")["spec"]["template"]["spec"]["restartPolicy"],
        "Never"
    );
    assert_eq!(
        find(&d, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
            ["image"],
        "busybox"
    );
    assert_eq!(
        find(&d, "StatefulSet")["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
            ["storage"],
        "1Gi"
    );
    assert_eq!(find(&d, "StatefulSet")["spec"]["serviceName"], "db");
    assert_eq!(
        find(&d, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
            ["mountPath"],
        "/data"
    );
    assert_eq!(
        find(&d, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "web"
    );
    let cr_role = find(&d, "ClusterRole");
    assert_eq!(cr_role["metadata"]["name"], "x-reader");
    assert!(
        cr_role["metadata"].get("namespace").is_none(),
        "cluster-scoped"
    );
    assert!(
        cr_role["metadata"].get("ownerReferences").is_none(),
        "a namespaced owner cannot own it"
    );
    assert_eq!(
        find(&d, "ServiceAccount")["metadata"]["ownerReferences"][0]["uid"],
        "u-1"
    );
}

/// The CRD `kubectl orkestra apply` installs: names from apiTypes, the Katalog's schema, status
/// kept (never pruned), a status subresource and Ready/Age columns. The example's hand-written
/// crd.yaml says the same.
#[test]
fn generated_crd_matches_the_example() {
    let k = katalog("app-with-database/katalog.yaml");
    let crd = orkestra_engine::crd::generate(&k.entries[0], &k.name);
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../katalogs/app-with-database/crd.yaml");
    let example: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert_eq!(crd["metadata"]["name"], example["metadata"]["name"]);
    assert_eq!(crd["spec"]["names"], example["spec"]["names"]);
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let (v, ev) = (&crd["spec"]["versions"][0], &example["spec"]["versions"][0]);
    assert_eq!(v["name"], ev["name"]);
    assert_eq!(v["subresources"], json!({"status": {}}));
    assert_eq!(v["schema"], ev["schema"]);
    let cols: Vec<&str> = v["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Ready", "Age"]);
    // Without a schema, spec keeps unknown fields.
    let w = katalog("website/katalog.yaml");
    let crd = orkestra_engine::crd::generate(&w.entries[0], &w.name);
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["x-kubernetes-preserve-unknown-fields"], json!(true));
}

/// Offline, a custom child's scope comes from the built-in kinds and from the Katalog's own
/// CRDs: a Tenant (this Katalog's cluster-scoped kind) gets no namespace and no owner reference
/// to the namespaced CR; a Widget of a group outside both is namespaced.
#[test]
fn custom_children_are_placed_by_the_katalogs_own_crd_scopes() {
    let text = r#"
apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata:
  name: scopes
spec:
  crds:
    - name: tenant
      apiTypes: {group: scopes.example.io, version: v1, kind: Tenant, plural: tenants, scope: Cluster}
      operatorBox:
        default: true
    - name: team
      apiTypes: {group: scopes.example.io, version: v1, kind: Team, plural: teams}
      operatorBox:
        onCreate:
          custom:
            - apiVersion: scopes.example.io/v1
              kind: Tenant
              metadata: {name: "{{ .metadata.name }}"}
            - apiVersion: other.example.io/v1
              kind: Tenant
              metadata: {name: "{{ .metadata.name }}-other"}
            - apiVersion: rbac.authorization.k8s.io/v1
              kind: ClusterRole
              metadata: {name: "{{ .metadata.name }}-reader"}
              rules: []
"#;
    let loaded = load_file(&SourceFile::new("scopes.yaml", text), &schemas());
    let k = loaded
        .katalog
        .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics));
    let cr = json!({"apiVersion": "scopes.example.io/v1", "kind": "Team",
        "metadata": {"name": "blue", "namespace": "team-a", "uid": "u-1"}, "spec": {}});
    let d = render_cr(&k, &cr).unwrap();
    let by_name = |n: &str| {
        &d.children
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("no {n}"))
            .object
    };
    let tenant = by_name("blue");
    assert!(tenant.pointer("/metadata/namespace").is_none(), "{tenant}");
    assert!(
        tenant.pointer("/metadata/ownerReferences").is_none(),
        "{tenant}"
    );
    let role = by_name("blue-reader");
    assert!(role.pointer("/metadata/namespace").is_none(), "{role}");
    let other = by_name("blue-other");
    assert_eq!(other["metadata"]["namespace"], "team-a");
    assert_eq!(other["metadata"]["ownerReferences"][0]["uid"], "u-1");
}
