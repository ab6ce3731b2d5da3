//! `aws.iamAttachment`: one managed policy attached to one role.
//!
//! An attachment is the pair (`role`, `policyArn`); IAM keeps no other record of it and it
//! carries no tags. So:
//!
//! - Ownership: an attachment is ours when its role is ours (the role's owner tags). Attaching
//!   changes the role, so a role that is not ours is never attached to (Conflict) unless
//!   `adopt: true`, and an attachment on such a role is never detached.
//! - Naming: the row is named by the declaration's `name` label, and its id is
//!   `ROLE/POLICY-ARN` (role names cannot contain `/`). When a later cycle finds a different
//!   pair declared under the same label while the recorded pair is still attached, the recorded
//!   pair is what exists: the plan shows `role`/`policyArn` as forcing replacement and nothing
//!   is attached or detached (a new label makes a new attachment; the old row is then reported
//!   as no longer declared). A delete detaches the recorded pair, the one this row attached.
//! - Observing costs GetRole (for the owner tags) and ListAttachedRolePolicies.

use aws_sdk_iam::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::{
    policy, Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome,
    Plan, PlanValue, ProviderError, State,
};
use serde_json::{json, Map, Value};

use crate::error::sdk_error;
use crate::ownership::plan_from_changes;

/// How roles mark what they own (for the policy messages).
const MARK: &str = "owner tags";
/// `Observation::status` of an attachment whose role does not exist.
const ROLE_MISSING: &str = "role missing";

/// The attachment's id: `ROLE/POLICY-ARN`.
pub fn pair_id(role: &str, policy_arn: &str) -> String {
    format!("{role}/{policy_arn}")
}

/// The pair an id names, if it is one.
fn parse_pair(id: &str) -> Option<(String, String)> {
    let (role, arn) = id.split_once('/')?;
    (super::role_name(role).is_ok() && arn.starts_with("arn:"))
        .then(|| (role.to_string(), arn.to_string()))
}

fn outputs(role: &str, policy_arn: &str) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("role".into(), json!(role));
    o.insert("policyArn".into(), json!(policy_arn));
    o
}

/// Observe the declared pair, or the pair this row recorded when that one differs and is still
/// attached (see the module docs). A declaration without the pair (built from its row alone,
/// for a delete) observes the recorded pair.
pub(crate) async fn observe(
    client: &Client,
    decl: &Declaration,
    previous_id: Option<&str>,
    _for_delete: bool,
) -> Result<Observation, ProviderError> {
    let declared = match (decl.str("role"), decl.str("policyArn")) {
        (Some(r), Some(a)) => Some((r.to_string(), a.to_string())),
        _ => None,
    };
    let previous = previous_id.and_then(parse_pair);
    if let Some(prev) = previous.as_ref().filter(|p| Some(*p) != declared.as_ref()) {
        let mut seen = look(client, decl, prev).await?;
        if seen.exists {
            if declared.is_some() {
                seen.notes.push(format!(
                    "this row attached {} to role {}; the declaration names another pair",
                    prev.1, prev.0
                ));
            }
            return Ok(seen);
        }
    }
    match declared.or(previous) {
        Some(pair) => look(client, decl, &pair).await,
        None => Ok(Observation::absent()),
    }
}

