//! `aws.sqs`: standard and FIFO queues.
//!
//! The model: a queue is found by name (GetQueueUrl), then read whole (GetQueueAttributes `All`
//! and ListQueueTags: three reads, no write, on every resync). The observation carries each
//! managed attribute under the declaration's own field name, so the pure [`diff`] compares field
//! by field. Only declared fields are managed: an attribute the declaration does not mention is
//! left as it is (the exception is the queue type, which the name implies).
//!
//! - Create: one CreateQueue carrying every declared attribute *and* the tags, ownership tags
//!   included, so a queue never exists without its owner tags, even if the process dies right
//!   after the call. SQS refuses to re-create a name for 60 s after DeleteQueue
//!   (`QueueDeletedRecently`): that is a retryable error, so the row shows AWS's code and the
//!   runtime comes back later instead of failing for good.
//! - Update: one SetQueueAttributes with exactly the attributes that differ, then TagQueue /
//!   UntagQueue for the tag differences.
//! - Immutable: `queueName` (another name is another queue), `fifo` (SQS cannot change a queue's
//!   type) and `region`. A change is shown as "forces replacement" and never carried out.
//! - The queue policy is declared as a map and compared semantically with the JSON SQS returns
//!   ([`canonical_policy`]): key order, whitespace, a single string versus a one-element list
//!   and the order of statements and actions do not count as drift. `policy: {}` means "no policy".
//! - The dead-letter queue is named by ARN, typically another declaration's output
//!   (`deadLetterQueue: {arn: "{{ .resources.dlq.outputs.arn }}", maxReceiveCount: 5}`).
//! - Encryption: `sqsManagedSse: true` (SSE-SQS) or `kmsMasterKeyId` (SSE-KMS), not both.
//!
//! Rules the schema's per-field validators cannot express (a `.fifo` name goes with
//! `fifo: true`, a FIFO queue's dead-letter queue is FIFO too...) are checked by [`check`] before
//! any call.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::plan::{creation_changes, diff_tags};
use orkestra_provider::schema::OutputSchema as O;
use orkestra_provider::{
    policy, Action, Blocked, Cause, Declaration, FieldChange, FieldSchema as F, FieldType as T,
    KindSchema, ManagementPolicy, Observation, Outcome, Plan, PlanValue, ProviderError, State,
    Validator,
};
use serde_json::{json, Map, Value};

use crate::error::sdk_error;
use crate::ownership::{delete_guard, observe_guard, plan_from_changes};

/// The kinds this module serves.
pub(crate) const KINDS: &[&str] = &["sqs"];

/// The suffix every FIFO queue name carries.
const FIFO_SUFFIX: &str = ".fifo";

/// Declared integer fields and the SQS attribute each one sets.
const INTEGER_ATTRIBUTES: &[(&str, &str)] = &[
    ("visibilityTimeout", "VisibilityTimeout"),
    ("messageRetentionPeriod", "MessageRetentionPeriod"),
    ("delaySeconds", "DelaySeconds"),
    ("maximumMessageSize", "MaximumMessageSize"),
    (
        "receiveMessageWaitTimeSeconds",
        "ReceiveMessageWaitTimeSeconds",
    ),
];

/// Declared boolean fields (other than `fifo`) and the SQS attribute each one sets.
const BOOLEAN_ATTRIBUTES: &[(&str, &str)] = &[
    ("contentBasedDeduplication", "ContentBasedDeduplication"),
    ("sqsManagedSse", "SqsManagedSseEnabled"),
];

/// The kinds' schemas: fields with AWS's documented limits, and outputs.
pub(crate) fn kinds() -> Vec<KindSchema> {
    let mut fields = vec![
        F::new("queueName", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(queue_name)),
        F::new("region", T::String)
            .immutable()
            .validate(Validator::Rule(crate::schema::region)),
        F::new("fifo", T::Boolean).immutable(),
        F::new("contentBasedDeduplication", T::Boolean),
        F::new("visibilityTimeout", T::Integer).validate(Validator::Range(0, 43_200)),
        F::new("messageRetentionPeriod", T::Integer).validate(Validator::Range(60, 1_209_600)),
        F::new("delaySeconds", T::Integer).validate(Validator::Range(0, 900)),
        // AWS documents 262144 (256 KiB) as the largest; moto accepts up to 1 MiB.
        F::new("maximumMessageSize", T::Integer).validate(Validator::Range(1024, 262_144)),
        F::new("receiveMessageWaitTimeSeconds", T::Integer).validate(Validator::Range(0, 20)),
        F::new("deadLetterQueue", T::Object).children(vec![
            F::new("arn", T::String)
                .required()
                .validate(Validator::Rule(queue_arn)),
            F::new("maxReceiveCount", T::Integer)
                .required()
                .validate(Validator::Range(1, 1000)),
        ]),
        F::new("sqsManagedSse", T::Boolean),
        F::new("kmsMasterKeyId", T::String),
        F::new("policy", T::Object),
    ];
    fields.extend(crate::schema::common());
    vec![KindSchema {
        name: "sqs",
        name_field: "queueName",
        fields,
        outputs: vec![
            O::new(
                "url",
                T::String,
                "the queue's URL (what SendMessage is given)",
            ),
            O::new(
                "arn",
                T::String,
                "the queue's ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)",
            ),
            O::new("name", T::String, "the queue's name"),
        ],
    }]
}

/// SQS's queue naming rule: 1 to 80 characters of letters, digits, hyphens and underscores; a
/// FIFO queue's name ends in `.fifo` (counted in the 80).
pub fn queue_name(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("queue name {s:?} {why}"));
    if s.is_empty() || s.len() > 80 {
        return bad("must be 1 to 80 characters long");
    }
    let stem = s.strip_suffix(FIFO_SUFFIX).unwrap_or(s);
    if stem.is_empty() {
        return bad("needs a name before .fifo");
    }
    if !stem
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("may contain only letters, digits, hyphens and underscores (and end in .fifo for a FIFO queue)");
    }
    Ok(())
}

