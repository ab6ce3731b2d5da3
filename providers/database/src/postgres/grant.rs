//! `grant` with `driver: postgres`: privileges of one role (`role:`) on a database, a schema, or
//! tables of a schema (listed in `tables:`, or every table when not listed), and optionally the
//! default privileges on tables the admin user creates later in that schema.
//!
//! What is declared is exact for that role on those objects: a missing privilege is granted, one
//! held but not declared is revoked, so one `grant` item should cover one role's privileges on
//! one object. `ALL` stands for every privilege of the object's type.
//!
//! Grants carry no comment, so ownership is the grantee's: a grant to a role marked by this CR is
//! managed, one to another CR's role is a Conflict, one to an unmarked role (made by a DBA)
//! needs `adopt: true`. Deleting the CR revokes the declared privileges.

use std::collections::{BTreeMap, BTreeSet};

use orkestra_provider::{
    Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome, Plan,
    PlanValue, ProviderError, State,
};
use serde_json::{json, Map, Value};
use tokio_postgres::Client;

use crate::connection::{Endpoint, PgPool};
use crate::ownership::{blocked_outcome, delete_guard, observe_guard, plan_from_changes, tags_of};
use crate::postgres::{exec, id, location, query};
use crate::schema::{strings, DATABASE_PRIVILEGES, SCHEMA_PRIVILEGES, TABLE_PRIVILEGES};
use crate::sql::ident;

/// What a grant applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Database,
    Schema,
    Tables,
}

fn on(decl: &Declaration) -> On {
    match decl.str("on") {
        Some("schema") => On::Schema,
        Some("tables") => On::Tables,
        _ => On::Database,
    }
}

fn all_of(on: On) -> &'static [&'static str] {
    match on {
        On::Database => DATABASE_PRIVILEGES,
        On::Schema => SCHEMA_PRIVILEGES,
        On::Tables => TABLE_PRIVILEGES,
    }
}

/// The declared privileges, upper-cased, `ALL` expanded, sorted.
fn desired(decl: &Declaration) -> BTreeSet<String> {
    let all = all_of(on(decl));
    let mut out = BTreeSet::new();
    for p in strings(decl, "privileges").unwrap_or_default() {
        let p = p.to_ascii_uppercase();
        if p == "ALL" {
            out.extend(all.iter().map(|s| s.to_string()));
        } else {
            out.insert(p);
        }
    }
    out
}

fn schema_name(decl: &Declaration) -> &str {
    decl.str("schema").unwrap_or("public")
}

fn database_name(decl: &Declaration) -> &str {
    decl.str("database").unwrap_or_default()
}

