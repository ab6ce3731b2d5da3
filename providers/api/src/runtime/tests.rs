//! Runtime behaviour with an in-process test provider (a test double of the Provider trait, not of
//! any cloud API): ordering, error collection, retries, cancellation, requeue, stale rows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Map};

use super::*;
use crate::plan::Action;
use crate::schema::{FieldSchema, FieldType, KindSchema, ProviderSchema};
use crate::{Journal, KubeReader, Owner};

/// Records calls; `fail_times[name]` retryable failures of observe before it succeeds;
/// names starting with "bad" fail for good; names starting with "slow" report Creating.
#[derive(Default)]
struct TestProvider {
    calls: Mutex<Vec<String>>,
    fail_times: BTreeMap<String, u32>,
    attempts: AtomicU32,
    existing: Vec<String>,
    /// Retryable failures of apply before it succeeds.
    apply_failures: AtomicU32,
    /// Existing resources that carry this CR's owner tags (the others in `existing` carry none).
    owned: Vec<String>,
    /// The ownership each diff saw.
    diffed: Mutex<Vec<Ownership>>,
}

#[async_trait]
impl Provider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }
    fn schema(&self) -> ProviderSchema {
        ProviderSchema {
            name: "test",
            kinds: vec![KindSchema {
                name: "thing",
                name_field: "name",
                fields: vec![FieldSchema::new("name", FieldType::String).required()],
                outputs: Vec::new(),
            }],
        }
    }
    async fn observe(
        &self,
        _: &ProviderContext,
        d: &Declaration,
    ) -> Result<Observation, ProviderError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("observe {}", d.name));
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.fail_times.get(&d.name).is_some_and(|&t| n < t) {
            return Err(ProviderError::api(
                "Look",
                Some("Throttling".into()),
                "slow down",
                true,
            ));
        }
        if d.name.starts_with("bad") {
            return Err(ProviderError::api(
                "Look",
                Some("AccessDenied".into()),
                "no",
                false,
            ));
        }
        Ok(Observation {
            exists: self.existing.contains(&d.name) || self.owned.contains(&d.name),
            ownership: if self.owned.contains(&d.name) {
                Ownership::Ours
            } else {
                Ownership::Unowned
            },
            ..Observation::default()
        })
    }
    fn diff(&self, d: &Declaration, obs: &Observation) -> Plan {
        self.diffed.lock().unwrap().push(obs.ownership.clone());
        Plan::new(
            "test",
            "thing",
            &d.name,
            if obs.exists {
                Action::Noop
            } else {
                Action::Create
            },
        )
    }
    async fn apply(
        &self,
        _: &ProviderContext,
        d: &Declaration,
        _: &Observation,
        _: &Plan,
    ) -> Result<Outcome, ProviderError> {
        self.calls.lock().unwrap().push(format!("apply {}", d.name));
        if self.apply_failures.load(Ordering::SeqCst) > 0 {
            self.apply_failures.fetch_sub(1, Ordering::SeqCst);
            return Err(ProviderError::api(
                "Make",
                Some("InternalError".into()),
                "oops",
                true,
            ));
        }
        Ok(if d.name.starts_with("slow") {
            Outcome::new(State::Creating).requeue(Duration::from_secs(30))
        } else {
            Outcome::new(State::Ready)
                .requeue(Duration::from_secs(600))
                .mutations(1)
        })
    }
    async fn delete(
        &self,
        _: &ProviderContext,
        d: &Declaration,
        obs: &Observation,
    ) -> Result<Outcome, ProviderError> {
        self.diffed.lock().unwrap().push(obs.ownership.clone());
        self.calls
            .lock()
            .unwrap()
            .push(format!("delete {}", d.name));
        Ok(Outcome::new(State::Deleted))
    }
}

fn decl(name: &str) -> Declaration {
    Declaration {
        provider: "test".into(),
        kind: "thing".into(),
        name: name.into(),
        fields: Map::new(),
        deletion_policy: Default::default(),
        management_policy: Default::default(),
        adopt: false,
        owner: Owner::default(),
    }
}

