//! `database` with `driver: postgres` against the real PostgreSQL of the test systems: create,
//! no-op, update, conflict, adoption, Observe, Orphan, delete of what is gone, password rotation,
//! injection attempts, and bad input. Every test uses its own names and owner uid, so tests
//! share one server safely.

mod common;

use common::*;
use orkestra_provider::{Action, Blocked, ManagementPolicy, State};
use serde_json::json;

#[tokio::test]
async fn create_noop_update_and_delete_a_role_and_its_database() {
    let h = harness().await;
    let pg = h.pg("postgres").await;
    let (role, db) = (unique("app"), unique("appdb"));
    let me = owner("web");
    let kube = h.reader(vec![secret("app-pw", &[("password", "first-Pa55")])]);
    let user = decl(
        "user",
        json!({"name": role, "passwordSecret": {"name": "app-pw"}, "connectionLimit": 5}),
        &me,
    );
    let database = decl(
        "database",
        json!({"name": db, "owner": role, "encoding": "UTF8", "extensions": ["citext"]}),
        &me,
    );
    let decls = [user.clone(), database.clone()];

    // Plan first: Create for both, nothing changed on the server, the password hidden.
    let planned = h.runtime.plan(&ctx(&kube, &[]), &decls).await;
    let plans: Vec<_> = planned
        .iter()
        .map(|p| p.as_ref().unwrap().1.clone())
        .collect();
    assert!(plans.iter().all(|p| p.action == Action::Create));
    let text = plans[0].render();
    assert!(
        text.lines()
            .any(|l| l.contains("+ passwordSecret") && l.ends_with("= (sensitive value)")),
        "{text}"
    );
    assert!(!text.contains("first-Pa55"), "{text}");
    assert_eq!(role_comment(&pg, &role).await, None);

    let report = h.runtime.reconcile(&ctx(&kube, &[]), &decls).await;
    assert_states(&report, State::Ready);
    assert!(report.mutations >= 4, "{report:?}");
    let row = &report.rows[0];
    assert_eq!(row.outputs.get("name"), Some(&json!(role)));
    assert!(row.outputs.get("passwordVersion").is_some());
    assert_eq!(report.rows[1].outputs.get("owner"), Some(&json!(role)));
    let rows_json = serde_json::to_string(&report.rows).unwrap();
    assert!(!rows_json.contains("first-Pa55"), "{rows_json}");

    // On the server: the role logs in with the Secret's password, both objects carry the mark.
    let comment = role_comment(&pg, &role).await.flatten().unwrap();
    let mark: serde_json::Value = serde_json::from_str(&comment).unwrap();
    assert_eq!(mark["orkestra.orkspace.io/owner-uid"], json!(me.uid));
    assert_eq!(mark["orkestra.orkspace.io/owner"], json!("shop/web"));
    assert!(database_comment(&pg, &db)
        .await
        .flatten()
        .unwrap()
        .contains(&me.uid));
    let limit: Option<i32> = one(
        &pg,
        "SELECT rolconnlimit FROM pg_roles WHERE rolname = $1",
        &[&role],
    )
    .await;
    assert_eq!(limit, Some(5));
    let owner_of: Option<String> = one(
        &pg,
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
        &[&db],
    )
    .await;
    assert_eq!(owner_of.as_deref(), Some(role.as_str()));
    let as_app = connect(&h.server, &role, "first-Pa55", &db)
        .await
        .expect("login as the role");
    let ext: Option<String> = one(
        &as_app,
        "SELECT extname::text FROM pg_extension WHERE extname = 'citext'",
        &[],
    )
    .await;
    assert_eq!(ext.as_deref(), Some("citext"));
    drop(as_app);

    // A second cycle with nothing changed: no-op plans, no mutation.
    let again = h.runtime.reconcile(&ctx(&kube, &report.rows), &decls).await;
    assert_states(&again, State::Ready);
    assert_eq!(again.mutations, 0, "{again:?}");
    assert_eq!(again.rows[0].outputs, report.rows[0].outputs);

    // Update: connection limit and login change in place.
    let changed = decl(
        "user",
        json!({"name": role, "passwordSecret": {"name": "app-pw"}, "connectionLimit": 7, "login": false}),
        &me,
    );
    let planned = h
        .runtime
        .plan(&ctx(&kube, &again.rows), std::slice::from_ref(&changed))
        .await;
    let plan = &planned[0].as_ref().unwrap().1;
    assert_eq!(plan.action, Action::Update, "{}", plan.render());
    let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["login", "connectionLimit"]);
    let updated = h
        .runtime
        .reconcile(
            &ctx(&kube, &again.rows),
            &[changed.clone(), database.clone()],
        )
        .await;
    assert_states(&updated, State::Ready);
    assert_eq!(updated.mutations, 1, "one ALTER ROLE: {updated:?}");
    let (login, limit): (bool, i32) = {
        let r = pg
            .query_one(
                "SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = $1",
                &[&role],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((login, limit), (false, 7));

    // Delete: the database (declared after) goes first, then the role.
    let deleted = h
        .runtime
        .delete_all(
            &ctx(&kube, &updated.rows),
            &[changed.clone(), database.clone()],
        )
        .await;
    assert_states(&deleted, State::Deleted);
    assert!(deleted.delete_finished());
    assert_eq!(database_comment(&pg, &db).await, None);
    assert_eq!(role_comment(&pg, &role).await, None);

    // Deleting what is already gone is success, with nothing done.
    let gone = h
        .runtime
        .delete_all(&ctx(&kube, &[]), &[changed, database])
        .await;
    assert_states(&gone, State::Deleted);
    assert_eq!(gone.mutations, 0);
}

#[tokio::test]
async fn a_changed_secret_rotates_the_password() {
    let h = harness().await;
    let pg = h.pg("postgres").await;
    let role = unique("rot");
    let me = owner("rot");
    let user = decl(
        "user",
        json!({"name": role, "passwordSecret": {"name": "rot-pw", "key": "pw"}}),
        &me,
    );
    let first = h.reader(vec![secret("rot-pw", &[("pw", "old-Secret-1")])]);
    let created = h
        .runtime
        .reconcile(&ctx(&first, &[]), std::slice::from_ref(&user))
        .await;
    assert_states(&created, State::Ready);
    connect(&h.server, &role, "old-Secret-1", "postgres")
        .await
        .expect("old password works");
    let v1 = created.rows[0].outputs["passwordVersion"].clone();

    // Same Secret: nothing to do.
    let same = h
        .runtime
        .reconcile(&ctx(&first, &created.rows), std::slice::from_ref(&user))
        .await;
    assert_eq!(same.mutations, 0);

    // The Secret changes: the plan says the password will be set (without showing either).
    let second = h.reader(vec![secret("rot-pw", &[("pw", "new-Secret-2")])]);
    let planned = h
        .runtime
        .plan(&ctx(&second, &same.rows), std::slice::from_ref(&user))
        .await;
    let plan = &planned[0].as_ref().unwrap().1;
    assert_eq!(plan.action, Action::Update);
    let text = plan.render();
    assert!(
        text.contains("~ password = (sensitive value) -> (sensitive value)"),
        "{text}"
    );
    assert!(!text.contains("Secret-"), "{text}");

    let rotated = h
        .runtime
        .reconcile(&ctx(&second, &same.rows), std::slice::from_ref(&user))
        .await;
    assert_states(&rotated, State::Ready);
    assert_eq!(rotated.mutations, 1, "one ALTER ROLE PASSWORD");
    let v2 = rotated.rows[0].outputs["passwordVersion"].clone();
    assert_ne!(v1, v2);
    connect(&h.server, &role, "new-Secret-2", "postgres")
        .await
        .expect("new password works");
    let old = connect(&h.server, &role, "old-Secret-1", "postgres").await;
    assert!(old.is_err(), "the old password no longer works");
    let json = serde_json::to_string(&rotated.rows).unwrap();
    assert!(!json.contains("Secret-"), "{json}");

    // The server stores a SCRAM verifier, never the clear text.
    let stored: Option<String> = one(
        &pg,
        "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
        &[&role],
    )
    .await;
    assert!(stored.unwrap().starts_with("SCRAM-SHA-256$"));

    // Converged after the rotation.
    let after = h
        .runtime
        .reconcile(&ctx(&second, &rotated.rows), std::slice::from_ref(&user))
        .await;
    assert_eq!(after.mutations, 0);
    h.runtime
        .delete_all(&ctx(&second, &after.rows), &[user])
        .await;
    cleanup(&pg, &[], &[&role]).await;
}

#[tokio::test]
async fn another_owners_objects_are_conflicts_and_are_never_touched() {
    let h = harness().await;
    let pg = h.pg("postgres").await;
    let (role, db) = (unique("theirs"), unique("theirsdb"));
    let them = owner("them");
    let kube = h.reader(vec![]);
    // Made by another CR.
    let theirs = [
        decl("user", json!({"name": role, "connectionLimit": 3}), &them),
        decl("database", json!({"name": db}), &them),
    ];
    assert_states(
        &h.runtime.reconcile(&ctx(&kube, &[]), &theirs).await,
        State::Ready,
    );

    let me = owner("me");
    let mine = [
        decl("user", json!({"name": role, "connectionLimit": 9}), &me),
        decl("database", json!({"name": db, "owner": role}), &me),
    ];
    let report = h.runtime.reconcile(&ctx(&kube, &[]), &mine).await;
    assert_states(&report, State::Conflict);
    assert!(
        report.rows[0].message.contains("belongs to shop/them"),
        "{:?}",
        report.rows[0]
    );
    assert_eq!(report.mutations, 0);
    let limit: Option<i32> = one(
        &pg,
        "SELECT rolconnlimit FROM pg_roles WHERE rolname = $1",
        &[&role],
    )
    .await;
    assert_eq!(limit, Some(3), "not modified");

    // Adopting does not take what is someone else's either.
    let mut adopting = mine.clone();
    for d in &mut adopting {
        d.adopt = true;
    }
    assert_states(
        &h.runtime.reconcile(&ctx(&kube, &[]), &adopting).await,
        State::Conflict,
    );

    // Deleting my CR leaves them alone.
    let deleted = h.runtime.delete_all(&ctx(&kube, &[]), &mine).await;
    assert_states(&deleted, State::Conflict);
    assert!(deleted.delete_finished());
    assert!(role_comment(&pg, &role).await.is_some());
    assert!(database_comment(&pg, &db).await.is_some());

    let gone = h.runtime.delete_all(&ctx(&kube, &[]), &theirs).await;
    assert_states(&gone, State::Deleted);
}

#[tokio::test]
async fn unowned_objects_are_adopted_only_with_adopt_true() {
    let h = harness().await;
    let pg = h.pg("postgres").await;
    let (role, db) = (unique("legacy"), unique("legacydb"));
    pg.batch_execute(&format!(
        "CREATE ROLE \"{role}\" LOGIN; COMMENT ON ROLE \"{role}\" IS 'made by the DBA'; \
"
    ))
    .await
    .unwrap();
    pg.batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .await
        .unwrap();
    let me = owner("adopter");
    let kube = h.reader(vec![secret("legacy-pw", &[("password", "adopted-Pw-1")])]);
    let decls = [
        decl(
            "user",
            json!({"name": role, "passwordSecret": {"name": "legacy-pw"}}),
            &me,
        ),
        decl("database", json!({"name": db, "owner": role}), &me),
    ];
    let refused = h.runtime.reconcile(&ctx(&kube, &[]), &decls).await;
    assert_states(&refused, State::Conflict);
    assert!(
        refused.rows[0].message.contains("set adopt: true"),
        "{:?}",
        refused.rows[0]
    );
    assert_eq!(
        role_comment(&pg, &role).await,
        Some(Some("made by the DBA".into()))
    );

    let mut adopting = decls.clone();
    for d in &mut adopting {
        d.adopt = true;
    }
    let planned = h.runtime.plan(&ctx(&kube, &[]), &adopting).await;
    let plan = &planned[0].as_ref().unwrap().1;
    assert_eq!(plan.action, Action::Update);
    assert!(plan.render().contains("adopting"), "{}", plan.render());
    let adopted = h.runtime.reconcile(&ctx(&kube, &[]), &adopting).await;
    assert_states(&adopted, State::Ready);
    assert!(role_comment(&pg, &role)
        .await
        .flatten()
        .unwrap()
        .contains(&me.uid));
    connect(&h.server, &role, "adopted-Pw-1", "postgres")
        .await
        .expect("the password was set");
    // Once adopted it is ours: the plain declaration (adopt unset) manages it.
    let again = h
        .runtime
        .reconcile(&ctx(&kube, &adopted.rows), &decls)
        .await;
    assert_states(&again, State::Ready);
    assert_eq!(again.mutations, 0);
    let deleted = h.runtime.delete_all(&ctx(&kube, &again.rows), &decls).await;
    assert_states(&deleted, State::Deleted);
    assert_eq!(role_comment(&pg, &role).await, None);
}

#[tokio::test]
async fn observe_only_reads_and_orphan_leaves_in_place() {
    let h = harness().await;
    let pg = h.pg("postgres").await;
    let role = unique("watched");
    pg.batch_execute(&format!(
        "CREATE ROLE \"{role}\" NOLOGIN CONNECTION LIMIT 2"
    ))
    .await
    .unwrap();
    let me = owner("watcher");
    let kube = h.reader(vec![]);
    let mut watched = decl("user", json!({"name": role, "connectionLimit": 4}), &me);
    watched.management_policy = ManagementPolicy::Observe;
    let report = h
        .runtime
        .reconcile(&ctx(&kube, &[]), std::slice::from_ref(&watched))
        .await;
    assert_states(&report, State::Ready);
    let msg = &report.rows[0].message;
    assert!(
        msg.contains("drift not corrected (managementPolicy: Observe)"),
        "{msg}"
    );
    assert!(msg.contains("connectionLimit 2 -> 4"), "{msg}");
    assert_eq!(report.mutations, 0);
    assert_eq!(
        role_comment(&pg, &role).await,
        Some(None),
        "no mark written"
    );
    let deleted = h
        .runtime
        .delete_all(&ctx(&kube, &[]), std::slice::from_ref(&watched))
        .await;
    assert_states(&deleted, State::Orphaned);
    assert!(role_comment(&pg, &role).await.is_some(), "left in place");

    // Observe of something absent is an Error that says so.
    let mut missing = decl("user", json!({"name": unique("absent")}), &me);
    missing.management_policy = ManagementPolicy::Observe;
    let report = h.runtime.reconcile(&ctx(&kube, &[]), &[missing]).await;
    assert_states(&report, State::Error);
    assert!(report.rows[0].message.contains("Observe never creates"));

    // Orphan: created, then left behind on delete.
    let kept = unique("kept");
    let mut orphan = decl("database", json!({"name": kept}), &me);
    orphan.deletion_policy = orkestra_provider::DeletionPolicy::Orphan;
    assert_states(
        &h.runtime
            .reconcile(&ctx(&kube, &[]), std::slice::from_ref(&orphan))
            .await,
        State::Ready,
    );
    let deleted = h
        .runtime
        .delete_all(&ctx(&kube, &[]), std::slice::from_ref(&orphan))
        .await;
    assert_states(&deleted, State::Orphaned);
    assert!(database_comment(&pg, &kept).await.is_some());
    cleanup(&pg, &[&kept], &[&role]).await;
}

#[tokio::test]
async fn sql_and_json_injection_in_names_and_options_stays_inert() {
    let h = harness().await;
    let pg = h.pg("postgres").await;
    let tag = unique("inj");
    // Each name tries to end the quoted identifier or literal and run its own statement.
    let role = format!("r{tag}\"; DROP ROLE postgres; --");
    let db = format!("d{tag}'; DROP DATABASE postgres; --");
    let member = format!("m{tag}\\' OR '1'='1");
    pg.batch_execute(&format!("CREATE ROLE \"{}\"", member.replace('"', "\"\"")))
        .await
        .unwrap();
    // The owner's name tries to add keys to the JSON mark.
    let mut me = owner("x\",\"orkestra.orkspace.io/owner-uid\":\"stolen");
    me.katalog = "k'; DROP TABLE x; --".into();
    let password = "pw'; ALTER ROLE postgres PASSWORD 'owned'; --\\";
    let kube = h.reader(vec![secret("inj-pw", &[("password", password)])]);
    let decls = [
        decl(
            "user",
            json!({"name": role, "passwordSecret": {"name": "inj-pw"}, "memberOf": [member]}),
            &me,
        ),
        decl(
            "database",
            json!({"name": db, "owner": role, "extensions": ["citext\"; DROP"]}),
            &me,
        ),
    ];
    // The extension name is quoted too: the server looks for an extension of that exact name.
    let report = h.runtime.reconcile(&ctx(&kube, &[]), &decls).await;
    assert_eq!(report.rows[0].state, State::Ready, "{report:?}");
    assert_eq!(report.rows[1].state, State::Error, "{report:?}");
    assert!(
        report.rows[1]
            .message
            .contains("extension \"citext\"; DROP\""),
        "{}",
        report.rows[1].message
    );
    // Exactly the declared names exist; postgres is untouched.
    let n: Option<i64> = one(
        &pg,
        "SELECT count(*) FROM pg_roles WHERE rolname = $1",
        &[&role],
    )
    .await;
    assert_eq!(n, Some(1));
    assert!(database_comment(&pg, &db).await.is_some());
    assert!(
        one::<i64>(
            &pg,
            "SELECT count(*) FROM pg_database WHERE datname = 'postgres'",
            &[]
        )
        .await
            == Some(1)
    );
    connect(&h.server, &role, password, "postgres")
        .await
        .expect("the exact password was set");
    connect(&h.server, &h.server.user, &h.server.password, "postgres")
        .await
        .expect("the admin's password is unchanged");
    let member_of: Option<bool> = one(
        &pg,
        "SELECT pg_has_role($1, $2, 'MEMBER')",
        &[&role, &member],
    )
    .await;
    assert_eq!(member_of, Some(true));
    // The mark parses back to exactly the owner's tags.
    let comment = role_comment(&pg, &role).await.flatten().unwrap();
    let mark: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&comment).unwrap();
    assert_eq!(mark.len(), 3, "{comment}");
    assert_eq!(mark["orkestra.orkspace.io/owner-uid"], json!(me.uid));
    // The second cycle still sees it as ours.
    let fixed = [
        decls[0].clone(),
        decl("database", json!({"name": db, "owner": role}), &me),
    ];
    let again = h.runtime.reconcile(&ctx(&kube, &report.rows), &fixed).await;
    assert_states(&again, State::Ready);
    assert_eq!(again.mutations, 0, "{again:?}");
    let deleted = h.runtime.delete_all(&ctx(&kube, &again.rows), &fixed).await;
    assert_states(&deleted, State::Deleted);
    cleanup(&pg, &[&db], &[&role, &member]).await;
}