fn set(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Privileges of `grantee` in an ACL column, by the catalog query's `acl` expression.
async fn held(
    client: &Client,
    what: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<(String, String)>, ProviderError> {
    let rows = query(client, what, sql, params).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Read the grantee's mark and the privileges it holds on the declared objects.
pub(crate) async fn observe(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
) -> Result<Observation, ProviderError> {
    let role = decl.str("role").unwrap_or_default();
    let db = database_name(decl);
    let admin = pool.get(ep, None).await?;
    let rows = query(
        &admin,
        "read pg_roles",
        "SELECT shobj_description(r.oid, 'pg_authid'), \
                EXISTS (SELECT 1 FROM pg_database WHERE datname = $2) \
         FROM pg_roles r WHERE r.rolname = $1",
        &[&role, &db],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(Observation::absent());
    };
    let comment: Option<String> = row.get(0);
    let db_exists: bool = row.get(1);
    if !db_exists {
        return Ok(Observation::absent());
    }
    let mut obs = Observation {
        id: Some(id(ep, "grant", &decl.name)),
        ..Observation::default()
    };
    obs.tags = tags_of(comment.as_deref());
    obs.ownership = decl.owner.judge(&obs.tags);
    let schema = schema_name(decl);
    let mut any = false;
    match on(decl) {
        On::Database => {
            let privs = held(
                &admin,
                "read pg_database ACL",
                "SELECT d.datname::text, a.privilege_type FROM pg_database d, \
                 aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a \
                 WHERE d.datname = $1 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2)",
                &[&db, &role],
            )
            .await?;
            let p: BTreeSet<String> = privs.into_iter().map(|(_, p)| p).collect();
            any |= !p.is_empty();
            obs.fields.insert("privileges".into(), json!(p));
        }
        On::Schema => {
            let inside = pool.get(ep, Some(db)).await?;
            let privs = held(
                &inside,
                "read pg_namespace ACL",
                "SELECT n.nspname::text, a.privilege_type FROM pg_namespace n, \
                 aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a \
                 WHERE n.nspname = $1 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2)",
                &[&schema, &role],
            )
            .await?;
            let p: BTreeSet<String> = privs.into_iter().map(|(_, p)| p).collect();
            any |= !p.is_empty();
            obs.fields.insert("privileges".into(), json!(p));
        }
        On::Tables => {
            let inside = pool.get(ep, Some(db)).await?;
            // Every table of the schema (tables, views, partitioned and foreign tables), with the
            // grantee's privileges on each (none: an empty list).
            let rows = query(
                &inside,
                "read pg_class ACL",
                "SELECT c.relname::text, \
                        ARRAY(SELECT a.privilege_type FROM \
                              aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a \
                              WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2) \
                              ORDER BY 1) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY 1",
                &[&schema, &role],
            )
            .await?;
            let listed = strings(decl, "tables").unwrap_or_default();
            let mut tables = Map::new();
            for r in &rows {
                let table: String = r.get(0);
                let privs: Vec<String> = r.get(1);
                if listed.is_empty() || listed.contains(&table) {
                    any |= !privs.is_empty();
                    tables.insert(table, json!(privs));
                }
            }
            obs.fields.insert("tables".into(), Value::Object(tables));
            if decl.bool_or("defaultPrivileges", false) {
                let privs = held(
                    &inside,
                    "read pg_default_acl",
                    "SELECT n.nspname::text, a.privilege_type FROM pg_default_acl d \
                     JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a \
                     WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
                       AND n.nspname = $1 AND d.defaclobjtype = 'r' \
                       AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2)",
                    &[&schema, &role],
                )
                .await?;
                let p: BTreeSet<String> = privs.into_iter().map(|(_, p)| p).collect();
                any |= !p.is_empty();
                obs.fields.insert("defaultPrivileges".into(), json!(p));
            }
        }
    }
    obs.exists = any;
    obs.outputs = outputs(ep, decl);
    Ok(obs)
}

fn outputs(ep: &Endpoint, decl: &Declaration) -> Map<String, Value> {
    let mut o = location(ep);
    o.insert("role".into(), json!(decl.str("role").unwrap_or_default()));
    o.insert(
        "privileges".into(),
        json!(desired(decl).into_iter().collect::<Vec<_>>().join(",")),
    );
    o
}

/// Per object path (`privileges`, `tables.orders`, `defaultPrivileges`): held and wanted.
fn targets(
    decl: &Declaration,
    obs: &Observation,
) -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let want = desired(decl);
    let mut out = BTreeMap::new();
    match on(decl) {
        On::Database | On::Schema => {
            out.insert(
                "privileges".to_string(),
                (set(obs.fields.get("privileges")), want.clone()),
            );
        }
        On::Tables => {
            let tables = obs.fields.get("tables").and_then(Value::as_object);
            let listed = strings(decl, "tables").unwrap_or_default();
            let names: BTreeSet<String> = if listed.is_empty() {
                tables
                    .map(|t| t.keys().cloned().collect())
                    .unwrap_or_default()
            } else {
                listed.into_iter().collect()
            };
            for t in names {
                let have = set(tables.and_then(|m| m.get(&t)));
                out.insert(format!("tables.{t}"), (have, want.clone()));
            }
            if decl.bool_or("defaultPrivileges", false) {
                out.insert(
                    "defaultPrivileges".to_string(),
                    (set(obs.fields.get("defaultPrivileges")), want),
                );
            }
        }
    }
    out
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    let changes: Vec<FieldChange> = targets(decl, obs)
        .into_iter()
        .filter(|(_, (have, want))| have != want)
        .map(|(path, (have, want))| {
            FieldChange::new(
                path,
                if have.is_empty() {
                    PlanValue::Absent
                } else {
                    PlanValue::Known(json!(have))
                },
                PlanValue::Known(json!(want)),
            )
        })
        .collect();
    // The grantee exists (the id is set): whose it is decides, granted anything yet or not.
    if obs.id.is_some() {
        if let Some(blocked) = observe_guard(decl, obs) {
            let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
            plan.blocked = Some(blocked);
            return plan;
        }
    }
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        plan.changes = changes;
        if plan.changes.is_empty() {
            plan.changes.push(FieldChange::new(
                "privileges",
                PlanValue::Absent,
                PlanValue::Known(json!(desired(decl))),
            ));
        }
        if decl.management_policy == ManagementPolicy::Observe {
            plan.blocked = Some(Blocked::ObserveOnly);
        }
        return plan;
    }
    let mut plan = plan_from_changes(decl, obs, changes);
    plan.notes.retain(|n| !n.starts_with("adopting"));
    plan
}

