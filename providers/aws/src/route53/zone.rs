//! `aws.route53Zone`: a public hosted zone, with its comment and tags.
//!
//! Ownership is the owner tags, written by ChangeTagsForResource right after CreateHostedZone
//! (which cannot tag). The create's CallerReference is derived from the owner's uid and the
//! zone's name, so a zone left untagged by a crash between the two calls is recognised by its
//! reference and claimed (tagged) on the next pass instead of being reported as someone else's.
//! Route 53 allows several zones of one name; the one carrying this owner's tags is the one
//! managed, and taking over an existing one (`adopt: true`) needs its name to be unambiguous.
//!
//! Delete removes the zone only when it holds nothing but its SOA and NS records: Route 53
//! refuses otherwise (HostedZoneNotEmpty), and orkestra never deletes records it does not
//! manage, so the row stays Deleting with AWS's reason until those records are gone.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_route53::types::{HostedZone, HostedZoneConfig, Tag, TagResourceType};
use aws_sdk_route53::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::plan::{creation_changes, diff_tags};
use orkestra_provider::schema::OutputSchema as O;
use orkestra_provider::{
    policy, Action, Blocked, Declaration, FieldChange, FieldSchema as F, FieldType as T,
    KindSchema, ManagementPolicy, Observation, Outcome, Owner, Ownership, Plan, PlanValue,
    ProviderError, State, StatusRow, Validator,
};
use serde_json::{json, Map, Value};

use super::{bare_zone_id, fqdn, without_dot};
use crate::error::sdk_error;
use crate::ownership::{comparable_tags, delete_guard, observe_guard, plan_from_changes};

/// The kind's name.
pub(crate) const KIND: &str = "route53Zone";

/// How long a zone held back from deletion (records left in it) waits before the next try.
const HELD_REQUEUE: Duration = Duration::from_secs(60);

/// Tags per ChangeTagsForResource call (Route 53's limit for each of add and remove).
const TAGS_PER_CALL: usize = 10;

/// Longest hosted zone comment.
const MAX_COMMENT: usize = 256;

/// The kind's schema.
pub(crate) fn schema() -> KindSchema {
    let mut fields = vec![
        F::new("zoneName", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(super::zone_name)),
        F::new("comment", T::String).validate(Validator::Rule(comment)),
    ];
    fields.extend(crate::schema::common());
    KindSchema {
        name: KIND,
        name_field: "zoneName",
        fields,
        outputs: vec![
            O::new(
                "zoneId",
                T::String,
                "the hosted zone's id (Z…, without /hostedzone/)",
            ),
            O::new(
                "nameServers",
                T::List,
                "the zone's four Route 53 name servers, to delegate the domain to",
            ),
        ],
    }
}

fn comment(s: &str) -> Result<(), String> {
    if s.chars().count() > MAX_COMMENT {
        Err(format!(
            "a hosted zone comment has at most {MAX_COMMENT} characters, not {}",
            s.chars().count()
        ))
    } else {
        Ok(())
    }
}

