//! The ownership and policy rules shared by every AWS kind: never touch another owner's resource,
//! adopt only on request, Observe only reads, Orphan leaves the resource behind.

use orkestra_provider::{
    Blocked, Declaration, DeletionPolicy, ManagementPolicy, Observation, Outcome, Ownership, State,
};

/// Why the resource must not be touched, if it must not.
pub(crate) fn conflict_message(obs: &Observation, adopt: bool) -> Option<String> {
    match &obs.ownership {
        Ownership::Ours => None,
        Ownership::Foreign { owner, uid } if uid.is_empty() => {
            Some(format!("exists and belongs to {owner}; it is never modified or deleted"))
        }
        Ownership::Foreign { owner, uid } => Some(format!(
            "exists and belongs to {owner} (owner uid {uid}), not to this resource; it is never modified or deleted"
        )),
        Ownership::Unowned if adopt => None,
        Ownership::Unowned => Some(
            "exists but was not created by orkestra (no owner tags); set adopt: true to manage it".to_string(),
        ),
    }
}

/// For the diff: a Conflict block when the existing resource is not ours to change.
pub(crate) fn observe_guard(decl: &Declaration, obs: &Observation) -> Option<Blocked> {
    if decl.management_policy == ManagementPolicy::Observe {
        // Observe never writes, so reading someone else's resource is fine.
        return None;
    }
    conflict_message(obs, decl.adopt).map(Blocked::Conflict)
}

/// For delete: the outcome when nothing may or needs to be deleted.
pub(crate) fn delete_guard(decl: &Declaration, obs: &Observation) -> Option<Outcome> {
    if decl.deletion_policy == DeletionPolicy::Orphan {
        return Some(
            Outcome::new(State::Orphaned)
                .id(obs.id.clone())
                .message("deletionPolicy: Orphan: left in place"),
        );
    }
    if decl.management_policy == ManagementPolicy::Observe {
        return Some(
            Outcome::new(State::Orphaned)
                .id(obs.id.clone())
                .message("managementPolicy: Observe: left in place"),
        );
    }
    if !obs.exists {
        return Some(Outcome::new(State::Deleted));
    }
    conflict_message(obs, decl.adopt).map(|m| {
        Outcome::new(State::Conflict)
            .id(obs.id.clone())
            .message(format!("not deleted: {m}"))
    })
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
