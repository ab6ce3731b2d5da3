//! `aws.route53`: one simple-routing record set (A, AAAA, CNAME, TXT, MX) and its ownership TXT
//! record (see the module docs of [`super`] for the model).
//!
//! Managed: the values and TTL, or instead an alias to another AWS target. `ttl` not declared
//! means 300 on create and, afterwards, whatever the record has. Values are compared as a set in
//! a canonical form per type (an IPv6 address compressed, a host name lowercase without its dot,
//! TXT text in Route 53's quoted form), so the order and spelling a user writes never cause an
//! update. TXT values are written as plain text (`v=spf1 -all`); orkestra quotes them and splits
//! text longer than 255 bytes into several strings. A value already in Route 53's quoted form
//! (`"v=spf1 -all"`) is taken as written.
//!
//! Checks that span fields (values by type, alias xor ttl/values, zone xor zoneId) run when the
//! declaration is observed, before any call; lint checks each field on its own (names, TTL,
//! type, the alias's fields).
//!
//! A record is identified by zone, name and type. A type change is therefore a new record set;
//! it is reported as "forces replacement" where the new one cannot stand beside the old (a CNAME
//! shares its name with nothing), and otherwise noted in the plan (the old record is left in
//! place, as orkestra deletes nothing by itself). A changed zone is "forces replacement" while
//! the record the last status row names still stands in its old zone.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::ownership::{TAG_KATALOG, TAG_OWNER, TAG_OWNER_UID};
use orkestra_provider::plan::creation_changes;
use orkestra_provider::schema::OutputSchema as O;
use orkestra_provider::{
    policy, Action, Blocked, Declaration, DeletionPolicy, FieldChange, FieldSchema as F,
    FieldType as T, KindSchema, ManagementPolicy, Observation, Outcome, Owner, Ownership, Plan,
    PlanValue, ProviderError, State, StatusRow, Validator,
};
use serde_json::{json, Map, Value};

use super::{bare_zone_id, check_dns_name, fqdn, without_dot};
use crate::error::sdk_error;

/// The kind's name.
pub(crate) const KIND: &str = "route53";

/// The TTL of a record whose declaration names none, and of every ownership TXT record.
pub const DEFAULT_TTL: i64 = 300;

/// The record types this kind manages.
pub const TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX"];

/// First label prefix of ownership TXT records (reserved: no declared record may use it).
pub const OWNERSHIP_PREFIX: &str = "_orkestra-";

/// Longest TXT value Route 53 accepts (all its strings, quoted).
const MAX_TXT_VALUE: usize = 4000;
/// Longest single string inside a TXT value.
const MAX_TXT_STRING: usize = 255;

/// The kind's schema.
pub(crate) fn schema() -> KindSchema {
    let mut fields = vec![
        F::new("name", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(record_name)),
        F::new("zone", T::String)
            .immutable()
            .validate(Validator::Rule(super::zone_name)),
        F::new("zoneId", T::String)
            .immutable()
            .validate(Validator::Rule(super::zone_id)),
        F::new("type", T::String)
            .required()
            .immutable()
            .validate(Validator::OneOf(TYPES)),
        F::new("ttl", T::Integer).validate(Validator::Range(0, i64::from(i32::MAX))),
        F::new("values", T::List),
        F::new("alias", T::Object).children(vec![
            F::new("dnsName", T::String)
                .required()
                .validate(Validator::Rule(super::host_name)),
            F::new("hostedZoneId", T::String)
                .required()
                .validate(Validator::Rule(super::zone_id)),
            F::new("evaluateTargetHealth", T::Boolean),
        ]),
    ];
    // Records carry no tags: ownership lives in the ownership TXT record.
    fields.extend(
        crate::schema::common()
            .into_iter()
            .filter(|f| f.name != "tags"),
    );
    KindSchema {
        name: KIND,
        name_field: "name",
        fields,
        outputs: vec![
            O::new(
                "fqdn",
                T::String,
                "the record's fully qualified name, lowercase, without the trailing dot",
            ),
            O::new(
                "zoneId",
                T::String,
                "the id of the hosted zone holding the record",
            ),
            O::new(
                "type",
                T::String,
                "the record's type (A, AAAA, CNAME, TXT or MX)",
            ),
        ],
    }
}

/// A record's name: DNS label rules, `*` as a whole leftmost label (a wildcard), not under the
/// reserved `_orkestra-` prefix, and short enough for its ownership TXT record's name to fit.
pub fn record_name(s: &str) -> Result<(), String> {
    let name = check_dns_name("record name", s, true)?;
    if name
        .split('.')
        .next()
        .is_some_and(|l| l.starts_with(OWNERSHIP_PREFIX))
    {
        return Err(format!(
            "record name {s:?}: names starting with {OWNERSHIP_PREFIX:?} are reserved for orkestra's ownership records"
        ));
    }
    let longest = ownership_name(&format!("{name}."), RecordType::Cname);
    let len = without_dot(&longest).len();
    if len > super::MAX_NAME {
        return Err(format!(
            "record name {s:?} is too long: its ownership TXT record {} would have {len} characters, more than {}",
            without_dot(&longest),
            super::MAX_NAME
        ));
    }
    Ok(())
}

/// A record type this kind manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// One canonical name.
    Cname,
    /// Text.
    Txt,
    /// Mail exchangers, `priority host`.
    Mx,
}

impl RecordType {
    /// Route 53's name of the type (`AAAA`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
            RecordType::Mx => "MX",
        }
    }

    /// The type named `s` (Route 53's spelling).
    pub fn parse(s: &str) -> Option<Self> {
        [
            RecordType::A,
            RecordType::Aaaa,
            RecordType::Cname,
            RecordType::Txt,
            RecordType::Mx,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    fn sdk(self) -> RrType {
        RrType::from(self.as_str())
    }
}

/// The name of the ownership TXT record beside the record `fqdn` (lowercase, trailing dot) of
/// type `t`: `_orkestra-a.www.example.com.`, or `_orkestra-a-wildcard.example.com.` for
/// `*.example.com.`, since `*` may only stand as a whole leftmost label.
pub fn ownership_name(fqdn: &str, t: RecordType) -> String {
    let t = t.as_str().to_ascii_lowercase();
    match fqdn.strip_prefix("*.") {
        Some(rest) => format!("{OWNERSHIP_PREFIX}{t}-wildcard.{rest}"),
        None => format!("{OWNERSHIP_PREFIX}{t}.{fqdn}"),
    }
}

// ---------------------------------------------------------------------------------------------
// TXT values and the ownership mark

/// Quote one TXT string the way Route 53 answers it: `"` and `\` escaped, bytes outside
/// printable ASCII as `\DDD` (octal).
fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

/// Plain text as a TXT value: quoted, split into strings of at most 255 bytes.
pub fn txt_value(text: &str) -> String {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return quote(b"");
    }
    bytes
        .chunks(MAX_TXT_STRING)
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The strings of a TXT value in Route 53's form: quoted strings (with `\"`, `\\` and `\DDD`
/// escapes) or bare words, separated by spaces.
pub fn parse_txt(value: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let quoted = b[i] == b'"';
        if quoted {
            i += 1;
        }
        let mut s = Vec::new();
        loop {
            let Some(&c) = b.get(i) else {
                if quoted {
                    return Err(format!("TXT value {value:?} has an unterminated quote"));
                }
                break;
            };
            if quoted && c == b'"' {
                i += 1;
                break;
            }
            if !quoted && c.is_ascii_whitespace() {
                break;
            }
            if c == b'\\' {
                let octal = b
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(|x| (b'0'..=b'7').contains(x)));
                if let Some(d) = octal {
                    let v = d.iter().fold(0u32, |acc, x| acc * 8 + u32::from(x - b'0'));
                    s.push(u8::try_from(v).map_err(|_| {
                        format!(
                            "TXT value {value:?}: escape \\{} is not a byte",
                            d.escape_ascii()
                        )
                    })?);
                    i += 4;
                } else if let Some(&next) = b.get(i + 1) {
                    s.push(next);
                    i += 2;
                } else {
                    return Err(format!("TXT value {value:?} ends with a lone backslash"));
                }
                continue;
            }
            s.push(c);
            i += 1;
        }
        if s.len() > MAX_TXT_STRING {
            return Err(format!(
                "TXT value {value:?} has a string of {} bytes; each string holds at most {MAX_TXT_STRING}",
                s.len()
            ));
        }
        out.push(s);
    }
    Ok(out)
}

