//! One SSM parameter: observe with three reads, a pure diff, one apply step, delete.
//!
//! Ownership follows orkestra's rules: the owner tags go on the parameter in the create call
//! (crash-safe: a parameter without them was not made by this provider), and
//! [`orkestra_provider::policy`] decides Conflict, adopt, Observe and Orphan. Tags are additive:
//! declared and owner tags are set, other tags are left alone. `SecureString` values are never
//! observed into fields: observe compares them with the referenced Secret and records only
//! whether they match.

use std::collections::BTreeMap;

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType, ResourceTypeForTagging, Tag};
use aws_sdk_ssm::Client;
use orkestra_provider::plan::{creation_changes, diff_tags};
use orkestra_provider::{
    policy, Action, Declaration, FieldChange, Observation, Outcome, Plan, PlanValue, ProviderError,
    SecretValue, State,
};
use serde_json::{json, Map, Value};

/// How the ownership is marked (for the shared policy messages).
const MARK: &str = "owner tags";
/// The declared fields compared with the observed ones (besides the value and tags).
const COMPARED: &[&str] = &["type", "description"];

/// The value the declaration asks for: the literal `value`, or the referenced Secret's.
pub(crate) enum Desired {
    /// `value:` (shown in plans).
    Plain(String),
    /// `valueSecret:` (never shown).
    Secret(SecretValue),
}

impl Desired {
    fn text(&self) -> Result<&str, ProviderError> {
        match self {
            Desired::Plain(s) => Ok(s),
            Desired::Secret(v) => v.expose_str().ok_or_else(|| {
                ProviderError::invalid_field("valueSecret", "the Secret's value is not UTF-8")
            }),
        }
    }
}

/// The declared type (String unless given; SecureString when the value comes from a Secret).
pub(crate) fn declared_type(decl: &Declaration) -> &str {
    match decl.str("type") {
        Some(t) => t,
        None if decl.fields.contains_key("valueSecret") => "SecureString",
        None => "String",
    }
}

/// Turn an SDK error into a [`ProviderError`] that keeps SSM's code and says whether to retry.
pub(crate) fn api_error<E, R>(operation: &str, e: &SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata,
{
    let code = e.code().map(str::to_string);
    let retryable = match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => code
            .as_deref()
            .is_some_and(|c| c.contains("Throttl") || c == "InternalServerError"),
    };
    let message = e
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| "no message".to_string());
    ProviderError::api(operation, code, message, retryable)
}

fn not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ParameterNotFound")
}