/// CreateHostedZone's CallerReference for `owner`'s zone `name`: the same on every attempt, so
/// a create retried after a crash is recognised. FNV-1a of the name keeps it short (Route 53
/// allows 128 characters) without needing a hash crate.
pub fn caller_reference(owner: &Owner, name: &str) -> String {
    let hash = fqdn(name).bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let reference = format!("orkestra-{}-{hash:016x}", owner.uid);
    reference.chars().take(128).collect()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The public zones named `name`, their tags, and which one is this owner's.
pub(crate) async fn observe(
    client: &Client,
    decl: &Declaration,
    previous: &[StatusRow],
) -> Result<Observation, ProviderError> {
    let name = fqdn(&decl.name);
    let out = client
        .list_hosted_zones_by_name()
        .dns_name(&name)
        .max_items(100)
        .send()
        .await
        .map_err(|e| sdk_error("ListHostedZonesByName", &e))?;
    let candidates: Vec<&HostedZone> = out
        .hosted_zones()
        .iter()
        .filter(|z| fqdn(z.name()) == name)
        .filter(|z| z.config().is_none_or(|c| !c.private_zone()))
        .collect();
    if candidates.is_empty() {
        return Ok(Observation::absent());
    }
    // One GET per zone rather than the batch ListTagsForResources, which is a POST: a read
    // that would look like a write to anything counting requests by method. A name rarely has
    // more than one zone.
    let mut judged: Vec<(&HostedZone, BTreeMap<String, String>, Ownership)> = Vec::new();
    for z in candidates.iter().take(TAGS_PER_CALL) {
        let tags = client
            .list_tags_for_resource()
            .resource_type(TagResourceType::Hostedzone)
            .resource_id(bare_zone_id(z.id()))
            .send()
            .await
            .map_err(|e| sdk_error("ListTagsForResource", &e))?
            .resource_tag_set()
            .map(|s| tag_map(s.tags()))
            .unwrap_or_default();
        let ownership = decl.owner.judge(&tags);
        judged.push((*z, tags, ownership));
    }
    let reference = caller_reference(&decl.owner, &name);
    let ours = judged.iter().find(|(_, _, o)| *o == Ownership::Ours);
    let claimed = judged
        .iter()
        .find(|(z, _, o)| *o == Ownership::Unowned && z.caller_reference() == reference);
    let (zone, tags, ownership) = match ours.or(claimed).or(judged.first()) {
        Some(chosen) => chosen.clone(),
        None => return Ok(Observation::absent()),
    };
    let is_claim = ours.is_none() && claimed.is_some();
    if decl.adopt && ours.is_none() && !is_claim && judged.len() > 1 {
        return Err(ProviderError::invalid_field(
            "zoneName",
            format!(
                "{} public hosted zones are named {} ({}): adopt cannot tell which one to take over",
                judged.len(),
                without_dot(&name),
                judged
                    .iter()
                    .map(|(z, _, _)| bare_zone_id(z.id()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let id = bare_zone_id(zone.id()).to_string();
    let details = client
        .get_hosted_zone()
        .id(&id)
        .send()
        .await
        .map_err(|e| sdk_error("GetHostedZone", &e))?;
    let name_servers: Vec<String> = details
        .delegation_set()
        .map(|d| d.name_servers().to_vec())
        .unwrap_or_default();
    let mut obs = Observation {
        exists: true,
        id: Some(id.clone()),
        ownership: if is_claim { Ownership::Ours } else { ownership },
        ..Observation::default()
    };
    if is_claim {
        obs.notes.push(format!(
            "claimed: created by this resource's own interrupted create (CallerReference {reference}); owner tags will be added"
        ));
    }
    if judged.len() > 1 {
        obs.notes.push(format!(
            "{} public hosted zones are named {}; this one is {id}",
            judged.len(),
            without_dot(&name)
        ));
    }
    let user_tags: Map<String, Value> = tags
        .iter()
        .filter(|(k, _)| !orkestra_provider::ownership::is_ownership_tag(k))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    obs.tags = tags;
    obs.fields
        .insert("zoneName".into(), json!(without_dot(&name)));
    obs.fields.insert(
        "comment".into(),
        json!(zone.config().and_then(|c| c.comment()).unwrap_or_default()),
    );
    obs.fields.insert("tags".into(), Value::Object(user_tags));
    obs.outputs = outputs(&id, &name_servers);
    if let Some(row) = previous.first() {
        if let Some(p) = super::check_pending(client, row).await? {
            super::put_pending(&mut obs, &p);
        }
    }
    Ok(obs)
}

/// The outputs the schema declares, the one place they are computed.
fn outputs(id: &str, name_servers: &[String]) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("zoneId".into(), json!(id));
    o.insert("nameServers".into(), json!(name_servers));
    o
}

/// Declared tags plus the owner tags (not under Observe, which writes nothing), and whether the
/// declared set is exact (a declared `tags:` map removes tags it does not name).
fn desired_tags(decl: &Declaration) -> (BTreeMap<String, String>, bool) {
    let declared = decl.tags();
    let exact = declared.is_some();
    let mut tags = declared.unwrap_or_default();
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
        fields.remove("credentials");
        plan.changes = creation_changes(&fields, &[]);
        plan.changes
            .extend(decl.owner.tags().into_iter().map(|(k, v)| {
                FieldChange::new(
                    format!("tags.{k}"),
                    PlanValue::Absent,
                    PlanValue::Known(json!(v)),
                )
            }));
        for unknown in ["zoneId", "nameServers"] {
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
    if let Some(want) = decl.str("comment") {
        let have = obs.fields.get("comment").and_then(Value::as_str);
        if have.unwrap_or_default() != want {
            changes.push(FieldChange::new(
                "comment",
                PlanValue::from_option(obs.fields.get("comment")),
                PlanValue::Known(json!(want)),
            ));
        }
    }
    let (tags, exact) = desired_tags(decl);
    changes.extend(diff_tags("tags", &tags, &comparable_tags(decl, obs), exact));
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
        Action::Noop => Ok(super::settled(obs)),
        Action::Create => create(client, decl).await,
        Action::Update => update(client, decl, obs).await,
        Action::Replace | Action::Delete => Ok(policy::blocked_outcome(
            obs,
            plan,
            &Blocked::ReplacementRequired,
        )),
    }
}

/// Add and remove tags, at most [`TAGS_PER_CALL`] of each per call; the number of calls made.
async fn change_tags(
    client: &Client,
    id: &str,
    add: Vec<Tag>,
    remove: Vec<String>,
) -> Result<u32, ProviderError> {
    let mut calls = 0;
    let mut add = add.chunks(TAGS_PER_CALL);
    let mut remove = remove.chunks(TAGS_PER_CALL);
    loop {
        let (a, r) = (add.next(), remove.next());
        if a.is_none() && r.is_none() {
            return Ok(calls);
        }
        client
            .change_tags_for_resource()
            .resource_type(TagResourceType::Hostedzone)
            .resource_id(id)
            .set_add_tags(a.map(<[Tag]>::to_vec))
            .set_remove_tag_keys(r.map(<[String]>::to_vec))
            .send()
            .await
            .map_err(|e| sdk_error("ChangeTagsForResource", &e))?;
        calls += 1;
    }
}

fn tags_of(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

async fn create(client: &Client, decl: &Declaration) -> Result<Outcome, ProviderError> {
    let name = fqdn(&decl.name);
    let reference = caller_reference(&decl.owner, &name);
    let config = decl.str("comment").map(|c| {
        HostedZoneConfig::builder()
            .comment(c)
            .private_zone(false)
            .build()
    });
    let attempt = |reference: String| {
        client
            .create_hosted_zone()
            .name(&name)
            .caller_reference(reference)
            .set_hosted_zone_config(config.clone())
            .send()
    };
    let out = match attempt(reference.clone()).await {
        Ok(out) => out,
        // The reference was spent on a zone of this name and owner deleted since (observe found
        // none): a fresh one. Only the runtime's create intent can then claim a crash's leftover.
        Err(e) if e.code() == Some("HostedZoneAlreadyExists") => {
            attempt(format!("{reference}-{}", chrono::Utc::now().timestamp()))
                .await
                .map_err(|e| sdk_error("CreateHostedZone", &e))?
        }
        Err(e) => return Err(sdk_error("CreateHostedZone", &e)),
    };
    let id = out
        .hosted_zone()
        .map(|z| bare_zone_id(z.id()).to_string())
        .ok_or_else(|| {
            ProviderError::api(
                "CreateHostedZone",
                None,
                "the answer names no hosted zone",
                true,
            )
        })?;
    let (tags, _) = desired_tags(decl);
    let calls = change_tags(client, &id, tags_of(&tags), Vec::new()).await?;
    let name_servers: Vec<String> = out
        .delegation_set()
        .map(|d| d.name_servers().to_vec())
        .unwrap_or_default();
    let base = Outcome::new(State::Ready)
        .id(Some(id.clone()))
        .outputs(outputs(&id, &name_servers))
        .mutations(1 + calls);
    Ok(super::after_change(
        out.change_info(),
        State::Creating,
        base,
    ))
}

async fn update(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    let id = obs
        .id
        .clone()
        .ok_or_else(|| ProviderError::invalid_field("zoneName", "the zone has no id"))?;
    let mut calls = 0;
    if let Some(want) = decl.str("comment") {
        if obs.fields.get("comment").and_then(Value::as_str) != Some(want) {
            client
                .update_hosted_zone_comment()
                .id(&id)
                .comment(want)
                .send()
                .await
                .map_err(|e| sdk_error("UpdateHostedZoneComment", &e))?;
            calls += 1;
        }
    }
    let (tags, exact) = desired_tags(decl);
    let add: BTreeMap<String, String> = tags
        .iter()
        .filter(|(k, v)| obs.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove: Vec<String> = if exact {
        crate::ownership::settable_tags(&obs.tags)
            .into_keys()
            .filter(|k| !tags.contains_key(k))
            .collect()
    } else {
        Vec::new()
    };
    calls += change_tags(client, &id, tags_of(&add), remove).await?;
    Ok(Outcome::new(State::Ready)
        .id(Some(id))
        .outputs(obs.outputs.clone())
        .mutations(calls))
}

/// Delete (or orphan) the zone.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let Some(id) = obs.id.clone() else {
        return Ok(Outcome::new(State::Deleted));
    };
    match client.delete_hosted_zone().id(&id).send().await {
        Ok(_) => Ok(Outcome::new(State::Deleted).id(Some(id)).mutations(1)),
        Err(e) if e.code() == Some("NoSuchHostedZone") => Ok(Outcome::new(State::Deleted)),
        Err(e) if e.code() == Some("HostedZoneNotEmpty") => Ok(Outcome::new(State::Deleting)
            .id(Some(id))
            .outputs(obs.outputs.clone())
            .message(format!(
                "not deleted: {}; delete the records orkestra does not manage (or set deletionPolicy: Orphan)",
                sdk_error("DeleteHostedZone", &e).short_message()
            ))
            .requeue(HELD_REQUEUE)
            .mutations(1)),
        Err(e) => Err(sdk_error("DeleteHostedZone", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Owner {
        Owner {
            uid: "6f1c9a2e-0000-4000-8000-000000000001".into(),
            namespace: "shop".into(),
            name: "web".into(),
            katalog: "k".into(),
        }
    }

    fn decl(item: Value) -> Declaration {
        Declaration::from_rendered("aws", &schema(), item.as_object().expect("object"), me())
            .expect("valid")
    }

    #[test]
    fn caller_reference_is_deterministic_and_short() {
        let a = caller_reference(&me(), "Example.com");
        assert_eq!(a, caller_reference(&me(), "example.com."));
        assert_ne!(a, caller_reference(&me(), "example.org"));
        let other = Owner {
            uid: "other".into(),
            ..me()
        };
        assert_ne!(a, caller_reference(&other, "example.com"));
        assert!(a.starts_with("orkestra-6f1c9a2e-") && a.len() <= 128, "{a}");
    }

    #[test]
    fn zone_diff() {
        let d =
            decl(json!({"zoneName": "example.com", "comment": "shop", "tags": {"team": "web"}}));
        let plan = diff(&d, &Observation::absent());
        assert_eq!(plan.action, Action::Create);
        assert!(plan
            .changes
            .iter()
            .any(|c| c.path == "zoneId" && c.after == PlanValue::Unknown));
        let mut obs = Observation {
            exists: true,
            id: Some("Z1".into()),
            ownership: Ownership::Ours,
            ..Observation::default()
        };
        obs.tags = me().tags();
        obs.tags.insert("team".into(), "web".into());
        obs.fields.insert("comment".into(), json!("shop"));
        assert_eq!(diff(&d, &obs).action, Action::Noop);
        obs.fields.insert("comment".into(), json!(""));
        obs.tags.insert("stale".into(), "x".into());
        let plan = diff(&d, &obs);
        let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["comment", "tags.stale"]);
        obs.ownership = Ownership::Unowned;
        assert!(matches!(diff(&d, &obs).blocked, Some(Blocked::Conflict(_))));
    }

    #[test]
    fn comments_are_limited() {
        assert!(comment(&"c".repeat(256)).is_ok());
        assert!(comment(&"c".repeat(257)).is_err());
    }
}
