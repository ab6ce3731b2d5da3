//! `user` with `driver: postgres`: a role, whether it may log in, its connection limit, the
//! roles it is a member of, and its password.
//!
//! `memberOf`, when declared, is exact: memberships not listed are revoked. The password comes
//! from `passwordSecret` and is set as a SCRAM verifier ([`crate::password::scram_verifier`]);
//! whether the Secret changed since it was last set is judged from the row's `passwordVersion`
//! ([`crate::password`]), which the observation carries in as [`PasswordState`].

use std::time::Duration;

use orkestra_provider::plan::creation_changes;
use orkestra_provider::{
    Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome, Plan,
    PlanValue, ProviderError, SecretValue, State,
};
use serde_json::{json, Value};

use crate::connection::{Endpoint, PgPool};
use crate::ownership::{
    blocked_outcome, delete_guard, mark, observe_guard, plan_from_changes, tags_of,
};
use crate::password::scram_verifier;
use crate::postgres::{exec, exec_raw, id, location, query, shown_fields};
use crate::schema::strings;
use crate::sql::{ident, literal};

/// How long to wait before trying again to drop a role that still owns objects.
const IN_USE_REQUEUE: Duration = Duration::from_secs(30);

/// The password as far as a diff needs it, computed by the provider before observing.
#[derive(Clone, Default)]
pub struct PasswordState {
    /// The password the Secret holds now (None when no `passwordSecret` is declared).
    pub password: Option<SecretValue>,
    /// Its `passwordVersion`.
    pub desired: Option<String>,
    /// The `passwordVersion` the row recorded when the password was last set.
    pub recorded: Option<String>,
}

impl std::fmt::Debug for PasswordState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordState")
            .field("desired", &self.desired)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

/// Read the role.
pub(crate) async fn observe(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
    password: &PasswordState,
) -> Result<Observation, ProviderError> {
    let client = pool.get(ep, None).await?;
    let rows = query(
        &client,
        "read pg_roles",
        "SELECT r.rolcanlogin, r.rolconnlimit, shobj_description(r.oid, 'pg_authid') AS comment, \
         ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
               WHERE m.member = r.oid ORDER BY 1) AS member_of \
         FROM pg_roles r WHERE r.rolname = $1",
        &[&decl.name],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(Observation::absent());
    };
    let login: bool = row.get(0);
    let limit: i32 = row.get(1);
    let comment: Option<String> = row.get(2);
    let member_of: Vec<String> = row.get(3);
    let mut obs = Observation {
        exists: true,
        id: Some(id(ep, "role", &decl.name)),
        ..Observation::default()
    };
    obs.tags = tags_of(comment.as_deref());
    obs.ownership = decl.owner.judge(&obs.tags);
    let f = &mut obs.fields;
    if let Some(c) = &comment {
        f.insert("comment".into(), json!(c));
    }
    f.insert("name".into(), json!(decl.name));
    f.insert("login".into(), json!(login));
    f.insert("connectionLimit".into(), json!(limit));
    f.insert("memberOf".into(), json!(member_of));
    if let Some(desired) = &password.desired {
        f.insert(
            "passwordInSync".into(),
            json!(password.recorded.as_ref() == Some(desired)),
        );
        f.insert("passwordVersion".into(), json!(desired));
    }
    obs.outputs = location(ep);
    obs.outputs.insert("name".into(), json!(decl.name));
    if let Some(v) = &password.recorded {
        obs.outputs.insert("passwordVersion".into(), json!(v));
    }
    Ok(obs)
}

fn declared_members(decl: &Declaration) -> Option<Vec<String>> {
    decl.fields.contains_key("memberOf").then(|| {
        let mut m = strings(decl, "memberOf").unwrap_or_default();
        m.sort();
        m.dedup();
        m
    })
}

