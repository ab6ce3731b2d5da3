//! `aws.rds`: RDS DB instances.
//!
//! Create, modify only what differs, delete with a final snapshot unless `skipFinalSnapshot: true`.
//! RDS operations take minutes: every call returns at once with Creating/Updating/Deleting and a
//! requeue. Values already requested but pending (applyImmediately: false) count as done, so a
//! pending modification is never requested again.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_rds::types::{DbInstance, Tag};
use aws_sdk_rds::Client;
use orkestra_provider::plan::{creation_changes, diff_tags};
use orkestra_provider::{
    Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome, Plan,
    PlanValue, ProviderError, SecretValue, State,
};
use serde_json::{json, Map, Value};

use crate::error::sdk_error;
use crate::ownership::plan_from_changes;
use crate::ownership::{delete_guard, observe_guard};
use crate::s3::blocked_outcome;

/// How long to wait before looking again at an instance that is busy.
pub const BUSY_REQUEUE: Duration = Duration::from_secs(30);
/// How long to wait before looking again at an instance held back from deletion.
const HELD_REQUEUE: Duration = Duration::from_secs(300);
/// Key of the master password in `masterPasswordSecret` when `key` is not given.
pub const DEFAULT_PASSWORD_KEY: &str = "password";

/// Fields that cannot change on an existing instance.
const IMMUTABLE: &[&str] = &["engine", "masterUsername", "dbName", "region"];

/// What a status word means for orkestra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Idle,
    Creating,
    Deleting,
    Busy,
    Failed,
}

fn health(status: &str) -> Health {
    match status {
        "available" | "storage-optimization" | "stopped" => Health::Idle,
        "creating" => Health::Creating,
        "deleting" => Health::Deleting,
        "failed" | "storage-full" | "restore-error" | "insufficient-capacity" => Health::Failed,
        s if s.starts_with("incompatible-") || s.starts_with("inaccessible-encryption") => {
            Health::Failed
        }
        _ => Health::Busy,
    }
}

/// DescribeDBInstances, as an observation.
pub(crate) async fn observe(
    client: &Client,
    decl: &Declaration,
) -> Result<Observation, ProviderError> {
    let out = match client
        .describe_db_instances()
        .db_instance_identifier(&decl.name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            return Ok(Observation::absent())
        }
        Err(e) => return Err(sdk_error("DescribeDBInstances", &e)),
    };
    let Some(db) = out.db_instances().first() else {
        return Ok(Observation::absent());
    };
    Ok(observation(decl, db))
}

fn observation(decl: &Declaration, db: &DbInstance) -> Observation {
    let mut obs = Observation {
        exists: true,
        id: db.db_instance_arn().map(str::to_string),
        ..Observation::default()
    };
    obs.tags = db
        .tag_list()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    obs.ownership = decl.owner.judge(&obs.tags);
    let status = db.db_instance_status().unwrap_or("unknown").to_string();
    obs.busy = !matches!(health(&status), Health::Idle | Health::Failed);

    let f = &mut obs.fields;
    f.insert("identifier".into(), json!(decl.name));
    let mut put = |k: &str, v: Option<Value>| {
        f.insert(k.to_string(), v.unwrap_or(Value::Null));
    };
    put("instanceClass", db.db_instance_class().map(|s| json!(s)));
    put("engine", db.engine().map(|s| json!(s)));
    put("engineVersion", db.engine_version().map(|s| json!(s)));
    put("allocatedStorage", db.allocated_storage().map(|n| json!(n)));
    put("multiAZ", db.multi_az().map(|b| json!(b)));
    put("masterUsername", db.master_username().map(|s| json!(s)));
    put("dbName", db.db_name().map(|s| json!(s)));
    put(
        "deletionProtection",
        db.deletion_protection().map(|b| json!(b)),
    );
    // The region is the fourth part of the ARN (arn:aws:rds:REGION:account:db:name).
    put(
        "region",
        obs.id
            .as_deref()
            .and_then(|a| a.split(':').nth(3))
            .map(|s| json!(s)),
    );
    let user_tags: Map<String, Value> = obs
        .tags
        .iter()
        .filter(|(k, _)| !orkestra_provider::ownership::is_ownership_tag(k))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    f.insert("tags".into(), Value::Object(user_tags));

    // A requested change still pending counts as the value: asking again would loop forever.
    if let Some(p) = db.pending_modified_values() {
        let mut pending = Vec::new();
        if let Some(v) = p.db_instance_class() {
            f.insert("instanceClass".into(), json!(v));
            pending.push(format!("instanceClass {v}"));
        }
        if let Some(v) = p.allocated_storage() {
            f.insert("allocatedStorage".into(), json!(v));
            pending.push(format!("allocatedStorage {v}"));
        }
        if let Some(v) = p.engine_version() {
            f.insert("engineVersion".into(), json!(v));
            pending.push(format!("engineVersion {v}"));
        }
        if let Some(v) = p.multi_az() {
            f.insert("multiAZ".into(), json!(v));
            pending.push(format!("multiAZ {v}"));
        }
        if !pending.is_empty() {
            obs.notes.push(format!(
                "pending modifications (next maintenance window): {}",
                pending.join(", ")
            ));
        }
    }

    // Every output the schema declares for `aws.rds` (see crate::schema), filled here only. The
    // endpoint appears once the instance has an address (not while it is being created).
    if let Some(arn) = &obs.id {
        obs.outputs.insert("arn".into(), json!(arn));
    }
    obs.outputs.insert("status".into(), json!(status));
    if let Some(ep) = db.endpoint() {
        if let Some(address) = ep.address() {
            obs.outputs.insert("endpoint".into(), json!(address));
        }
        if let Some(port) = ep.port() {
            obs.outputs.insert("port".into(), json!(port));
        }
    }
    if let Some(v) = db.engine_version() {
        obs.outputs.insert("engineVersion".into(), json!(v));
    }
    obs.status = Some(status);
    obs
}