/// A queue ARN, `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`.
pub fn queue_arn(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "sqs"
        && !parts[3].is_empty()
        && !parts[4].is_empty()
        && queue_name(parts[5]).is_ok();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)"
        ))
    }
}

/// The rules that tie fields together, which per-field validators cannot check. Run before any
/// call, so a declaration AWS would reject (or that could never converge) fails early, naming
/// the field.
pub fn check(decl: &Declaration) -> Result<(), ProviderError> {
    let named_fifo = decl.name.ends_with(FIFO_SUFFIX);
    let fifo = is_fifo(decl);
    if fifo && !named_fifo {
        return Err(ProviderError::invalid_field(
            "queueName",
            format!(
                "a FIFO queue's name must end in .fifo (fifo: true), {:?} does not",
                decl.name
            ),
        ));
    }
    if named_fifo && !fifo {
        return Err(ProviderError::invalid_field(
            "fifo",
            format!("the queue name {:?} ends in .fifo, which SQS reserves for FIFO queues: set fifo: true (or leave it out)", decl.name),
        ));
    }
    if decl.fields.contains_key("contentBasedDeduplication") && !fifo {
        return Err(ProviderError::invalid_field(
            "contentBasedDeduplication",
            "applies to FIFO queues only (fifo: true)",
        ));
    }
    if decl.bool_or("sqsManagedSse", false) && decl.fields.contains_key("kmsMasterKeyId") {
        return Err(ProviderError::invalid_field(
            "sqsManagedSse",
            "a queue is encrypted either with SQS-managed keys (sqsManagedSse) or with a KMS key (kmsMasterKeyId), not both",
        ));
    }
    if let Some(arn) = decl
        .fields
        .get("deadLetterQueue")
        .and_then(|d| d.get("arn"))
        .and_then(Value::as_str)
    {
        if arn.ends_with(FIFO_SUFFIX) != fifo {
            let (this, that) = if fifo {
                ("a FIFO queue", "a FIFO queue too")
            } else {
                ("a standard queue", "a standard queue too")
            };
            return Err(ProviderError::invalid_field(
                "deadLetterQueue.arn",
                format!("the dead-letter queue of {this} must be {that}: {arn}"),
            ));
        }
    }
    Ok(())
}

/// Whether the declared queue is FIFO: `fifo` if declared, else what the name says (a `.fifo`
/// name is a FIFO queue's), so a declaration rebuilt from a status row (the name only) still
/// names the right queue type.
fn is_fifo(decl: &Declaration) -> bool {
    decl.fields
        .get("fifo")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| decl.name.ends_with(FIFO_SUFFIX))
}

/// Every output the schema declares for `aws.sqs`: the one place they are computed.
fn outputs(name: &str, url: &str, arn: &str) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("url".into(), json!(url));
    o.insert("arn".into(), json!(arn));
    o.insert("name".into(), json!(name));
    o
}

/// The queue does not exist (SQS's `QueueDoesNotExist`, whatever the operation).
fn is_missing<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(
        e.code(),
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
    )
}

/// [`sdk_error`], marking as retryable what waiting cures: `QueueDeletedRecently` (SQS refuses a
/// name for 60 s after DeleteQueue) and `QueueAlreadyExists` on a create (someone created the
/// name since we looked: the retry observes again and judges whose it is).
fn sqs_error<E>(operation: &str, e: &SdkError<E, HttpResponse>, transient: bool) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut err = sdk_error(operation, e);
    if transient {
        if let Cause::Api { retryable, .. } = err.cause.as_mut() {
            *retryable = true;
        }
    }
    err
}

/// GetQueueUrl, GetQueueAttributes(All), ListQueueTags, as an observation. The declaration is
/// [`check`]ed first, except `for_delete`: a declaration edited into an invalid state must not
/// keep its queue from being deleted.
pub(crate) async fn observe(
    client: &Client,
    decl: &Declaration,
    for_delete: bool,
) -> Result<Observation, ProviderError> {
    if !for_delete {
        check(decl)?;
    }
    let url = match client.get_queue_url().queue_name(&decl.name).send().await {
        Ok(out) => match out.queue_url() {
            Some(u) => u.to_string(),
            None => return Ok(Observation::absent()),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist())
                || is_missing(&e) =>
        {
            return Ok(Observation::absent())
        }
        Err(e) => return Err(sdk_error("GetQueueUrl", &e)),
    };
    // Deleted between two calls: as good as missing.
    let attributes = match client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
    {
        Ok(out) => out
            .attributes()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
        Err(e) if is_missing(&e) => return Ok(Observation::absent()),
        Err(e) => return Err(sdk_error("GetQueueAttributes", &e)),
    };
    let tags = match client.list_queue_tags().queue_url(&url).send().await {
        Ok(out) => out
            .tags()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
        Err(e) if is_missing(&e) => return Ok(Observation::absent()),
        Err(e) => return Err(sdk_error("ListQueueTags", &e)),
    };
    Ok(observation(decl, &url, &attributes, tags))
}