fn observed_members(obs: &Observation) -> Vec<String> {
    obs.fields
        .get("memberOf")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        let mut fields = shown_fields(decl);
        fields.entry("login").or_insert(json!(true));
        plan.changes = creation_changes(&fields, &["passwordSecret"]);
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
    let login = json!(decl.bool_or("login", true));
    if observed("login") != Some(&login) {
        changes.push(FieldChange::new(
            "login",
            PlanValue::from_option(observed("login")),
            PlanValue::Known(login),
        ));
    }
    if let Some(limit) = decl.fields.get("connectionLimit") {
        if observed("connectionLimit") != Some(limit) {
            changes.push(FieldChange::new(
                "connectionLimit",
                PlanValue::from_option(observed("connectionLimit")),
                PlanValue::Known(limit.clone()),
            ));
        }
    }
    if let Some(members) = declared_members(decl) {
        let have = observed_members(obs);
        if have != members {
            changes.push(FieldChange::new(
                "memberOf",
                PlanValue::Known(json!(have)),
                PlanValue::Known(json!(members)),
            ));
        }
    }
    let observe_only = decl.management_policy == ManagementPolicy::Observe;
    if !observe_only
        && decl.fields.contains_key("passwordSecret")
        && observed("passwordInSync") == Some(&json!(false))
    {
        let before = if obs.outputs.contains_key("passwordVersion") {
            PlanValue::Sensitive
        } else {
            PlanValue::Absent
        };
        changes.push(FieldChange::new("password", before, PlanValue::Sensitive));
    }
    if !observe_only && obs.tags != decl.owner.tags() {
        changes.push(FieldChange::new(
            "comment",
            PlanValue::from_option(observed("comment")),
            PlanValue::Known(json!(mark(&decl.owner))),
        ));
    }
    let mut plan = plan_from_changes(decl, obs, changes);
    if plan.changes.iter().any(|c| c.path == "password") {
        plan.notes.push(
            "the password will be set from passwordSecret (its value changed, or orkestra has not set it yet)"
                .into(),
        );
    }
    plan
}

fn role_options(decl: &Declaration) -> String {
    let mut o = String::from(if decl.bool_or("login", true) {
        "LOGIN"
    } else {
        "NOLOGIN"
    });
    if let Some(limit) = decl.int("connectionLimit") {
        o.push_str(&format!(" CONNECTION LIMIT {limit}"));
    }
    o
}

/// Carry out `plan`; `password` is the Secret's current password, when declared.
pub(crate) async fn apply(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
    password: &PasswordState,
) -> Result<Outcome, ProviderError> {
    if let Some(b) = &plan.blocked {
        return Ok(blocked_outcome(obs, plan, b));
    }
    let client = pool.get(ep, None).await?;
    let name = ident(&decl.name)?;
    let mut n = 0;
    let mut outputs = location(ep);
    outputs.insert("name".into(), json!(decl.name));
    if let Some(v) = &password.recorded {
        outputs.insert("passwordVersion".into(), json!(v));
    }
    let set_password =
        |outputs: &mut serde_json::Map<String, Value>| -> Result<String, ProviderError> {
            let secret = password.password.as_ref().ok_or_else(|| {
                ProviderError::invalid_field("passwordSecret", "the password could not be read")
            })?;
            if let Some(v) = &password.desired {
                outputs.insert("passwordVersion".into(), json!(v));
            }
            literal(&scram_verifier(secret))
        };
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
            let mut create = format!("CREATE ROLE {name} {}", role_options(decl));
            if password.password.is_some() {
                create.push_str(&format!(" PASSWORD {}", set_password(&mut outputs)?));
            }
            exec(&client, "CREATE ROLE", &create).await?;
            n += 1;
            let comment = format!("COMMENT ON ROLE {name} IS {}", literal(&mark(&decl.owner))?);
            if let Err(e) = exec(&client, "COMMENT ON ROLE", &comment).await {
                let dropped = exec(&client, "DROP ROLE", &format!("DROP ROLE {name}"))
                    .await
                    .is_ok();
                tracing::warn!(dropped, error = %e, "marking a new role failed");
                return Err(e);
            }
            n += 1;
            for m in declared_members(decl).unwrap_or_default() {
                exec(
                    &client,
                    "GRANT role",
                    &format!("GRANT {} TO {name}", ident(&m)?),
                )
                .await?;
                n += 1;
            }
        }
        Action::Update => {
            let changed = |p: &str| plan.changes.iter().any(|c| c.path == p);
            if changed("comment") {
                let comment = format!("COMMENT ON ROLE {name} IS {}", literal(&mark(&decl.owner))?);
                exec(&client, "COMMENT ON ROLE", &comment).await?;
                n += 1;
            }
            if changed("login") || changed("connectionLimit") {
                exec(
                    &client,
                    "ALTER ROLE",
                    &format!("ALTER ROLE {name} {}", role_options(decl)),
                )
                .await?;
                n += 1;
            }
            if changed("password") {
                let verifier = set_password(&mut outputs)?;
                exec(
                    &client,
                    "ALTER ROLE PASSWORD",
                    &format!("ALTER ROLE {name} PASSWORD {verifier}"),
                )
                .await?;
                n += 1;
            }
            if let (true, Some(members)) = (changed("memberOf"), declared_members(decl)) {
                let have = observed_members(obs);
                for m in members.iter().filter(|m| !have.contains(m)) {
                    exec(
                        &client,
                        "GRANT role",
                        &format!("GRANT {} TO {name}", ident(m)?),
                    )
                    .await?;
                    n += 1;
                }
                for m in have.iter().filter(|m| !members.contains(m)) {
                    exec(
                        &client,
                        "REVOKE role",
                        &format!("REVOKE {} FROM {name}", ident(m)?),
                    )
                    .await?;
                    n += 1;
                }
            }
        }
    }
    Ok(Outcome::new(State::Ready)
        .id(Some(id(ep, "role", &decl.name)))
        .outputs(outputs)
        .mutations(n))
}

