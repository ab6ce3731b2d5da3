//! `aws.route53` (a DNS record) and `aws.route53Zone` (a public hosted zone).
//!
//! # Records
//!
//! A record is identified by its hosted zone, its name and its type, as Route 53 and
//! external-dns identify a record set. `name` is the record's fully qualified name, with or
//! without the trailing dot (`www.example.com`); it is not relative to the zone: a name that is
//! neither the zone's name nor inside it is an error naming both. Internally every name is
//! lowercase with a trailing dot (DNS names are case-insensitive; Route 53 stores the dot). The
//! zone is found by name (`zone: example.com`) or id (`zoneId: Z123...`).
//!
//! Records carry no tags, so ownership follows external-dns: beside each record orkestra keeps an
//! ownership TXT record at a prefixed name, `_orkestra-<type>.<name>` (`_orkestra-a-wildcard.<rest>`
//! for a wildcard `*.<rest>`, since `*` may only be a whole leftmost label). It lives at its own
//! name because a CNAME cannot share its name with any other record, a TXT included. Its value
//! reads `"heritage=orkestra,orkestra/owner-uid=…,orkestra/owner=ns/name,orkestra/katalog=…"` and
//! is parsed back into the owner tags, so [`orkestra_provider::Owner::judge`] decides ownership as
//! for every tagged kind. The record and its ownership TXT are always written and deleted in ONE
//! change batch, which Route 53 applies atomically: there is never a record of ours without its
//! mark, so a record without one is somebody else's (a Conflict unless `adopt: true`).
//!
//! A change batch is accepted as `PENDING` and becomes `INSYNC` once every Route 53 name server
//! has it. orkestra never waits for that: the row says Creating/Updating with the change's id in
//! its message (the only state a row carries from one pass to the next) and the next pass asks
//! GetChange about that id; the row is Ready once Route 53 says `INSYNC`.
//!
//! # Zones
//!
//! A zone is owned through hosted-zone tags, written right after CreateHostedZone (which cannot
//! tag). Its CallerReference is derived from the owner's uid and the zone's name, so a create
//! retried after a crash between the create and the tagging finds the zone by that reference
//! and claims it instead of calling it someone else's.

pub mod record;
pub mod zone;

use std::time::Duration;

use aws_sdk_route53::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::{
    Declaration, KindSchema, Observation, Outcome, Plan, ProviderContext, ProviderError, State,
    StatusRow,
};
use serde_json::Value;

use crate::error::sdk_error;

/// The kinds this module serves.
pub(crate) const KINDS: &[&str] = &[record::KIND, zone::KIND];

/// How long to wait before asking Route 53 again about a change still `PENDING`.
pub const PENDING_REQUEUE: Duration = Duration::from_secs(10);

/// The kinds' schemas.
pub(crate) fn kinds() -> Vec<KindSchema> {
    vec![record::schema(), zone::schema()]
}

/// Read the record or zone; `for_delete` says a missing hosted zone means "gone" rather than
/// an error to show.
pub(crate) async fn observe(
    client: &Client,
    ctx: &ProviderContext,
    decl: &Declaration,
    for_delete: bool,
) -> Result<Observation, ProviderError> {
    let previous = previous_rows(ctx, decl);
    if decl.kind == zone::KIND {
        zone::observe(client, decl, &previous).await
    } else {
        record::observe(client, decl, &previous, for_delete).await
    }
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    if decl.kind == zone::KIND {
        zone::diff(decl, obs)
    } else {
        record::diff(decl, obs)
    }
}

/// One step of the plan.
pub(crate) async fn apply(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
) -> Result<Outcome, ProviderError> {
    if decl.kind == zone::KIND {
        zone::apply(client, decl, obs, plan).await
    } else {
        record::apply(client, decl, obs, plan).await
    }
}

/// Delete or orphan.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if decl.kind == zone::KIND {
        zone::delete(client, decl, obs).await
    } else {
        record::delete(client, decl, obs).await
    }
}