/// The observation of an existing queue from its URL, attributes and tags (pure).
pub(crate) fn observation(
    decl: &Declaration,
    url: &str,
    attributes: &BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
) -> Observation {
    let arn = attributes.get("QueueArn").cloned();
    let mut obs = Observation {
        exists: true,
        id: arn.clone(),
        ownership: decl.owner.judge(&tags),
        tags,
        ..Observation::default()
    };
    let f = &mut obs.fields;
    f.insert("queueName".into(), json!(decl.name));
    // The region is the fourth part of the ARN (arn:aws:sqs:REGION:account:name).
    if let Some(region) = arn.as_deref().and_then(|a| a.split(':').nth(3)) {
        f.insert("region".into(), json!(region));
    }
    f.insert(
        "fifo".into(),
        json!(attributes.get("FifoQueue").map(String::as_str) == Some("true")),
    );
    for (field, attribute) in INTEGER_ATTRIBUTES {
        if let Some(n) = attributes
            .get(*attribute)
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            f.insert((*field).into(), json!(n));
        }
    }
    for (field, attribute) in BOOLEAN_ATTRIBUTES {
        if let Some(v) = attributes.get(*attribute) {
            f.insert((*field).into(), json!(v == "true"));
        }
    }
    if let Some(key) = attributes.get("KmsMasterKeyId").filter(|k| !k.is_empty()) {
        f.insert("kmsMasterKeyId".into(), json!(key));
    }
    if let Some(redrive) = attributes.get("RedrivePolicy").filter(|p| !p.is_empty()) {
        f.insert("deadLetterQueue".into(), observed_redrive(redrive));
    }
    if let Some(doc) = attributes.get("Policy").filter(|p| !p.is_empty()) {
        // A document that does not parse stays a string: it differs from any declared map.
        f.insert(
            "policy".into(),
            serde_json::from_str(doc).unwrap_or_else(|_| json!(doc)),
        );
    }
    let user_tags: Map<String, Value> = obs
        .tags
        .iter()
        .filter(|(k, _)| !orkestra_provider::ownership::is_ownership_tag(k))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    f.insert("tags".into(), Value::Object(user_tags));
    obs.outputs = outputs(&decl.name, url, arn.as_deref().unwrap_or_default());
    obs
}

/// RedrivePolicy (`{"deadLetterTargetArn": ..., "maxReceiveCount": 5}`, the count sometimes a
/// string) in the declaration's shape, `{arn, maxReceiveCount}`.
fn observed_redrive(doc: &str) -> Value {
    let Ok(v) = serde_json::from_str::<Value>(doc) else {
        return json!(doc);
    };
    let count = match v.get("maxReceiveCount") {
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Value::from).unwrap_or(json!(s)),
        Some(n) => n.clone(),
        None => Value::Null,
    };
    json!({
        "arn": v.get("deadLetterTargetArn").cloned().unwrap_or(Value::Null),
        "maxReceiveCount": count,
    })
}

/// A policy document in a canonical form, so two documents that mean the same compare equal:
/// maps with sorted keys; `Statement` always a list, its statements sorted; `Action`,
/// `NotAction`, `Resource`, `NotResource`, principal and condition values always sorted lists of
/// strings without duplicates (actions lower-cased, as IAM matches them case-insensitively);
/// `Principal: "*"` as `{"AWS": ["*"]}`, which AWS treats the same.
pub fn canonical_policy(doc: &Value) -> Value {
    let Value::Object(m) = doc else {
        return doc.clone();
    };
    map_sorted(m, |k, v| {
        if k == "Statement" {
            let mut statements: Vec<Value> = match v {
                Value::Array(items) => items.iter().map(canonical_statement).collect(),
                other => vec![canonical_statement(other)],
            };
            statements.sort_by_key(|s| s.to_string());
            statements.dedup();
            Value::Array(statements)
        } else {
            sorted_value(v)
        }
    })
}

fn canonical_statement(s: &Value) -> Value {
    let Value::Object(m) = s else {
        return s.clone();
    };
    map_sorted(m, |k, v| match (k, v) {
        ("Action" | "NotAction", v) => string_set(v, true),
        ("Resource" | "NotResource", v) => string_set(v, false),
        ("Principal" | "NotPrincipal", Value::String(s)) if s == "*" => json!({"AWS": ["*"]}),
        ("Principal" | "NotPrincipal", Value::Object(p)) => {
            map_sorted(p, |_, v| string_set(v, false))
        }
        // Condition: operator -> key -> values.
        ("Condition", Value::Object(ops)) => map_sorted(ops, |_, keys| match keys {
            Value::Object(keys) => map_sorted(keys, |_, v| string_set(v, false)),
            other => other.clone(),
        }),
        (_, v) => sorted_value(v),
    })
}

/// A map with its keys in sorted order and each value mapped by `f(key, value)`.
fn map_sorted(m: &Map<String, Value>, f: impl Fn(&str, &Value) -> Value) -> Value {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.clone(), f(k, v)))
            .collect(),
    )
}

/// `v` with every map's keys in sorted order (lists keep their order).
fn sorted_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => map_sorted(m, |_, v| sorted_value(v)),
        Value::Array(items) => Value::Array(items.iter().map(sorted_value).collect()),
        other => other.clone(),
    }
}

/// A scalar or a list of scalars as a sorted list of distinct strings.
fn string_set(v: &Value, lowercase: bool) -> Value {
    let text = |x: &Value| -> String {
        let s = match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if lowercase {
            s.to_ascii_lowercase()
        } else {
            s
        }
    };
    let mut items: Vec<String> = match v {
        Value::Array(a) => a.iter().map(text).collect(),
        other => vec![text(other)],
    };
    items.sort();
    items.dedup();
    Value::Array(items.into_iter().map(Value::String).collect())
}

/// The policy as SQS is given it: the declared map as JSON, or nothing for `policy: {}`.
fn policy_attribute(declared: &Value) -> String {
    match declared {
        Value::Object(m) if m.is_empty() => String::new(),
        other => other.to_string(),
    }
}

/// RedrivePolicy from the declared `{arn, maxReceiveCount}`.
fn redrive_attribute(declared: &Value) -> String {
    json!({
        "deadLetterTargetArn": declared.get("arn").cloned().unwrap_or(Value::Null),
        "maxReceiveCount": declared.get("maxReceiveCount").cloned().unwrap_or(Value::Null),
    })
    .to_string()
}