/// Declared engine version matches when equal or a prefix at a dot ("16" matches "16.4"), since
/// RDS upgrades minor versions by itself.
fn version_matches(declared: &str, observed: &str) -> bool {
    observed == declared
        || observed
            .strip_prefix(declared)
            .is_some_and(|rest| rest.starts_with('.'))
}

fn desired_tags(decl: &Declaration) -> (BTreeMap<String, String>, bool) {
    let declared = decl.tags();
    let exact = declared.is_some();
    let mut tags = declared.unwrap_or_default();
    // Observe never writes, so ownership tags are not part of what it compares.
    if decl.management_policy != ManagementPolicy::Observe {
        tags.extend(decl.owner.tags());
    }
    (tags, exact)
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        let mut fields = decl.fields.clone();
        for k in ["credentials", "skipFinalSnapshot", "applyImmediately"] {
            fields.remove(k);
        }
        plan.changes = creation_changes(&fields, &["masterPasswordSecret"]);
        plan.changes
            .extend(decl.owner.tags().into_iter().map(|(k, v)| {
                FieldChange::new(
                    format!("tags.{k}"),
                    PlanValue::Absent,
                    PlanValue::Known(json!(v)),
                )
            }));
        for unknown in ["arn", "endpoint"] {
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
    for field in [
        "instanceClass",
        "engine",
        "engineVersion",
        "allocatedStorage",
        "multiAZ",
        "masterUsername",
        "dbName",
        "deletionProtection",
        "region",
    ] {
        let Some(desired) = decl.fields.get(field) else {
            continue;
        };
        let before = obs.fields.get(field).filter(|v| !v.is_null());
        let same = match (field, before) {
            ("engineVersion", Some(Value::String(o))) => {
                desired.as_str().is_some_and(|d| version_matches(d, o))
            }
            (_, b) => b == Some(desired),
        };
        if same {
            continue;
        }
        let mut change = FieldChange::new(
            field,
            PlanValue::from_option(before),
            PlanValue::Known(desired.clone()),
        );
        // Storage can grow in place but never shrink.
        let shrink = field == "allocatedStorage"
            && matches!((before.and_then(Value::as_i64), desired.as_i64()), (Some(b), Some(d)) if d < b);
        if IMMUTABLE.contains(&field) || shrink {
            change = change.forcing_replacement();
        }
        changes.push(change);
    }
    let (tags, exact) = desired_tags(decl);
    changes.extend(diff_tags(
        "tags",
        &tags,
        &crate::ownership::comparable_tags(decl, obs),
        exact,
    ));
    plan_from_changes(decl, obs, changes)
}

/// The state an instance's status word shows, for a plan with nothing to do.
fn settled_outcome(obs: &Observation) -> Outcome {
    let status = obs.status.as_deref().unwrap_or("unknown");
    let base = Outcome::new(State::Ready)
        .id(obs.id.clone())
        .outputs(obs.outputs.clone());
    let with = |state: State| Outcome {
        state,
        ..base.clone()
    };
    match health(status) {
        Health::Idle if obs.notes.is_empty() => base,
        Health::Idle => base.clone().message(obs.notes.join("; ")),
        Health::Creating => with(State::Creating)
            .message("creating")
            .requeue(BUSY_REQUEUE),
        Health::Deleting => with(State::Deleting)
            .message("deleting")
            .requeue(BUSY_REQUEUE),
        Health::Busy => with(State::Updating)
            .message(format!("status is {status}"))
            .requeue(BUSY_REQUEUE),
        Health::Failed => with(State::Error).message(format!("instance status is {status}")),
    }
}

/// Carry out `plan`. `password` is the master password, needed only to create.
pub(crate) async fn apply(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
    password: Option<SecretValue>,
) -> Result<Outcome, ProviderError> {
    if let Some(b) = &plan.blocked {
        return Ok(blocked_outcome(decl, obs, plan, b));
    }
    match plan.action {
        Action::Noop => Ok(settled_outcome(obs)),
        Action::Create => create(client, decl, password).await,
        Action::Update => modify(client, decl, obs, plan).await,
        Action::Replace | Action::Delete => Ok(blocked_outcome(
            decl,
            obs,
            plan,
            &Blocked::ReplacementRequired,
        )),
    }
}

async fn create(
    client: &Client,
    decl: &Declaration,
    password: Option<SecretValue>,
) -> Result<Outcome, ProviderError> {
    let password = password.ok_or_else(|| {
        ProviderError::invalid_field("masterPasswordSecret", "is required to create an instance")
    })?;
    let password = password
        .expose_str()
        .ok_or_else(|| {
            ProviderError::invalid_field("masterPasswordSecret", "the password is not UTF-8")
        })?
        .to_string();
    let (tags, _) = desired_tags(decl);
    let tags = tags
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let out = client
        .create_db_instance()
        .db_instance_identifier(&decl.name)
        .set_db_instance_class(decl.str("instanceClass").map(str::to_string))
        .set_engine(decl.str("engine").map(str::to_string))
        .set_engine_version(decl.str("engineVersion").map(str::to_string))
        .set_allocated_storage(
            decl.int("allocatedStorage")
                .and_then(|n| i32::try_from(n).ok()),
        )
        .set_multi_az(decl.fields.get("multiAZ").and_then(Value::as_bool))
        .set_master_username(decl.str("masterUsername").map(str::to_string))
        .master_user_password(password)
        .set_db_name(decl.str("dbName").map(str::to_string))
        .set_deletion_protection(
            decl.fields
                .get("deletionProtection")
                .and_then(Value::as_bool),
        )
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| sdk_error("CreateDBInstance", &e))?;
    let obs = out
        .db_instance()
        .map(|db| observation(decl, db))
        .unwrap_or_default();
    let mut outcome = match obs.status.as_deref() {
        Some("available") => settled_outcome(&obs),
        _ => Outcome::new(State::Creating)
            .id(obs.id.clone())
            .outputs(obs.outputs.clone())
            .requeue(BUSY_REQUEUE),
    };
    outcome.mutations = 1;
    Ok(outcome)
}

