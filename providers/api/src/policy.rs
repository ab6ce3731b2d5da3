//! The ownership and policy rules every provider follows, in one place so a third-party
//! provider gets them by calling these functions instead of copying them:
//!
//! - another owner's resource is never modified or deleted (the row is a Conflict);
//! - an unowned one is taken over only with `adopt: true`;
//! - `managementPolicy: Observe` only reads; `deletionPolicy: Orphan` leaves the resource;
//! - a change to a field that cannot change in place is a replacement, never carried out.
//!
//! Each provider says how it marks what it owns (`mark`: "owner tags", "ownership mark in its
//! comment"), so the messages tell the user where to look.

use std::time::Duration;

use crate::{
    Action, Blocked, Declaration, DeletionPolicy, FieldChange, ManagementPolicy, Observation,
    Outcome, Ownership, Plan, State,
};

/// Why the resource must not be touched, if it must not. `mark` names how the provider marks
/// what it owns ("owner tags").
pub fn conflict_message(obs: &Observation, adopt: bool, mark: &str) -> Option<String> {
    match &obs.ownership {
        Ownership::Ours => None,
        Ownership::Foreign { owner, uid } if uid.is_empty() => Some(format!(
            "exists and belongs to {owner}; it is never modified or deleted"
        )),
        Ownership::Foreign { owner, uid } => Some(format!(
            "exists and belongs to {owner} (owner uid {uid}), not to this resource; it is never modified or deleted"
        )),
        Ownership::Unowned if adopt => None,
        Ownership::Unowned => Some(format!(
            "exists but was not created by orkestra (no {mark}); set adopt: true to manage it"
        )),
    }
}

/// For the diff: a Conflict block when the existing resource is not ours to change. Observe
/// never writes, so reading someone else's resource is fine.
pub fn observe_guard(decl: &Declaration, obs: &Observation, mark: &str) -> Option<Blocked> {
    if decl.management_policy == ManagementPolicy::Observe {
        return None;
    }
    conflict_message(obs, decl.adopt, mark).map(Blocked::Conflict)
}

/// For delete: the outcome when nothing may or needs to be deleted (Orphan, Observe, already
/// gone, not ours).
pub fn delete_guard(decl: &Declaration, obs: &Observation, mark: &str) -> Option<Outcome> {
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
    conflict_message(obs, decl.adopt, mark).map(|m| {
        Outcome::new(State::Conflict)
            .id(obs.id.clone())
            .message(format!("not deleted: {m}"))
    })
}

/// Update, Replace (blocked) or Noop from the field changes a diff found; blocked for Observe and
/// while the resource is busy. `adopting` is the note shown when an unowned resource is taken
/// over ("ownership tags will be added").
pub fn plan_from_changes(
    decl: &Declaration,
    obs: &Observation,
    changes: Vec<FieldChange>,
    adopting: &str,
) -> Plan {
    let replacement: Vec<String> = changes
        .iter()
        .filter(|c| c.forces_replacement)
        .map(|c| c.path.clone())
        .collect();
    let action = match (changes.is_empty(), replacement.is_empty()) {
        (true, _) => Action::Noop,
        (false, true) => Action::Update,
        (false, false) => Action::Replace,
    };
    let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, action);
    plan.changes = changes;
    plan.requires_replacement = replacement;
    plan.notes = obs.notes.clone();
    if action == Action::Replace {
        plan.blocked = Some(Blocked::ReplacementRequired);
    } else if decl.management_policy == ManagementPolicy::Observe {
        plan.blocked = Some(Blocked::ObserveOnly);
    } else if action != Action::Noop && obs.busy {
        plan.blocked = Some(Blocked::Busy(format!(
            "status is {}",
            obs.status.as_deref().unwrap_or("busy")
        )));
    }
    if matches!(obs.ownership, Ownership::Unowned) && decl.adopt && action == Action::Update {
        plan.notes.push(format!("adopting: {adopting}"));
    }
    plan
}

/// The outcome of a plan that will not be carried out: a Conflict row, Observe's drift report,
/// a replacement that needs the user, or a wait while the resource is busy.
pub fn blocked_outcome(obs: &Observation, plan: &Plan, blocked: &Blocked) -> Outcome {
    let base = Outcome::new(State::Ready)
        .id(obs.id.clone())
        .outputs(obs.outputs.clone());
    match blocked {
        Blocked::Conflict(m) => Outcome {
            state: State::Conflict,
            ..base
        }
        .message(m.clone()),
        Blocked::ObserveOnly if !obs.exists => Outcome::new(State::Error)
            .message("does not exist (managementPolicy: Observe never creates)"),
        Blocked::ObserveOnly if plan.changes.is_empty() => base,
        Blocked::ObserveOnly => base.message(format!(
            "drift not corrected (managementPolicy: Observe): {}",
            describe_changes(&plan.changes)
        )),
        Blocked::ReplacementRequired => Outcome {
            state: State::Error,
            ..base
        }
        .message(format!(
            "requires replacement: {} (orkestra never replaces a resource by itself; recreate it under a new name)",
            describe_changes(plan.changes.iter().filter(|c| c.forces_replacement))
        )),
        Blocked::Busy(m) => Outcome {
            state: State::Updating,
            ..base
        }
        .message(format!(
            "waiting before changing {}: {m}",
            describe_changes(&plan.changes)
        ))
        .requeue(Duration::from_secs(30)),
    }
}

/// `owner "a" -> "b", login false -> true`.
pub fn describe_changes<'a>(changes: impl IntoIterator<Item = &'a FieldChange>) -> String {
    changes
        .into_iter()
        .map(|c| format!("{} {} -> {}", c.path, c.before, c.after))
        .collect::<Vec<_>>()
        .join(", ")
}