/// Drop (or orphan) the role.
pub(crate) async fn delete(
    pool: &PgPool,
    ep: &Endpoint,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let client = pool.get(ep, None).await?;
    let statement = format!("DROP ROLE {}", ident(&decl.name)?);
    match exec_raw(&client, "DROP ROLE", &statement).await {
        Ok(()) => Ok(Outcome::new(State::Deleted).mutations(1)),
        Err(e) if e.sqlstate() == Some("42704") => Ok(Outcome::new(State::Deleted).mutations(1)),
        Err(e) if matches!(e.sqlstate(), Some("2BP01") | Some("55006")) => {
            let e: ProviderError = e.into();
            Ok(Outcome::new(State::Deleting)
                .id(obs.id.clone())
                .message(format!(
                    "not dropped yet, the role still owns or may use objects: {}",
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
        crate::fixtures::decl("postgres", "user", item)
    }

    use crate::fixtures::ours as observed;

    #[test]
    fn create_hides_the_password_reference() {
        let d = decl(json!({"name": "app", "passwordSecret": {"name": "pw"}}));
        let plan = diff(&d, &Observation::absent());
        let text = plan.render();
        assert!(
            text.contains("+ passwordSecret = (sensitive value)"),
            "{text}"
        );
        assert!(text.contains("+ login"), "{text}");
    }

    #[test]
    fn in_sync_is_a_noop() {
        let d = decl(
            json!({"name": "app", "passwordSecret": {"name": "pw"}, "connectionLimit": 5, "memberOf": ["b", "a"]}),
        );
        let mut obs = observed(
            &d,
            json!({"login": true, "connectionLimit": 5, "memberOf": ["a", "b"], "passwordInSync": true}),
        );
        obs.outputs.insert("passwordVersion".into(), json!("v1"));
        assert!(diff(&d, &obs).is_noop(), "{}", diff(&d, &obs).render());
    }

    #[test]
    fn a_changed_secret_sets_the_password_without_showing_it() {
        let d = decl(json!({"name": "app", "passwordSecret": {"name": "pw"}}));
        let mut obs = observed(&d, json!({"login": true, "passwordInSync": false}));
        obs.outputs.insert("passwordVersion".into(), json!("v1"));
        let plan = diff(&d, &obs);
        assert_eq!(plan.action, Action::Update);
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].before, PlanValue::Sensitive);
        assert_eq!(plan.changes[0].after, PlanValue::Sensitive);
        assert!(plan.render().contains("password will be set"));
    }

    #[test]
    fn memberships_are_exact_when_declared() {
        let d = decl(json!({"name": "app", "memberOf": ["readers"]}));
        let obs = observed(&d, json!({"login": true, "memberOf": ["writers"]}));
        let plan = diff(&d, &obs);
        assert_eq!(plan.changes[0].path, "memberOf");
        // Not declared: not managed.
        let d = decl(json!({"name": "app"}));
        assert!(diff(
            &d,
            &observed(&d, json!({"login": true, "memberOf": ["writers"]}))
        )
        .is_noop());
    }

    #[test]
    fn observe_only_reports_drift_but_never_the_password() {
        let mut d = decl(json!({"name": "app", "login": false, "passwordSecret": {"name": "pw"}}));
        d.management_policy = ManagementPolicy::Observe;
        let mut obs = observed(&d, json!({"login": true, "passwordInSync": false}));
        obs.tags.clear();
        obs.ownership = Ownership::Unowned;
        let plan = diff(&d, &obs);
        assert_eq!(plan.blocked, Some(Blocked::ObserveOnly));
        let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["login"]);
    }
}
