//! `aws.iam`: roles (`iamRole`), customer managed policies (`iamPolicy`) and attachments of
//! managed policies to roles (`iamAttachment`).
//!
//! The model, shared by the three kinds:
//!
//! - Documents (a role's `assumeRolePolicy`, a policy's `document`) are YAML maps in the Katalog,
//!   checked against IAM's grammar before any call and compared semantically, never as text
//!   (see [`document`]).
//! - Roles and policies carry the owner tags of `orkestra_provider::ownership` as IAM tags, set
//!   in the Create call itself, so a create interrupted at any point never leaves an untagged
//!   resource behind. A role or policy that exists without our tags is a Conflict unless
//!   `adopt: true`; one with another owner's tags is never modified or deleted.
//! - An attachment has no tags of its own: it is ours when its role is ours (see [`attachment`]).
//! - `roleName`, `policyName` and `path` cannot change in place: a change is shown as "forces
//!   replacement" and never carried out.
//! - `managementPolicy: Observe` only reads; `deletionPolicy: Orphan` leaves the resource.
//! - AWS's own rejections (MalformedPolicyDocument, LimitExceeded, NoSuchEntity,
//!   EntityAlreadyExists, DeleteConflict) become Error rows carrying AWS's code.
//!
//! IAM is global: the kinds take no `region`.

pub mod attachment;
pub mod document;
pub mod policy;
pub mod role;

use std::collections::BTreeMap;

use aws_sdk_iam::types::Tag;
use aws_sdk_iam::Client;
use orkestra_provider::schema::OutputSchema as O;
use orkestra_provider::{
    journal, Cause, Declaration, FieldSchema as F, FieldType as T, KindSchema, ManagementPolicy,
    Observation, Outcome, Plan, ProviderContext, ProviderError, Validator,
};
use serde_json::{json, Map, Value};

/// Kind name of roles.
pub const ROLE: &str = "iamRole";
/// Kind name of managed policies.
pub const POLICY: &str = "iamPolicy";
/// Kind name of attachments.
pub const ATTACHMENT: &str = "iamAttachment";

/// The kinds this module serves.
pub(crate) const KINDS: &[&str] = &[ROLE, POLICY, ATTACHMENT];

/// The kinds' schemas: fields, validators (AWS's naming rules) and outputs.
pub(crate) fn kinds() -> Vec<KindSchema> {
    let mut role = vec![
        F::new("roleName", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(role_name)),
        F::new("path", T::String)
            .immutable()
            .validate(Validator::Rule(path)),
        // The trust policy: a YAML map checked against the policy grammar by lint (when it has no
        // template), render and the agent (once rendered), and again at observe.
        F::new("assumeRolePolicy", T::Object)
            .required()
            .children(document_top())
            .validate(Validator::Value(trust_document)),
        F::new("maxSessionDuration", T::Integer).validate(Validator::Range(3600, 43200)),
        F::new("description", T::String).validate(Validator::Rule(role_description)),
    ];
    role.extend(crate::schema::common());
    let mut policy = vec![
        F::new("policyName", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(policy_name)),
        F::new("path", T::String)
            .immutable()
            .validate(Validator::Rule(path)),
        // The policy document: checked like the trust policy above.
        F::new("document", T::Object)
            .required()
            .children(document_top())
            .validate(Validator::Value(identity_document)),
    ];
    policy.extend(crate::schema::common());
    let mut attach = vec![
        F::new("name", T::String)
            .required()
            .validate(Validator::Rule(attachment_label)),
        F::new("role", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(role_name)),
        F::new("policyArn", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(policy_arn)),
    ];
    // An attachment has no tags in IAM.
    attach.extend(
        crate::schema::common()
            .into_iter()
            .filter(|f| f.name != "tags"),
    );
    vec![
        KindSchema {
            name: ROLE,
            name_field: "roleName",
            fields: role,
            outputs: vec![
                O::new("arn", T::String, "the role's ARN"),
                O::new("name", T::String, "the role's name"),
                O::new("roleId", T::String, "the role's stable unique id (AROA...)"),
            ],
        },
        KindSchema {
            name: POLICY,
            name_field: "policyName",
            fields: policy,
            outputs: vec![
                O::new("arn", T::String, "the policy's ARN"),
                O::new("name", T::String, "the policy's name"),
                O::new(
                    "policyId",
                    T::String,
                    "the policy's stable unique id (ANPA...)",
                ),
            ],
        },
        // The name field is a label (`name`), as a database grant has: an attachment is the pair
        // (role, policyArn), and a row's name must come from one field, so neither half alone
        // can name it (one policy on two roles, or two policies on one role, would share a
        // row). The label is the row's name; the pair is the row's id (`ROLE/POLICY-ARN`), which
        // is how a later cycle tells that the pair under a label changed (a replacement).
        KindSchema {
            name: ATTACHMENT,
            name_field: "name",
            fields: attach,
            outputs: vec![
                O::new("role", T::String, "the role's name"),
                O::new("policyArn", T::String, "the attached policy's ARN"),
            ],
        },
    ]
}