/// The text of the ownership TXT record of `owner`'s records.
pub fn ownership_text(owner: &Owner) -> String {
    format!(
        "heritage=orkestra,orkestra/owner-uid={},orkestra/owner={}/{},orkestra/katalog={}",
        owner.uid, owner.namespace, owner.name, owner.katalog
    )
}

/// The owner tags an ownership TXT value carries (the keys [`Owner::tags`] uses), or `None`
/// when the value is not orkestra's (`heritage=orkestra` missing).
pub fn parse_ownership(value: &str) -> Option<BTreeMap<String, String>> {
    let strings = parse_txt(value).ok()?;
    let text = String::from_utf8_lossy(&strings.concat()).into_owned();
    let pairs: BTreeMap<&str, &str> = text
        .split(',')
        .filter_map(|p| p.trim().split_once('='))
        .collect();
    if pairs.get("heritage") != Some(&"orkestra") {
        return None;
    }
    let mut tags = BTreeMap::new();
    for (key, tag) in [
        ("orkestra/owner-uid", TAG_OWNER_UID),
        ("orkestra/owner", TAG_OWNER),
        ("orkestra/katalog", TAG_KATALOG),
    ] {
        if let Some(v) = pairs.get(key) {
            tags.insert(tag.to_string(), (*v).to_string());
        }
    }
    Some(tags)
}

/// The owner tags of the first orkestra value among an ownership record's values.
fn ownership_tags(values: &[String]) -> Option<BTreeMap<String, String>> {
    values.iter().find_map(|v| parse_ownership(v))
}

// ---------------------------------------------------------------------------------------------
// The declaration, checked across fields

/// Where the record's hosted zone is to be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZoneRef {
    /// `zone:` (lowercase, trailing dot).
    Name(String),
    /// `zoneId:` (without `/hostedzone/`).
    Id(String),
    /// Neither: a declaration rebuilt from a status row (its name only); the zone is the one
    /// whose name is the longest suffix of the record's name.
    Discover,
}

/// An alias to another AWS target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alias {
    /// The target's DNS name (lowercase, trailing dot).
    pub dns_name: String,
    /// The target's hosted zone id.
    pub hosted_zone_id: String,
    /// Route 53 checks the target's health.
    pub evaluate: bool,
}

impl Alias {
    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            dns_name: fqdn(v.get("dnsName")?.as_str()?),
            hosted_zone_id: bare_zone_id(v.get("hostedZoneId")?.as_str()?).to_string(),
            evaluate: v
                .get("evaluateTargetHealth")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "dnsName": without_dot(&self.dns_name),
            "hostedZoneId": self.hosted_zone_id,
            "evaluateTargetHealth": self.evaluate,
        })
    }
}

/// What the record points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Values (canonical form, in declared order) with a TTL (`None`: not declared).
    Values {
        ttl: Option<i64>,
        values: Vec<String>,
    },
    /// An alias (no TTL, no values).
    Alias(Alias),
}

/// A declaration, checked across fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    /// The record's name, lowercase with a trailing dot.
    pub fqdn: String,
    /// `None` only for a declaration rebuilt from a status row.
    pub rtype: Option<RecordType>,
    pub zone: ZoneRef,
    /// `None` only for a declaration rebuilt from a status row.
    pub target: Option<Target>,
}

/// The canonical form of one value of a `t` record, or why it is not one.
pub fn canonical_value(t: RecordType, v: &str) -> Result<String, String> {
    let v = v.trim();
    match t {
        RecordType::A => v
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{v:?} is not an IPv4 address (type A)")),
        RecordType::Aaaa => v
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{v:?} is not an IPv6 address (type AAAA)")),
        RecordType::Cname => host(v).map_err(|e| format!("{e} (type CNAME)")),
        RecordType::Mx => {
            let parts: Vec<&str> = v.split_whitespace().collect();
            let [priority, target] = parts.as_slice() else {
                return Err(format!(
                    "{v:?} is not \"priority host\" (type MX, like \"10 mail.example.com\")"
                ));
            };
            let priority: u16 = priority.parse().map_err(|_| {
                format!(
                    "{v:?}: the priority {priority:?} is not a number from 0 to 65535 (type MX)"
                )
            })?;
            Ok(format!(
                "{priority} {}",
                host(target).map_err(|e| format!("{e} (type MX)"))?
            ))
        }
        RecordType::Txt => {
            let wire = if v.starts_with('"') {
                // Already in Route 53's quoted form: normalise the spacing and escapes.
                parse_txt(v)?
                    .iter()
                    .map(|s| quote(s))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                txt_value(v)
            };
            if wire.len() > MAX_TXT_VALUE {
                return Err(format!(
                    "a TXT value is {} characters long once quoted, more than {MAX_TXT_VALUE}",
                    wire.len()
                ));
            }
            Ok(wire)
        }
    }
}

/// A host name as a CNAME or MX value holds it: lowercase, without the trailing dot.
fn host(v: &str) -> Result<String, String> {
    check_dns_name("host name", v, false)
}

/// The canonical form of an observed value (as it is when it does not parse, so it differs).
fn canonical_observed(t: RecordType, v: &str) -> String {
    canonical_value(t, v).unwrap_or_else(|_| v.trim().to_string())
}

/// The declaration's record, checked across fields: the per-field rules are the schema's.
pub(crate) fn spec(decl: &Declaration) -> Result<Spec, ProviderError> {
    spec_of(decl, false)
}

/// Where the record is and its type, without its target: all a delete needs. The target's
/// values may be unknown by then (composed from a resource already gone), and must not stop it.
pub(crate) fn identity(decl: &Declaration) -> Result<Spec, ProviderError> {
    spec_of(decl, true)
}

fn spec_of(decl: &Declaration, identity_only: bool) -> Result<Spec, ProviderError> {
    record_name(&decl.name).map_err(|m| ProviderError::invalid_field("name", m))?;
    let name = fqdn(&decl.name);
    let rtype = match decl.str("type") {
        None => None,
        Some(t) => Some(RecordType::parse(t).ok_or_else(|| {
            ProviderError::invalid_field(
                "type",
                format!("{t:?} is not one of {}", TYPES.join(", ")),
            )
        })?),
    };
    let zone = match (decl.str("zone"), decl.str("zoneId")) {
        (Some(_), Some(_)) => {
            return Err(ProviderError::invalid_field(
                "zoneId",
                "set zone (the hosted zone's name) or zoneId, not both",
            ))
        }
        (Some(z), None) => ZoneRef::Name(fqdn(z)),
        (None, Some(id)) => ZoneRef::Id(bare_zone_id(id).to_string()),
        (None, None) if rtype.is_none() => ZoneRef::Discover,
        (None, None) => {
            return Err(ProviderError::invalid_field(
                "zone",
                "the hosted zone is required: set zone (its name) or zoneId",
            ))
        }
    };
    if let ZoneRef::Name(z) = &zone {
        in_zone(&name, z)?;
    }
    let Some(t) = rtype.filter(|_| !identity_only) else {
        return Ok(Spec {
            fqdn: name,
            rtype,
            zone,
            target: None,
        });
    };
    let alias = decl.fields.get("alias");
    let values = decl.fields.get("values");
    let ttl = decl.int("ttl");
    let target = match alias {
        Some(a) => {
            if values.is_some() || ttl.is_some() {
                return Err(ProviderError::invalid_field(
                    "alias",
                    "an alias record has neither ttl nor values (Route 53 answers with the target's); set alias or ttl and values",
                ));
            }
            let alias = Alias::from_json(a).ok_or_else(|| {
                ProviderError::invalid_field("alias", "needs dnsName and hostedZoneId")
            })?;
            Target::Alias(alias)
        }
        None => Target::Values {
            ttl,
            values: declared_values(t, values)?,
        },
    };
    Ok(Spec {
        fqdn: name,
        rtype: Some(t),
        zone,
        target: Some(target),
    })
}

