//! A no-op reconcile makes zero writes, counted by PostgreSQL itself.
//!
//! The count: the server's next transaction id, `pg_snapshot_xmax(pg_current_snapshot())`.
//! PostgreSQL assigns a transaction id to every transaction that writes anything (a row, a
//! catalog entry, a comment, a role's password, a grant), and never to a read-only one, so a
//! window in which the next id does not move is a window in which nothing in the whole cluster
//! was written. Reading it assigns none. This test binary holds this one test only, so no other
//! test writes during the window; a window disturbed by a background writer (an autovacuum
//! ANALYZE) is measured again, up to three times, and a provider write would show in every one.
//! As a control, a real change in the same setup moves the counter.

mod common;

use common::*;
use orkestra_provider::State;
use serde_json::json;

async fn next_xid(pg: &tokio_postgres::Client) -> i64 {
    one::<String>(
        pg,
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text",
        &[],
    )
    .await
    .and_then(|s| s.parse().ok())
    .expect("a transaction id")
}

#[tokio::test]
async fn a_noop_reconcile_assigns_no_transaction_id_on_the_server() {
    let h = harness().await;
    let pg = h.pg("postgres").await;
    let (role, reader, db) = (unique("noop"), unique("noopro"), unique("noopdb"));
    let me = owner("noop");
    let kube = h.reader(vec![secret("noop-pw", &[("password", "Noop-pw-1")])]);
    let decls = [
        decl("user", json!({"name": reader, "login": false}), &me),
        decl(
            "user",
            json!({"name": role, "passwordSecret": {"name": "noop-pw"}, "connectionLimit": 10,
                   "memberOf": [reader]}),
            &me,
        ),
        decl(
            "database",
            json!({"name": db, "owner": role, "encoding": "UTF8", "extensions": ["citext"]}),
            &me,
        ),
    ];
    let created = h.runtime.reconcile(&ctx(&kube, &[]), &decls).await;
    assert_states(&created, State::Ready);
    let mut rows = created.rows.clone();

    let cycles = 5;
    let mut measured = None;
    for window in 1..=3 {
        let before = next_xid(&pg).await;
        let mut mutations = 0;
        for _ in 0..cycles {
            let report = h.runtime.reconcile(&ctx(&kube, &rows), &decls).await;
            assert_states(&report, State::Ready);
            mutations += report.mutations;
            rows = report.rows;
        }
        let after = next_xid(&pg).await;
        assert_eq!(mutations, 0, "the provider reported mutating calls");
        println!(
            "window {window}: {cycles} no-op cycles x {} declarations: {} transaction ids assigned on the server, {mutations} mutations reported",
            decls.len(),
            after - before
        );
        if after == before {
            measured = Some(after - before);
            break;
        }
    }
    assert_eq!(measured, Some(0), "a no-op reconcile wrote to the server");

    // Control: a real change moves the counter.
    let before = next_xid(&pg).await;
    let changed = decl(
        "user",
        json!({"name": role, "passwordSecret": {"name": "noop-pw"}, "connectionLimit": 11,
               "memberOf": [reader]}),
        &me,
    );
    let report = h
        .runtime
        .reconcile(
            &ctx(&kube, &rows),
            &[decls[0].clone(), changed.clone(), decls[2].clone()],
        )
        .await;
    assert_states(&report, State::Ready);
    let after = next_xid(&pg).await;
    println!(
        "control: one ALTER ROLE: {} transaction id(s) assigned, {} mutation(s) reported",
        after - before,
        report.mutations
    );
    assert_eq!(report.mutations, 1);
    assert!(after > before, "the counter did not see a real write");

    let deleted = h
        .runtime
        .delete_all(
            &ctx(&kube, &report.rows),
            &[decls[0].clone(), changed, decls[2].clone()],
        )
        .await;
    assert_states(&deleted, State::Deleted);
}
