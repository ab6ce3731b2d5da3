//! A panic inside one CR's reconcile stays with that CR: it gets Ready=False naming the panic,
//! while other CRs of the same CRD keep reconciling.
//!
//! The panic comes from a test provider whose `observe` panics (a mock on purpose: no real
//! provider can be made to panic on demand); it is reached only for CRs whose `spec.title` is
//! `explode`, through the Katalog's `when`.

mod common;

use std::sync::Arc;

use common::*;
use orkestra_provider::schema::{FieldSchema, FieldType, KindSchema, ProviderSchema};
use orkestra_provider::{
    Action, Declaration, Observation, Outcome, Plan, Provider, ProviderContext, ProviderError,
    ProviderRuntime, RateLimit, State,
};
use orkestra_testsupport::cluster;
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Panicking;

#[async_trait::async_trait]
impl Provider for Panicking {
    fn name(&self) -> &'static str {
        "boom"
    }
    fn schema(&self) -> ProviderSchema {
        ProviderSchema {
            name: "boom",
            kinds: vec![KindSchema {
                name: "bomb",
                name_field: "name",
                fields: vec![FieldSchema::new("name", FieldType::String).required()],
                outputs: Vec::new(),
            }],
        }
    }
    async fn observe(
        &self,
        _: &ProviderContext,
        decl: &Declaration,
    ) -> Result<Observation, ProviderError> {
        panic!("test provider panics on purpose for {}", decl.name)
    }
    fn diff(&self, decl: &Declaration, _: &Observation) -> Plan {
        Plan::new("boom", "bomb", &decl.name, Action::Noop)
    }
    async fn apply(
        &self,
        _: &ProviderContext,
        _: &Declaration,
        _: &Observation,
        _: &Plan,
    ) -> Result<Outcome, ProviderError> {
        Ok(Outcome::new(State::Ready))
    }
    async fn delete(
        &self,
        _: &ProviderContext,
        _: &Declaration,
        _: &Observation,
    ) -> Result<Outcome, ProviderError> {
        Ok(Outcome::new(State::Deleted))
    }
}

#[tokio::test]
async fn a_panicking_reconcile_fails_only_its_own_cr() {
    init_logs();
    let env = cluster().await;
    // The other CRs are Ready only once their Deployments are available.
    require_node(env);
    let client = env.client().await;
    let ns = env.namespace("agent-panic").await.unwrap();
    install_katalog_crd(&client).await;
    let mut f = Fixture::load(
        "website",
        "demo.orkestra.io",
        "website-operator",
        "cr-blog.yaml",
    );
    f.katalog["spec"]["crds"]["website"]["operatorBox"]["onCreate"]["boom"] = json!([
        {"bomb": {"name": "{{ .metadata.name }}"}, "when": [{"field": "spec.title", "equals": "explode"}]}
    ]);
    install_crd(&client, &f.crd).await;
    create(&client, &f.katalog).await;

    let mut providers = ProviderRuntime::new();
    providers
        .register(Arc::new(Panicking), RateLimit::default())
        .expect("one provider per name");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(orkestra_agent::run_with(
        config(&f.id, ns.name()),
        client.clone(),
        providers,
        shutdown.clone(),
    ));

    let crs = cr_api(&client, &f, ns.name());
    let mut bad = f.cr_in(ns.name(), "explodes");
    bad["spec"]["title"] = json!("explode");
    create(&client, &bad).await;
    create(&client, &f.cr_in(ns.name(), "calm")).await;
    let cr = wait_cr(&crs, "explodes", "Ready=False after the panic", |v| {
        ready_of(v).is_some_and(|r| r.1 == "ReconcilePanicked")
    })
    .await;
    assert!(
        ready_of(&cr).unwrap().2.contains("panics on purpose"),
        "{}",
        cr["status"]
    );
    wait_cr(&crs, "calm", "the other CR Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;
    // After the panic the controller still serves new CRs.
    create(&client, &f.cr_in(ns.name(), "after")).await;
    wait_cr(&crs, "after", "a CR created after the panic Ready", |v| {
        ready_of(v).is_some_and(|r| r.0 == "True")
    })
    .await;

    shutdown.cancel();
    task.await.unwrap().unwrap();
    // The panicking CR keeps its finalizer (its cleanup would panic again); remove it by hand.
    let _ = crs
        .patch(
            "explodes",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await;
    ns.cleanup().await.unwrap();
}