#[tokio::test]
async fn unreachable_servers_wrong_credentials_and_missing_secrets_are_error_rows() {
    let h = harness().await;
    let me = owner("bad");
    let closed_port = orkestra_testsupport::free_port();
    let kube = h.reader(vec![
        secret(
            "unreachable",
            &[
                ("host", "127.0.0.1"),
                ("port", &closed_port.to_string()),
                ("username", "postgres"),
                ("password", "x"),
                ("sslmode", "disable"),
            ],
        ),
        secret(
            "wrong",
            &[
                ("host", &h.server.host),
                ("port", &h.server.port.to_string()),
                ("username", &h.server.user),
                ("password", "definitely-Wrong-pw"),
                ("sslmode", "disable"),
            ],
        ),
    ]);
    let good = unique("good");
    let decls = [
        decl(
            "database",
            json!({"name": unique("u1"), "connection": {"secretName": "unreachable"}}),
            &me,
        ),
        decl(
            "database",
            json!({"name": unique("u2"), "connection": {"secretName": "wrong"}}),
            &me,
        ),
        decl(
            "database",
            json!({"name": unique("u3"), "connection": {"secretName": "missing"}}),
            &me,
        ),
        decl(
            "user",
            json!({"name": unique("u4"), "passwordSecret": {"name": "missing-pw"}}),
            &me,
        ),
        decl("database", json!({"name": good}), &me),
    ];
    let report = h.runtime.reconcile(&ctx(&kube, &[]), &decls).await;
    let states: Vec<State> = report.rows.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            State::Error,
            State::Error,
            State::Error,
            State::Error,
            State::Ready
        ],
        "{report:?}"
    );
    let msg = |i: usize| report.rows[i].message.clone();
    assert!(
        msg(0).contains(&format!("connect to 127.0.0.1:{closed_port}")),
        "{}",
        msg(0)
    );
    assert!(msg(1).contains("28P01"), "{}", msg(1));
    assert!(
        msg(1).contains("password authentication failed"),
        "{}",
        msg(1)
    );
    assert!(!msg(1).contains("definitely-Wrong-pw"), "{}", msg(1));
    assert_eq!(msg(2), "Secret shop/missing: not found");
    assert_eq!(msg(3), "Secret shop/missing-pw: not found");
    // Every one of them is retried: within the cycle with backoff, and again after it.
    assert!(
        report.errors.iter().take(4).all(|e| e.retryable()),
        "{:?}",
        report.errors
    );
    assert_eq!(
        report.requeue_after,
        Some(std::time::Duration::from_secs(30))
    );
    let gone = h
        .runtime
        .delete_all(&ctx(&kube, &report.rows), &decls[4..])
        .await;
    assert_states(&gone, State::Deleted);
}

