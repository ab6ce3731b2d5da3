//! `aws.s3`: general purpose buckets.
//!
//! Managed: region (immutable), versioning, encryption (+ kmsKeyId), public access block (on by
//! default), tags (plus ownership tags). Not declared means not managed, except the public access
//! block, which is on unless `publicAccessBlock: false`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use aws_sdk_s3::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orkestra_provider::plan::{creation_changes, diff_tags};
use orkestra_provider::{
    policy, Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome,
    Ownership, Plan, PlanValue, ProviderError, State,
};
use serde_json::{json, Map, Value};

use crate::error::{http_status, sdk_error, unparsed_ok_body, xml_element};
use crate::ownership::{delete_guard, observe_guard, plan_from_changes};

/// Delay before looking again at a bucket that is held back from deletion.
const HELD_REQUEUE: Duration = Duration::from_secs(60);
/// Batches of 1000 objects deleted per call when emptying a bucket with `forceDestroy`, so one
/// reconcile never runs for long.
const EMPTY_BATCHES_PER_CALL: usize = 10;

/// The AWS partition a region belongs to and the DNS suffix of its endpoints: China (`cn-`) and
/// GovCloud (`us-gov-`) are partitions of their own; every other region (and an unknown one) is `aws`.
pub fn partition(region: Option<&str>) -> (&'static str, &'static str) {
    match region {
        Some(r) if r.starts_with("cn-") => ("aws-cn", "amazonaws.com.cn"),
        Some(r) if r.starts_with("us-gov-") => ("aws-us-gov", "amazonaws.com"),
        _ => ("aws", "amazonaws.com"),
    }
}

/// The ARN of a bucket, `arn:PARTITION:s3:::BUCKET`. S3 has no API that returns a bucket's ARN,
/// so it is computed here: a bucket ARN names neither region nor account, only the partition,
/// which the region implies (`aws` when the region is not known).
pub fn arn(bucket: &str, region: Option<&str>) -> String {
    format!("arn:{}:s3:::{bucket}", partition(region).0)
}

/// The bucket's regional domain name, `BUCKET.s3.REGION.amazonaws.com` (what CloudFormation calls
/// `RegionalDomainName`). Computed like the ARN; with an endpoint override (an S3-compatible store,
/// an emulator) it is still the AWS name, not the override's.
pub fn domain_name(bucket: &str, region: &str) -> String {
    format!("{bucket}.s3.{region}.{}", partition(Some(region)).1)
}

/// Every output the schema declares for `aws.s3` (see [`crate::schema`]), for a bucket in `region`:
/// the one place they are computed.
fn outputs(bucket: &str, region: &str) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("bucket".into(), json!(bucket));
    o.insert("arn".into(), json!(arn(bucket, Some(region))));
    o.insert("region".into(), json!(region));
    o.insert("domainName".into(), json!(domain_name(bucket, region)));
    o
}

/// What HeadBucket told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Head {
    /// No such bucket.
    Missing,
    /// The bucket exists in another account (403).
    Forbidden,
    /// Ours to read; the region where it lives, if S3 said.
    Found(Option<String>),
}

/// HeadBucket.
pub(crate) async fn head(client: &Client, bucket: &str) -> Result<Head, ProviderError> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(out) => Ok(Head::Found(out.bucket_region().map(str::to_string))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(Head::Missing),
        Err(e) => match http_status(&e) {
            Some(404) => Ok(Head::Missing),
            Some(403) => Ok(Head::Forbidden),
            // Wrong region: S3 answers 301 with the bucket's region in a header.
            Some(301) | Some(400) => {
                let region = e
                    .raw_response()
                    .and_then(|r| r.headers().get("x-amz-bucket-region"))
                    .map(str::to_string);
                match region {
                    Some(r) => Ok(Head::Found(Some(r))),
                    None => Err(sdk_error("HeadBucket", &e)),
                }
            }
            _ => Err(sdk_error("HeadBucket", &e)),
        },
    }
}

/// GetBucketLocation: the bucket's region (an empty constraint means us-east-1).
pub(crate) async fn location(
    client: &Client,
    bucket: &str,
) -> Result<Option<String>, ProviderError> {
    let out = client
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| sdk_error("GetBucketLocation", &e))?;
    Ok(Some(match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(r) => r.to_string(),
    }))
}

/// Observe a bucket whose HeadBucket succeeded, through a client of its region.
pub(crate) async fn observe_found(
    client: &Client,
    decl: &Declaration,
    region: &str,
) -> Result<Observation, ProviderError> {
    observe_found_as(client, decl, region, false).await
}

/// Observe a bucket for a delete: existence and ownership only.
pub(crate) async fn observe_ownership(
    client: &Client,
    decl: &Declaration,
    region: &str,
) -> Result<Observation, ProviderError> {
    observe_found_as(client, decl, region, true).await
}

