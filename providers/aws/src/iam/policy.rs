//! `aws.iamPolicy`: customer managed policies.
//!
//! Managed: the document (compared semantically with the default version's), tags (plus
//! ownership tags, set in CreatePolicy). `policyName` and `path` cannot change in place.
//!
//! Finding a policy: IAM reads policies by ARN only, and an ARN holds the account id, which the
//! provider does not know. So observe reads the ARN this declaration's row recorded last cycle
//! (the CR's `status.external`), and otherwise lists the account's customer managed policies for
//! the name (names are unique in an account, whatever the path, so a changed path is found too).
//!
//! Versions: a changed document becomes a new default version (CreatePolicyVersion
//! `SetAsDefault`). IAM keeps at most [`MAX_VERSIONS`]; when there are that many, the oldest
//! non-default version is deleted first, so the limit is never hit by our own changes.
//!
//! Deleting: IAM refuses to delete a policy that is attached or has non-default versions. A
//! policy attached only to roles that are ours (an attachment is ours when its role is ours) is
//! detached from them; one attached to anything else (a role not ours, a user, a group) is not
//! deleted and not detached: the row stays Deleting and says where it is attached. Then the
//! non-default versions go, then the policy.

use std::time::Duration;

use aws_sdk_iam::types::{Policy, PolicyScopeType, PolicyVersion};
use aws_sdk_iam::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::plan::{creation_changes, diff_tags};
use orkestra_provider::{
    policy as rules, Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation,
    Outcome, Ownership, Plan, PlanValue, ProviderError, State,
};
use serde_json::{json, Map, Value};

use super::document::{self, DocKind};
use crate::error::sdk_error;
use crate::ownership::{delete_guard, observe_guard, plan_from_changes};

/// IAM's limit on the versions of one managed policy.
pub const MAX_VERSIONS: usize = 5;
/// Delay before looking again at a policy held back from deletion.
const HELD_REQUEUE: Duration = Duration::from_secs(60);
/// Pages of ListPolicies read when searching by name (1000 each; IAM allows 5000 policies).
const MAX_SEARCH_PAGES: usize = 10;

/// Every output the schema declares for `aws.iamPolicy`, from what IAM returned.
fn outputs(p: &Policy) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("arn".into(), json!(p.arn().unwrap_or_default()));
    o.insert("name".into(), json!(p.policy_name().unwrap_or_default()));
    o.insert("policyId".into(), json!(p.policy_id().unwrap_or_default()));
    o
}

/// GetPolicy; `None` when there is no such policy.
async fn get_policy(client: &Client, arn: &str) -> Result<Option<Policy>, ProviderError> {
    match client.get_policy().policy_arn(arn).send().await {
        Ok(out) => Ok(out.policy),
        Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(sdk_error("GetPolicy", &e)),
    }
}

/// The customer managed policy named `name`: by the ARN recorded last cycle, else by listing.
async fn find(
    client: &Client,
    name: &str,
    previous_arn: Option<&str>,
) -> Result<Option<Policy>, ProviderError> {
    if let Some(arn) = previous_arn.filter(|a| a.starts_with("arn:") && a.contains(":policy/")) {
        if let Some(p) = get_policy(client, arn).await? {
            if p.policy_name() == Some(name) {
                return Ok(Some(p));
            }
        }
    }
    let mut marker = None;
    for _ in 0..MAX_SEARCH_PAGES {
        let page = client
            .list_policies()
            .scope(PolicyScopeType::Local)
            .max_items(1000)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_error("ListPolicies", &e))?;
        let found = page
            .policies()
            .iter()
            .find(|p| p.policy_name() == Some(name))
            .and_then(|p| p.arn().map(str::to_string));
        if let Some(arn) = found {
            // ListPolicies leaves tags out: GetPolicy has them.
            return get_policy(client, &arn).await;
        }
        match (page.is_truncated, page.marker) {
            (true, Some(m)) => marker = Some(m),
            _ => break,
        }
    }
    Ok(None)
}

