//! `grant` with `driver: postgres` against the real PostgreSQL: privileges on a database, a
//! schema, tables and default privileges; drift corrected both ways; someone else's role is a
//! Conflict; deleting revokes, after which the role can be dropped.

mod common;

use common::*;
use orkestra_provider::{Action, State};
use serde_json::json;

async fn has(
    pg: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> bool {
    one::<bool>(pg, sql, params).await.unwrap_or(false)
}

#[tokio::test]
async fn grants_on_a_database_a_schema_tables_and_future_tables() {
    let h = harness().await;
    let admin = h.pg("postgres").await;
    let (role, db) = (unique("reader"), unique("grantsdb"));
    let me = owner("grants");
    let kube = h.reader(vec![]);
    let base = [
        decl("user", json!({"name": role}), &me),
        decl("database", json!({"name": db}), &me),
    ];
    assert_states(
        &h.runtime.reconcile(&ctx(&kube, &[]), &base).await,
        State::Ready,
    );
    let inside = h.pg(&db).await;
    inside
        .batch_execute("CREATE SCHEMA app; CREATE TABLE app.a (x int); CREATE TABLE app.b (x int)")
        .await
        .unwrap();

    let grants = [
        decl(
            "grant",
            json!({"name": "connect", "role": role, "database": db, "privileges": ["CONNECT"]}),
            &me,
        ),
        decl(
            "grant",
            json!({"name": "usage", "role": role, "database": db, "on": "schema", "schema": "app", "privileges": ["USAGE"]}),
            &me,
        ),
        decl(
            "grant",
            json!({"name": "tables", "role": role, "database": db, "on": "tables", "schema": "app",
                   "privileges": ["select", "INSERT"], "defaultPrivileges": true}),
            &me,
        ),
    ];
    let all: Vec<_> = base.iter().chain(grants.iter()).cloned().collect();
    let planned = h.runtime.plan(&ctx(&kube, &[]), &grants).await;
    assert!(planned
        .iter()
        .all(|p| p.as_ref().unwrap().1.action == Action::Create));
    let report = h.runtime.reconcile(&ctx(&kube, &[]), &all).await;
    assert_states(&report, State::Ready);
    assert_eq!(
        report.rows[4].outputs.get("privileges"),
        Some(&json!("INSERT,SELECT"))
    );
    assert!(
        has(
            &admin,
            "SELECT has_database_privilege($1, $2, 'CONNECT')",
            &[&role, &db]
        )
        .await
    );
    assert!(
        has(
            &inside,
            "SELECT has_schema_privilege($1, 'app', 'USAGE')",
            &[&role]
        )
        .await
    );
    for t in ["app.a", "app.b"] {
        assert!(
            has(
                &inside,
                "SELECT has_table_privilege($1, $2, 'SELECT')",
                &[&role, &t]
            )
            .await,
            "{t}"
        );
        assert!(
            has(
                &inside,
                "SELECT has_table_privilege($1, $2, 'INSERT')",
                &[&role, &t]
            )
            .await,
            "{t}"
        );
        assert!(
            !has(
                &inside,
                "SELECT has_table_privilege($1, $2, 'DELETE')",
                &[&role, &t]
            )
            .await,
            "{t}"
        );
    }
    // A table the admin creates later gets the default privileges.
    inside
        .batch_execute("CREATE TABLE app.c (x int)")
        .await
        .unwrap();
    assert!(
        has(
            &inside,
            "SELECT has_table_privilege($1, 'app.c', 'SELECT')",
            &[&role]
        )
        .await
    );

    let again = h.runtime.reconcile(&ctx(&kube, &report.rows), &all).await;
    assert_states(&again, State::Ready);
    assert_eq!(again.mutations, 0, "{again:?}");

    // Drift both ways: a privilege taken away comes back, one added by hand goes.
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    inside
        .batch_execute(&format!(
            "REVOKE INSERT ON app.a FROM {r}; GRANT DELETE ON app.b TO {r}",
            r = q(&role)
        ))
        .await
        .unwrap();
    let fixed = h.runtime.reconcile(&ctx(&kube, &again.rows), &all).await;
    assert_states(&fixed, State::Ready);
    assert_eq!(fixed.mutations, 2, "{fixed:?}");
    assert!(
        has(
            &inside,
            "SELECT has_table_privilege($1, 'app.a', 'INSERT')",
            &[&role]
        )
        .await
    );
    assert!(
        !has(
            &inside,
            "SELECT has_table_privilege($1, 'app.b', 'DELETE')",
            &[&role]
        )
        .await
    );

    // Deleting revokes everything declared; then the role and the database can go.
    drop(inside);
    let deleted = h.runtime.delete_all(&ctx(&kube, &fixed.rows), &all).await;
    assert_states(&deleted, State::Deleted);
    assert_eq!(role_comment(&admin, &role).await, None);
    assert_eq!(database_comment(&admin, &db).await, None);
}

#[tokio::test]
async fn grants_to_another_owners_role_or_an_unmarked_role_are_conflicts() {
    let h = harness().await;
    let admin = h.pg("postgres").await;
    let (theirs, dba) = (unique("theirs"), unique("dba"));
    let them = owner("them");
    let kube = h.reader(vec![]);
    let their_role = decl("user", json!({"name": theirs}), &them);
    assert_states(
        &h.runtime
            .reconcile(&ctx(&kube, &[]), std::slice::from_ref(&their_role))
            .await,
        State::Ready,
    );
    admin
        .batch_execute(&format!("CREATE ROLE \"{dba}\""))
        .await
        .unwrap();
    let me = owner("me");
    let grant = |role: &str| {
        decl(
            "grant",
            json!({"name": format!("g-{role}"), "role": role, "database": "postgres", "privileges": ["CREATE"]}),
            &me,
        )
    };
    let report = h
        .runtime
        .reconcile(&ctx(&kube, &[]), &[grant(&theirs), grant(&dba)])
        .await;
    assert_states(&report, State::Conflict);
    assert_eq!(report.mutations, 0);
    assert!(
        !has(
            &admin,
            "SELECT has_database_privilege($1, 'postgres', 'CREATE')",
            &[&theirs]
        )
        .await
    );
    // With adopt: true the unmarked role may be granted to.
    let mut adopting = grant(&dba);
    adopting.adopt = true;
    let report = h
        .runtime
        .reconcile(&ctx(&kube, &[]), std::slice::from_ref(&adopting))
        .await;
    assert_states(&report, State::Ready);
    assert!(
        has(
            &admin,
            "SELECT has_database_privilege($1, 'postgres', 'CREATE')",
            &[&dba]
        )
        .await
    );
    assert_states(
        &h.runtime
            .delete_all(&ctx(&kube, &report.rows), &[adopting])
            .await,
        State::Deleted,
    );
    assert!(
        !has(
            &admin,
            "SELECT has_database_privilege($1, 'postgres', 'CREATE')",
            &[&dba]
        )
        .await
    );

    // A grantee that does not exist yet: an Error that is retried.
    let report = h
        .runtime
        .reconcile(&ctx(&kube, &[]), &[grant(&unique("notyet"))])
        .await;
    assert_states(&report, State::Error);
    assert!(
        report.rows[0].message.contains("does not exist"),
        "{:?}",
        report.rows[0]
    );
    assert!(report.requeue_after.is_some());

    h.runtime.delete_all(&ctx(&kube, &[]), &[their_role]).await;
    cleanup(&admin, &[], &[&dba]).await;
}