/// The test server has no TLS: `prefer` falls back to plain TCP (libpq's meaning) and converges;
/// `require` refuses the plain connection, an Error row that says why.
#[tokio::test]
async fn sslmode_prefer_falls_back_and_require_refuses_a_server_without_tls() {
    let h = harness().await;
    let me = owner("tls");
    let port = h.server.port.to_string();
    let with_mode = |name: &str, mode: &str| {
        secret(
            name,
            &[
                ("host", h.server.host.as_str()),
                ("port", port.as_str()),
                ("username", h.server.user.as_str()),
                ("password", h.server.password.as_str()),
                ("sslmode", mode),
            ],
        )
    };
    let kube = h.reader(vec![
        with_mode("prefer", "prefer"),
        with_mode("require", "require"),
    ]);
    let decls = [
        decl(
            "database",
            json!({"name": unique("tlsp"), "connection": {"secretName": "prefer"}}),
            &me,
        ),
        decl(
            "database",
            json!({"name": unique("tlsr"), "connection": {"secretName": "require"}}),
            &me,
        ),
    ];
    let report = h.runtime.reconcile(&ctx(&kube, &[]), &decls).await;
    assert_eq!(report.rows[0].state, State::Ready, "{report:?}");
    assert_eq!(report.rows[1].state, State::Error, "{report:?}");
    let msg = &report.rows[1].message;
    assert!(
        msg.starts_with(&format!("connect to {}:{port}", h.server.host)),
        "{msg}"
    );
    assert!(msg.contains("TLS"), "{msg}");
    let gone = h
        .runtime
        .delete_all(&ctx(&kube, &report.rows), &decls[..1])
        .await;
    assert_states(&gone, State::Deleted);
}