/// GetRole and ListAttachedRolePolicies for one pair.
async fn look(
    client: &Client,
    decl: &Declaration,
    (role, arn): &(String, String),
) -> Result<Observation, ProviderError> {
    let found = match client.get_role().role_name(role).send().await {
        Ok(out) => out.role,
        Err(e) if e.code() == Some("NoSuchEntity") => None,
        Err(e) => return Err(sdk_error("GetRole", &e)),
    };
    let Some(found) = found else {
        return Ok(Observation {
            status: Some(ROLE_MISSING.into()),
            notes: vec![format!("role {role} does not exist")],
            ..Observation::absent()
        });
    };
    let tags = super::tag_map(found.tags());
    let mut attached = false;
    let mut marker = None;
    loop {
        let page = match client
            .list_attached_role_policies()
            .role_name(role)
            .set_marker(marker.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchEntity") => break,
            Err(e) => return Err(sdk_error("ListAttachedRolePolicies", &e)),
        };
        attached |= page
            .attached_policies()
            .iter()
            .any(|p| p.policy_arn() == Some(arn.as_str()));
        match (attached, page.is_truncated, page.marker) {
            (false, true, Some(m)) => marker = Some(m),
            _ => break,
        }
    }
    let mut obs = Observation {
        exists: attached,
        ownership: decl.owner.judge(&tags),
        tags,
        status: Some(if attached { "attached" } else { "not attached" }.into()),
        ..Observation::default()
    };
    if attached {
        obs.id = Some(pair_id(role, arn));
        obs.fields.insert("role".into(), json!(role));
        obs.fields.insert("policyArn".into(), json!(arn));
        obs.outputs = outputs(role, arn);
    }
    Ok(obs)
}

/// Why the role may not be changed, if it may not.
fn role_conflict(decl: &Declaration, obs: &Observation, role: &str) -> Option<Blocked> {
    if decl.management_policy == ManagementPolicy::Observe {
        return None;
    }
    policy::conflict_message(obs, decl.adopt, MARK)
        .map(|m| Blocked::Conflict(format!("role {role} {m}")))
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    let declared_role = decl.str("role").unwrap_or_default();
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        // Attaching changes the role: only a role that is ours (or adopted) gets it. A role
        // that does not exist yet may be created before the attach (an earlier declaration).
        if obs.status.as_deref() != Some(ROLE_MISSING) {
            if let Some(b) = role_conflict(decl, obs, declared_role) {
                plan.action = Action::Noop;
                plan.blocked = Some(b);
                return plan;
            }
        }
        for field in ["role", "policyArn"] {
            if let Some(v) = decl.fields.get(field) {
                plan.changes.push(FieldChange::new(
                    field,
                    PlanValue::Absent,
                    PlanValue::Known(v.clone()),
                ));
            }
        }
        plan.notes = obs.notes.clone();
        if decl.management_policy == ManagementPolicy::Observe {
            plan.blocked = Some(Blocked::ObserveOnly);
        }
        return plan;
    }
    let observed_role = obs
        .fields
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(b) = role_conflict(decl, obs, observed_role) {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
        plan.blocked = Some(b);
        return plan;
    }
    let mut changes = Vec::new();
    for field in ["role", "policyArn"] {
        let Some(want) = decl.fields.get(field) else {
            continue;
        };
        let have = obs.fields.get(field);
        if have != Some(want) {
            changes.push(
                FieldChange::new(
                    field,
                    PlanValue::from_option(have),
                    PlanValue::Known(want.clone()),
                )
                .forcing_replacement(),
            );
        }
    }
    plan_from_changes(decl, obs, changes)
}

/// Carry out `plan`: attach, or nothing.
pub(crate) async fn apply(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
) -> Result<Outcome, ProviderError> {
    if let Some(b) = &plan.blocked {
        return Ok(policy::blocked_outcome(obs, plan, b));
    }
    match plan.action {
        // An attachment has nothing to change in place.
        Action::Noop | Action::Update => Ok(Outcome::new(State::Ready)
            .id(obs.id.clone())
            .outputs(obs.outputs.clone())),
        Action::Create => {
            let (Some(role), Some(arn)) = (decl.str("role"), decl.str("policyArn")) else {
                return Err(ProviderError::invalid_field(
                    "role",
                    "role and policyArn are required to attach",
                ));
            };
            client
                .attach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| sdk_error("AttachRolePolicy", &e))?;
            Ok(Outcome::new(State::Ready)
                .id(Some(pair_id(role, arn)))
                .outputs(outputs(role, arn))
                .mutations(1))
        }
        Action::Replace | Action::Delete => Ok(policy::blocked_outcome(
            obs,
            plan,
            &Blocked::ReplacementRequired,
        )),
    }
}

