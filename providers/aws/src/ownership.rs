//! The ownership and policy rules of [`orkestra_provider::policy`] as every AWS kind applies
//! them (the mark is the owner tags), and AWS's own tag rules.

use orkestra_provider::{
    policy, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome, Plan,
};

/// How AWS resources carry their ownership mark (for the policy messages).
const MARK: &str = "owner tags";

/// For the diff: a Conflict block when the existing resource is not ours to change.
pub(crate) fn observe_guard(decl: &Declaration, obs: &Observation) -> Option<Blocked> {
    policy::observe_guard(decl, obs, MARK)
}

/// For delete: the outcome when nothing may or needs to be deleted.
pub(crate) fn delete_guard(decl: &Declaration, obs: &Observation) -> Option<Outcome> {
    policy::delete_guard(decl, obs, MARK)
}

/// Update, Replace (blocked) or Noop from a list of changes (S3 and RDS).
pub(crate) fn plan_from_changes(
    decl: &Declaration,
    obs: &Observation,
    changes: Vec<FieldChange>,
) -> Plan {
    policy::plan_from_changes(decl, obs, changes, "ownership tags will be added")
}

/// Tags a user can set: AWS reserves the `aws:` prefix (CloudFormation, cost allocation), and
/// such tags can be neither written nor removed, so they are left out of comparisons.
pub(crate) fn settable_tags(
    tags: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The observed tags a diff compares: settable ones, without ownership tags under Observe
/// (which neither writes nor judges them).
pub(crate) fn comparable_tags(
    decl: &Declaration,
    obs: &Observation,
) -> std::collections::BTreeMap<String, String> {
    let mut tags = settable_tags(&obs.tags);
    if decl.management_policy == ManagementPolicy::Observe {
        tags.retain(|k, _| !orkestra_provider::ownership::is_ownership_tag(k));
    }
    tags
}