#[tokio::test]
async fn a_replacement_is_reported_never_done() {
    let h = harness().await;
    let pg = h.pg("postgres").await;
    let db = unique("enc");
    let me = owner("enc");
    let kube = h.reader(vec![]);
    let first = decl("database", json!({"name": db, "encoding": "UTF8"}), &me);
    assert_states(
        &h.runtime
            .reconcile(&ctx(&kube, &[]), std::slice::from_ref(&first))
            .await,
        State::Ready,
    );
    let other = decl(
        "database",
        json!({"name": db, "encoding": "SQL_ASCII"}),
        &me,
    );
    let planned = h
        .runtime
        .plan(&ctx(&kube, &[]), std::slice::from_ref(&other))
        .await;
    let plan = &planned[0].as_ref().unwrap().1;
    assert_eq!(plan.action, Action::Replace);
    assert_eq!(plan.blocked, Some(Blocked::ReplacementRequired));
    assert!(
        plan.render().contains("# forces replacement"),
        "{}",
        plan.render()
    );
    let report = h
        .runtime
        .reconcile(&ctx(&kube, &[]), std::slice::from_ref(&other))
        .await;
    assert_states(&report, State::Error);
    assert!(
        report.rows[0]
            .message
            .contains("requires replacement: encoding"),
        "{:?}",
        report.rows[0]
    );
    assert_eq!(report.mutations, 0);
    cleanup(&pg, &[&db], &[]).await;
}