/// Detach (or leave) the observed pair.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    let role = obs
        .fields
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(mut outcome) = crate::ownership::delete_guard(decl, obs) {
        if outcome.state == State::Conflict {
            if let Some(m) = policy::conflict_message(obs, decl.adopt, MARK) {
                outcome.message = format!("not detached: role {role} {m}");
            }
        }
        return Ok(outcome);
    }
    let arn = obs
        .fields
        .get("policyArn")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match client
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(Outcome::new(State::Deleted).id(obs.id.clone()).mutations(1)),
        Err(e) if e.code() == Some("NoSuchEntity") => Ok(Outcome::new(State::Deleted)),
        Err(e) => Err(sdk_error("DetachRolePolicy", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::{Owner, Ownership};

    const ARN: &str = "arn:aws:iam::123456789012:policy/reads";

    fn decl(item: Value) -> Declaration {
        let schema = crate::schema();
        Declaration::from_rendered(
            "aws",
            schema.kind(super::super::ATTACHMENT).unwrap(),
            item.as_object().unwrap(),
            Owner {
                uid: "u1".into(),
                ..Owner::default()
            },
        )
        .unwrap()
    }

    fn attached(role: &str, arn: &str, ownership: Ownership) -> Observation {
        let mut obs = Observation {
            exists: true,
            id: Some(pair_id(role, arn)),
            ownership,
            status: Some("attached".into()),
            ..Observation::default()
        };
        obs.fields.insert("role".into(), json!(role));
        obs.fields.insert("policyArn".into(), json!(arn));
        obs
    }

    #[test]
    fn ids_name_the_pair() {
        assert_eq!(pair_id("web", ARN), format!("web/{ARN}"));
        assert_eq!(
            parse_pair(&pair_id("web", ARN)),
            Some(("web".into(), ARN.into()))
        );
        assert_eq!(parse_pair("arn:aws:iam::1:role/x"), None);
        assert_eq!(parse_pair("web"), None);
    }

    #[test]
    fn attaching_needs_a_role_that_is_ours() {
        let d = decl(json!({"name": "a", "role": "web", "policyArn": ARN}));
        let not_attached = |ownership| Observation {
            ownership,
            status: Some("not attached".into()),
            ..Observation::absent()
        };
        assert_eq!(
            diff(&d, &not_attached(Ownership::Ours)).action,
            Action::Create
        );
        let plan = diff(&d, &not_attached(Ownership::Unowned));
        assert!(
            matches!(&plan.blocked, Some(Blocked::Conflict(m)) if m.starts_with("role web exists but was not created by orkestra")),
            "{plan:?}"
        );
        let adopted = decl(json!({"name": "a", "role": "web", "policyArn": ARN, "adopt": true}));
        assert_eq!(
            diff(&adopted, &not_attached(Ownership::Unowned)).action,
            Action::Create
        );
        // A role that does not exist yet: the attach is planned (AWS answers if it still is missing).
        let missing = Observation {
            status: Some(ROLE_MISSING.into()),
            ..Observation::absent()
        };
        assert_eq!(diff(&d, &missing).action, Action::Create);
    }

    #[test]
    fn attached_is_noop_and_another_pair_forces_replacement() {
        let d = decl(json!({"name": "a", "role": "web", "policyArn": ARN}));
        let plan = diff(&d, &attached("web", ARN, Ownership::Ours));
        assert_eq!(plan.action, Action::Noop);
        let plan = diff(&d, &attached("api", ARN, Ownership::Ours));
        assert_eq!(plan.action, Action::Replace);
        assert_eq!(plan.requires_replacement, ["role"]);
        let plan = diff(
            &d,
            &attached(
                "web",
                ARN,
                Ownership::Foreign {
                    owner: "x/y".into(),
                    uid: "u2".into(),
                },
            ),
        );
        assert!(matches!(plan.blocked, Some(Blocked::Conflict(_))));
    }
}