/// Find the policy and read its default version's document.
pub(crate) async fn observe(
    client: &Client,
    decl: &Declaration,
    previous_arn: Option<&str>,
    for_delete: bool,
) -> Result<Observation, ProviderError> {
    if !for_delete {
        super::checked_document(decl, "document", DocKind::Identity)?;
    }
    let Some(p) = find(client, &decl.name, previous_arn).await? else {
        return Ok(Observation::absent());
    };
    let arn = p.arn().unwrap_or_default().to_string();
    let mut obs = Observation {
        exists: true,
        id: Some(arn.clone()),
        tags: super::tag_map(p.tags()),
        outputs: outputs(&p),
        ..Observation::default()
    };
    obs.ownership = decl.owner.judge(&obs.tags);
    obs.fields.insert("policyName".into(), json!(decl.name));
    if let Some(path) = p.path() {
        obs.fields.insert("path".into(), json!(path));
    }
    obs.fields
        .insert("tags".into(), super::user_tags(&obs.tags));
    if for_delete {
        return Ok(obs);
    }
    if let Some(version) = p.default_version_id() {
        let out = client
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| sdk_error("GetPolicyVersion", &e))?;
        if let Some(text) = out.policy_version.as_ref().and_then(|v| v.document()) {
            let doc = document::parse_returned(text).map_err(|m| {
                ProviderError::invalid_field("document", format!("as IAM returned it: {m}"))
            })?;
            obs.fields.insert("document".into(), doc);
        }
        obs.status = Some(format!("default version {version}"));
    }
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
        for unknown in ["arn", "policyId"] {
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
    if let Some(doc) = decl.fields.get("document") {
        let before = observed("document");
        if !before.is_some_and(|b| document::same(b, doc)) {
            changes.push(FieldChange::new(
                "document",
                before.map_or(PlanValue::Absent, |b| {
                    PlanValue::Known(document::normalize(b))
                }),
                PlanValue::Known(document::normalize(doc)),
            ));
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
        return Ok(rules::blocked_outcome(obs, plan, b));
    }
    match plan.action {
        Action::Noop => Ok(ready(obs, 0)),
        Action::Create => create(client, decl).await,
        Action::Update => update(client, decl, obs, plan).await,
        Action::Replace | Action::Delete => Ok(rules::blocked_outcome(
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
    let doc = decl.fields.get("document").ok_or_else(|| {
        ProviderError::invalid_field("document", "is required to create a policy")
    })?;
    let (tags, _) = super::desired_tags(decl);
    let out = client
        .create_policy()
        .policy_name(&decl.name)
        .set_path(decl.str("path").map(str::to_string))
        .policy_document(document::to_json(doc))
        // The owner tags go with the create: there is never an untagged policy of ours.
        .set_tags(Some(super::iam_tags(&tags)?))
        .send()
        .await
        .map_err(|e| sdk_error("CreatePolicy", &e))?;
    let p = out.policy.ok_or_else(|| {
        ProviderError::api("CreatePolicy", None, "the answer named no policy", true)
    })?;
    Ok(Outcome::new(State::Ready)
        .id(p.arn().map(str::to_string))
        .outputs(outputs(&p))
        .mutations(1))
}

async fn update(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
) -> Result<Outcome, ProviderError> {
    let arn = obs
        .id
        .clone()
        .ok_or_else(|| ProviderError::invalid_field("policyName", "the policy's ARN is unknown"))?;
    let changed = |p: &str| plan.changes.iter().any(|c| c.path == p);
    let mut n = 0;
    if changed("document") {
        if let Some(doc) = decl.fields.get("document") {
            n += new_default_version(client, &arn, doc).await?;
        }
    }
    if plan.changes.iter().any(|c| c.path.starts_with("tags.")) {
        let (set, remove) = super::tag_changes(decl, obs);
        if !set.is_empty() {
            client
                .tag_policy()
                .policy_arn(&arn)
                .set_tags(Some(super::iam_tags(&set)?))
                .send()
                .await
                .map_err(|e| sdk_error("TagPolicy", &e))?;
            n += 1;
        }
        if !remove.is_empty() {
            client
                .untag_policy()
                .policy_arn(&arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error("UntagPolicy", &e))?;
            n += 1;
        }
    }
    Ok(ready(obs, n))
}

/// Every version of the policy.
async fn versions(client: &Client, arn: &str) -> Result<Vec<PolicyVersion>, ProviderError> {
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let page = client
            .list_policy_versions()
            .policy_arn(arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_error("ListPolicyVersions", &e))?;
        all.extend(page.versions.unwrap_or_default());
        match (page.is_truncated, page.marker) {
            (true, Some(m)) => marker = Some(m),
            _ => return Ok(all),
        }
    }
}

/// The version's number (`v7` is 7), for ordering by age.
fn version_number(v: &PolicyVersion) -> u64 {
    v.version_id()
        .and_then(|id| id.strip_prefix('v'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The non-default versions to delete so that one more fits under [`MAX_VERSIONS`]: the oldest.
fn versions_to_prune(versions: &[PolicyVersion]) -> Vec<String> {
    let mut old: Vec<&PolicyVersion> = versions
        .iter()
        .filter(|v| !v.is_default_version())
        .collect();
    old.sort_by_key(|v| version_number(v));
    let excess = (versions.len() + 1).saturating_sub(MAX_VERSIONS);
    old.into_iter()
        .take(excess)
        .filter_map(|v| v.version_id().map(str::to_string))
        .collect()
}

/// Make `doc` the default version, deleting the oldest non-default version first when the
/// policy has [`MAX_VERSIONS`]. Returns the mutating calls made.
async fn new_default_version(
    client: &Client,
    arn: &str,
    doc: &Value,
) -> Result<u32, ProviderError> {
    let mut n = 0;
    for id in versions_to_prune(&versions(client, arn).await?) {
        match client
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(&id)
            .send()
            .await
        {
            Ok(_) => n += 1,
            Err(e) if e.code() == Some("NoSuchEntity") => {}
            Err(e) => return Err(sdk_error("DeletePolicyVersion", &e)),
        }
    }
    client
        .create_policy_version()
        .policy_arn(arn)
        .policy_document(document::to_json(doc))
        .set_as_default(true)
        .send()
        .await
        .map_err(|e| sdk_error("CreatePolicyVersion", &e))?;
    Ok(n + 1)
}

/// Where a policy is attached.
#[derive(Debug, Default)]
struct Attached {
    roles: Vec<String>,
    users: Vec<String>,
    groups: Vec<String>,
}

async fn attached(client: &Client, arn: &str) -> Result<Attached, ProviderError> {
    let mut a = Attached::default();
    let mut marker = None;
    loop {
        let page = client
            .list_entities_for_policy()
            .policy_arn(arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_error("ListEntitiesForPolicy", &e))?;
        a.roles.extend(
            page.policy_roles()
                .iter()
                .filter_map(|r| r.role_name().map(str::to_string)),
        );
        a.users.extend(
            page.policy_users()
                .iter()
                .filter_map(|u| u.user_name().map(str::to_string)),
        );
        a.groups.extend(
            page.policy_groups()
                .iter()
                .filter_map(|g| g.group_name().map(str::to_string)),
        );
        match (page.is_truncated, page.marker) {
            (true, Some(m)) => marker = Some(m),
            _ => return Ok(a),
        }
    }
}

/// Whether the role is this declaration's owner's (its tags say so); a role gone is `None`.
async fn role_is_ours(
    client: &Client,
    decl: &Declaration,
    role: &str,
) -> Result<Option<bool>, ProviderError> {
    match client.get_role().role_name(role).send().await {
        Ok(out) => Ok(Some(out.role.is_some_and(|r| {
            decl.owner.judge(&super::tag_map(r.tags())) == Ownership::Ours
        }))),
        Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(sdk_error("GetRole", &e)),
    }
}

/// "roles a, b, users c": where a policy is attached that is not ours to detach.
fn foreign_text(roles: &[String], users: &[String], groups: &[String]) -> String {
    let mut parts = Vec::new();
    for (what, names) in [("role", roles), ("user", users), ("group", groups)] {
        match names.len() {
            0 => {}
            1 => parts.push(format!("{what} {}", names[0])),
            _ => parts.push(format!("{what}s {}", names.join(", "))),
        }
    }
    parts.join(", ")
}

/// Delete (or orphan) the policy: detach it from our roles, delete its non-default versions,
/// delete it; attached anywhere else, it stays and the row says where.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let Some(arn) = obs.id.clone() else {
        return Ok(Outcome::new(State::Deleted));
    };
    let gone = |n: u32| Ok(Outcome::new(State::Deleted).mutations(n));
    let a = match attached(client, &arn).await {
        Ok(a) => a,
        Err(e) if e.code() == Some("NoSuchEntity") => return gone(0),
        Err(e) => return Err(e),
    };
    let mut ours = Vec::new();
    let mut foreign = Vec::new();
    for role in a.roles {
        match role_is_ours(client, decl, &role).await? {
            Some(true) => ours.push(role),
            Some(false) => foreign.push(role),
            None => {}
        }
    }
    if !foreign.is_empty() || !a.users.is_empty() || !a.groups.is_empty() {
        return Ok(Outcome::new(State::Deleting)
            .id(Some(arn))
            .message(format!(
                "not deleted: the policy is attached to {} (not this resource's); detach it there, or set deletionPolicy: Orphan",
                foreign_text(&foreign, &a.users, &a.groups)
            ))
            .requeue(HELD_REQUEUE));
    }
    let mut n = 0;
    for role in ours {
        match client
            .detach_role_policy()
            .role_name(&role)
            .policy_arn(&arn)
            .send()
            .await
        {
            Ok(_) => n += 1,
            Err(e) if e.code() == Some("NoSuchEntity") => {}
            Err(e) => return Err(sdk_error("DetachRolePolicy", &e)),
        }
    }
    let all = match versions(client, &arn).await {
        Ok(v) => v,
        Err(e) if e.code() == Some("NoSuchEntity") => return gone(n),
        Err(e) => return Err(e),
    };
    for v in all.iter().filter(|v| !v.is_default_version()) {
        let Some(id) = v.version_id() else { continue };
        match client
            .delete_policy_version()
            .policy_arn(&arn)
            .version_id(id)
            .send()
            .await
        {
            Ok(_) => n += 1,
            Err(e) if e.code() == Some("NoSuchEntity") => {}
            Err(e) => return Err(sdk_error("DeletePolicyVersion", &e)),
        }
    }
    match client.delete_policy().policy_arn(&arn).send().await {
        Ok(_) => Ok(Outcome::new(State::Deleted).id(Some(arn)).mutations(n + 1)),
        Err(e) if e.code() == Some("NoSuchEntity") => gone(n),
        Err(e) => Err(sdk_error("DeletePolicy", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Owner;

    fn version(id: &str, default: bool) -> PolicyVersion {
        PolicyVersion::builder()
            .version_id(id)
            .is_default_version(default)
            .build()
    }

    #[test]
    fn the_oldest_non_default_versions_make_room() {
        let five = [
            version("v3", false),
            version("v10", false),
            version("v4", false),
            version("v11", true),
            version("v9", false),
        ];
        assert_eq!(versions_to_prune(&five), ["v3"]);
        let four = &five[..4];
        assert!(versions_to_prune(four).is_empty());
        // A policy whose default is its oldest version keeps it.
        let default_first = [
            version("v1", true),
            version("v2", false),
            version("v3", false),
            version("v4", false),
            version("v5", false),
        ];
        assert_eq!(versions_to_prune(&default_first), ["v2"]);
    }

    #[test]
    fn foreign_attachments_are_named() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            foreign_text(&s(&["a", "b"]), &s(&["u"]), &[]),
            "roles a, b, user u"
        );
        assert_eq!(foreign_text(&[], &[], &s(&["g"])), "group g");
    }

    fn decl(item: Value) -> Declaration {
        let schema = crate::schema();
        Declaration::from_rendered(
            "aws",
            schema.kind(super::super::POLICY).unwrap(),
            item.as_object().unwrap(),
            Owner {
                uid: "u1".into(),
                ..Owner::default()
            },
        )
        .unwrap()
    }

    fn doc(action: &str) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action,
            "Resource": "*"}]})
    }

    fn ours(document: Value, path: &str) -> Observation {
        let d = decl(json!({"policyName": "p", "document": doc("s3:x")}));
        let mut obs = Observation {
            exists: true,
            id: Some("arn:aws:iam::123456789012:policy/p".into()),
            tags: d.owner.tags(),
            ownership: Ownership::Ours,
            ..Observation::default()
        };
        obs.fields.insert("path".into(), json!(path));
        obs.fields.insert("document".into(), document);
        obs
    }

    #[test]
    fn document_and_path_changes() {
        let d = decl(json!({"policyName": "p", "document": doc("s3:GetObject")}));
        let same_written_differently = json!({"Statement": {"Resource": ["*"],
            "Action": ["s3:GetObject"], "Effect": "Allow"}, "Version": "2012-10-17"});
        assert_eq!(
            diff(&d, &ours(same_written_differently, "/")).action,
            Action::Noop
        );

        let plan = diff(&d, &ours(doc("s3:PutObject"), "/"));
        assert_eq!(plan.action, Action::Update);
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].path, "document");
        assert!(plan.render().contains("s3:PutObject"), "{}", plan.render());

        let moved =
            decl(json!({"policyName": "p", "path": "/team/", "document": doc("s3:GetObject")}));
        let plan = diff(&moved, &ours(doc("s3:GetObject"), "/"));
        assert_eq!(plan.action, Action::Replace);
        assert_eq!(plan.requires_replacement, ["path"]);
        assert_eq!(plan.blocked, Some(Blocked::ReplacementRequired));
    }
}