async fn observe_found_as(
    client: &Client,
    decl: &Declaration,
    region: &str,
    ownership_only: bool,
) -> Result<Observation, ProviderError> {
    let bucket = decl.name.as_str();
    let mut obs = Observation {
        exists: true,
        id: Some(arn(bucket, Some(region))),
        ..Observation::default()
    };
    obs.fields.insert("region".into(), json!(region));

    obs.tags = match client.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(e) if e.code() == Some("NoSuchTagSet") => BTreeMap::new(),
        Err(e) => return Err(sdk_error("GetBucketTagging", &e)),
    };
    obs.ownership = decl.owner.judge(&obs.tags);
    if ownership_only {
        return Ok(obs);
    }

    // Fields the declaration does not manage are not read: fewer calls on every resync.
    let enabled = if decl.fields.contains_key("versioning") {
        match client.get_bucket_versioning().bucket(bucket).send().await {
            Ok(out) => Some(out.status() == Some(&BucketVersioningStatus::Enabled)),
            // moto answers with a differently named XML root the SDK rejects; the status element is the same.
            Err(e) => match unparsed_ok_body(&e) {
                Some(body) => Some(xml_element(&body, "Status") == Some("Enabled")),
                None => return Err(sdk_error("GetBucketVersioning", &e)),
            },
        }
    } else {
        None
    };
    let (encryption, kms) =
        if decl.fields.contains_key("encryption") || decl.fields.contains_key("kmsKeyId") {
            match client.get_bucket_encryption().bucket(bucket).send().await {
                Ok(out) => {
                    let default = out
                        .server_side_encryption_configuration()
                        .and_then(|c| c.rules().first())
                        .and_then(|r| r.apply_server_side_encryption_by_default());
                    (
                        default.map(|d| d.sse_algorithm().as_str().to_string()),
                        default
                            .and_then(|d| d.kms_master_key_id())
                            .map(str::to_string),
                    )
                }
                Err(e) if e.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                    (None, None)
                }
                Err(e) => return Err(sdk_error("GetBucketEncryption", &e)),
            }
        } else {
            (None, None)
        };

    let blocked = match client.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(e) => return Err(sdk_error("GetPublicAccessBlock", &e)),
    };

    let user_tags: Map<String, Value> = obs
        .tags
        .iter()
        .filter(|(k, _)| !orkestra_provider::ownership::is_ownership_tag(k))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let f = &mut obs.fields;
    f.insert("bucket".into(), json!(bucket));
    f.insert("region".into(), json!(region));
    if let Some(enabled) = enabled {
        f.insert("versioning".into(), json!(enabled));
    }
    if let Some(e) = encryption {
        f.insert("encryption".into(), Value::String(e));
    }
    if let Some(k) = kms {
        f.insert("kmsKeyId".into(), Value::String(k));
    }
    f.insert("publicAccessBlock".into(), json!(blocked));
    f.insert("tags".into(), Value::Object(user_tags));
    obs.outputs = outputs(bucket, region);
    Ok(obs)
}

/// The observation of a bucket owned by another AWS account.
pub(crate) fn observe_forbidden(decl: &Declaration) -> Observation {
    Observation {
        exists: true,
        id: Some(arn(&decl.name, decl.str("region"))),
        ownership: Ownership::Foreign {
            owner: "another AWS account".into(),
            uid: String::new(),
        },
        notes: vec!["HeadBucket was denied: the name is taken by another account".into()],
        ..Observation::default()
    }
}

/// The tags a bucket should carry: declared (if declared) plus ownership tags; `exact` says
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

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation, default_region: Option<&str>) -> Plan {
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        let mut fields = decl.fields.clone();
        fields.remove("forceDestroy");
        fields.remove("credentials");
        if let Some(r) = default_region {
            fields.entry("region").or_insert_with(|| json!(r));
        }
        fields.entry("publicAccessBlock").or_insert(json!(true));
        plan.changes = creation_changes(&fields, &[]);
        if !fields.contains_key("region") {
            plan.changes.push(FieldChange::new(
                "region",
                PlanValue::Absent,
                PlanValue::Unknown,
            ));
        }
        plan.changes
            .extend(decl.owner.tags().into_iter().map(|(k, v)| {
                FieldChange::new(
                    format!("tags.{k}"),
                    PlanValue::Absent,
                    PlanValue::Known(json!(v)),
                )
            }));
        plan.changes.push(FieldChange::new(
            "arn",
            PlanValue::Absent,
            PlanValue::Known(json!(arn(
                &decl.name,
                decl.str("region").or(default_region)
            ))),
        ));
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
    if let Some(v) = decl.fields.get("versioning") {
        compare("versioning", v.clone(), false);
    }
    if let Some(v) = decl.fields.get("encryption") {
        compare("encryption", v.clone(), false);
    }
    if let Some(v) = decl.fields.get("kmsKeyId") {
        compare("kmsKeyId", v.clone(), false);
    }
    compare(
        "publicAccessBlock",
        json!(decl.bool_or("publicAccessBlock", true)),
        false,
    );
    let (tags, exact) = desired_tags(decl);
    changes.extend(diff_tags(
        "tags",
        &tags,
        &crate::ownership::comparable_tags(decl, obs),
        exact,
    ));
    plan_from_changes(decl, obs, changes)
}