/// The tags a queue should carry: declared (if declared) plus ownership tags; `exact` says
/// whether tags not in that set are removed.
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

/// The attributes CreateQueue is given: every declared one.
pub(crate) fn create_attributes(decl: &Declaration) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    if is_fifo(decl) {
        a.insert("FifoQueue".to_string(), "true".to_string());
    }
    for (field, attribute) in INTEGER_ATTRIBUTES {
        if let Some(n) = decl.int(field) {
            a.insert((*attribute).to_string(), n.to_string());
        }
    }
    for (field, attribute) in BOOLEAN_ATTRIBUTES {
        if let Some(b) = decl.fields.get(*field).and_then(Value::as_bool) {
            a.insert((*attribute).to_string(), b.to_string());
        }
    }
    if let Some(key) = decl.str("kmsMasterKeyId") {
        a.insert("KmsMasterKeyId".to_string(), key.to_string());
    }
    if let Some(d) = decl.fields.get("deadLetterQueue") {
        a.insert("RedrivePolicy".to_string(), redrive_attribute(d));
    }
    if let Some(p) = decl.fields.get("policy") {
        let doc = policy_attribute(p);
        if !doc.is_empty() {
            a.insert("Policy".to_string(), doc);
        }
    }
    a
}

/// The attributes SetQueueAttributes is given for `plan`: exactly those whose fields changed.
pub(crate) fn update_attributes(decl: &Declaration, plan: &Plan) -> BTreeMap<String, String> {
    let changed = |p: &str| {
        plan.changes
            .iter()
            .any(|c| c.path == p || c.path.starts_with(&format!("{p}.")))
    };
    let mut a = BTreeMap::new();
    for (field, attribute) in INTEGER_ATTRIBUTES {
        if let (true, Some(n)) = (changed(field), decl.int(field)) {
            a.insert((*attribute).to_string(), n.to_string());
        }
    }
    for (field, attribute) in BOOLEAN_ATTRIBUTES {
        if let (true, Some(b)) = (
            changed(field),
            decl.fields.get(*field).and_then(Value::as_bool),
        ) {
            a.insert((*attribute).to_string(), b.to_string());
        }
    }
    if changed("kmsMasterKeyId") {
        // Absent when switching to SSE-SQS: the key is removed in the same call.
        a.insert(
            "KmsMasterKeyId".to_string(),
            decl.str("kmsMasterKeyId").unwrap_or_default().to_string(),
        );
        if decl.bool_or("sqsManagedSse", false) {
            a.insert("SqsManagedSseEnabled".to_string(), "true".to_string());
        }
    }
    if let (true, Some(d)) = (
        changed("deadLetterQueue"),
        decl.fields.get("deadLetterQueue"),
    ) {
        a.insert("RedrivePolicy".to_string(), redrive_attribute(d));
    }
    if let (true, Some(p)) = (changed("policy"), decl.fields.get("policy")) {
        a.insert("Policy".to_string(), policy_attribute(p));
    }
    a
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
        for unknown in ["url", "arn"] {
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
    let mut compare = |field: &str, desired: Value, forces: bool| {
        let before = observed(field);
        if before != Some(&desired) {
            let c = FieldChange::new(
                field,
                PlanValue::from_option(before),
                PlanValue::Known(desired),
            );
            changes.push(if forces { c.forcing_replacement() } else { c });
        }
    };
    if let Some(region) = decl.str("region") {
        compare("region", json!(region), true);
    }
    // The type follows the name (check() ties them), so it is compared even when not declared.
    compare("fifo", json!(is_fifo(decl)), true);
    for (field, _) in INTEGER_ATTRIBUTES {
        if let Some(v) = decl.fields.get(*field) {
            compare(field, v.clone(), false);
        }
    }
    if let Some(v) = decl.fields.get("contentBasedDeduplication") {
        compare("contentBasedDeduplication", v.clone(), false);
    }
    match (
        decl.fields.get("sqsManagedSse").and_then(Value::as_bool),
        decl.str("kmsMasterKeyId"),
    ) {
        (_, Some(key)) => {
            // SSE-KMS: SQS turns SSE-SQS off by itself, so that flag is not compared.
            compare("kmsMasterKeyId", json!(key), false);
        }
        (Some(true), None) => {
            compare("sqsManagedSse", json!(true), false);
            // SSE-SQS replaces a KMS key: the key goes.
            if let Some(key) = observed("kmsMasterKeyId") {
                changes.push(FieldChange::new(
                    "kmsMasterKeyId",
                    PlanValue::Known(key.clone()),
                    PlanValue::Absent,
                ));
            }
        }
        (Some(false), None) => compare("sqsManagedSse", json!(false), false),
        (None, None) => {}
    }
    if let Some(d) = decl.fields.get("deadLetterQueue") {
        let before = observed("deadLetterQueue");
        for sub in ["arn", "maxReceiveCount"] {
            let want = d.get(sub).cloned().unwrap_or(Value::Null);
            let had = before.and_then(|b| b.get(sub)).filter(|v| !v.is_null());
            if had != Some(&want) {
                changes.push(FieldChange::new(
                    format!("deadLetterQueue.{sub}"),
                    PlanValue::from_option(had),
                    PlanValue::Known(want),
                ));
            }
        }
    }
    if let Some(p) = decl.fields.get("policy") {
        let before = observed("policy");
        let want_none = p.as_object().is_some_and(Map::is_empty);
        let same = match before {
            None => want_none,
            Some(b) => !want_none && canonical_policy(b) == canonical_policy(p),
        };
        if !same {
            changes.push(FieldChange::new(
                "policy",
                PlanValue::from_option(before),
                if want_none {
                    PlanValue::Absent
                } else {
                    PlanValue::Known(p.clone())
                },
            ));
        }
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

/// The queue URL an observation found.
fn observed_url(obs: &Observation) -> Result<&str, ProviderError> {
    obs.outputs
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ProviderError::invalid_field("queueName", "the queue's URL is not known"))
}

/// Carry out `plan` on the queue.
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
        Action::Noop => {
            let ready = Outcome::new(State::Ready)
                .id(obs.id.clone())
                .outputs(obs.outputs.clone());
            Ok(if obs.notes.is_empty() {
                ready
            } else {
                ready.message(obs.notes.join("; "))
            })
        }
        Action::Create => create(client, decl).await,
        Action::Update => update(client, decl, obs, plan).await,
        Action::Replace | Action::Delete => Ok(policy::blocked_outcome(
            obs,
            plan,
            &Blocked::ReplacementRequired,
        )),
    }
}

