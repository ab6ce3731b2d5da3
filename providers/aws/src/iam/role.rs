//! `aws.iamRole`: IAM roles.
//!
//! Managed: the trust policy (`assumeRolePolicy`, compared semantically), `maxSessionDuration`,
//! `description` and tags (plus ownership tags, set in CreateRole). `roleName` and `path` cannot
//! change in place. Not declared means not managed (`maxSessionDuration`, `description`, `path`).
//! One GetRole call observes everything.
//!
//! Deleting a role first detaches its managed policies, deletes its inline policies and removes
//! it from its instance profiles (IAM refuses to delete a role that has any): the role is ours,
//! so what hangs on it is ours to take off (an attachment is ours when its role is ours).

use aws_sdk_iam::types::Role;
use aws_sdk_iam::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::plan::{creation_changes, diff_tags};
use orkestra_provider::{
    policy, Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome,
    Plan, PlanValue, ProviderError, State,
};
use serde_json::{json, Map, Value};

use super::document::{self, DocKind};
use crate::error::sdk_error;
use crate::ownership::{delete_guard, observe_guard, plan_from_changes};

/// Every output the schema declares for `aws.iamRole`, from what IAM returned.
fn outputs(role: &Role) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("arn".into(), json!(role.arn()));
    o.insert("name".into(), json!(role.role_name()));
    o.insert("roleId".into(), json!(role.role_id()));
    o
}

/// GetRole, as an observation.
pub(crate) async fn observe(
    client: &Client,
    decl: &Declaration,
    for_delete: bool,
) -> Result<Observation, ProviderError> {
    if !for_delete {
        super::checked_document(decl, "assumeRolePolicy", DocKind::Trust)?;
    }
    let role = match client.get_role().role_name(&decl.name).send().await {
        Ok(out) => match out.role {
            Some(r) => r,
            None => return Ok(Observation::absent()),
        },
        Err(e) if e.code() == Some("NoSuchEntity") => return Ok(Observation::absent()),
        Err(e) => return Err(sdk_error("GetRole", &e)),
    };
    observation(decl, &role)
}

fn observation(decl: &Declaration, role: &Role) -> Result<Observation, ProviderError> {
    let mut obs = Observation {
        exists: true,
        id: Some(role.arn().to_string()),
        tags: super::tag_map(role.tags()),
        outputs: outputs(role),
        ..Observation::default()
    };
    obs.ownership = decl.owner.judge(&obs.tags);
    let f = &mut obs.fields;
    f.insert("roleName".into(), json!(role.role_name()));
    f.insert("path".into(), json!(role.path()));
    if let Some(text) = role.assume_role_policy_document() {
        let doc = document::parse_returned(text).map_err(|m| {
            ProviderError::invalid_field("assumeRolePolicy", format!("as IAM returned it: {m}"))
        })?;
        f.insert("assumeRolePolicy".into(), doc);
    }
    if let Some(d) = role.max_session_duration() {
        f.insert("maxSessionDuration".into(), json!(d));
    }
    if let Some(d) = role.description() {
        f.insert("description".into(), json!(d));
    }
    f.insert("tags".into(), super::user_tags(&obs.tags));
    Ok(obs)
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        let mut fields = decl.fields.clone();
        fields.remove("credentials");
        fields.entry("path").or_insert_with(|| json!("/"));
        plan.changes = creation_changes(&fields, &[]);
        plan.changes
            .extend(decl.owner.tags().into_iter().map(|(k, v)| {
                FieldChange::new(
                    format!("tags.{k}"),
                    PlanValue::Absent,
                    PlanValue::Known(json!(v)),
                )
            }));
        for unknown in ["arn", "roleId"] {
            plan.changes.push(FieldChange::new(
                unknown,
                PlanValue::Absent,
                PlanValue::Unknown,
            ));
        }
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
    let mut changes = Vec::new();
    let observed = |k: &str| obs.fields.get(k).filter(|v| !v.is_null());
    if let Some(p) = decl.fields.get("path") {
        if observed("path") != Some(p) {
            changes.push(
                FieldChange::new(
                    "path",
                    PlanValue::from_option(observed("path")),
                    PlanValue::Known(p.clone()),
                )
                .forcing_replacement(),
            );
        }
    }
    if let Some(doc) = decl.fields.get("assumeRolePolicy") {
        let before = observed("assumeRolePolicy");
        if !before.is_some_and(|b| document::same(b, doc)) {
            changes.push(FieldChange::new(
                "assumeRolePolicy",
                before.map_or(PlanValue::Absent, |b| {
                    PlanValue::Known(document::normalize(b))
                }),
                PlanValue::Known(document::normalize(doc)),
            ));
        }
    }
    for field in ["maxSessionDuration", "description"] {
        if let Some(v) = decl.fields.get(field) {
            if observed(field) != Some(v) {
                changes.push(FieldChange::new(
                    field,
                    PlanValue::from_option(observed(field)),
                    PlanValue::Known(v.clone()),
                ));
            }
        }
    }
    let (tags, exact) = super::desired_tags(decl);
    changes.extend(diff_tags(
        "tags",
        &tags,
        &crate::ownership::comparable_tags(decl, obs),
        exact,
    ));
    plan_from_changes(decl, obs, changes)
}