/// The top of a policy document, as schema fields, so lint already reports a misspelt element
/// (`Statment`), a missing `Statement` and a wrong `Version`. Statements can be one mapping or a
/// list, which the schema cannot describe: [`document::check`] judges them.
fn document_top() -> Vec<F> {
    vec![
        F::new("Version", T::String).validate(Validator::OneOf(document::VERSIONS)),
        F::new("Id", T::String),
        F::new("Statement", T::Any).required(),
    ]
}

/// IAM's name rule for roles and policies: `max` characters at most of letters, digits and
/// `+=,.@_-`.
fn iam_name(s: &str, what: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > max {
        return Err(format!("{what} {s:?} must be 1 to {max} characters long"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        return Err(format!(
            "{what} {s:?} may contain only letters, digits and +=,.@_- (not {c:?})"
        ));
    }
    Ok(())
}

/// A role name: 1 to 64 of `[A-Za-z0-9+=,.@_-]`.
pub fn role_name(s: &str) -> Result<(), String> {
    iam_name(s, "role name", 64)
}

/// A managed policy name: 1 to 128 of `[A-Za-z0-9+=,.@_-]`.
pub fn policy_name(s: &str) -> Result<(), String> {
    iam_name(s, "policy name", 128)
}

/// An IAM path: `/`, or `/`-delimited printable ASCII beginning and ending with `/`, 1 to 512.
pub fn path(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 512 {
        return Err(format!("path {s:?} must be 1 to 512 characters long"));
    }
    if !s.starts_with('/') || !s.ends_with('/') {
        return Err(format!(
            "path {s:?} must begin and end with / (like /team/)"
        ));
    }
    if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(format!(
            "path {s:?} may contain only printable ASCII characters without spaces"
        ));
    }
    Ok(())
}

/// A role description: at most 1000 characters of tab, newlines, printable ASCII and Latin-1.
pub fn role_description(s: &str) -> Result<(), String> {
    if s.chars().count() > 1000 {
        return Err("description must be at most 1000 characters long".into());
    }
    match s
        .chars()
        .find(|c| !matches!(*c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}'))
    {
        Some(c) => Err(format!("description may not contain {c:?}")),
        None => Ok(()),
    }
}

/// A managed policy ARN: `arn:PARTITION:iam::ACCOUNT:policy/[PATH/]NAME` (ACCOUNT is `aws` for
/// AWS managed policies).
pub fn policy_arn(s: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "{s:?} is not a managed policy ARN (arn:aws:iam::ACCOUNT:policy/NAME)"
        ))
    };
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return bad();
    };
    let account_ok =
        *account == "aws" || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()));
    let name = resource.rsplit('/').next().unwrap_or_default();
    if *arn != "arn"
        || !partition.starts_with("aws")
        || *service != "iam"
        || !region.is_empty()
        || !account_ok
        || !resource.starts_with("policy/")
        || policy_name(name).is_err()
    {
        return bad();
    }
    Ok(())
}

/// An attachment's label: what its status row is called; never sent to AWS.
pub fn attachment_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 253 || s.chars().any(char::is_control) {
        Err(format!(
            "attachment name {s:?} must be 1 to 253 characters without control characters"
        ))
    } else {
        Ok(())
    }
}

/// Read the resource. `for_delete` reads only what a delete needs (existence, ownership) and
/// skips the document check: a document broken since does not stop a delete.
pub(crate) async fn observe(
    client: &Client,
    ctx: &ProviderContext,
    decl: &Declaration,
    for_delete: bool,
) -> Result<Observation, ProviderError> {
    match decl.kind.as_str() {
        ROLE => role::observe(client, decl, for_delete).await,
        POLICY => {
            policy::observe(client, decl, previous_id(ctx, decl).as_deref(), for_delete).await
        }
        ATTACHMENT => {
            attachment::observe(client, decl, previous_id(ctx, decl).as_deref(), for_delete).await
        }
        _ => Err(ProviderError::new(Cause::UnknownKind)),
    }
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    match decl.kind.as_str() {
        ROLE => role::diff(decl, obs),
        POLICY => policy::diff(decl, obs),
        _ => attachment::diff(decl, obs),
    }
}