/// The outcome of a plan that will not be carried out (shared with RDS).
pub(crate) fn blocked_outcome(
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
    blocked: &Blocked,
) -> Outcome {
    policy::blocked_outcome(obs, plan, blocked).id(obs
        .id
        .clone()
        .or_else(|| (decl.kind == "s3").then(|| arn(&decl.name, decl.str("region")))))
}

/// Carry out `plan` on the bucket (client of the bucket's region, or of the declared region for a create).
pub(crate) async fn apply(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
    region: &str,
) -> Result<Outcome, ProviderError> {
    if let Some(b) = &plan.blocked {
        return Ok(blocked_outcome(decl, obs, plan, b));
    }
    let bucket = decl.name.as_str();
    let id = arn(bucket, Some(region));
    let ready = |mutations: u32| {
        Outcome::new(State::Ready)
            .id(Some(id.clone()))
            .outputs(outputs(bucket, region))
            .mutations(mutations)
    };
    match plan.action {
        Action::Noop => Ok(ready(0)),
        Action::Create => {
            let mut req = client.create_bucket().bucket(bucket);
            // us-east-1 is the one region that must not be named as a location constraint.
            if region != "us-east-1" {
                req = req.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(region))
                        .build(),
                );
            }
            match req.send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("BucketAlreadyExists") => {
                    return Ok(Outcome::new(State::Conflict)
                        .id(Some(id))
                        .message("the bucket name is taken by another AWS account")
                        .mutations(1))
                }
                Err(e) => return Err(sdk_error("CreateBucket", &e)),
            }
            // Ownership tags right away: a bucket without them would look unowned (a Conflict)
            // next cycle. If tagging fails, remove the bucket just created (empty, and ours) so
            // the next cycle starts clean instead of locking itself out.
            let (tags, _) = desired_tags(decl);
            if let Err(e) = put_tags(client, bucket, &tags).await {
                let rolled_back = client.delete_bucket().bucket(bucket).send().await.is_ok();
                tracing::warn!(bucket, rolled_back, error = %e, "tagging a new bucket failed");
                return Err(e);
            }
            let mut n = 2;
            if decl.bool_or("versioning", false) {
                put_versioning(client, bucket, true).await?;
                n += 1;
            }
            if let Some(alg) = decl.str("encryption") {
                put_encryption(client, bucket, alg, decl.str("kmsKeyId")).await?;
                n += 1;
            }
            if decl.bool_or("publicAccessBlock", true) {
                set_public_access_block(client, bucket, true).await?;
                n += 1;
            }
            Ok(ready(n))
        }
        Action::Update => {
            let mut n = 0;
            let changed = |p: &str| plan.changes.iter().any(|c| c.path == p);
            if plan.changes.iter().any(|c| c.path.starts_with("tags.")) {
                let (mut tags, exact) = desired_tags(decl);
                if !exact {
                    // Keep tags set outside orkestra when the declaration does not list tags.
                    for (k, v) in &crate::ownership::settable_tags(&obs.tags) {
                        tags.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                put_tags(client, bucket, &tags).await?;
                n += 1;
            }
            if changed("versioning") {
                put_versioning(client, bucket, decl.bool_or("versioning", false)).await?;
                n += 1;
            }
            if changed("encryption") || changed("kmsKeyId") {
                let alg = decl
                    .str("encryption")
                    .or_else(|| obs.fields.get("encryption").and_then(Value::as_str))
                    .unwrap_or("AES256");
                put_encryption(client, bucket, alg, decl.str("kmsKeyId")).await?;
                n += 1;
            }
            if changed("publicAccessBlock") {
                set_public_access_block(client, bucket, decl.bool_or("publicAccessBlock", true))
                    .await?;
                n += 1;
            }
            Ok(ready(n))
        }
        Action::Replace | Action::Delete => Ok(blocked_outcome(
            decl,
            obs,
            plan,
            &Blocked::ReplacementRequired,
        )),
    }
}

async fn put_tags(
    client: &Client,
    bucket: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    let set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProviderError::invalid_field("tags", e.to_string()))?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(set))
        .build()
        .map_err(|e| ProviderError::invalid_field("tags", e.to_string()))?;
    client
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| sdk_error("PutBucketTagging", &e))?;
    Ok(())
}