/// Carry out `plan`.
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
        Action::Noop => Ok(ready(obs, 0)),
        Action::Create => create(client, decl).await,
        Action::Update => update(client, decl, obs, plan).await,
        Action::Replace | Action::Delete => Ok(policy::blocked_outcome(
            obs,
            plan,
            &Blocked::ReplacementRequired,
        )),
    }
}

fn ready(obs: &Observation, mutations: u32) -> Outcome {
    Outcome::new(State::Ready)
        .id(obs.id.clone())
        .outputs(obs.outputs.clone())
        .mutations(mutations)
}

async fn create(client: &Client, decl: &Declaration) -> Result<Outcome, ProviderError> {
    let trust = decl.fields.get("assumeRolePolicy").ok_or_else(|| {
        ProviderError::invalid_field("assumeRolePolicy", "is required to create a role")
    })?;
    let (tags, _) = super::desired_tags(decl);
    let out = client
        .create_role()
        .role_name(&decl.name)
        .set_path(decl.str("path").map(str::to_string))
        .assume_role_policy_document(document::to_json(trust))
        .set_description(decl.str("description").map(str::to_string))
        .set_max_session_duration(
            decl.int("maxSessionDuration")
                .and_then(|n| i32::try_from(n).ok()),
        )
        // The owner tags go with the create: there is never an untagged role of ours.
        .set_tags(Some(super::iam_tags(&tags)?))
        .send()
        .await
        .map_err(|e| sdk_error("CreateRole", &e))?;
    let role = out
        .role
        .ok_or_else(|| ProviderError::api("CreateRole", None, "the answer named no role", true))?;
    Ok(Outcome::new(State::Ready)
        .id(Some(role.arn().to_string()))
        .outputs(outputs(&role))
        .mutations(1))
}

async fn update(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
) -> Result<Outcome, ProviderError> {
    let changed = |p: &str| plan.changes.iter().any(|c| c.path == p);
    let mut n = 0;
    if changed("assumeRolePolicy") {
        if let Some(doc) = decl.fields.get("assumeRolePolicy") {
            client
                .update_assume_role_policy()
                .role_name(&decl.name)
                .policy_document(document::to_json(doc))
                .send()
                .await
                .map_err(|e| sdk_error("UpdateAssumeRolePolicy", &e))?;
            n += 1;
        }
    }
    if changed("maxSessionDuration") || changed("description") {
        client
            .update_role()
            .role_name(&decl.name)
            .set_max_session_duration(
                changed("maxSessionDuration")
                    .then(|| decl.int("maxSessionDuration"))
                    .flatten()
                    .and_then(|n| i32::try_from(n).ok()),
            )
            .set_description(
                changed("description")
                    .then(|| decl.str("description").map(str::to_string))
                    .flatten(),
            )
            .send()
            .await
            .map_err(|e| sdk_error("UpdateRole", &e))?;
        n += 1;
    }
    if plan.changes.iter().any(|c| c.path.starts_with("tags.")) {
        let (set, remove) = super::tag_changes(decl, obs);
        if !set.is_empty() {
            client
                .tag_role()
                .role_name(&decl.name)
                .set_tags(Some(super::iam_tags(&set)?))
                .send()
                .await
                .map_err(|e| sdk_error("TagRole", &e))?;
            n += 1;
        }
        if !remove.is_empty() {
            client
                .untag_role()
                .role_name(&decl.name)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error("UntagRole", &e))?;
            n += 1;
        }
    }
    Ok(ready(obs, n))
}