/// `ON DATABASE "d"`, `ON SCHEMA "s"`, `ON TABLE "s"."t"`.
fn object(decl: &Declaration, path: &str) -> Result<String, ProviderError> {
    Ok(match on(decl) {
        On::Database => format!("ON DATABASE {}", ident(database_name(decl))?),
        On::Schema => format!("ON SCHEMA {}", ident(schema_name(decl))?),
        On::Tables => {
            let table = path.strip_prefix("tables.").unwrap_or(path);
            format!("ON TABLE {}.{}", ident(schema_name(decl))?, ident(table)?)
        }
    })
}

/// GRANT/REVOKE statements that take `have` to `want` on `path`.
fn statements(
    decl: &Declaration,
    path: &str,
    have: &BTreeSet<String>,
    want: &BTreeSet<String>,
) -> Result<Vec<(&'static str, String)>, ProviderError> {
    let role = ident(decl.str("role").unwrap_or_default())?;
    let add: Vec<&str> = want.difference(have).map(String::as_str).collect();
    let remove: Vec<&str> = have.difference(want).map(String::as_str).collect();
    // Privilege keywords come from the schema's fixed lists (checked), never from input as-is.
    let keywords = |ps: &[&str]| -> Result<String, ProviderError> {
        let all = all_of(on(decl));
        ps.iter()
            .map(|p| {
                all.iter()
                    .find(|a| **a == *p)
                    .map(|a| a.to_string())
                    .ok_or_else(|| {
                        ProviderError::invalid_field("privileges", format!("{p:?} is unknown"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(", "))
    };
    let mut out = Vec::new();
    if path == "defaultPrivileges" {
        let prefix = format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {}",
            ident(schema_name(decl))?
        );
        if !add.is_empty() {
            out.push((
                "ALTER DEFAULT PRIVILEGES",
                format!("{prefix} GRANT {} ON TABLES TO {role}", keywords(&add)?),
            ));
        }
        if !remove.is_empty() {
            out.push((
                "ALTER DEFAULT PRIVILEGES",
                format!(
                    "{prefix} REVOKE {} ON TABLES FROM {role}",
                    keywords(&remove)?
                ),
            ));
        }
        return Ok(out);
    }
    let target = object(decl, path)?;
    if !add.is_empty() {
        out.push((
            "GRANT",
            format!("GRANT {} {target} TO {role}", keywords(&add)?),
        ));
    }
    if !remove.is_empty() {
        out.push((
            "REVOKE",
            format!("REVOKE {} {target} FROM {role}", keywords(&remove)?),
        ));
    }
    Ok(out)
}

async fn client_for(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
) -> Result<std::sync::Arc<Client>, ProviderError> {
    match on(decl) {
        On::Database => pool.get(ep, None).await,
        On::Schema | On::Tables => pool.get(ep, Some(database_name(decl))).await,
    }
}

/// Carry out `plan`.
pub(crate) async fn apply(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
) -> Result<Outcome, ProviderError> {
    if let Some(b) = &plan.blocked {
        return Ok(blocked_outcome(obs, plan, b));
    }
    if matches!(plan.action, Action::Replace | Action::Delete) {
        return Ok(blocked_outcome(obs, plan, &Blocked::ReplacementRequired));
    }
    if obs.id.is_none() {
        // Observed nothing: the grantee or the database is not there (yet).
        return Err(ProviderError::api(
            "GRANT",
            Some("42704".into()),
            format!(
                "role {:?} or database {:?} does not exist",
                decl.str("role").unwrap_or_default(),
                database_name(decl)
            ),
            true,
        ));
    }
    let mut n = 0;
    if plan.action != Action::Noop {
        let client = client_for(pool, ep, decl).await?;
        for (path, (have, want)) in targets(decl, obs) {
            if !plan.changes.iter().any(|c| c.path == path) && plan.action != Action::Create {
                continue;
            }
            for (what, statement) in statements(decl, &path, &have, &want)? {
                exec(&client, what, &statement).await?;
                n += 1;
            }
        }
    }
    Ok(Outcome::new(State::Ready)
        .id(Some(id(ep, "grant", &decl.name)))
        .outputs(outputs(ep, decl))
        .mutations(n))
}

/// Revoke the declared privileges (or leave them, per the policies).
pub(crate) async fn delete(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let client = client_for(pool, ep, decl).await?;
    let mut n = 0;
    for (path, (have, want)) in targets(decl, obs) {
        let revoke: BTreeSet<String> = have.intersection(&want).cloned().collect();
        for (what, statement) in statements(decl, &path, &revoke, &BTreeSet::new())? {
            exec(&client, what, &statement).await?;
            n += 1;
        }
    }
    Ok(Outcome::new(State::Deleted).mutations(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Ownership;

    fn decl(item: Value) -> Declaration {
        let mut item = item.as_object().cloned().unwrap();
        item.insert("role".into(), json!("app"));
        item.insert("database".into(), json!("appdb"));
        crate::fixtures::decl("postgres", "grant", Value::Object(item))
    }

    fn observed(d: &Declaration, fields: Value) -> Observation {
        Observation {
            id: Some("postgres://h:5432/grant/g".into()),
            ..crate::fixtures::ours(d, fields)
        }
    }

    #[test]
    fn database_privileges_are_exact_and_all_expands() {
        let d = decl(json!({"name": "g", "privileges": ["all"]}));
        let plan = diff(&d, &observed(&d, json!({"privileges": ["CONNECT"]})));
        assert_eq!(plan.action, Action::Update);
        assert_eq!(
            plan.changes[0].after,
            PlanValue::Known(json!(["CONNECT", "CREATE", "TEMPORARY"]))
        );
        let d = decl(json!({"name": "g", "privileges": ["CONNECT"]}));
        let obs = observed(&d, json!({"privileges": ["CONNECT", "CREATE"]}));
        let plan = diff(&d, &obs);
        let (have, want) = targets(&d, &obs).remove("privileges").unwrap();
        let st = statements(&d, "privileges", &have, &want).unwrap();
        assert_eq!(
            st,
            [(
                "REVOKE",
                "REVOKE CREATE ON DATABASE \"appdb\" FROM \"app\"".to_string()
            )]
        );
        assert_eq!(plan.action, Action::Update);
        assert!(diff(&d, &observed(&d, json!({"privileges": ["CONNECT"]}))).is_noop());
    }

    #[test]
    fn table_privileges_per_table_and_default_privileges() {
        let d = decl(
            json!({"name": "g", "on": "tables", "schema": "app", "privileges": ["SELECT"],
                            "defaultPrivileges": true}),
        );
        let obs = observed(
            &d,
            json!({"tables": {"a": ["SELECT"], "b": []}, "defaultPrivileges": []}),
        );
        let plan = diff(&d, &obs);
        let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["defaultPrivileges", "tables.b"]);
        let (have, want) = targets(&d, &obs).remove("tables.b").unwrap();
        assert_eq!(
            statements(&d, "tables.b", &have, &want).unwrap()[0].1,
            "GRANT SELECT ON TABLE \"app\".\"b\" TO \"app\""
        );
        let (have, want) = targets(&d, &obs).remove("defaultPrivileges").unwrap();
        assert_eq!(
            statements(&d, "defaultPrivileges", &have, &want).unwrap()[0].1,
            "ALTER DEFAULT PRIVILEGES IN SCHEMA \"app\" GRANT SELECT ON TABLES TO \"app\""
        );
    }

    #[test]
    fn grants_to_someone_elses_role_are_conflicts() {
        let d = decl(json!({"name": "g", "privileges": ["CONNECT"]}));
        let mut obs = observed(&d, json!({"privileges": ["CONNECT"]}));
        obs.ownership = Ownership::Foreign {
            owner: "ns/other".into(),
            uid: "u2".into(),
        };
        assert!(matches!(diff(&d, &obs).blocked, Some(Blocked::Conflict(_))));
    }
}
