//! `database` with `driver: postgres`: a database, its owner, its encoding (fixed at creation)
//! and the extensions it must have.
//!
//! Extensions are additive: a declared one missing is created (`CREATE EXTENSION IF NOT EXISTS`
//! in that database), one not declared is left alone, since dropping an extension drops what
//! depends on it. A database is dropped only when it is ours; one with open connections is left
//! Deleting, with the reason, until they close.

use std::time::Duration;

use orkestra_provider::plan::creation_changes;
use orkestra_provider::{
    Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome, Plan,
    PlanValue, ProviderError, State,
};
use serde_json::{json, Value};

use crate::connection::{Endpoint, PgPool};
use crate::ownership::{
    blocked_outcome, delete_guard, mark, observe_guard, plan_from_changes, tags_of,
};
use crate::postgres::{exec, exec_raw, id, location, query, shown_fields};
use crate::schema::{normalize_encoding, strings};
use crate::sql::{ident, literal};

/// How long to wait before trying again to drop a database that still has connections.
const IN_USE_REQUEUE: Duration = Duration::from_secs(30);

/// Read the database (and, when extensions are declared, its extensions).
pub(crate) async fn observe(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
    for_delete: bool,
) -> Result<Observation, ProviderError> {
    let client = pool.get(ep, None).await?;
    let rows = query(
        &client,
        "read pg_database",
        "SELECT pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding, \
         shobj_description(d.oid, 'pg_database') AS comment \
         FROM pg_database d WHERE d.datname = $1",
        &[&decl.name],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(Observation::absent());
    };
    let owner: String = row.get("owner");
    let encoding: String = row.get("encoding");
    let comment: Option<String> = row.get("comment");
    let mut obs = Observation {
        exists: true,
        id: Some(id(ep, "database", &decl.name)),
        ..Observation::default()
    };
    obs.tags = tags_of(comment.as_deref());
    obs.ownership = decl.owner.judge(&obs.tags);
    if let Some(c) = &comment {
        obs.fields.insert("comment".into(), json!(c));
    }
    obs.fields.insert("name".into(), json!(decl.name));
    obs.fields.insert("owner".into(), json!(owner));
    obs.fields.insert("encoding".into(), json!(encoding));
    obs.outputs = location(ep);
    obs.outputs.insert("name".into(), json!(decl.name));
    obs.outputs.insert("owner".into(), json!(owner));
    if !for_delete && decl.fields.contains_key("extensions") {
        let inside = pool.get(ep, Some(&decl.name)).await?;
        let rows = query(
            &inside,
            "read pg_extension",
            "SELECT extname FROM pg_extension ORDER BY extname",
            &[],
        )
        .await?;
        let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        obs.fields.insert("extensions".into(), json!(names));
    }
    Ok(obs)
}