/// Delete (or orphan) the role: take off its managed policies, inline policies and instance
/// profile memberships, then delete it. A role gone meanwhile is deleted.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let name = decl.name.as_str();
    let id = obs.id.clone();
    let gone = |n: u32| Ok(Outcome::new(State::Deleted).mutations(n));
    let mut n = 0;

    let mut attached = Vec::new();
    let mut marker = None;
    loop {
        let page = match client
            .list_attached_role_policies()
            .role_name(name)
            .set_marker(marker.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchEntity") => return gone(n),
            Err(e) => return Err(sdk_error("ListAttachedRolePolicies", &e)),
        };
        attached.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
        match (page.is_truncated, page.marker) {
            (true, Some(m)) => marker = Some(m),
            _ => break,
        }
    }
    for arn in attached {
        match client
            .detach_role_policy()
            .role_name(name)
            .policy_arn(&arn)
            .send()
            .await
        {
            Ok(_) => n += 1,
            // Detached meanwhile.
            Err(e) if e.code() == Some("NoSuchEntity") => {}
            Err(e) => return Err(sdk_error("DetachRolePolicy", &e)),
        }
    }

    let mut inline = Vec::new();
    let mut marker = None;
    loop {
        let page = match client
            .list_role_policies()
            .role_name(name)
            .set_marker(marker.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchEntity") => return gone(n),
            Err(e) => return Err(sdk_error("ListRolePolicies", &e)),
        };
        inline.extend(page.policy_names);
        match (page.is_truncated, page.marker) {
            (true, Some(m)) => marker = Some(m),
            _ => break,
        }
    }
    for policy_name in inline {
        match client
            .delete_role_policy()
            .role_name(name)
            .policy_name(&policy_name)
            .send()
            .await
        {
            Ok(_) => n += 1,
            Err(e) if e.code() == Some("NoSuchEntity") => {}
            Err(e) => return Err(sdk_error("DeleteRolePolicy", &e)),
        }
    }

    let mut profiles = Vec::new();
    let mut marker = None;
    loop {
        let page = match client
            .list_instance_profiles_for_role()
            .role_name(name)
            .set_marker(marker.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchEntity") => return gone(n),
            Err(e) => return Err(sdk_error("ListInstanceProfilesForRole", &e)),
        };
        profiles.extend(
            page.instance_profiles()
                .iter()
                .map(|p| p.instance_profile_name().to_string()),
        );
        match (page.is_truncated, page.marker) {
            (true, Some(m)) => marker = Some(m),
            _ => break,
        }
    }
    for profile in profiles {
        // Only the membership goes: the instance profile itself is not this declaration's.
        match client
            .remove_role_from_instance_profile()
            .instance_profile_name(&profile)
            .role_name(name)
            .send()
            .await
        {
            Ok(_) => n += 1,
            Err(e) if e.code() == Some("NoSuchEntity") => {}
            Err(e) => return Err(sdk_error("RemoveRoleFromInstanceProfile", &e)),
        }
    }

    match client.delete_role().role_name(name).send().await {
        Ok(_) => Ok(Outcome::new(State::Deleted).id(id).mutations(n + 1)),
        Err(e) if e.code() == Some("NoSuchEntity") => gone(n),
        Err(e) => Err(sdk_error("DeleteRole", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::ownership::TAG_OWNER_UID;
    use orkestra_provider::{Owner, Ownership};

    fn owner() -> Owner {
        Owner {
            uid: "u1".into(),
            namespace: "shop".into(),
            name: "web".into(),
            katalog: "k".into(),
        }
    }

    fn decl(item: Value) -> Declaration {
        let schema = crate::schema();
        Declaration::from_rendered(
            "aws",
            schema.kind(super::super::ROLE).unwrap(),
            item.as_object().unwrap(),
            owner(),
        )
        .unwrap()
    }

    fn trust() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    }

    /// An observation of our role as IAM would describe it.
    fn ours(trust: Value, max: i64) -> Observation {
        let mut obs = Observation {
            exists: true,
            id: Some("arn:aws:iam::123456789012:role/app".into()),
            tags: owner().tags(),
            ownership: Ownership::Ours,
            ..Observation::default()
        };
        obs.fields.insert("roleName".into(), json!("app"));
        obs.fields.insert("path".into(), json!("/"));
        obs.fields.insert("assumeRolePolicy".into(), trust);
        obs.fields.insert("maxSessionDuration".into(), json!(max));
        obs
    }

    #[test]
    fn create_plan_shows_the_trust_policy_owner_tags_and_unknowns() {
        let d = decl(json!({"roleName": "app", "assumeRolePolicy": trust()}));
        let plan = diff(&d, &Observation::absent());
        assert_eq!(plan.action, Action::Create);
        let text = plan.render();
        assert!(text.contains("+ assumeRolePolicy.Statement"), "{text}");
        assert!(text.contains("+ path"), "{text}");
        assert!(text.contains(&format!("+ tags.{TAG_OWNER_UID}")), "{text}");
        assert!(
            text.contains("+ arn") && text.contains("(known after apply)"),
            "{text}"
        );
    }

    #[test]
    fn an_equal_document_written_differently_is_no_change() {
        let d = decl(json!({"roleName": "app", "maxSessionDuration": 3600,
            "assumeRolePolicy": {"Statement": {"Action": ["sts:AssumeRole"], "Effect": "Allow",
                "Principal": {"Service": ["ec2.amazonaws.com"]}}, "Version": "2012-10-17"}}));
        let plan = diff(&d, &ours(trust(), 3600));
        assert_eq!(plan.action, Action::Noop, "{}", plan.render());
    }

    #[test]
    fn changes_in_place_and_replacement() {
        let d = decl(json!({"roleName": "app", "maxSessionDuration": 7200,
            "assumeRolePolicy": trust(), "description": "web", "tags": {"team": "web"}}));
        let mut other = trust();
        other["Statement"][0]["Principal"]["Service"] = json!("lambda.amazonaws.com");
        let plan = diff(&d, &ours(other, 3600));
        assert_eq!(plan.action, Action::Update);
        let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "assumeRolePolicy",
                "maxSessionDuration",
                "description",
                "tags.team"
            ]
        );

        let moved = decl(
            json!({"roleName": "app", "path": "/team/", "assumeRolePolicy": trust(),
            "maxSessionDuration": 3600}),
        );
        let plan = diff(&moved, &ours(trust(), 3600));
        assert_eq!(plan.action, Action::Replace);
        assert_eq!(plan.requires_replacement, ["path"]);
        assert!(plan
            .render()
            .contains("~ path = \"/\" -> \"/team/\" # forces replacement"));
    }

    #[test]
    fn someone_elses_role_is_a_conflict() {
        let d = decl(json!({"roleName": "app", "assumeRolePolicy": trust()}));
        let mut obs = ours(trust(), 3600);
        obs.tags.clear();
        obs.ownership = Ownership::Unowned;
        let plan = diff(&d, &obs);
        assert!(
            matches!(&plan.blocked, Some(Blocked::Conflict(m)) if m.contains("set adopt: true")),
            "{plan:?}"
        );
    }
}