async fn modify(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
) -> Result<Outcome, ProviderError> {
    let changed = |p: &str| plan.changes.iter().any(|c| c.path == p);
    let apply_now = decl.bool_or("applyImmediately", false);
    let mut n = 0;
    let instance_fields = [
        "instanceClass",
        "engineVersion",
        "allocatedStorage",
        "multiAZ",
        "deletionProtection",
    ];
    if instance_fields.iter().any(|f| changed(f)) {
        let pick = |f: &str| changed(f).then(|| decl.fields.get(f)).flatten();
        let version = pick("engineVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        let major = version
            .as_deref()
            .zip(obs.fields.get("engineVersion").and_then(Value::as_str))
            .is_some_and(|(d, o)| d.split('.').next() != o.split('.').next());
        client
            .modify_db_instance()
            .db_instance_identifier(&decl.name)
            .set_db_instance_class(
                pick("instanceClass")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
            .set_engine_version(version)
            .set_allow_major_version_upgrade(major.then_some(true))
            .set_allocated_storage(
                pick("allocatedStorage")
                    .and_then(Value::as_i64)
                    .and_then(|n| i32::try_from(n).ok()),
            )
            .set_multi_az(pick("multiAZ").and_then(Value::as_bool))
            .set_deletion_protection(pick("deletionProtection").and_then(Value::as_bool))
            .apply_immediately(apply_now)
            .send()
            .await
            .map_err(|e| sdk_error("ModifyDBInstance", &e))?;
        n += 1;
    }
    if let Some(arn) = obs.id.as_deref() {
        let (tags, exact) = desired_tags(decl);
        let add: Vec<Tag> = tags
            .iter()
            .filter(|(k, v)| obs.tags.get(*k) != Some(*v))
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        if !add.is_empty() {
            client
                .add_tags_to_resource()
                .resource_name(arn)
                .set_tags(Some(add))
                .send()
                .await
                .map_err(|e| sdk_error("AddTagsToResource", &e))?;
            n += 1;
        }
        let remove: Vec<String> = if exact {
            crate::ownership::settable_tags(&obs.tags)
                .keys()
                .filter(|k| !tags.contains_key(*k))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        if !remove.is_empty() {
            client
                .remove_tags_from_resource()
                .resource_name(arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error("RemoveTagsFromResource", &e))?;
            n += 1;
        }
    }
    let outcome = Outcome::new(State::Updating)
        .id(obs.id.clone())
        .outputs(obs.outputs.clone())
        .mutations(n);
    let only_tags = plan.changes.iter().all(|c| c.path.starts_with("tags."));
    Ok(if only_tags {
        Outcome {
            state: State::Ready,
            ..outcome
        }
    } else if apply_now {
        outcome.message("modifying").requeue(BUSY_REQUEUE)
    } else {
        // Not applied now: RDS holds the change until the maintenance window; the next observe
        // reports it as pending, which the diff treats as done.
        outcome
            .message("modification scheduled for the next maintenance window")
            .requeue(BUSY_REQUEUE)
    })
}

/// Delete (or orphan) the instance: a final snapshot unless `skipFinalSnapshot: true`; deletion
/// protection is honoured, not switched off.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let id = obs.id.clone();
    if obs.status.as_deref() == Some("deleting") {
        return Ok(Outcome::new(State::Deleting)
            .id(id)
            .message("deleting")
            .requeue(BUSY_REQUEUE));
    }
    if obs.fields.get("deletionProtection") == Some(&json!(true)) {
        return Ok(Outcome::new(State::Deleting)
            .id(id)
            .message("not deleted: deletion protection is on; set deletionProtection: false (and let it reconcile) or deletionPolicy: Orphan")
            .requeue(HELD_REQUEUE));
    }
    let skip = decl.bool_or("skipFinalSnapshot", false);
    let snapshot = (!skip).then(|| final_snapshot_name(&decl.name));
    let result = client
        .delete_db_instance()
        .db_instance_identifier(&decl.name)
        .skip_final_snapshot(skip)
        .set_final_db_snapshot_identifier(snapshot.clone())
        .send()
        .await;
    match result {
        Ok(_) => {
            let message = match &snapshot {
                Some(s) => format!("deleting; final snapshot {s}"),
                None => "deleting; no final snapshot (skipFinalSnapshot: true)".to_string(),
            };
            Ok(Outcome::new(State::Deleting)
                .id(id)
                .message(message)
                .requeue(BUSY_REQUEUE)
                .mutations(1))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            Ok(Outcome::new(State::Deleted).mutations(1))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_db_instance_state_fault()) =>
        {
            Ok(Outcome::new(State::Deleting)
                .id(id)
                .message(format!(
                    "waiting for the instance to settle before deleting: {}",
                    sdk_error("DeleteDBInstance", &e)
                ))
                .requeue(BUSY_REQUEUE)
                .mutations(1))
        }
        Err(e) => Err(sdk_error("DeleteDBInstance", &e)),
    }
}

/// `NAME-final-YYYYMMDDHHMMSS`, within RDS's 255-character limit for snapshot identifiers.
pub fn final_snapshot_name(identifier: &str) -> String {
    format!(
        "{identifier}-final-{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_by_prefix_at_a_dot() {
        assert!(version_matches("16", "16.4"));
        assert!(version_matches("16.4", "16.4"));
        assert!(!version_matches("16.4", "16.40"));
        assert!(!version_matches("1", "16.4"));
    }

    #[test]
    fn status_words() {
        assert_eq!(health("available"), Health::Idle);
        assert_eq!(health("backing-up"), Health::Busy);
        assert_eq!(health("incompatible-parameters"), Health::Failed);
    }
}