async fn create(client: &Client, decl: &Declaration) -> Result<Outcome, ProviderError> {
    let attributes: HashMap<QueueAttributeName, String> = create_attributes(decl)
        .into_iter()
        .map(|(k, v)| (QueueAttributeName::from(k.as_str()), v))
        .collect();
    let (tags, _) = desired_tags(decl);
    let out = client
        .create_queue()
        .queue_name(&decl.name)
        .set_attributes((!attributes.is_empty()).then_some(attributes))
        .set_tags(Some(tags.into_iter().collect()))
        .send()
        .await
        .map_err(|e| {
            let transient = e
                .as_service_error()
                .is_some_and(|s| s.is_queue_deleted_recently() || s.is_queue_name_exists());
            sqs_error("CreateQueue", &e, transient)
        })?;
    let url = out
        .queue_url()
        .ok_or_else(|| {
            ProviderError::api("CreateQueue", None, "the answer carried no queue URL", true)
        })?
        .to_string();
    // The ARN is only in the attributes (a read, not a change).
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", &e))?
        .attributes()
        .and_then(|m| m.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    Ok(Outcome::new(State::Ready)
        .id(Some(arn.clone()).filter(|a| !a.is_empty()))
        .outputs(outputs(&decl.name, &url, &arn))
        .mutations(1))
}

async fn update(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
) -> Result<Outcome, ProviderError> {
    let url = observed_url(obs)?;
    let mut n = 0;
    let attributes = update_attributes(decl, plan);
    if !attributes.is_empty() {
        client
            .set_queue_attributes()
            .queue_url(url)
            .set_attributes(Some(
                attributes
                    .into_iter()
                    .map(|(k, v)| (QueueAttributeName::from(k.as_str()), v))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| sdk_error("SetQueueAttributes", &e))?;
        n += 1;
    }
    let (tags, exact) = desired_tags(decl);
    let add: HashMap<String, String> = tags
        .iter()
        .filter(|(k, v)| obs.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !add.is_empty() {
        client
            .tag_queue()
            .queue_url(url)
            .set_tags(Some(add))
            .send()
            .await
            .map_err(|e| sdk_error("TagQueue", &e))?;
        n += 1;
    }
    let remove: Vec<String> = if exact {
        crate::ownership::settable_tags(&obs.tags)
            .into_keys()
            .filter(|k| !tags.contains_key(k))
            .collect()
    } else {
        Vec::new()
    };
    if !remove.is_empty() {
        client
            .untag_queue()
            .queue_url(url)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(|e| sdk_error("UntagQueue", &e))?;
        n += 1;
    }
    Ok(Outcome::new(State::Ready)
        .id(obs.id.clone())
        .outputs(obs.outputs.clone())
        .mutations(n))
}

/// Delete (or orphan) the queue; a queue already gone is success.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let url = observed_url(obs)?;
    match client.delete_queue().queue_url(url).send().await {
        Ok(_) => Ok(Outcome::new(State::Deleted).id(obs.id.clone()).mutations(1)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist())
                || is_missing(&e) =>
        {
            Ok(Outcome::new(State::Deleted).mutations(1))
        }
        Err(e) => Err(sdk_error("DeleteQueue", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::ownership::TAG_OWNER_UID;
    use orkestra_provider::Owner;

    fn owner() -> Owner {
        Owner {
            uid: "u1".into(),
            namespace: "shop".into(),
            name: "web".into(),
            katalog: "k".into(),
        }
    }

    fn build(item: Value) -> Result<Declaration, String> {
        let schema = crate::schema();
        Declaration::from_rendered(
            "aws",
            schema.kind("sqs").unwrap(),
            item.as_object().unwrap(),
            owner(),
        )
        .map_err(|e| e.to_string())
    }

    fn decl(item: Value) -> Declaration {
        build(item).unwrap()
    }

    /// A queue of ours as observed, with these attributes on top of SQS's defaults.
    fn observed(
        d: &Declaration,
        extra: &[(&str, &str)],
        user_tags: &[(&str, &str)],
    ) -> Observation {
        let mut attrs: BTreeMap<String, String> = [
            (
                "QueueArn",
                format!("arn:aws:sqs:us-east-1:123456789012:{}", d.name),
            ),
            ("VisibilityTimeout", "30".into()),
            ("MessageRetentionPeriod", "345600".into()),
            ("DelaySeconds", "0".into()),
            ("MaximumMessageSize", "262144".into()),
            ("ReceiveMessageWaitTimeSeconds", "0".into()),
            ("SqsManagedSseEnabled", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.to_string());
        }
        let mut tags = owner().tags();
        for (k, v) in user_tags {
            tags.insert(k.to_string(), v.to_string());
        }
        observation(d, "https://sqs.example/123456789012/q", &attrs, tags)
    }

    fn paths(p: &Plan) -> Vec<&str> {
        p.changes.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn queue_names_follow_sqs_rules() {
        for ok in ["orders", "a", "Orders_2-x", "jobs.fifo", &"q".repeat(80)] {
            assert!(queue_name(ok).is_ok(), "{ok}");
        }
        let long_fifo = format!("{}.fifo", "q".repeat(75));
        assert!(queue_name(&long_fifo).is_ok());
        for bad in [
            "",
            ".fifo",
            "a.b",
            "has space",
            "x.fifo.fifo",
            "é",
            &"q".repeat(81),
            &format!("{}.fifo", "q".repeat(76)),
        ] {
            assert!(queue_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queue_arns() {
        assert!(queue_arn("arn:aws:sqs:eu-west-1:123456789012:dlq").is_ok());
        assert!(queue_arn("arn:aws-cn:sqs:cn-north-1:123456789012:dlq.fifo").is_ok());
        for bad in [
            "dlq",
            "arn:aws:sns:eu-west-1:123456789012:dlq",
            "arn:aws:sqs:eu-west-1:123456789012",
            "arn:aws:sqs::123456789012:dlq",
            "arn:aws:sqs:eu-west-1:123456789012:bad.name",
        ] {
            assert!(queue_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schema_limits_are_aws_documented_ones() {
        let cases = [
            (
                json!({"queueName": "q", "visibilityTimeout": 43201}),
                "field visibilityTimeout: 43201 is outside 0..=43200",
            ),
            (
                json!({"queueName": "q", "messageRetentionPeriod": 59}),
                "field messageRetentionPeriod: 59 is outside 60..=1209600",
            ),
            (
                json!({"queueName": "q", "delaySeconds": 901}),
                "field delaySeconds: 901 is outside 0..=900",
            ),
            (
                json!({"queueName": "q", "maximumMessageSize": 1_048_576}),
                "field maximumMessageSize: 1048576 is outside 1024..=262144",
            ),
            (
                json!({"queueName": "q", "receiveMessageWaitTimeSeconds": 21}),
                "field receiveMessageWaitTimeSeconds: 21 is outside 0..=20",
            ),
            (
                json!({"queueName": "q", "deadLetterQueue": {"arn": "arn:aws:sqs:us-east-1:1:d", "maxReceiveCount": 1001}}),
                "field deadLetterQueue: maxReceiveCount: 1001 is outside 1..=1000",
            ),
            (
                json!({"queueName": "q", "deadLetterQueue": {"arn": "arn:aws:sqs:us-east-1:1:d"}}),
                "field deadLetterQueue: maxReceiveCount is required",
            ),
            (
                json!({"queueName": "q", "deadLetterQueue": {"arn": "d", "maxReceiveCount": 5}}),
                "is not an SQS queue ARN",
            ),
            (
                json!({"queueName": "bad name"}),
                "field queueName: queue name \"bad name\"",
            ),
        ];
        for (item, want) in cases {
            let e = build(item.clone()).unwrap_err();
            assert!(e.contains(want), "{item}: {e}");
        }
        let ok = decl(
            json!({"queueName": "q", "visibilityTimeout": "60", "maximumMessageSize": 262144}),
        );
        assert_eq!(ok.int("visibilityTimeout"), Some(60));
        let schema = crate::schema();
        let kind = schema.kind("sqs").unwrap();
        assert!(kind.field("queueName").unwrap().immutable);
        assert!(kind.field("fifo").unwrap().immutable);
        let outs: Vec<&str> = kind.outputs.iter().map(|o| o.name).collect();
        assert_eq!(outs, ["url", "arn", "name"]);
    }

    #[test]
    fn cross_field_rules() {
        let err = |item: Value| check(&decl(item)).unwrap_err().to_string();
        assert!(err(json!({"queueName": "jobs", "fifo": true}))
            .contains("field queueName: a FIFO queue's name must end in .fifo"));
        assert!(err(json!({"queueName": "jobs.fifo", "fifo": false})).contains("set fifo: true"));
        assert!(
            err(json!({"queueName": "jobs", "contentBasedDeduplication": true}))
                .contains("field contentBasedDeduplication")
        );
        assert!(err(
            json!({"queueName": "jobs", "sqsManagedSse": true, "kmsMasterKeyId": "alias/k"})
        )
        .contains("not both"));
        assert!(err(json!({"queueName": "jobs.fifo", "fifo": true, "deadLetterQueue": {"arn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 3}})).contains("field deadLetterQueue.arn: the dead-letter queue of a FIFO queue must be a FIFO queue too"));
        assert!(err(json!({"queueName": "jobs", "deadLetterQueue": {"arn": "arn:aws:sqs:us-east-1:1:dlq.fifo", "maxReceiveCount": 3}})).contains("standard queue too"));
        for ok in [
            json!({"queueName": "jobs"}),
            // The type follows the name when `fifo` is not declared.
            json!({"queueName": "jobs.fifo", "contentBasedDeduplication": false}),
            json!({"queueName": "jobs.fifo", "fifo": true, "contentBasedDeduplication": true}),
            json!({"queueName": "jobs", "sqsManagedSse": false, "kmsMasterKeyId": "alias/k"}),
        ] {
            assert!(check(&decl(ok.clone())).is_ok(), "{ok}");
        }
    }

    #[test]
    fn observation_reads_attributes_in_declaration_terms() {
        let d = decl(json!({"queueName": "q"}));
        let obs = observed(
            &d,
            &[
                (
                    "RedrivePolicy",
                    r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":"7"}"#,
                ),
                ("Policy", r#"{"Version":"2012-10-17","Statement":[]}"#),
                ("KmsMasterKeyId", "alias/k"),
            ],
            &[("team", "a")],
        );
        assert_eq!(obs.ownership, orkestra_provider::Ownership::Ours);
        assert_eq!(obs.fields["visibilityTimeout"], json!(30));
        assert_eq!(obs.fields["fifo"], json!(false));
        assert_eq!(obs.fields["region"], json!("us-east-1"));
        assert_eq!(obs.fields["sqsManagedSse"], json!(true));
        assert_eq!(obs.fields["kmsMasterKeyId"], json!("alias/k"));
        assert_eq!(
            obs.fields["deadLetterQueue"],
            json!({"arn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 7})
        );
        assert_eq!(obs.fields["policy"]["Version"], json!("2012-10-17"));
        assert_eq!(obs.fields["tags"], json!({"team": "a"}));
        assert_eq!(
            obs.outputs,
            outputs(
                "q",
                "https://sqs.example/123456789012/q",
                "arn:aws:sqs:us-east-1:123456789012:q"
            )
        );
        assert_eq!(
            obs.id.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:q")
        );
    }

    #[test]
    fn create_plan_and_attributes() {
        let d = decl(json!({
            "queueName": "jobs.fifo", "fifo": true, "contentBasedDeduplication": true,
            "visibilityTimeout": 60, "deadLetterQueue": {"arn": "arn:aws:sqs:us-east-1:1:dlq.fifo", "maxReceiveCount": 5},
            "policy": {"Version": "2012-10-17", "Statement": []}, "tags": {"team": "a"},
            "credentials": {"secretName": "s"},
        }));
        let plan = diff(&d, &Observation::absent());
        assert_eq!(plan.action, Action::Create);
        let p = paths(&plan);
        for want in [
            "fifo",
            "visibilityTimeout",
            "deadLetterQueue.arn",
            "tags.team",
            "url",
            "arn",
        ] {
            assert!(p.contains(&want), "{p:?}");
        }
        assert!(p.contains(&format!("tags.{TAG_OWNER_UID}").as_str()));
        assert!(!p.iter().any(|x| x.starts_with("credentials")));
        let a = create_attributes(&d);
        assert_eq!(a["FifoQueue"], "true");
        assert_eq!(a["ContentBasedDeduplication"], "true");
        assert_eq!(a["VisibilityTimeout"], "60");
        let redrive: Value = serde_json::from_str(&a["RedrivePolicy"]).unwrap();
        assert_eq!(
            redrive,
            json!({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq.fifo", "maxReceiveCount": 5})
        );
        assert!(a.contains_key("Policy"));
        // A standard queue sends no FifoQueue, and `policy: {}` no Policy.
        let std = create_attributes(&decl(json!({"queueName": "q", "policy": {}})));
        assert!(std.is_empty(), "{std:?}");

        let observe = decl(json!({"queueName": "q", "managementPolicy": "Observe"}));
        assert_eq!(
            diff(&observe, &Observation::absent()).blocked,
            Some(Blocked::ObserveOnly)
        );
    }

    #[test]
    fn no_drift_when_observed_matches() {
        let d = decl(json!({
            "queueName": "q", "visibilityTimeout": 30, "sqsManagedSse": true,
            "deadLetterQueue": {"arn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 5},
            "tags": {"team": "a"},
        }));
        let obs = observed(
            &d,
            &[(
                "RedrivePolicy",
                r#"{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 5}"#,
            )],
            &[("team", "a")],
        );
        let plan = diff(&d, &obs);
        assert_eq!(plan.action, Action::Noop, "{:?}", plan.changes);
    }

    #[test]
    fn update_sets_only_what_differs() {
        let d = decl(
            json!({"queueName": "q", "visibilityTimeout": 120, "delaySeconds": 0, "tags": {"team": "b"}}),
        );
        let obs = observed(&d, &[], &[("team", "a"), ("old", "x")]);
        let plan = diff(&d, &obs);
        assert_eq!(plan.action, Action::Update);
        assert_eq!(paths(&plan), ["visibilityTimeout", "tags.team", "tags.old"]);
        let a = update_attributes(&d, &plan);
        assert_eq!(
            a,
            BTreeMap::from([("VisibilityTimeout".to_string(), "120".to_string())])
        );
        // Tags only: no attribute call.
        let d2 = decl(json!({"queueName": "q", "visibilityTimeout": 30, "tags": {"team": "b"}}));
        assert!(update_attributes(&d2, &diff(&d2, &obs)).is_empty());
    }

    #[test]
    fn fifo_change_forces_replacement() {
        let d = decl(json!({"queueName": "q.fifo", "fifo": true, "visibilityTimeout": 99}));
        // A standard queue under a .fifo name (moto allows it; AWS does not).
        let obs = observed(&d, &[], &[]);
        let plan = diff(&d, &obs);
        assert_eq!(plan.action, Action::Replace);
        assert_eq!(plan.requires_replacement, ["fifo"]);
        assert_eq!(plan.blocked, Some(Blocked::ReplacementRequired));
        let text = plan.render();
        assert!(
            text.lines().any(|l| l.trim_start().starts_with("~ fifo ")
                && l.ends_with("= false -> true # forces replacement")),
            "{text}"
        );
    }

    #[test]
    fn encryption_switches() {
        // KMS declared, the queue on SSE-SQS: only the key is set (SQS turns SSE-SQS off itself).
        let kms = decl(json!({"queueName": "q", "kmsMasterKeyId": "alias/k"}));
        let plan = diff(&kms, &observed(&kms, &[], &[]));
        assert_eq!(paths(&plan), ["kmsMasterKeyId"]);
        assert_eq!(
            update_attributes(&kms, &plan),
            BTreeMap::from([("KmsMasterKeyId".to_string(), "alias/k".to_string())])
        );
        // Back to SSE-SQS: the key is removed in the same call.
        let sse = decl(json!({"queueName": "q", "sqsManagedSse": true}));
        let plan = diff(
            &sse,
            &observed(
                &sse,
                &[
                    ("KmsMasterKeyId", "alias/k"),
                    ("SqsManagedSseEnabled", "false"),
                ],
                &[],
            ),
        );
        assert_eq!(paths(&plan), ["sqsManagedSse", "kmsMasterKeyId"]);
        assert_eq!(
            update_attributes(&sse, &plan),
            BTreeMap::from([
                ("KmsMasterKeyId".to_string(), String::new()),
                ("SqsManagedSseEnabled".to_string(), "true".to_string()),
            ])
        );
    }

    #[test]
    fn policies_compare_semantically() {
        let declared = json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage",
                "Resource": "arn:aws:sqs:us-east-1:1:q",
                "Condition": {"Bool": {"aws:SecureTransport": true}},
            },
        });
        let returned = r#"{
          "Statement": [ { "Resource": ["arn:aws:sqs:us-east-1:1:q"],
            "Condition": {"Bool": {"aws:SecureTransport": ["true"]}},
            "Action": ["SQS:SendMessage"], "Principal": {"AWS": "*"}, "Effect": "Allow" } ],
          "Version":"2012-10-17" }"#;
        let returned: Value = serde_json::from_str(returned).unwrap();
        assert_eq!(canonical_policy(&declared), canonical_policy(&returned));

        let two = |a: &str, b: &str| {
            json!({"Version": "2012-10-17", "Statement": [
            {"Sid": a, "Effect": "Allow", "Principal": "*", "Action": ["sqs:SendMessage", "sqs:ReceiveMessage"], "Resource": "*"},
            {"Sid": b, "Effect": "Deny", "Principal": "*", "Action": "sqs:DeleteQueue", "Resource": "*"}]})
        };
        let mut swapped = two("a", "b");
        swapped["Statement"].as_array_mut().unwrap().reverse();
        swapped["Statement"][1]["Action"] = json!(["sqs:ReceiveMessage", "sqs:SendMessage"]);
        assert_eq!(canonical_policy(&two("a", "b")), canonical_policy(&swapped));
        // A real difference stays one.
        let mut denied = two("a", "b");
        denied["Statement"][0]["Effect"] = json!("Deny");
        assert_ne!(canonical_policy(&two("a", "b")), canonical_policy(&denied));
        let mut other_resource = returned.clone();
        other_resource["Statement"][0]["Resource"] = json!("arn:aws:sqs:us-east-1:1:other");
        assert_ne!(
            canonical_policy(&declared),
            canonical_policy(&other_resource)
        );

        // In the diff: equal means no change; different means one `policy` change.
        let d = decl(json!({"queueName": "q", "policy": declared}));
        let doc = returned.to_string();
        assert_eq!(
            diff(&d, &observed(&d, &[("Policy", doc.as_str())], &[])).action,
            Action::Noop
        );
        let plan = diff(&d, &observed(&d, &[], &[]));
        assert_eq!(paths(&plan), ["policy"]);
        assert!(update_attributes(&d, &plan)["Policy"].contains("sqs:SendMessage"));
        // `policy: {}` removes one, and is satisfied by none.
        let none = decl(json!({"queueName": "q", "policy": {}}));
        let plan = diff(&none, &observed(&none, &[("Policy", doc.as_str())], &[]));
        assert_eq!(plan.changes[0].after, PlanValue::Absent);
        assert_eq!(update_attributes(&none, &plan)["Policy"], "");
        assert_eq!(diff(&none, &observed(&none, &[], &[])).action, Action::Noop);
    }

    #[test]
    fn redrive_changes_name_the_part_that_differs() {
        let d = decl(
            json!({"queueName": "q", "deadLetterQueue": {"arn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 3}}),
        );
        let obs = observed(
            &d,
            &[(
                "RedrivePolicy",
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":5}"#,
            )],
            &[],
        );
        let plan = diff(&d, &obs);
        assert_eq!(paths(&plan), ["deadLetterQueue.maxReceiveCount"]);
        assert!(update_attributes(&d, &plan)["RedrivePolicy"].contains("\"maxReceiveCount\":3"));
        let none = diff(&d, &observed(&d, &[], &[]));
        assert_eq!(
            paths(&none),
            ["deadLetterQueue.arn", "deadLetterQueue.maxReceiveCount"]
        );
    }

    #[test]
    fn unowned_and_foreign_queues_are_not_changed() {
        let d = decl(json!({"queueName": "q", "visibilityTimeout": 99}));
        let attrs = BTreeMap::from([(
            "QueueArn".to_string(),
            "arn:aws:sqs:us-east-1:1:q".to_string(),
        )]);
        let unowned = observation(&d, "u", &attrs, BTreeMap::new());
        assert!(
            matches!(diff(&d, &unowned).blocked, Some(Blocked::Conflict(m)) if m.contains("set adopt: true"))
        );
        let other = Owner {
            uid: "u2".into(),
            ..owner()
        };
        let foreign = observation(&d, "u", &attrs, other.tags());
        assert!(matches!(
            diff(&d, &foreign).blocked,
            Some(Blocked::Conflict(_))
        ));
        let adopt = decl(json!({"queueName": "q", "visibilityTimeout": 99, "adopt": true}));
        let plan = diff(&adopt, &unowned);
        assert_eq!(plan.action, Action::Update);
        assert!(plan.blocked.is_none());
        assert!(paths(&plan).contains(&format!("tags.{TAG_OWNER_UID}").as_str()));
    }

    #[test]
    fn outputs_are_exactly_the_declared_ones() {
        let schema = crate::schema();
        let declared: Vec<&str> = schema
            .kind("sqs")
            .unwrap()
            .outputs
            .iter()
            .map(|o| o.name)
            .collect();
        let o = outputs("q", "u", "a");
        let mut got: Vec<&str> = o.keys().map(String::as_str).collect();
        let mut want = declared.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