/// GetParameter, DescribeParameters and ListTagsForResource, as an observation. `desired` is
/// the Secret's value when the declaration names one (compared, never recorded).
pub(crate) async fn observe(
    client: &Client,
    decl: &Declaration,
    desired: Option<&Desired>,
) -> Result<Observation, ProviderError> {
    let got = match client
        .get_parameter()
        .name(&decl.name)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if not_found(&e) => return Ok(Observation::absent()),
        Err(e) => return Err(api_error("GetParameter", &e)),
    };
    let Some(p) = got.parameter() else {
        return Ok(Observation::absent());
    };
    let mut obs = Observation {
        exists: true,
        id: p.arn().map(str::to_string),
        ..Observation::default()
    };
    let ty = p
        .r#type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let value = p.value().unwrap_or_default();
    obs.fields.insert("name".into(), json!(decl.name));
    obs.fields.insert("type".into(), json!(ty));
    // A secret value is compared here and only the answer is kept.
    match desired {
        Some(Desired::Secret(v)) => {
            obs.fields
                .insert("valueMatches".into(), json!(v.expose() == value.as_bytes()));
        }
        Some(Desired::Plain(v)) if ty == "SecureString" => {
            obs.fields
                .insert("valueMatches".into(), json!(v.as_str() == value));
        }
        _ if ty == "SecureString" => {}
        _ => {
            obs.fields.insert("value".into(), json!(value));
        }
    }

    let described = client
        .describe_parameters()
        .parameter_filters(
            ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .values(&decl.name)
                .build()
                .map_err(|e| ProviderError::invalid_field("name", e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| api_error("DescribeParameters", &e))?;
    let description = described
        .parameters()
        .first()
        .and_then(|m| m.description())
        .map(|d| json!(d))
        .unwrap_or(Value::Null);
    obs.fields.insert("description".into(), description);

    let tags = client
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id(&decl.name)
        .send()
        .await
        .map_err(|e| api_error("ListTagsForResource", &e))?;
    obs.tags = tags
        .tag_list()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    obs.ownership = decl.owner.judge(&obs.tags);
    obs.outputs = outputs(&decl.name, obs.id.as_deref(), p.version(), &ty);
    Ok(obs)
}

fn outputs(name: &str, arn: Option<&str>, version: i64, ty: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("arn".into(), json!(arn.unwrap_or_default()));
    m.insert("version".into(), json!(version));
    m.insert("type".into(), json!(ty));
    m
}

/// The tags the parameter must carry: the declared ones and the owner's.
fn wanted_tags(decl: &Declaration) -> BTreeMap<String, String> {
    let mut tags = decl.tags().unwrap_or_default();
    tags.extend(decl.owner.tags());
    tags
}

/// Compare declared with observed. Pure.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        plan.changes = creation_changes(&decl.fields, &["valueSecret"]);
        if decl.management_policy == orkestra_provider::ManagementPolicy::Observe {
            plan.blocked = Some(orkestra_provider::Blocked::ObserveOnly);
        }
        return plan;
    }
    if let Some(blocked) = policy::observe_guard(decl, obs, MARK) {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
        plan.blocked = Some(blocked);
        return plan;
    }
    let mut changes = Vec::new();
    let ty = declared_type(decl);
    if obs.fields.get("type").and_then(Value::as_str) != Some(ty) {
        changes.push(FieldChange::new(
            "type",
            PlanValue::from_option(obs.fields.get("type")),
            PlanValue::Known(json!(ty)),
        ));
    }
    for field in COMPARED.iter().filter(|f| **f != "type") {
        if let Some(want) = decl.fields.get(*field) {
            if obs.fields.get(*field) != Some(want) {
                changes.push(FieldChange::new(
                    *field,
                    PlanValue::from_option(obs.fields.get(*field)),
                    PlanValue::Known(want.clone()),
                ));
            }
        }
    }
    let secure = obs.fields.contains_key("valueMatches");
    let stale = obs.fields.get("valueMatches") == Some(&json!(false));
    match (
        decl.fields.get("value"),
        decl.fields.contains_key("valueSecret"),
    ) {
        (Some(want), _) if !secure && obs.fields.get("value") != Some(want) => {
            changes.push(FieldChange::new(
                "value",
                PlanValue::from_option(obs.fields.get("value")),
                PlanValue::Known(want.clone()),
            ));
        }
        (Some(_), _) if stale => {
            changes.push(FieldChange::new(
                "value",
                PlanValue::Sensitive,
                PlanValue::Sensitive,
            ));
        }
        (None, true) if stale => {
            changes.push(FieldChange::new(
                "valueSecret",
                PlanValue::Sensitive,
                PlanValue::Sensitive,
            ));
        }
        _ => {}
    }
    let tags = if decl.management_policy == orkestra_provider::ManagementPolicy::Observe {
        decl.tags().unwrap_or_default()
    } else {
        wanted_tags(decl)
    };
    changes.extend(diff_tags("tags", &tags, &obs.tags, false));
    policy::plan_from_changes(decl, obs, changes, "owner tags will be added")
}