/// One step of the plan.
pub(crate) async fn apply(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
) -> Result<Outcome, ProviderError> {
    match decl.kind.as_str() {
        ROLE => role::apply(client, decl, obs, plan).await,
        POLICY => policy::apply(client, decl, obs, plan).await,
        ATTACHMENT => attachment::apply(client, decl, obs, plan).await,
        _ => Err(ProviderError::new(Cause::UnknownKind)),
    }
}

/// Delete or orphan.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    match decl.kind.as_str() {
        ROLE => role::delete(client, decl, obs).await,
        POLICY => policy::delete(client, decl, obs).await,
        ATTACHMENT => attachment::delete(client, decl, obs).await,
        _ => Err(ProviderError::new(Cause::UnknownKind)),
    }
}

/// The id this declaration's row had after the last cycle (the CR's `status.external`), if any:
/// a policy's ARN (IAM finds policies by ARN only, and the account id is not known), an
/// attachment's `ROLE/POLICY-ARN`.
fn previous_id(ctx: &ProviderContext, decl: &Declaration) -> Option<String> {
    journal::rows_of(&ctx.cr)
        .into_iter()
        .find(|r| r.provider == decl.provider && r.kind == decl.kind && r.name == decl.name)
        .and_then(|r| r.id)
}

/// IAM tags as a map.
fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// Tags as IAM takes them.
fn iam_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProviderError::invalid_field("tags", e.to_string()))
}

/// The tags a role or policy should carry: declared (if declared) plus ownership tags; `exact`
/// says whether tags not in that set are removed.
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