/// This declaration's rows in the CR's last status (several for records of different types
/// sharing a name).
fn previous_rows(ctx: &ProviderContext, decl: &Declaration) -> Vec<StatusRow> {
    orkestra_provider::journal::rows_of(&ctx.cr)
        .into_iter()
        .filter(|r| r.provider == decl.provider && r.kind == decl.kind && r.name == decl.name)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// DNS names

/// Lowercase, one trailing dot, Route 53's octal escapes (`\052` for `*`) decoded: the form
/// names are compared in.
pub fn fqdn(name: &str) -> String {
    let mut s = decode_escapes(name.trim()).to_ascii_lowercase();
    while s.ends_with("..") {
        s.pop();
    }
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// The name without its trailing dot (outputs, messages).
pub fn without_dot(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// Route 53 answers `*` and other special characters as `\NNN` (three octal digits).
fn decode_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Longest name Route 53 accepts, without the trailing dot.
const MAX_NAME: usize = 253;
/// Longest label.
const MAX_LABEL: usize = 63;

/// The label and length rules shared by record and zone names. `wildcard` allows `*` as the
/// whole leftmost label. Returns the lowercase name without its trailing dot.
fn check_dns_name(what: &str, s: &str, wildcard: bool) -> Result<String, String> {
    let name = s.trim().strip_suffix('.').unwrap_or(s.trim());
    if name.is_empty() {
        return Err(format!("{what} {s:?} is empty"));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "{what} {s:?} is {} characters long, more than {MAX_NAME}",
            name.len()
        ));
    }
    for (i, label) in name.split('.').enumerate() {
        if label.is_empty() {
            return Err(format!(
                "{what} {s:?} has an empty label (two dots in a row)"
            ));
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "{what} {s:?} has a label of {} characters ({label:?}); a label has 1 to {MAX_LABEL}",
                label.len()
            ));
        }
        if label == "*" {
            if wildcard && i == 0 {
                continue;
            }
            return Err(format!(
                "{what} {s:?}: `*` is only allowed as the whole leftmost label (a wildcard, *.example.com)"
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "{what} {s:?} contains {bad:?}; labels may contain letters, digits, hyphens and underscores"
            ));
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// A hosted zone's name (`example.com`): DNS label rules, no wildcard.
pub fn zone_name(s: &str) -> Result<(), String> {
    check_dns_name("zone name", s, false).map(|_| ())
}

/// A target host name (CNAME or MX target, alias target): DNS label rules, no wildcard.
pub fn host_name(s: &str) -> Result<(), String> {
    check_dns_name("host name", s, false).map(|_| ())
}

/// A hosted zone id, `Z123ABC` or `/hostedzone/Z123ABC`.
pub fn zone_id(s: &str) -> Result<(), String> {
    let id = bare_zone_id(s);
    if !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a hosted zone id (uppercase letters and digits, like Z0123456789ABCDEFGHIJ)"
        ))
    }
}

/// The id without Route 53's `/hostedzone/` prefix.
pub fn bare_zone_id(id: &str) -> &str {
    id.trim().strip_prefix("/hostedzone/").unwrap_or(id.trim())
}

// ---------------------------------------------------------------------------------------------
// Pending changes

/// What a Creating/Updating row's message says while a change is not yet INSYNC; the next pass
/// reads the id back from it.
const PENDING_PREFIX: &str = "waiting for Route 53 change ";

/// The message of a row whose change `id` is still pending.
fn pending_message(id: &str) -> String {
    format!(
        "{PENDING_PREFIX}{} to reach every Route 53 name server (status PENDING)",
        bare_change_id(id)
    )
}

/// The change id a row's message names, if the row waits for one.
fn pending_change_of(row: &StatusRow) -> Option<String> {
    if !matches!(row.state, State::Creating | State::Updating) {
        return None;
    }
    let rest = &row.message[row.message.find(PENDING_PREFIX)? + PENDING_PREFIX.len()..];
    let id: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (!id.is_empty()).then_some(id)
}

/// The id without Route 53's `/change/` prefix.
fn bare_change_id(id: &str) -> &str {
    id.strip_prefix("/change/").unwrap_or(id)
}

/// A change a previous pass made and was still waiting for, as GetChange sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    id: String,
    /// Still `PENDING` (else `INSYNC`, or forgotten by Route 53).
    pending: bool,
    /// The state the waiting row showed (Creating or Updating), kept while waiting.
    state: State,
}

/// GetChange for the change `row` waits for, if it waits for one.
async fn check_pending(client: &Client, row: &StatusRow) -> Result<Option<Pending>, ProviderError> {
    let Some(id) = pending_change_of(row) else {
        return Ok(None);
    };
    match client.get_change().id(&id).send().await {
        Ok(out) => Ok(Some(Pending {
            pending: out
                .change_info()
                .is_some_and(|c| c.status().as_str() == "PENDING"),
            id,
            state: row.state,
        })),
        // Route 53 forgets changes after a while: nothing left to wait for.
        Err(e) if e.code() == Some("NoSuchChange") => Ok(None),
        Err(e) => Err(sdk_error("GetChange", &e)),
    }
}