/// Declared extensions the observation lacks.
fn missing_extensions(decl: &Declaration, obs: &Observation) -> Vec<String> {
    let have: Vec<&str> = obs
        .fields
        .get("extensions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    strings(decl, "extensions")
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !have.contains(&e.as_str()))
        .collect()
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        plan.changes = creation_changes(&shown_fields(decl), &[]);
        plan.changes.push(FieldChange::new(
            "comment",
            PlanValue::Absent,
            PlanValue::Known(json!(mark(&decl.owner))),
        ));
        if decl.management_policy == ManagementPolicy::Observe {
            plan.blocked = Some(Blocked::ObserveOnly);
        }
        return plan;
    }
    if let Some(blocked) = observe_guard(decl, obs) {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
        plan.blocked = Some(blocked);
        return plan;
    }
    let observed = |k: &str| obs.fields.get(k).filter(|v| !v.is_null());
    let mut changes = Vec::new();
    if let Some(owner) = decl.str("owner") {
        if observed("owner").and_then(Value::as_str) != Some(owner) {
            changes.push(FieldChange::new(
                "owner",
                PlanValue::from_option(observed("owner")),
                PlanValue::Known(json!(owner)),
            ));
        }
    }
    if let Some(enc) = decl.str("encoding") {
        let have = observed("encoding").and_then(Value::as_str).unwrap_or("");
        if normalize_encoding(have) != normalize_encoding(enc) {
            changes.push(
                FieldChange::new(
                    "encoding",
                    PlanValue::from_option(observed("encoding")),
                    PlanValue::Known(json!(enc)),
                )
                .forcing_replacement(),
            );
        }
    }
    let missing = missing_extensions(decl, obs);
    if !missing.is_empty() {
        let mut after: Vec<Value> = observed("extensions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        after.extend(missing.into_iter().map(Value::String));
        changes.push(FieldChange::new(
            "extensions",
            PlanValue::from_option(observed("extensions")),
            PlanValue::Known(Value::Array(after)),
        ));
    }
    if decl.management_policy != ManagementPolicy::Observe && obs.tags != decl.owner.tags() {
        changes.push(FieldChange::new(
            "comment",
            PlanValue::from_option(observed("comment")),
            PlanValue::Known(json!(mark(&decl.owner))),
        ));
    }
    plan_from_changes(decl, obs, changes)
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
    let client = pool.get(ep, None).await?;
    let name = ident(&decl.name)?;
    let mut n = 0;
    match plan.action {
        Action::Noop => {
            return Ok(Outcome::new(State::Ready)
                .id(obs.id.clone())
                .outputs(obs.outputs.clone()))
        }
        Action::Replace | Action::Delete => {
            return Ok(blocked_outcome(obs, plan, &Blocked::ReplacementRequired))
        }
        Action::Create => {
            let mut create = format!("CREATE DATABASE {name}");
            if let Some(owner) = decl.str("owner") {
                create.push_str(&format!(" OWNER {}", ident(owner)?));
            }
            if let Some(enc) = decl.str("encoding") {
                // Another encoding than template1's needs the pristine template.
                create.push_str(&format!(" ENCODING {} TEMPLATE template0", literal(enc)?));
            }
            exec(&client, "CREATE DATABASE", &create).await?;
            n += 1;
            let comment = format!(
                "COMMENT ON DATABASE {name} IS {}",
                literal(&mark(&decl.owner))?
            );
            if let Err(e) = exec(&client, "COMMENT ON DATABASE", &comment).await {
                // Unmarked, it would look like someone else's next cycle: drop what was just
                // made (empty, and ours) so the next cycle starts clean.
                let dropped = exec(&client, "DROP DATABASE", &format!("DROP DATABASE {name}"))
                    .await
                    .is_ok();
                tracing::warn!(dropped, error = %e, "marking a new database failed");
                return Err(e);
            }
            n += 1;
            n += create_extensions(pool, ep, decl, &strings(decl, "extensions")?).await?;
        }
        Action::Update => {
            let changed = |p: &str| plan.changes.iter().any(|c| c.path == p);
            if changed("comment") {
                let comment = format!(
                    "COMMENT ON DATABASE {name} IS {}",
                    literal(&mark(&decl.owner))?
                );
                exec(&client, "COMMENT ON DATABASE", &comment).await?;
                n += 1;
            }
            if let (true, Some(owner)) = (changed("owner"), decl.str("owner")) {
                exec(
                    &client,
                    "ALTER DATABASE OWNER",
                    &format!("ALTER DATABASE {name} OWNER TO {}", ident(owner)?),
                )
                .await?;
                n += 1;
            }
            if changed("extensions") {
                n += create_extensions(pool, ep, decl, &missing_extensions(decl, obs)).await?;
            }
        }
    }
    let mut outputs = location(ep);
    outputs.insert("name".into(), json!(decl.name));
    let owner = decl
        .str("owner")
        .map(str::to_string)
        .or_else(|| {
            obs.fields
                .get("owner")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| ep.username.clone());
    outputs.insert("owner".into(), json!(owner));
    Ok(Outcome::new(State::Ready)
        .id(Some(id(ep, "database", &decl.name)))
        .outputs(outputs)
        .mutations(n))
}

async fn create_extensions(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
    names: &[String],
) -> Result<u32, ProviderError> {
    if names.is_empty() {
        return Ok(0);
    }
    let inside = pool.get(ep, Some(&decl.name)).await?;
    let mut n = 0;
    for ext in names {
        exec(
            &inside,
            "CREATE EXTENSION",
            &format!("CREATE EXTENSION IF NOT EXISTS {}", ident(ext)?),
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

/// Drop (or orphan) the database.
pub(crate) async fn delete(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    // Our own connections into it would keep it from being dropped.
    pool.forget_database(ep, &decl.name).await;
    let client = pool.get(ep, None).await?;
    let statement = format!("DROP DATABASE {}", ident(&decl.name)?);
    match exec_raw(&client, "DROP DATABASE", &statement).await {
        Ok(()) => Ok(Outcome::new(State::Deleted).mutations(1)),
        Err(e) if e.sqlstate() == Some("3D000") => Ok(Outcome::new(State::Deleted).mutations(1)),
        Err(e) if e.sqlstate() == Some("55006") => {
            let e: ProviderError = e.into();
            Ok(Outcome::new(State::Deleting)
                .id(obs.id.clone())
                .message(format!(
                    "not dropped yet, other sessions are connected: {}",
                    e.short_message()
                ))
                .requeue(IN_USE_REQUEUE)
                .mutations(1))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Ownership;

    fn decl(item: Value) -> Declaration {
        crate::fixtures::decl("postgres", "database", item)
    }

    use crate::fixtures::ours as observed;

    #[test]
    fn create_shows_fields_and_the_mark_but_not_the_connection() {
        let d = decl(json!({"name": "app", "owner": "app"}));
        let plan = diff(&d, &Observation::absent());
        assert_eq!(plan.action, Action::Create);
        let text = plan.render();
        assert!(text.contains("+ owner"), "{text}");
        assert!(text.contains("owner-uid"), "{text}");
        assert!(!text.contains("connection"), "{text}");
    }

    #[test]
    fn in_sync_is_a_noop() {
        let d = decl(
            json!({"name": "app", "owner": "app", "encoding": "utf-8", "extensions": ["citext"]}),
        );
        let obs = observed(
            &d,
            json!({"owner": "app", "encoding": "UTF8", "extensions": ["citext", "plpgsql"]}),
        );
        let plan = diff(&d, &obs);
        assert!(plan.is_noop(), "{}", plan.render());
    }

    #[test]
    fn owner_and_extensions_update_encoding_forces_replacement() {
        let d = decl(json!({"name": "app", "owner": "app", "extensions": ["citext"]}));
        let obs = observed(
            &d,
            json!({"owner": "postgres", "encoding": "UTF8", "extensions": ["plpgsql"]}),
        );
        let plan = diff(&d, &obs);
        assert_eq!(plan.action, Action::Update);
        let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["owner", "extensions"]);
        let d = decl(json!({"name": "app", "encoding": "LATIN1"}));
        let plan = diff(&d, &observed(&d, json!({"encoding": "UTF8"})));
        assert_eq!(plan.action, Action::Replace);
        assert_eq!(plan.blocked, Some(Blocked::ReplacementRequired));
    }

    #[test]
    fn foreign_and_unowned_databases_are_conflicts_unless_adopted() {
        let d = decl(json!({"name": "app"}));
        let mut obs = observed(&d, json!({"owner": "x"}));
        obs.tags.clear();
        obs.ownership = Ownership::Unowned;
        assert!(matches!(diff(&d, &obs).blocked, Some(Blocked::Conflict(_))));
        let mut adopting = d.clone();
        adopting.adopt = true;
        let plan = diff(&adopting, &obs);
        assert_eq!(plan.action, Action::Update);
        assert_eq!(plan.changes[0].path, "comment");
        let mut observe_only = d.clone();
        observe_only.management_policy = ManagementPolicy::Observe;
        assert!(diff(&observe_only, &obs).changes.is_empty());
    }
}