/// `values`, each checked against the type, in canonical form.
fn declared_values(t: RecordType, values: Option<&Value>) -> Result<Vec<String>, ProviderError> {
    let bad = |m: String| ProviderError::invalid_field("values", m);
    let list = match values {
        None => {
            return Err(bad(format!(
                "a {} record needs values (or an alias)",
                t.as_str()
            )))
        }
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("must be a list".into())),
    };
    if list.is_empty() {
        return Err(bad(format!(
            "a {} record needs at least one value",
            t.as_str()
        )));
    }
    if t == RecordType::Cname && list.len() != 1 {
        return Err(bad(format!(
            "a CNAME record has exactly one value, not {}",
            list.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(bad(format!("value {} is {other}, not a string", i + 1))),
        };
        let c = canonical_value(t, &text).map_err(|m| bad(format!("value {}: {m}", i + 1)))?;
        if out.contains(&c) {
            return Err(bad(format!(
                "value {} ({text:?}) is listed twice; Route 53 rejects duplicate values",
                i + 1
            )));
        }
        out.push(c);
    }
    Ok(out)
}

/// The record's name must be the zone's name or inside it.
fn in_zone(name: &str, zone: &str) -> Result<(), ProviderError> {
    if name == zone || name.ends_with(&format!(".{zone}")) {
        Ok(())
    } else {
        Err(ProviderError::invalid_field(
            "name",
            format!(
                "{} is not inside the hosted zone {}; name is the record's full name (like {}.{})",
                without_dot(name),
                without_dot(zone),
                without_dot(name),
                without_dot(zone)
            ),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Observe

/// A hosted zone found for a record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    id: String,
    /// Lowercase with a trailing dot.
    name: String,
}

/// The zone, or the message saying none was found.
async fn find_zone(
    client: &Client,
    spec: &Spec,
    for_delete: bool,
) -> Result<Result<Zone, String>, ProviderError> {
    match &spec.zone {
        ZoneRef::Name(name) => {
            let zones = zones_named(client, name).await?;
            match zones.as_slice() {
                [] => Ok(Err(format!(
                    "no hosted zone is named {}",
                    without_dot(name)
                ))),
                [z] => Ok(Ok(z.clone())),
                many => Err(ProviderError::invalid_field(
                    "zone",
                    format!(
                        "{} hosted zones are named {} ({}); name one with zoneId",
                        many.len(),
                        without_dot(name),
                        many.iter()
                            .map(|z| z.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        ZoneRef::Id(id) => match client.get_hosted_zone().id(id).send().await {
            Ok(out) => Ok(match out.hosted_zone() {
                Some(z) => Ok(Zone {
                    id: bare_zone_id(z.id()).to_string(),
                    name: fqdn(z.name()),
                }),
                None => Err(format!("no hosted zone has the id {id}")),
            }),
            Err(e) if for_delete && e.code() == Some("NoSuchHostedZone") => {
                Ok(Err(format!("no hosted zone has the id {id}")))
            }
            Err(e) => Err(sdk_error("GetHostedZone", &e)),
        },
        ZoneRef::Discover => {
            // Longest suffix first: the record lives in the most specific zone.
            let labels: Vec<&str> = without_dot(&spec.fqdn).split('.').collect();
            for i in 0..labels.len() {
                let suffix = format!("{}.", labels[i..].join("."));
                if let Some(z) = zones_named(client, &suffix).await?.into_iter().next() {
                    return Ok(Ok(z));
                }
            }
            Ok(Err(format!(
                "no hosted zone holds {}",
                without_dot(&spec.fqdn)
            )))
        }
    }
}

/// The hosted zones named exactly `name` (lowercase, trailing dot).
async fn zones_named(client: &Client, name: &str) -> Result<Vec<Zone>, ProviderError> {
    let out = client
        .list_hosted_zones_by_name()
        .dns_name(name)
        .max_items(10)
        .send()
        .await
        .map_err(|e| sdk_error("ListHostedZonesByName", &e))?;
    Ok(out
        .hosted_zones()
        .iter()
        .filter(|z| fqdn(z.name()) == name)
        .map(|z| Zone {
            id: bare_zone_id(z.id()).to_string(),
            name: fqdn(z.name()),
        })
        .collect())
}

/// The simple-routing record sets named exactly `name`, every type; `None` when the zone is gone.
async fn sets_at(
    client: &Client,
    zone_id: &str,
    name: &str,
    rtype: Option<RrType>,
) -> Result<Option<Vec<ResourceRecordSet>>, ProviderError> {
    let mut out = Vec::new();
    let mut start_type = rtype.clone();
    // A name holds at most a few dozen sets (one per type, plus routing variants): a page or two.
    for _ in 0..5 {
        let page = match client
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(name)
            .set_start_record_type(start_type.clone())
            .max_items(if rtype.is_some() { 5 } else { 20 })
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchHostedZone") => return Ok(None),
            Err(e) => return Err(sdk_error("ListResourceRecordSets", &e)),
        };
        let mut past = false;
        for s in page.resource_record_sets() {
            if fqdn(&s.name) != name || rtype.as_ref().is_some_and(|t| *t != s.r#type) {
                past = true;
                break;
            }
            if s.set_identifier.is_none() {
                out.push(s.clone());
            }
        }
        let next_same = page.next_record_name().is_some_and(|n| fqdn(n) == name);
        if past || !page.is_truncated() || !next_same {
            break;
        }
        start_type = page.next_record_type().cloned();
    }
    Ok(Some(out))
}

/// A record set as observation fields: `ttl`, `values` (as Route 53 holds them, in its order:
/// a DELETE must repeat them exactly) and `alias`.
fn set_fields(s: &ResourceRecordSet) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("ttl".into(), s.ttl.map_or(Value::Null, |t| json!(t)));
    f.insert(
        "values".into(),
        json!(s
            .resource_records()
            .iter()
            .map(|r| r.value())
            .collect::<Vec<_>>()),
    );
    f.insert(
        "alias".into(),
        s.alias_target.as_ref().map_or(Value::Null, |a| {
            json!({
                "dnsName": a.dns_name(),
                "hostedZoneId": bare_zone_id(a.hosted_zone_id()),
                "evaluateTargetHealth": a.evaluate_target_health(),
            })
        }),
    );
    f
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The ownership TXT record beside `name`, as observation fields (`ttl`, `values`).
async fn ownership_record(
    client: &Client,
    zone_id: &str,
    name: &str,
    t: RecordType,
) -> Result<Option<Map<String, Value>>, ProviderError> {
    let txt = ownership_name(name, t);
    Ok(sets_at(client, zone_id, &txt, Some(RrType::Txt))
        .await?
        .and_then(|sets| sets.first().map(set_fields)))
}

/// Whose the record is, from its ownership TXT record (in `obs.fields`). Judged here, not taken
/// from `obs.ownership`: the runtime claims an unowned resource for an interrupted create, which
/// for a record can never be right (its create writes the mark in the same atomic batch).
fn ownership_of(decl: &Declaration, obs: &Observation) -> Ownership {
    match obs.fields.get("ownershipRecord").filter(|v| !v.is_null()) {
        None => Ownership::Unowned,
        Some(r) => match ownership_tags(&strings(r.get("values"))) {
            Some(tags) => decl.owner.judge(&tags),
            None => Ownership::Unowned,
        },
    }
}

/// What ownership policy messages call the mark: the ownership record's name.
fn mark(name: &str, t: RecordType) -> String {
    format!(
        "ownership TXT record {}",
        without_dot(&ownership_name(name, t))
    )
}

/// Observe the record: its zone, the record set of the declared type at its name, and its
/// ownership TXT record. When the record does not exist, also what else stands at the name
/// (a CNAME shares it with nothing) and whether the last status row put it in another zone.
pub(crate) async fn observe(
    client: &Client,
    decl: &Declaration,
    previous: &[StatusRow],
    for_delete: bool,
) -> Result<Observation, ProviderError> {
    let spec = if for_delete {
        identity(decl)?
    } else {
        spec(decl)?
    };
    let zone = match find_zone(client, &spec, for_delete).await? {
        Ok(z) => z,
        Err(missing) => return Ok(zone_missing(missing)),
    };
    in_zone(&spec.fqdn, &zone.name)?;
    let name = spec.fqdn.as_str();
    let Some(sets) = sets_at(client, &zone.id, name, None).await? else {
        return Ok(zone_missing(format!(
            "the hosted zone {} no longer exists",
            zone.id
        )));
    };
    let rtype = match spec.rtype {
        Some(t) => t,
        None => match discover_type(client, decl, &zone, name, &sets).await? {
            Some(t) => t,
            None => return Ok(Observation::absent()),
        },
    };
    let mut obs = Observation {
        id: Some(format!(
            "{}/{}/{}",
            zone.id,
            without_dot(name),
            rtype.as_str()
        )),
        ..Observation::default()
    };
    obs.outputs = outputs(name, &zone.id, rtype);
    let f = &mut obs.fields;
    f.insert("name".into(), json!(name));
    f.insert("type".into(), json!(rtype.as_str()));
    f.insert("zone".into(), json!(zone.name));
    f.insert("zoneId".into(), json!(zone.id));
    let record = sets.iter().find(|s| s.r#type == rtype.sdk());
    if let Some(s) = record {
        obs.exists = true;
        obs.fields.extend(set_fields(s));
    }
    if let Some(r) = ownership_record(client, &zone.id, name, rtype).await? {
        obs.fields
            .insert("ownershipRecord".into(), Value::Object(r));
    }
    obs.ownership = ownership_of(decl, &obs);
    let same_type: Vec<&StatusRow> = previous
        .iter()
        .filter(|r| r.outputs.get("type").and_then(Value::as_str) == Some(rtype.as_str()))
        .collect();
    if obs.exists {
        let waiting = same_type
            .iter()
            .find(|r| r.outputs.get("zoneId").and_then(Value::as_str) == Some(zone.id.as_str()));
        if let Some(row) = waiting {
            if let Some(p) = super::check_pending(client, row).await? {
                super::put_pending(&mut obs, &p);
            }
        }
        return Ok(obs);
    }
    if for_delete {
        return Ok(obs);
    }
    // Not there: what else stands at the name, and is it ours?
    let mut others = Vec::new();
    for s in sets.iter().filter(|s| s.r#type != rtype.sdk()) {
        let other = RecordType::parse(s.r#type.as_str());
        let owned = match other {
            Some(t) => ownership_record(client, &zone.id, name, t)
                .await?
                .and_then(|r| ownership_tags(&strings(r.get("values"))))
                .is_some_and(|tags| decl.owner.judge(&tags) == Ownership::Ours),
            None => false,
        };
        others.push(json!({"type": s.r#type.as_str(), "owned": owned}));
    }
    obs.fields.insert("others".into(), Value::Array(others));
    // Moved to another zone? Only while the record the last row names still stands there.
    let here = same_type
        .iter()
        .any(|r| r.outputs.get("zoneId").and_then(Value::as_str) == Some(zone.id.as_str()));
    let before = same_type
        .iter()
        .find_map(|r| r.outputs.get("zoneId").and_then(Value::as_str));
    if let (false, Some(old)) = (here, before) {
        let still = sets_at(client, old, name, Some(rtype.sdk()))
            .await?
            .is_some_and(|s| !s.is_empty());
        if still {
            obs.fields.insert("previousZoneId".into(), json!(old));
        }
    }
    Ok(obs)
}

/// An observation for a record whose zone was not found.
fn zone_missing(message: String) -> Observation {
    let mut obs = Observation::absent();
    obs.fields.insert("zoneMissing".into(), json!(message));
    obs.notes.push(message);
    obs
}

/// For a declaration rebuilt from a status row (no type): the type of the record of ours at
/// the name, else of the first record of a type this kind manages (whose owner then decides).
async fn discover_type(
    client: &Client,
    decl: &Declaration,
    zone: &Zone,
    name: &str,
    sets: &[ResourceRecordSet],
) -> Result<Option<RecordType>, ProviderError> {
    let present: Vec<RecordType> = sets
        .iter()
        .filter_map(|s| RecordType::parse(s.r#type.as_str()))
        .collect();
    for t in &present {
        let ours = ownership_record(client, &zone.id, name, *t)
            .await?
            .and_then(|r| ownership_tags(&strings(r.get("values"))))
            .is_some_and(|tags| decl.owner.judge(&tags) == Ownership::Ours);
        if ours {
            return Ok(Some(*t));
        }
    }
    Ok(present.first().copied())
}

/// The outputs the schema declares, the one place they are computed.
fn outputs(name: &str, zone_id: &str, t: RecordType) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("fqdn".into(), json!(without_dot(name)));
    o.insert("zoneId".into(), json!(zone_id));
    o.insert("type".into(), json!(t.as_str()));
    o
}

// ---------------------------------------------------------------------------------------------
// Diff

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    let spec = match spec(decl) {
        Ok(s) => s,
        Err(e) => {
            // observe rejects such a declaration first; a plan says why nothing will happen.
            let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
            plan.notes.push(e.short_message());
            return plan;
        }
    };
    let Some(rtype) = spec.rtype.or_else(|| {
        obs.fields
            .get("type")
            .and_then(Value::as_str)
            .and_then(RecordType::parse)
    }) else {
        return Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
    };
    let mark = mark(&spec.fqdn, rtype);
    let obs = &Observation {
        ownership: ownership_of(decl, obs),
        ..obs.clone()
    };
    if !obs.exists {
        return create_plan(decl, &spec, rtype, obs, &mark);
    }
    if let Some(blocked) = policy::observe_guard(decl, obs, &mark) {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
        plan.blocked = Some(blocked);
        return plan;
    }
    let mut changes = match &spec.target {
        Some(t) => record_changes(rtype, t, obs),
        None => Vec::new(),
    };
    if decl.management_policy != ManagementPolicy::Observe {
        changes.extend(ownership_change(decl, obs));
    }
    policy::plan_from_changes(
        decl,
        obs,
        changes,
        &format!(
            "an ownership TXT record will be written at {}",
            without_dot(&ownership_name(&spec.fqdn, rtype))
        ),
    )
}

/// The plan for a record that does not exist: a create, unless the name is taken in a way a
/// create cannot resolve.
fn create_plan(
    decl: &Declaration,
    spec: &Spec,
    rtype: RecordType,
    obs: &Observation,
    mark: &str,
) -> Plan {
    let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
    plan.notes = obs.notes.clone();
    plan.changes = creation(decl, spec, rtype);
    if decl.management_policy == ManagementPolicy::Observe {
        plan.blocked = Some(Blocked::ObserveOnly);
        return plan;
    }
    if let Some(old) = obs.fields.get("previousZoneId").and_then(Value::as_str) {
        let now = obs.fields.get("zoneId").cloned().unwrap_or(Value::Null);
        let change = FieldChange::new(
            "zoneId",
            PlanValue::Known(json!(old)),
            PlanValue::Known(now),
        )
        .forcing_replacement();
        return policy::plan_from_changes(decl, obs, vec![change], "");
    }
    let txt = without_dot(&ownership_name(&spec.fqdn, rtype)).to_string();
    let txt_exists = obs
        .fields
        .get("ownershipRecord")
        .is_some_and(|v| !v.is_null());
    if txt_exists {
        if let Some(m) = policy::conflict_message(obs, decl.adopt, mark) {
            plan.blocked = Some(Blocked::Conflict(format!(
                "the ownership TXT record {txt} {m}"
            )));
            return plan;
        }
    }
    let others: Vec<(String, bool)> = obs
        .fields
        .get("others")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| {
                    Some((
                        o.get("type")?.as_str()?.to_string(),
                        o.get("owned")?.as_bool()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let clashing: Vec<&(String, bool)> = others
        .iter()
        .filter(|(t, _)| rtype == RecordType::Cname || t == "CNAME")
        .collect();
    let name = without_dot(&spec.fqdn);
    if let Some((first, _)) = clashing.first() {
        if clashing.iter().all(|(_, owned)| *owned) {
            let change = FieldChange::new(
                "type",
                PlanValue::Known(json!(first)),
                PlanValue::Known(json!(rtype.as_str())),
            )
            .forcing_replacement();
            return policy::plan_from_changes(decl, obs, vec![change], "");
        }
        let types: Vec<&str> = clashing.iter().map(|(t, _)| t.as_str()).collect();
        plan.blocked = Some(Blocked::Conflict(format!(
            "{name} already has {} records not managed by this resource, and a CNAME cannot share its name with other records; they are never modified or deleted",
            types.join(", ")
        )));
        return plan;
    }
    for (t, _) in others.iter().filter(|(_, owned)| *owned) {
        plan.notes.push(format!(
            "the {t} record at {name} also belongs to this resource's owner (another declaration, or left from a type change: orkestra deletes nothing by itself)"
        ));
    }
    plan
}

/// The `+ field = value` lines of a create, values in the form they will be written.
fn creation(decl: &Declaration, spec: &Spec, rtype: RecordType) -> Vec<FieldChange> {
    let mut fields = decl.fields.clone();
    fields.remove("credentials");
    fields.insert("name".into(), json!(without_dot(&spec.fqdn)));
    fields.insert("type".into(), json!(rtype.as_str()));
    if let Some(Target::Values { ttl, values }) = &spec.target {
        fields.insert("ttl".into(), json!(ttl.unwrap_or(DEFAULT_TTL)));
        fields.insert("values".into(), json!(values));
    }
    let mut changes = creation_changes(&fields, &[]);
    changes.push(FieldChange::new(
        "ownershipRecord",
        PlanValue::Absent,
        PlanValue::Known(json!(ownership_text(&decl.owner))),
    ));
    changes
}

/// What differs between the declared target and the observed record set.
fn record_changes(rtype: RecordType, target: &Target, obs: &Observation) -> Vec<FieldChange> {
    let known = PlanValue::Known;
    let observed_ttl = obs.fields.get("ttl").and_then(Value::as_i64);
    let observed_values = strings(obs.fields.get("values"));
    let observed_alias = obs.fields.get("alias").and_then(Alias::from_json);
    let mut changes = Vec::new();
    match (target, observed_alias) {
        (Target::Values { ttl, values }, None) => {
            if let Some(t) = ttl.filter(|t| Some(*t) != observed_ttl) {
                changes.push(FieldChange::new(
                    "ttl",
                    PlanValue::from_option(observed_ttl.map(|t| json!(t)).as_ref()),
                    known(json!(t)),
                ));
            }
            let mut have: Vec<String> = observed_values
                .iter()
                .map(|v| canonical_observed(rtype, v))
                .collect();
            let mut want = values.clone();
            have.sort();
            want.sort();
            if have != want {
                changes.push(FieldChange::new(
                    "values",
                    known(json!(observed_values)),
                    known(json!(values)),
                ));
            }
        }
        (Target::Values { ttl, values }, Some(a)) => {
            changes.push(FieldChange::new(
                "alias",
                known(a.to_json()),
                PlanValue::Absent,
            ));
            changes.push(FieldChange::new(
                "ttl",
                PlanValue::Absent,
                known(json!(ttl.unwrap_or(DEFAULT_TTL))),
            ));
            changes.push(FieldChange::new(
                "values",
                PlanValue::Absent,
                known(json!(values)),
            ));
        }
        (Target::Alias(want), None) => {
            if let Some(t) = observed_ttl {
                changes.push(FieldChange::new("ttl", known(json!(t)), PlanValue::Absent));
            }
            changes.push(FieldChange::new(
                "values",
                known(json!(observed_values)),
                PlanValue::Absent,
            ));
            changes.push(FieldChange::new(
                "alias",
                PlanValue::Absent,
                known(want.to_json()),
            ));
        }
        (Target::Alias(want), Some(have)) => {
            if want.dns_name != have.dns_name {
                changes.push(FieldChange::new(
                    "alias.dnsName",
                    known(json!(without_dot(&have.dns_name))),
                    known(json!(without_dot(&want.dns_name))),
                ));
            }
            if want.hosted_zone_id != have.hosted_zone_id {
                changes.push(FieldChange::new(
                    "alias.hostedZoneId",
                    known(json!(have.hosted_zone_id)),
                    known(json!(want.hosted_zone_id)),
                ));
            }
            if want.evaluate != have.evaluate {
                changes.push(FieldChange::new(
                    "alias.evaluateTargetHealth",
                    known(json!(have.evaluate)),
                    known(json!(want.evaluate)),
                ));
            }
        }
    }
    changes
}

/// The ownership record to (re)write: missing (adoption), or naming the owner differently (a
/// renamed Katalog).
fn ownership_change(decl: &Declaration, obs: &Observation) -> Option<FieldChange> {
    let want = ownership_text(&decl.owner);
    let record = obs.fields.get("ownershipRecord").filter(|v| !v.is_null());
    let values = strings(record.and_then(|r| r.get("values")));
    match ownership_tags(&values) {
        Some(tags) if tags == decl.owner.tags() => None,
        Some(_) => Some(FieldChange::new(
            "ownershipRecord",
            PlanValue::Known(json!(values.first().map(|v| parse_txt(v)
                .map(|s| String::from_utf8_lossy(&s.concat()).into_owned())
                .unwrap_or_else(|_| v.clone())))),
            PlanValue::Known(json!(want)),
        )),
        None => Some(FieldChange::new(
            "ownershipRecord",
            PlanValue::Absent,
            PlanValue::Known(json!(want)),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Apply and delete

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
        Action::Create => write(client, decl, obs, plan, true).await,
        Action::Update => write(client, decl, obs, plan, false).await,
        Action::Replace | Action::Delete => Ok(policy::blocked_outcome(
            obs,
            plan,
            &Blocked::ReplacementRequired,
        )),
    }
}

fn built<V>(
    r: Result<V, aws_smithy_types::error::operation::BuildError>,
    field: &str,
) -> Result<V, ProviderError> {
    r.map_err(|e| ProviderError::invalid_field(field, e.to_string()))
}

/// A record set to write: the declared target; a TTL not declared keeps the observed one.
fn record_set(
    name: &str,
    rtype: RecordType,
    target: &Target,
    observed_ttl: Option<i64>,
) -> Result<ResourceRecordSet, ProviderError> {
    let b = ResourceRecordSet::builder().name(name).r#type(rtype.sdk());
    let b = match target {
        Target::Values { ttl, values } => {
            let records = values
                .iter()
                .map(|v| built(ResourceRecord::builder().value(v).build(), "values"))
                .collect::<Result<Vec<_>, _>>()?;
            b.ttl(ttl.or(observed_ttl).unwrap_or(DEFAULT_TTL))
                .set_resource_records(Some(records))
        }
        Target::Alias(a) => b.alias_target(built(
            AliasTarget::builder()
                .dns_name(&a.dns_name)
                .hosted_zone_id(&a.hosted_zone_id)
                .evaluate_target_health(a.evaluate)
                .build(),
            "alias",
        )?),
    };
    built(b.build(), "name")
}

/// A record set exactly as observed (`fields` from [`set_fields`]), as a DELETE must name it.
fn observed_set(
    name: &str,
    rtype: RrType,
    fields: &Map<String, Value>,
) -> Result<ResourceRecordSet, ProviderError> {
    let mut b = ResourceRecordSet::builder().name(name).r#type(rtype);
    if let Some(a) = fields.get("alias").filter(|a| !a.is_null()) {
        let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default();
        b = b.alias_target(built(
            AliasTarget::builder()
                .dns_name(text("dnsName"))
                .hosted_zone_id(text("hostedZoneId"))
                .evaluate_target_health(
                    a.get("evaluateTargetHealth").and_then(Value::as_bool) == Some(true),
                )
                .build(),
            "alias",
        )?);
    } else {
        let records = strings(fields.get("values"))
            .iter()
            .map(|v| built(ResourceRecord::builder().value(v).build(), "values"))
            .collect::<Result<Vec<_>, _>>()?;
        b = b
            .set_ttl(fields.get("ttl").and_then(Value::as_i64))
            .set_resource_records(Some(records));
    }
    built(b.build(), "name")
}

fn change(action: ChangeAction, set: ResourceRecordSet) -> Result<Change, ProviderError> {
    built(
        Change::builder()
            .action(action)
            .resource_record_set(set)
            .build(),
        "name",
    )
}

/// Send one change batch (atomic: all of it or nothing).
async fn send(
    client: &Client,
    decl: &Declaration,
    zone_id: &str,
    changes: Vec<Change>,
) -> Result<Option<aws_sdk_route53::types::ChangeInfo>, ProviderError> {
    let comment = format!(
        "orkestra {}/{} ({})",
        decl.owner.namespace, decl.owner.name, decl.owner.katalog
    );
    let batch = built(
        ChangeBatch::builder()
            .comment(comment.chars().take(256).collect::<String>())
            .set_changes(Some(changes))
            .build(),
        "name",
    )?;
    let out = client
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| sdk_error("ChangeResourceRecordSets", &e))?;
    Ok(out.change_info().cloned())
}

/// Create or update the record and its ownership TXT record in one batch. A create uses
/// CREATE for the record, so one that appeared since the observation fails the whole batch
/// instead of being overwritten (the next pass then reports it as a conflict).
async fn write(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
    create: bool,
) -> Result<Outcome, ProviderError> {
    if let Some(m) = obs.fields.get("zoneMissing").and_then(Value::as_str) {
        let field = if decl.str("zoneId").is_some() {
            "zoneId"
        } else {
            "zone"
        };
        return Err(ProviderError::invalid_field(field, m));
    }
    let spec = spec(decl)?;
    let rtype = spec
        .rtype
        .ok_or_else(|| ProviderError::invalid_field("type", "is required"))?;
    let target = spec
        .target
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_field("values", "values or alias is required"))?;
    let zone_id = obs
        .fields
        .get("zoneId")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::invalid_field("zone", "the hosted zone was not found"))?;
    let name = spec.fqdn.as_str();
    let mut changes = Vec::new();
    let record_changed = create || plan.changes.iter().any(|c| c.path != "ownershipRecord");
    if record_changed {
        let set = record_set(
            name,
            rtype,
            target,
            obs.fields.get("ttl").and_then(Value::as_i64),
        )?;
        let action = if create {
            ChangeAction::Create
        } else {
            ChangeAction::Upsert
        };
        changes.push(change(action, set)?);
    }
    let txt_exists = obs
        .fields
        .get("ownershipRecord")
        .is_some_and(|v| !v.is_null());
    let txt = built(
        ResourceRecordSet::builder()
            .name(ownership_name(name, rtype))
            .r#type(RrType::Txt)
            .ttl(DEFAULT_TTL)
            .resource_records(built(
                ResourceRecord::builder()
                    .value(txt_value(&ownership_text(&decl.owner)))
                    .build(),
                "name",
            )?)
            .build(),
        "name",
    )?;
    let txt_action = if txt_exists {
        ChangeAction::Upsert
    } else {
        ChangeAction::Create
    };
    changes.push(change(txt_action, txt)?);
    let info = send(client, decl, zone_id, changes).await?;
    let base = Outcome::new(State::Ready)
        .id(obs.id.clone())
        .outputs(obs.outputs.clone())
        .mutations(1);
    let waiting = if create {
        State::Creating
    } else {
        State::Updating
    };
    Ok(super::after_change(info.as_ref(), waiting, base))
}

/// Delete (or orphan) the record and its ownership TXT record, in one batch naming both exactly
/// as observed (Route 53 deletes a record set only when every value matches).
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    let Some(rtype) = obs
        .fields
        .get("type")
        .and_then(Value::as_str)
        .and_then(RecordType::parse)
    else {
        // No zone, or no record of a type this kind manages: nothing to delete.
        return Ok(policy::delete_guard(decl, obs, "ownership TXT record")
            .unwrap_or_else(|| Outcome::new(State::Deleted)));
    };
    let name = obs
        .fields
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let zone_id = obs
        .fields
        .get("zoneId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let obs = &Observation {
        ownership: ownership_of(decl, obs),
        ..obs.clone()
    };
    let txt = obs
        .fields
        .get("ownershipRecord")
        .and_then(Value::as_object)
        .cloned();
    let may_delete = decl.deletion_policy == DeletionPolicy::Delete
        && decl.management_policy == ManagementPolicy::Manage;
    let mut changes = Vec::new();
    if !obs.exists {
        // Only a mark of ours left over (never written alone, but cheap to tidy).
        if let (true, Some(t), Ownership::Ours) = (may_delete, &txt, &obs.ownership) {
            changes.push(change(
                ChangeAction::Delete,
                observed_set(&ownership_name(&name, rtype), RrType::Txt, t)?,
            )?);
            return delete_batch(client, decl, obs, &zone_id, changes).await;
        }
    }
    if let Some(outcome) = policy::delete_guard(decl, obs, &mark(&name, rtype)) {
        return Ok(outcome);
    }
    changes.push(change(
        ChangeAction::Delete,
        observed_set(&name, rtype.sdk(), &obs.fields)?,
    )?);
    if let Some(t) = &txt {
        changes.push(change(
            ChangeAction::Delete,
            observed_set(&ownership_name(&name, rtype), RrType::Txt, t)?,
        )?);
    }
    delete_batch(client, decl, obs, &zone_id, changes).await
}

async fn delete_batch(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    zone_id: &str,
    changes: Vec<Change>,
) -> Result<Outcome, ProviderError> {
    match send(client, decl, zone_id, changes).await {
        Ok(_) => Ok(Outcome::new(State::Deleted).id(obs.id.clone()).mutations(1)),
        Err(e) if e.code() == Some("NoSuchHostedZone") => Ok(Outcome::new(State::Deleted)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Declaration;

    fn me() -> Owner {
        Owner {
            uid: "u-1".into(),
            namespace: "shop".into(),
            name: "web".into(),
            katalog: "shop-katalog".into(),
        }
    }

    fn decl(item: Value) -> Result<Declaration, String> {
        Declaration::from_rendered("aws", &schema(), item.as_object().expect("object"), me())
            .map_err(|e| e.to_string())
    }

    fn spec_of(item: Value) -> Result<Spec, String> {
        spec(&decl(item)?).map_err(|e| e.to_string())
    }

    /// An observation of a record of ours in zone Z1 (`record` as set_fields would give it).
    fn observed(record: Value, owner: &Owner) -> Observation {
        let mut obs = Observation {
            exists: true,
            id: Some("Z1/www.example.com/A".into()),
            ..Observation::default()
        };
        obs.fields.insert("name".into(), json!("www.example.com."));
        obs.fields.insert("type".into(), json!("A"));
        obs.fields.insert("zoneId".into(), json!("Z1"));
        obs.fields
            .extend(record.as_object().cloned().unwrap_or_default());
        obs.fields.insert(
            "ownershipRecord".into(),
            json!({"ttl": 300, "values": [txt_value(&ownership_text(owner))]}),
        );
        obs
    }

    fn a_record(extra: Value) -> Value {
        let mut v = json!({"name": "www.example.com", "zone": "example.com", "type": "A",
                           "ttl": 60, "values": ["192.0.2.1", "192.0.2.2"]});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }

    #[test]
    fn record_names() {
        assert!(record_name("www.example.com").is_ok());
        assert!(record_name("*.example.com.").is_ok());
        assert!(record_name("_dmarc.example.com").is_ok());
        let e = record_name("_orkestra-a.www.example.com").unwrap_err();
        assert!(e.contains("reserved"), "{e}");
        // 240 characters fit Route 53's 253 but not with the ownership record's prefix.
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(60),
            "b".repeat(60),
            "c".repeat(60),
            "d".repeat(57)
        );
        assert_eq!(long.len(), 240);
        let e = record_name(&long).unwrap_err();
        assert!(e.contains("ownership TXT record _orkestra-cname."), "{e}");
        assert_eq!(
            ownership_name("www.example.com.", RecordType::Cname),
            "_orkestra-cname.www.example.com."
        );
        assert_eq!(
            ownership_name("*.example.com.", RecordType::A),
            "_orkestra-a-wildcard.example.com."
        );
    }

    #[test]
    fn lint_checks_each_field() {
        let e = decl(a_record(json!({"ttl": -1}))).unwrap_err();
        assert!(e.contains("field ttl: -1 is outside 0..=2147483647"), "{e}");
        let e = decl(a_record(json!({"type": "SRV"}))).unwrap_err();
        assert!(
            e.contains("field type: \"SRV\" is not one of A, AAAA, CNAME, TXT, MX"),
            "{e}"
        );
        let e = decl(a_record(json!({"name": "a..example.com"}))).unwrap_err();
        assert!(e.contains("field name: record name"), "{e}");
        let e = decl(a_record(json!({"tags": {"a": "b"}}))).unwrap_err();
        assert!(e.contains("field tags: unknown field"), "{e}");
        let e = decl(a_record(json!({"alias": {"dnsName": "x.example.org"}}))).unwrap_err();
        assert!(e.contains("hostedZoneId is required"), "{e}");
    }

    #[test]
    fn values_are_checked_by_type() {
        let err = |item: Value| spec_of(item).unwrap_err();
        let e = err(a_record(json!({"values": ["192.0.2.300"]})));
        assert!(
            e.contains("field values: value 1: \"192.0.2.300\" is not an IPv4 address"),
            "{e}"
        );
        let e = err(a_record(json!({"type": "AAAA", "values": ["192.0.2.1"]})));
        assert!(e.contains("is not an IPv6 address"), "{e}");
        let e = err(a_record(
            json!({"type": "CNAME", "values": ["a.example.org", "b.example.org"]}),
        ));
        assert!(e.contains("exactly one value, not 2"), "{e}");
        let e = err(a_record(
            json!({"type": "MX", "values": ["mail.example.com"]}),
        ));
        assert!(e.contains("is not \"priority host\""), "{e}");
        let e = err(a_record(
            json!({"type": "MX", "values": ["70000 mail.example.com"]}),
        ));
        assert!(e.contains("not a number from 0 to 65535"), "{e}");
        let e = err(a_record(json!({"values": ["192.0.2.1", "192.0.2.1"]})));
        assert!(e.contains("listed twice"), "{e}");
        let e = err(a_record(json!({"values": []})));
        assert!(e.contains("at least one value"), "{e}");
        let e = err(a_record(
            json!({"alias": {"dnsName": "d1.cloudfront.net", "hostedZoneId": "Z2FDTNDATAQYW2"}}),
        ));
        assert!(
            e.contains("field alias: an alias record has neither ttl nor values"),
            "{e}"
        );
        let e = err(a_record(json!({"zoneId": "Z1"})));
        assert!(e.contains("not both"), "{e}");
        let e = err(json!({"name": "www.example.com", "type": "A", "values": ["192.0.2.1"]}));
        assert!(e.contains("field zone: the hosted zone is required"), "{e}");
        let e = err(a_record(json!({"name": "www"})));
        assert!(
            e.contains("www is not inside the hosted zone example.com; name is the record's full name (like www.example.com)"),
            "{e}"
        );

        let ok = spec_of(
            json!({"name": "Mail.Example.com.", "zone": "example.com", "type": "MX",
                                "values": ["10  MX1.example.com.", "20 mx2.example.com"]}),
        )
        .unwrap();
        assert_eq!(ok.fqdn, "mail.example.com.");
        assert_eq!(
            ok.target,
            Some(Target::Values {
                ttl: None,
                values: vec!["10 mx1.example.com".into(), "20 mx2.example.com".into()]
            })
        );
        let v6 = spec_of(a_record(
            json!({"type": "AAAA", "values": ["2001:DB8:0:0::1"]}),
        ))
        .unwrap();
        assert_eq!(
            v6.target,
            Some(Target::Values {
                ttl: Some(60),
                values: vec!["2001:db8::1".into()]
            })
        );
        let alias = spec_of(json!({"name": "example.com", "zone": "example.com", "type": "A",
                                   "alias": {"dnsName": "D1.cloudfront.net", "hostedZoneId": "Z2FDTNDATAQYW2"}}))
        .unwrap();
        assert!(
            matches!(alias.target, Some(Target::Alias(Alias { ref dns_name, evaluate: false, .. })) if dns_name == "d1.cloudfront.net.")
        );
    }

    #[test]
    fn txt_values_are_quoted_split_and_parsed() {
        assert_eq!(txt_value("v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(txt_value("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(txt_value("é"), "\"\\303\\251\"");
        assert_eq!(txt_value(""), "\"\"");
        let long = "x".repeat(300);
        let wire = txt_value(&long);
        assert_eq!(
            wire,
            format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45))
        );
        assert_eq!(parse_txt(&wire).unwrap().concat(), long.as_bytes());
        assert_eq!(
            parse_txt("\"a b\"  \"c\\\"d\" bare \"\\303\\251\"").unwrap(),
            vec![
                b"a b".to_vec(),
                b"c\"d".to_vec(),
                b"bare".to_vec(),
                "é".as_bytes().to_vec()
            ]
        );
        assert!(parse_txt("\"open").is_err());
        assert!(parse_txt(&format!("\"{}\"", "y".repeat(256))).is_err());
        // A value already quoted is taken as written, spacing normalised.
        assert_eq!(
            canonical_value(RecordType::Txt, "\"a\"   \"b\"").unwrap(),
            "\"a\" \"b\""
        );
        assert_eq!(
            canonical_value(RecordType::Txt, "plain").unwrap(),
            "\"plain\""
        );
        assert!(canonical_value(RecordType::Txt, &"z".repeat(4000)).is_err());
    }

    #[test]
    fn ownership_txt_encodes_and_judges_like_tags() {
        let owner = me();
        let text = ownership_text(&owner);
        assert_eq!(
            text,
            "heritage=orkestra,orkestra/owner-uid=u-1,orkestra/owner=shop/web,orkestra/katalog=shop-katalog"
        );
        let tags = parse_ownership(&txt_value(&text)).unwrap();
        assert_eq!(tags, owner.tags());
        assert_eq!(owner.judge(&tags), Ownership::Ours);
        let other = Owner {
            uid: "u-2".into(),
            name: "api".into(),
            ..owner.clone()
        };
        let theirs = parse_ownership(&txt_value(&ownership_text(&other))).unwrap();
        assert_eq!(
            owner.judge(&theirs),
            Ownership::Foreign {
                owner: "shop/api".into(),
                uid: "u-2".into()
            }
        );
        // external-dns's mark, or any other text, is not orkestra's.
        assert_eq!(
            parse_ownership("\"heritage=external-dns,external-dns/owner=default\""),
            None
        );
        assert_eq!(parse_ownership("\"hello\""), None);
        // A long owner is split over several strings and still read back whole.
        let long = Owner {
            name: "n".repeat(250),
            ..owner.clone()
        };
        let wire = txt_value(&ownership_text(&long));
        assert!(wire.contains("\" \""), "{wire}");
        assert_eq!(parse_ownership(&wire).unwrap(), long.tags());
    }

    #[test]
    fn diff_is_a_noop_when_values_match_in_any_order_and_spelling() {
        let d = decl(a_record(json!({}))).unwrap();
        let obs = observed(
            json!({"ttl": 60, "values": ["192.0.2.2", "192.0.2.1"], "alias": null}),
            &me(),
        );
        let plan = diff(&d, &obs);
        assert_eq!(plan.action, Action::Noop, "{plan:?}");
        assert!(plan.changes.is_empty());
    }

    #[test]
    fn diff_updates_ttl_and_values_in_place() {
        let d = decl(a_record(json!({"ttl": 120, "values": ["192.0.2.9"]}))).unwrap();
        let obs = observed(
            json!({"ttl": 60, "values": ["192.0.2.1", "192.0.2.2"], "alias": null}),
            &me(),
        );
        let plan = diff(&d, &obs);
        assert_eq!(plan.action, Action::Update);
        assert_eq!(plan.blocked, None);
        let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["ttl", "values"]);
        assert_eq!(
            plan.changes[1].after,
            PlanValue::Known(json!(["192.0.2.9"]))
        );
        // An undeclared TTL is not managed.
        let d = decl(
            json!({"name": "www.example.com", "zone": "example.com", "type": "A",
                            "values": ["192.0.2.1", "192.0.2.2"]}),
        )
        .unwrap();
        assert_eq!(diff(&d, &obs).action, Action::Noop);
    }

    #[test]
    fn diff_switches_between_values_and_alias() {
        let d = decl(json!({"name": "www.example.com", "zone": "example.com", "type": "A",
                            "alias": {"dnsName": "d1.cloudfront.net", "hostedZoneId": "Z2FDTNDATAQYW2"}}))
        .unwrap();
        let obs = observed(
            json!({"ttl": 60, "values": ["192.0.2.1"], "alias": null}),
            &me(),
        );
        let plan = diff(&d, &obs);
        let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["ttl", "values", "alias"]);
        let same = observed(
            json!({"ttl": null, "values": [], "alias": {"dnsName": "d1.cloudfront.net.", "hostedZoneId": "Z2FDTNDATAQYW2", "evaluateTargetHealth": false}}),
            &me(),
        );
        assert_eq!(diff(&d, &same).action, Action::Noop);
    }

    #[test]
    fn diff_judges_ownership_by_the_txt_record() {
        let d = decl(a_record(json!({}))).unwrap();
        let record = json!({"ttl": 60, "values": ["192.0.2.1", "192.0.2.2"], "alias": null});
        // Another owner's mark: a Conflict, whatever adopt says.
        let other = Owner {
            uid: "u-2".into(),
            ..me()
        };
        let plan = diff(&d, &observed(record.clone(), &other));
        assert!(
            matches!(&plan.blocked, Some(Blocked::Conflict(m)) if m.contains("owner uid u-2")),
            "{plan:?}"
        );
        // No mark: a Conflict naming the mark's place, unless adopt (which writes the mark).
        let mut bare = observed(record.clone(), &me());
        bare.fields.remove("ownershipRecord");
        // The runtime's claim for an interrupted create is ignored: a record's mark is atomic.
        bare.ownership = Ownership::Ours;
        let plan = diff(&d, &bare);
        assert!(
            matches!(&plan.blocked, Some(Blocked::Conflict(m)) if m.contains("no ownership TXT record _orkestra-a.www.example.com")),
            "{plan:?}"
        );
        let adopting = decl(a_record(json!({"adopt": true}))).unwrap();
        let plan = diff(&adopting, &bare);
        assert_eq!(plan.action, Action::Update);
        assert_eq!(plan.changes[0].path, "ownershipRecord");
        assert!(
            plan.notes.iter().any(|n| n.contains("adopting")),
            "{plan:?}"
        );
        // Observe reads someone else's record and never writes a mark.
        let observing = decl(a_record(json!({"managementPolicy": "Observe", "ttl": 30}))).unwrap();
        let plan = diff(&observing, &bare);
        assert_eq!(plan.blocked, Some(Blocked::ObserveOnly));
        assert_eq!(plan.changes.len(), 1, "{plan:?}");
    }

    #[test]
    fn diff_of_a_missing_record() {
        let d = decl(a_record(json!({}))).unwrap();
        let mut absent = observed(json!({}), &me());
        absent.exists = false;
        absent.fields.remove("ownershipRecord");
        absent.fields.insert("others".into(), json!([]));
        let plan = diff(&d, &absent);
        assert_eq!(plan.action, Action::Create);
        assert!(plan.blocked.is_none());
        assert!(plan.changes.iter().any(|c| c.path == "ownershipRecord"));
        assert!(plan.changes.iter().any(|c| c.path == "values"));

        // A CNAME cannot join records at its name: ours is a replacement, others' a conflict.
        let cname = decl(a_record(
            json!({"type": "CNAME", "values": ["lb.example.org"]}),
        ))
        .unwrap();
        absent
            .fields
            .insert("others".into(), json!([{"type": "A", "owned": true}]));
        let plan = diff(&cname, &absent);
        assert_eq!(plan.action, Action::Replace);
        assert_eq!(plan.blocked, Some(Blocked::ReplacementRequired));
        assert_eq!(plan.requires_replacement, ["type"]);
        absent
            .fields
            .insert("others".into(), json!([{"type": "A", "owned": false}]));
        let plan = diff(&cname, &absent);
        assert!(
            matches!(&plan.blocked, Some(Blocked::Conflict(m)) if m.contains("cannot share its name")),
            "{plan:?}"
        );
        // An AAAA beside our A is created, with a note.
        let aaaa = decl(a_record(json!({"type": "AAAA", "values": ["2001:db8::1"]}))).unwrap();
        absent
            .fields
            .insert("others".into(), json!([{"type": "A", "owned": true}]));
        let plan = diff(&aaaa, &absent);
        assert_eq!(plan.action, Action::Create);
        assert!(plan.blocked.is_none());
        assert!(plan
            .notes
            .iter()
            .any(|n| n.contains("the A record at www.example.com also belongs")));

        // Moved to another zone while the old record stands: replacement.
        absent.fields.insert("others".into(), json!([]));
        absent
            .fields
            .insert("previousZoneId".into(), json!("Z0OLD"));
        let plan = diff(&d, &absent);
        assert_eq!(plan.action, Action::Replace);
        assert_eq!(plan.requires_replacement, ["zoneId"]);

        // Someone else's mark where ours would go.
        absent.fields.remove("previousZoneId");
        let other = Owner {
            uid: "u-2".into(),
            ..me()
        };
        absent.fields.insert(
            "ownershipRecord".into(),
            json!({"ttl": 300, "values": [txt_value(&ownership_text(&other))]}),
        );
        let plan = diff(&d, &absent);
        assert!(
            matches!(&plan.blocked, Some(Blocked::Conflict(m)) if m.starts_with("the ownership TXT record _orkestra-a.www.example.com exists and belongs to shop/web (owner uid u-2)")),
            "{plan:?}"
        );
    }

    #[test]
    fn delete_repeats_the_observed_sets_exactly() {
        let fields = json!({"ttl": 60, "values": ["192.0.2.2", "192.0.2.1"], "alias": null});
        let set = observed_set("www.example.com.", RrType::A, fields.as_object().unwrap()).unwrap();
        assert_eq!(set.ttl, Some(60));
        let values: Vec<&str> = set.resource_records().iter().map(|r| r.value()).collect();
        assert_eq!(values, ["192.0.2.2", "192.0.2.1"]);
    }
}