/// Record a pending change in an observation (for the diff and apply, which see nothing else).
fn put_pending(obs: &mut Observation, p: &Pending) {
    if p.pending {
        obs.status = Some("PENDING".into());
        obs.fields.insert(
            "pendingChange".into(),
            serde_json::json!({"id": p.id, "creating": p.state == State::Creating}),
        );
    } else {
        obs.status = Some("INSYNC".into());
    }
}

/// The outcome of a plan with nothing to do: Ready, or still waiting for a pending change.
fn settled(obs: &Observation) -> Outcome {
    let base = Outcome::new(State::Ready)
        .id(obs.id.clone())
        .outputs(obs.outputs.clone());
    let Some(p) = obs.fields.get("pendingChange") else {
        return if obs.notes.is_empty() {
            base
        } else {
            base.message(obs.notes.join("; "))
        };
    };
    let id = p.get("id").and_then(Value::as_str).unwrap_or_default();
    let creating = p.get("creating").and_then(Value::as_bool) == Some(true);
    Outcome {
        state: if creating {
            State::Creating
        } else {
            State::Updating
        },
        ..base
    }
    .message(pending_message(id))
    .requeue(PENDING_REQUEUE)
}

/// The outcome right after a change batch or a zone create: Ready when Route 53 says INSYNC,
/// else `waiting` (Creating or Updating) until a later pass sees it INSYNC.
fn after_change(
    change: Option<&aws_sdk_route53::types::ChangeInfo>,
    waiting: State,
    base: Outcome,
) -> Outcome {
    match change {
        Some(c) if c.status().as_str() == "PENDING" => Outcome {
            state: waiting,
            ..base
        }
        .message(pending_message(c.id()))
        .requeue(PENDING_REQUEUE),
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_lowercase_with_a_dot_and_unescaped() {
        assert_eq!(fqdn("WWW.Example.com"), "www.example.com.");
        assert_eq!(fqdn("www.example.com."), "www.example.com.");
        assert_eq!(fqdn("\\052.example.com."), "*.example.com.");
        assert_eq!(without_dot("a.b."), "a.b");
        assert_eq!(bare_zone_id("/hostedzone/Z1ABC"), "Z1ABC");
    }

    #[test]
    fn dns_name_rules() {
        for ok in [
            "example.com",
            "example.com.",
            "_dmarc.example.com",
            "a-b.c_d.example",
            "*.example.com",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert!(check_dns_name("name", ok, true).is_ok(), "{ok}");
        }
        let long = vec!["a".repeat(60); 5].join(".");
        for (bad, why) in [
            ("", "is empty"),
            (".", "is empty"),
            ("a..b", "empty label"),
            ("a.*.b", "whole leftmost label"),
            ("*x.example.com", "contains '*'"),
            ("a b.com", "contains ' '"),
            ("é.com", "contains 'é'"),
            (long.as_str(), "more than 253"),
        ] {
            let e = check_dns_name("name", bad, true).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let e = check_dns_name("name", &format!("{}.com", "a".repeat(64)), true).unwrap_err();
        assert!(e.contains("label of 64 characters"), "{e}");
        assert!(zone_name("*.example.com").is_err());
        assert!(zone_id("Z0123456789ABCDEFGHIJ").is_ok());
        assert!(zone_id("/hostedzone/Z1").is_ok());
        assert!(zone_id("z-1").is_err());
    }

    #[test]
    fn a_pending_change_is_read_back_from_the_row_message() {
        let row = |state: State, message: String| StatusRow {
            provider: "aws".into(),
            kind: "route53".into(),
            name: "www.example.com".into(),
            id: None,
            state,
            message,
            last_sync_time: String::new(),
            outputs: Default::default(),
            intent: None,
            deletion_policy: None,
        };
        let waiting = row(State::Creating, pending_message("/change/C0ABC123"));
        assert_eq!(pending_change_of(&waiting).as_deref(), Some("C0ABC123"));
        assert_eq!(
            pending_change_of(&row(State::Ready, pending_message("C1"))),
            None
        );
        assert_eq!(
            pending_change_of(&row(State::Updating, "something else".into())),
            None
        );
    }
}