async fn put_versioning(client: &Client, bucket: &str, enabled: bool) -> Result<(), ProviderError> {
    let status = if enabled {
        BucketVersioningStatus::Enabled
    } else {
        BucketVersioningStatus::Suspended
    };
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .map_err(|e| sdk_error("PutBucketVersioning", &e))?;
    Ok(())
}

async fn put_encryption(
    client: &Client,
    bucket: &str,
    alg: &str,
    kms: Option<&str>,
) -> Result<(), ProviderError> {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(alg))
        .set_kms_master_key_id(kms.map(str::to_string))
        .build()
        .map_err(|e| ProviderError::invalid_field("encryption", e.to_string()))?;
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .build(),
        )
        .build()
        .map_err(|e| ProviderError::invalid_field("encryption", e.to_string()))?;
    client
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map_err(|e| sdk_error("PutBucketEncryption", &e))?;
    Ok(())
}

async fn set_public_access_block(
    client: &Client,
    bucket: &str,
    on: bool,
) -> Result<(), ProviderError> {
    if on {
        let config = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(config)
            .send()
            .await
            .map_err(|e| sdk_error("PutPublicAccessBlock", &e))?;
    } else {
        client
            .delete_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| sdk_error("DeletePublicAccessBlock", &e))?;
    }
    Ok(())
}

/// Delete (or orphan) the bucket. A non-empty bucket is only emptied with `forceDestroy: true`.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let bucket = decl.name.as_str();
    let id = obs.id.clone();
    let force = decl.bool_or("forceDestroy", false);
    let mut mutations = 0;
    for _ in 0..EMPTY_BATCHES_PER_CALL {
        let page = match client
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1000)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchBucket") => {
                return Ok(Outcome::new(State::Deleted).mutations(mutations))
            }
            Err(e) => return Err(sdk_error("ListObjectVersions", &e)),
        };
        let mut objects: Vec<ObjectIdentifier> = Vec::new();
        for v in page.versions() {
            if let Some(key) = v.key() {
                objects.push(object_id(key, v.version_id())?);
            }
        }
        for m in page.delete_markers() {
            if let Some(key) = m.key() {
                objects.push(object_id(key, m.version_id())?);
            }
        }
        if objects.is_empty() {
            break;
        }
        if !force {
            let more = if page.is_truncated() == Some(true) {
                "+"
            } else {
                ""
            };
            return Ok(Outcome::new(State::Deleting)
                .id(id)
                .message(format!(
                    "not deleted: the bucket is not empty ({}{more} objects or versions); set forceDestroy: true to delete its contents",
                    objects.len()
                ))
                .requeue(HELD_REQUEUE));
        }
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| ProviderError::invalid_field("forceDestroy", e.to_string()))?;
        client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObjects", &e))?;
        mutations += 1;
    }
    match client.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(Outcome::new(State::Deleted).id(id).mutations(mutations + 1)),
        Err(e) if e.code() == Some("NoSuchBucket") => {
            Ok(Outcome::new(State::Deleted).mutations(mutations))
        }
        // Still emptying (more than EMPTY_BATCHES_PER_CALL batches), or objects arrived meanwhile.
        Err(e) if e.code() == Some("BucketNotEmpty") => Ok(Outcome::new(State::Deleting)
            .id(id)
            .message("emptying the bucket (forceDestroy)")
            .requeue(Duration::from_secs(1))
            .mutations(mutations + 1)),
        Err(e) => Err(sdk_error("DeleteBucket", &e)),
    }
}

fn object_id(key: &str, version: Option<&str>) -> Result<ObjectIdentifier, ProviderError> {
    ObjectIdentifier::builder()
        .key(key)
        .set_version_id(version.map(str::to_string))
        .build()
        .map_err(|e| ProviderError::invalid_field("forceDestroy", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_and_domain_name_follow_the_partition() {
        assert_eq!(arn("b", Some("eu-west-1")), "arn:aws:s3:::b");
        assert_eq!(arn("b", None), "arn:aws:s3:::b");
        assert_eq!(arn("b", Some("cn-north-1")), "arn:aws-cn:s3:::b");
        assert_eq!(arn("b", Some("us-gov-west-1")), "arn:aws-us-gov:s3:::b");
        assert_eq!(
            domain_name("b", "eu-west-1"),
            "b.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            domain_name("b", "cn-north-1"),
            "b.s3.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            domain_name("b", "us-gov-west-1"),
            "b.s3.us-gov-west-1.amazonaws.com"
        );
    }

    #[test]
    fn outputs_are_exactly_the_declared_ones() {
        let schema = crate::schema();
        let declared: std::collections::BTreeSet<&str> = schema
            .kind("s3")
            .unwrap()
            .outputs
            .iter()
            .map(|d| d.name)
            .collect();
        let o = outputs("b", "eu-west-1");
        assert_eq!(
            o.keys()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>(),
            declared
        );
    }
}