fn ctx() -> ProviderContext {
    ProviderContext::new("t", json!({}), KubeReader::empty())
}

fn runtime(p: TestProvider) -> (ProviderRuntime, Arc<TestProvider>) {
    let p = Arc::new(p);
    let mut rt = ProviderRuntime::new().with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    });
    rt.register(p.clone(), RateLimit::default())
        .expect("one provider per name");
    (rt, p)
}

#[tokio::test]
async fn reconciles_in_order_and_deletes_in_reverse() {
    let (rt, p) = runtime(TestProvider::default());
    let decls = [decl("a"), decl("b"), decl("c")];
    let report = rt.reconcile(&ctx(), &decls).await;
    assert!(report.all_ready());
    assert_eq!(report.mutations, 3);
    let report = rt.delete_all(&ctx(), &decls).await;
    assert!(report.delete_finished());
    let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "rows stay in declaration order");
    let calls = p.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "observe a",
            "apply a",
            "observe b",
            "apply b",
            "observe c",
            "apply c",
            "observe c",
            "delete c",
            "observe b",
            "delete b",
            "observe a",
            "delete a"
        ]
    );
}

#[tokio::test]
async fn errors_are_collected_per_resource_and_others_continue() {
    let (rt, _) = runtime(TestProvider::default());
    let mut unknown = decl("x");
    unknown.provider = "gcp".into();
    let report = rt
        .reconcile(&ctx(), &[decl("bad1"), unknown, decl("ok"), decl("slow")])
        .await;
    let states: Vec<State> = report.rows.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [State::Error, State::Error, State::Ready, State::Creating]
    );
    assert_eq!(report.rows[0].message, "Look failed: AccessDenied: no");
    assert_eq!(
        report.rows[1].message,
        "no provider is registered under this name"
    );
    assert_eq!(report.errors.len(), 2);
    assert_eq!(
        report.errors[0].to_string(),
        "test.thing \"bad1\": Look failed: AccessDenied: no"
    );
    // Smallest requeue wins: "slow" asks for 30s; non-retryable errors ask for none.
    assert_eq!(report.requeue_after, Some(Duration::from_secs(30)));
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_with_backoff() {
    let p = TestProvider {
        fail_times: BTreeMap::from([("a".to_string(), 2)]),
        ..Default::default()
    };
    let (rt, p) = runtime(p);
    let start = tokio::time::Instant::now();
    let report = rt.reconcile(&ctx(), &[decl("a")]).await;
    assert!(report.all_ready(), "{report:?}");
    assert_eq!(p.attempts.load(Ordering::SeqCst), 3);
    // Two backoffs: 50..=100ms then 100..=200ms (paused clock: exact, not machine-dependent).
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited <= Duration::from_millis(300),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_give_up_after_max_attempts_with_a_retryable_error_row() {
    let p = TestProvider {
        fail_times: BTreeMap::from([("a".to_string(), 10)]),
        ..Default::default()
    };
    let (rt, p) = runtime(p);
    let report = rt.reconcile(&ctx(), &[decl("a")]).await;
    assert_eq!(report.rows[0].state, State::Error);
    assert_eq!(p.attempts.load(Ordering::SeqCst), 3);
    assert!(report.errors[0].retryable());
    assert_eq!(report.requeue_after, Some(ERROR_REQUEUE));
}

#[tokio::test]
async fn cancellation_stops_before_calling_the_provider() {
    let (rt, p) = runtime(TestProvider::default());
    let ctx = ctx();
    ctx.cancel.cancel();
    let report = rt.reconcile(&ctx, &[decl("a")]).await;
    assert_eq!(report.rows[0].state, State::Error);
    assert_eq!(report.rows[0].message, "cancelled");
    assert!(p.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_renamed_resource_keeps_an_orphaned_row_while_it_exists() {
    let p = TestProvider {
        existing: vec!["old".into()],
        ..Default::default()
    };
    let (rt, _) = runtime(p);
    let old_row = |name: &str| StatusRow {
        provider: "test".into(),
        kind: "thing".into(),
        name: name.into(),
        id: Some(format!("id-{name}")),
        state: State::Ready,
        message: String::new(),
        last_sync_time: String::new(),
        outputs: Map::new(),
        intent: None,
        deletion_policy: None,
    };
    let previous = [old_row("old"), old_row("gone")];
    let report = rt
        .reconcile_tracking(&ctx(), &[decl("new")], &previous)
        .await;
    let rows: Vec<(&str, State)> = report
        .rows
        .iter()
        .map(|r| (r.name.as_str(), r.state))
        .collect();
    assert_eq!(
        rows,
        [("new", State::Ready), ("old", State::Orphaned)],
        "a resource already gone loses its row"
    );
    assert!(report.rows[1].message.starts_with("no longer declared (renamed to new?): left in place; a name change requires replacement"), "{}", report.rows[1].message);
    assert_eq!(report.rows[1].id.as_deref(), Some("id-old"));
}

#[tokio::test(start_paused = true)]
async fn a_retried_apply_observes_again_first() {
    let p = TestProvider {
        apply_failures: AtomicU32::new(1),
        ..Default::default()
    };
    let (rt, p) = runtime(p);
    let report = rt.reconcile(&ctx(), &[decl("a")]).await;
    assert!(report.all_ready(), "{report:?}");
    let calls = p.calls.lock().unwrap().clone();
    assert_eq!(calls, ["observe a", "apply a", "observe a", "apply a"]);
}

/// Records rows into the provider's call log (a test double of the agent's status writer), or
/// fails every time.
struct LogJournal {
    log: Arc<TestProvider>,
    fail: bool,
}

impl std::fmt::Debug for LogJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogJournal")
            .field("fail", &self.fail)
            .finish()
    }
}

#[async_trait]
impl Journal for LogJournal {
    async fn record(&self, row: &StatusRow) -> Result<(), ProviderError> {
        if self.fail {
            return Err(ProviderError::api(
                "WriteStatus",
                None,
                "the API server is away",
                true,
            ));
        }
        self.log.calls.lock().unwrap().push(format!(
            "record {} {:?} {:?}",
            row.name, row.state, row.intent
        ));
        Ok(())
    }
}

fn ctx_with(status_rows: serde_json::Value, journal: Option<LogJournal>) -> ProviderContext {
    let c = ProviderContext::new(
        "t",
        json!({"status": {"external": status_rows}}),
        KubeReader::empty(),
    );
    match journal {
        Some(j) => c.with_journal(Arc::new(j)),
        None => c,
    }
}

fn intent_row(name: &str) -> serde_json::Value {
    json!({"provider": "test", "kind": "thing", "name": name, "state": "Creating",
           "intent": "Create", "lastSyncTime": "2026-11-30T10:00:00Z"})
}

#[tokio::test]
async fn a_create_is_recorded_before_the_create_call_and_cleared_when_it_returns() {
    let (rt, p) = runtime(TestProvider::default());
    let j = LogJournal {
        log: p.clone(),
        fail: false,
    };
    let report = rt
        .reconcile(&ctx_with(json!([]), Some(j)), &[decl("a")])
        .await;
    assert!(report.all_ready(), "{report:?}");
    assert_eq!(
        p.calls.lock().unwrap().clone(),
        ["observe a", "record a Creating Some(Create)", "apply a"]
    );
    // The create returned, so the resource carries the owner tags: the row the agent writes
    // next records it without the intent (no later pass and no extra status write to clear it).
    assert_eq!(report.rows[0].intent, None);
}

#[tokio::test]
async fn an_unrecorded_create_is_not_made() {
    let (rt, p) = runtime(TestProvider::default());
    let j = LogJournal {
        log: p.clone(),
        fail: true,
    };
    let report = rt
        .reconcile(&ctx_with(json!([]), Some(j)), &[decl("a")])
        .await;
    assert_eq!(report.rows[0].state, State::Error);
    assert!(
        report.rows[0].message.contains("the API server is away"),
        "{}",
        report.rows[0].message
    );
    assert!(!p.calls.lock().unwrap().iter().any(|c| c == "apply a"));
}

#[tokio::test]
async fn an_untagged_resource_with_a_recorded_create_is_claimed() {
    let p = TestProvider {
        existing: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let (rt, p) = runtime(p);
    // "a" recorded a create (the process died before tagging); "b" did not.
    let report = rt
        .reconcile(
            &ctx_with(json!([intent_row("a")]), None),
            &[decl("a"), decl("b")],
        )
        .await;
    assert_eq!(
        p.diffed.lock().unwrap().clone(),
        [Ownership::Ours, Ownership::Unowned],
        "only the recorded create is claimed"
    );
    assert_eq!(report.rows[0].intent, Some(Intent::Create));
    assert_eq!(report.rows[1].intent, None);
}

#[tokio::test]
async fn the_intent_is_settled_once_the_resource_carries_owner_tags() {
    let p = TestProvider {
        owned: vec!["a".into()],
        ..Default::default()
    };
    let (rt, p) = runtime(p);
    let j = LogJournal {
        log: p.clone(),
        fail: false,
    };
    let report = rt
        .reconcile(&ctx_with(json!([intent_row("a")]), Some(j)), &[decl("a")])
        .await;
    assert_eq!(report.rows[0].intent, None);
    assert!(
        !p.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("record")),
        "nothing to record for an existing resource"
    );
}

#[tokio::test]
async fn a_delete_claims_the_interrupted_create_too() {
    let p = TestProvider {
        existing: vec!["a".into()],
        ..Default::default()
    };
    let (rt, p) = runtime(p);
    rt.delete_all(&ctx_with(json!([intent_row("a")]), None), &[decl("a")])
        .await;
    rt.delete_all(&ctx_with(json!([]), None), &[decl("a")])
        .await;
    assert_eq!(
        p.diffed.lock().unwrap().clone(),
        [Ownership::Ours, Ownership::Unowned],
        "delete sees the recorded create's resource as ours, and only that one"
    );
}

#[test]
fn rows_record_policies_that_keep_the_resource() {
    let mut d = decl("a");
    assert_eq!(
        StatusRow::from_outcome(&d, &Outcome::new(State::Ready)).deletion_policy,
        None
    );
    d.management_policy = crate::ManagementPolicy::Observe;
    assert_eq!(
        StatusRow::from_outcome(&d, &Outcome::new(State::Ready)).deletion_policy,
        Some(crate::DeletionPolicy::Orphan)
    );
}

#[test]
fn an_intent_is_settled_by_a_create_that_returned_and_kept_by_an_error_or_a_block() {
    let create = Plan::new("test", "thing", "a", Action::Create);
    let update = Plan::new("test", "thing", "a", Action::Update);
    let noop = Plan::new("test", "thing", "a", Action::Noop);
    let blocked = Plan {
        blocked: Some(crate::plan::Blocked::ReplacementRequired),
        ..update.clone()
    };
    let i = Some(Intent::Create);
    let ok = Outcome::new;
    assert_eq!(settled_by_apply(&create, &ok(State::Ready), i), None);
    // A long create (RDS) that was accepted carries its tags already.
    assert_eq!(settled_by_apply(&create, &ok(State::Creating), i), None);
    // The claimed resource's tags were added.
    assert_eq!(settled_by_apply(&update, &ok(State::Ready), i), None);
    assert_eq!(settled_by_apply(&create, &ok(State::Conflict), i), None);
    assert_eq!(settled_by_apply(&create, &ok(State::Error), i), i);
    assert_eq!(settled_by_apply(&blocked, &ok(State::Ready), i), i);
    assert_eq!(settled_by_apply(&noop, &ok(State::Ready), i), i);
    assert_eq!(settled_by_apply(&create, &ok(State::Ready), None), None);
}
