//! What the `ssm` block accepts: kind `parameter`, with Parameter Store's naming rules and limits,
//! so a bad name is a lint error with its file and line before any call.

use orkestra_provider::schema::OutputSchema;
use orkestra_provider::{FieldSchema as F, FieldType as T, KindSchema, ProviderSchema, Validator};

/// Block key in a Katalog.
pub const NAME: &str = "ssm";
/// The one kind.
pub const PARAMETER: &str = "parameter";

/// The parameter types Parameter Store has.
pub const TYPES: &[&str] = &["String", "StringList", "SecureString"];

/// The schema of the `ssm` block.
pub fn schema() -> ProviderSchema {
    let fields = vec![
        F::new("name", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(parameter_name)),
        F::new("type", T::String).validate(Validator::OneOf(TYPES)),
        F::new("value", T::String).validate(Validator::Rule(value_size)),
        // For SecureString values: read from a Secret in the CR's namespace, never rendered.
        F::new("valueSecret", T::Object).sensitive().children(vec![
            F::new("name", T::String).required(),
            F::new("key", T::String).required(),
        ]),
        F::new("description", T::String).validate(Validator::Rule(description)),
        F::new("tags", T::StringMap),
        F::new("deletionPolicy", T::String).validate(Validator::OneOf(&["Delete", "Orphan"])),
        F::new("managementPolicy", T::String).validate(Validator::OneOf(&["Manage", "Observe"])),
        F::new("adopt", T::Boolean),
    ];
    ProviderSchema {
        name: NAME,
        kinds: vec![KindSchema {
            name: PARAMETER,
            name_field: "name",
            fields,
            outputs: vec![
                OutputSchema::new("name", T::String, "the parameter's name"),
                OutputSchema::new("arn", T::String, "the parameter's ARN"),
                OutputSchema::new("version", T::Integer, "the parameter's version"),
                OutputSchema::new("type", T::String, "String, StringList or SecureString"),
            ],
        }],
    }
}

/// Parameter Store's naming rules: 1..=2048 characters of `a-zA-Z0-9_.-/`, at most 15 levels,
/// a leading `/` for hierarchies, and no `aws`/`ssm` prefix (reserved).
pub fn parameter_name(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("parameter name {s:?} {why}"));
    if s.is_empty() || s.len() > 2048 {
        return bad("must be 1 to 2048 characters long");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
    {
        return bad("may contain only letters, digits and _ . - /");
    }
    if s.contains('/') && !s.starts_with('/') {
        return bad("must begin with / when it has levels");
    }
    if s.matches('/').count() > 15 {
        return bad("has more than 15 levels");
    }
    let first = s.trim_start_matches('/').to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return bad("must not begin with aws or ssm (reserved)");
    }
    Ok(())
}

/// A standard-tier value holds at most 4 KiB.
fn value_size(s: &str) -> Result<(), String> {
    if s.len() > 4096 {
        return Err(format!(
            "is {} bytes; a standard parameter holds at most 4096",
            s.len()
        ));
    }
    Ok(())
}

fn description(s: &str) -> Result<(), String> {
    if s.chars().count() > 1024 {
        return Err("is longer than 1024 characters".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_parameter_store_rules() {
        assert!(parameter_name("/apps/web/log-level").is_ok());
        assert!(parameter_name("plain_name.v1").is_ok());
        for bad in [
            "",
            "apps/web",
            "/apps/we b",
            "/aws/x",
            "ssm-thing",
            "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p",
        ] {
            assert!(parameter_name(bad).is_err(), "{bad}");
        }
        assert!(value_size(&"x".repeat(4097)).is_err());
    }
}