/// Carry out `plan`: PutParameter to create or to change the value, type or description;
/// AddTagsToResource for tags.
pub(crate) async fn apply(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
    desired: Option<&Desired>,
) -> Result<Outcome, ProviderError> {
    if let Some(blocked) = &plan.blocked {
        return Ok(policy::blocked_outcome(obs, plan, blocked));
    }
    let ty = ParameterType::from(declared_type(decl));
    let mut mutations = 0;
    match plan.action {
        Action::Noop => {
            return Ok(Outcome::new(State::Ready)
                .id(obs.id.clone())
                .outputs(obs.outputs.clone()));
        }
        Action::Create => {
            let value = desired
                .ok_or_else(|| {
                    ProviderError::invalid_field("value", "value or valueSecret is required")
                })?
                .text()?;
            let tags = wanted_tags(decl)
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ProviderError::invalid_field("tags", e.to_string()))?;
            client
                .put_parameter()
                .name(&decl.name)
                .value(value)
                .r#type(ty)
                .set_description(decl.str("description").map(str::to_string))
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| api_error("PutParameter", &e))?;
            mutations += 1;
        }
        _ => {
            let rewrite = plan.changes.iter().any(|c| {
                matches!(
                    c.path.as_str(),
                    "value" | "valueSecret" | "type" | "description"
                )
            });
            if rewrite {
                let value = match desired {
                    Some(d) => d.text()?.to_string(),
                    None => String::new(),
                };
                client
                    .put_parameter()
                    .name(&decl.name)
                    .value(value)
                    .r#type(ty)
                    .set_description(decl.str("description").map(str::to_string))
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(|e| api_error("PutParameter", &e))?;
                mutations += 1;
            }
            let tags: Vec<Tag> = plan
                .changes
                .iter()
                .filter_map(|c| {
                    let key = c.path.strip_prefix("tags.")?;
                    let PlanValue::Known(Value::String(v)) = &c.after else {
                        return None;
                    };
                    Tag::builder().key(key).value(v).build().ok()
                })
                .collect();
            if !tags.is_empty() {
                client
                    .add_tags_to_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(&decl.name)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| api_error("AddTagsToResource", &e))?;
                mutations += 1;
            }
        }
    }
    // The ARN and version come back only from a read.
    let after = observe(client, decl, desired).await?;
    Ok(Outcome::new(State::Ready)
        .id(after.id.clone())
        .outputs(after.outputs)
        .mutations(mutations))
}

/// Delete the parameter (or leave it, per the policies); a missing one is success.
pub(crate) async fn delete(
    client: &Client,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(done) = policy::delete_guard(decl, obs, MARK) {
        return Ok(done);
    }
    match client.delete_parameter().name(&decl.name).send().await {
        Ok(_) => Ok(Outcome::new(State::Deleted).mutations(1)),
        Err(e) if not_found(&e) => Ok(Outcome::new(State::Deleted)),
        Err(e) => Err(api_error("DeleteParameter", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::{Owner, Ownership};

    fn decl(item: Value) -> Declaration {
        let schema = crate::schema::schema();
        let owner = Owner {
            uid: "u1".into(),
            namespace: "ns".into(),
            name: "web".into(),
            katalog: "k".into(),
        };
        Declaration::from_rendered(
            "ssm",
            schema.kind("parameter").unwrap(),
            item.as_object().unwrap(),
            owner,
        )
        .unwrap()
    }

    fn ours(d: &Declaration, fields: Value) -> Observation {
        let mut tags = d.owner.tags();
        tags.extend(d.tags().unwrap_or_default());
        Observation {
            exists: true,
            fields: fields.as_object().unwrap().clone(),
            ownership: Ownership::Ours,
            tags,
            ..Observation::default()
        }
    }

    #[test]
    fn create_then_noop_then_update() {
        let d = decl(json!({"name": "/apps/web/level", "value": "info"}));
        let plan = diff(&d, &Observation::absent());
        assert_eq!(plan.action, Action::Create);
        let obs = ours(
            &d,
            json!({"type": "String", "value": "info", "description": null}),
        );
        assert!(diff(&d, &obs).is_noop());
        let obs = ours(
            &d,
            json!({"type": "String", "value": "debug", "description": null}),
        );
        let plan = diff(&d, &obs);
        assert_eq!(plan.action, Action::Update);
        assert_eq!(plan.changes[0].path, "value");
    }

    #[test]
    fn secret_values_are_never_shown_and_foreign_ones_are_conflicts() {
        let d = decl(json!({"name": "/apps/web/token", "valueSecret": {"name": "s", "key": "k"}}));
        let plan = diff(&d, &Observation::absent());
        let text = plan.render();
        assert!(text.contains("valueSecret = (sensitive value)"), "{text}");
        let obs = ours(&d, json!({"type": "SecureString", "valueMatches": false}));
        let plan = diff(&d, &obs);
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].after, PlanValue::Sensitive);
        let mut foreign = obs.clone();
        foreign.ownership = Ownership::Unowned;
        assert!(matches!(
            diff(&d, &foreign).blocked,
            Some(orkestra_provider::Blocked::Conflict(_))
        ));
    }
}