/// The tag changes to make: tags to set (new or changed) and keys to remove.
fn tag_changes(decl: &Declaration, obs: &Observation) -> (BTreeMap<String, String>, Vec<String>) {
    let (tags, exact) = desired_tags(decl);
    let set = tags
        .iter()
        .filter(|(k, v)| obs.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = if exact {
        crate::ownership::settable_tags(&obs.tags)
            .into_keys()
            .filter(|k| !tags.contains_key(k))
            .collect()
    } else {
        Vec::new()
    };
    (set, remove)
}

/// The observed user tags (without ownership tags), as the `tags` field.
fn user_tags(tags: &BTreeMap<String, String>) -> Value {
    Value::Object(
        tags.iter()
            .filter(|(k, _)| !orkestra_provider::ownership::is_ownership_tag(k))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<Map<String, Value>>(),
    )
}

/// The declared document in `field`, checked against the grammar: an InvalidField error
/// naming the field, before any call.
fn checked_document(
    decl: &Declaration,
    field: &str,
    kind: document::DocKind,
) -> Result<(), ProviderError> {
    match decl.fields.get(field) {
        Some(doc) => document::check(doc, kind).map_err(|m| ProviderError::invalid_field(field, m)),
        None => Ok(()),
    }
}

/// [`document::check`] of a trust policy, as a schema validator.
fn trust_document(v: &serde_json::Value) -> Result<(), String> {
    document::check(v, document::DocKind::Trust)
}

/// [`document::check`] of a managed policy's document, as a schema validator.
fn identity_document(v: &serde_json::Value) -> Result<(), String> {
    document::check(v, document::DocKind::Identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Owner;

    fn build(kind: &str, item: Value) -> Result<Declaration, String> {
        let schema = crate::schema();
        Declaration::from_rendered(
            "aws",
            schema.kind(kind).unwrap(),
            item.as_object().unwrap(),
            Owner::default(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn names() {
        for ok in ["app", "a+b=c,d.e@f_g-h", &"r".repeat(64)] {
            assert!(role_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "slash/no", "ünï", &"r".repeat(65)] {
            assert!(role_name(bad).is_err(), "{bad}");
        }
        assert!(policy_name(&"p".repeat(128)).is_ok());
        assert!(policy_name(&"p".repeat(129)).is_err());
        assert!(role_name("a:b")
            .unwrap_err()
            .contains("may contain only letters, digits and +=,.@_- (not ':')"));
    }

    #[test]
    fn paths() {
        for ok in ["/", "/team/", "/a/b-c/", "/a.b@c/"] {
            assert!(path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "team", "/team", "team/", "/a b/", "/ü/"] {
            assert!(path(bad).is_err(), "{bad}");
        }
        assert!(path(&format!("/{}/", "a".repeat(510))).is_ok());
        assert!(path(&format!("/{}/", "a".repeat(511))).is_err());
    }

    #[test]
    fn descriptions_and_arns() {
        assert!(role_description("Runs the shop's web tier\n(prod)").is_ok());
        assert!(role_description("emoji 🚀").is_err());
        assert!(role_description(&"d".repeat(1001)).is_err());
        for ok in [
            "arn:aws:iam::123456789012:policy/app",
            "arn:aws:iam::123456789012:policy/team/app",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws-cn:iam::123456789012:policy/app",
        ] {
            assert!(policy_arn(ok).is_ok(), "{ok}");
        }
        for bad in [
            "app",
            "arn:aws:iam::123456789012:role/app",
            "arn:aws:iam:us-east-1:123456789012:policy/app",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::12345:policy/app",
            "arn:aws:iam::123456789012:policy/",
        ] {
            assert!(policy_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schema_catches_bad_values_before_any_call() {
        let trust =
            json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}});
        let e = build(
            ROLE,
            json!({"roleName": "bad name", "assumeRolePolicy": trust}),
        )
        .unwrap_err();
        assert!(e.contains("field roleName: role name \"bad name\""), "{e}");
        let e = build(
            ROLE,
            json!({"roleName": "r", "assumeRolePolicy": trust, "maxSessionDuration": 60}),
        )
        .unwrap_err();
        assert!(
            e.contains("field maxSessionDuration: 60 is outside 3600..=43200"),
            "{e}"
        );
        let e = build(
            ROLE,
            json!({"roleName": "r", "assumeRolePolicy": "{\"Statement\": []}"}),
        )
        .unwrap_err();
        assert!(
            e.contains("field assumeRolePolicy: expected a mapping"),
            "{e}"
        );
        let e = build(ROLE, json!({"roleName": "r"})).unwrap_err();
        assert!(e.contains("field assumeRolePolicy: is required"), "{e}");
        let e = build(
            POLICY,
            json!({"policyName": "p", "document": {"Version": "2012-10-17", "Statment": []}}),
        )
        .unwrap_err();
        assert!(
            e.contains("field document: unknown field \"Statment\""),
            "{e}"
        );
        let e = build(
            POLICY,
            json!({"policyName": "p", "document": {"Version": "2013-01-01", "Statement": []}}),
        )
        .unwrap_err();
        assert!(
            e.contains(
                "field document: Version: \"2013-01-01\" is not one of 2012-10-17, 2008-10-17"
            ),
            "{e}"
        );
        let e = build(
            ROLE,
            json!({"roleName": "r", "assumeRolePolicy": {"Version": "2012-10-17"}}),
        )
        .unwrap_err();
        assert!(
            e.contains("field assumeRolePolicy: Statement is required"),
            "{e}"
        );
        let e = build(
            POLICY,
            json!({"policyName": "p", "path": "nope", "document": {"Statement": []}}),
        )
        .unwrap_err();
        assert!(e.contains("field path: path \"nope\" must begin"), "{e}");
        let e = build(
            ATTACHMENT,
            json!({"name": "a", "role": "r", "policyArn": "arn:aws:iam::123456789012:role/r"}),
        )
        .unwrap_err();
        assert!(e.contains("field policyArn"), "{e}");
        let e = build(
            ATTACHMENT,
            json!({"name": "a", "role": "r", "policyArn": "arn:aws:iam::aws:policy/X", "tags": {"a": "b"}}),
        )
        .unwrap_err();
        assert!(e.contains("field tags: unknown field"), "{e}");
        let ok = build(
            ATTACHMENT,
            json!({"name": "web-reads", "role": "r", "policyArn": "arn:aws:iam::aws:policy/X"}),
        )
        .unwrap();
        assert_eq!(ok.name, "web-reads");
    }

    #[test]
    fn outputs_are_declared_and_none_is_sensitive() {
        let names = |kind: &str| -> Vec<&str> {
            kinds()
                .into_iter()
                .find(|k| k.name == kind)
                .unwrap()
                .outputs
                .iter()
                .map(|o| o.name)
                .collect()
        };
        assert_eq!(names(ROLE), ["arn", "name", "roleId"]);
        assert_eq!(names(POLICY), ["arn", "name", "policyId"]);
        assert_eq!(names(ATTACHMENT), ["role", "policyArn"]);
        assert!(kinds()
            .iter()
            .all(|k| k.outputs.iter().all(|o| !o.sensitive)));
    }
}
