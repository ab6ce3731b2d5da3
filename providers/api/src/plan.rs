//! The pure diff of declared versus observed state, and its terraform-style rendering.
//!
//! `kubectl orkestra plan` prints a [`Plan`] and the agent applies the same [`Plan`], so what plan
//! shows is what the agent does.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the provider will do to reach the declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// The resource does not exist: create it.
    Create,
    /// Change mutable fields in place.
    Update,
    /// An immutable field differs: only a replacement would converge (never done without opt-in).
    Replace,
    /// Remove the resource.
    Delete,
    /// Nothing to do.
    Noop,
}

/// A value in a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "value")]
pub enum PlanValue {
    /// Not set.
    Absent,
    /// A known value.
    Known(Value),
    /// Only known once the change is applied (an RDS endpoint).
    Unknown,
    /// A secret-bearing value: never shown.
    Sensitive,
}

impl PlanValue {
    /// `Known(v)` or `Absent` for `None`.
    pub fn from_option(v: Option<&Value>) -> Self {
        v.map_or(PlanValue::Absent, |v| PlanValue::Known(v.clone()))
    }
}

impl fmt::Display for PlanValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanValue::Absent => f.write_str("null"),
            PlanValue::Known(v) => write!(f, "{v}"),
            PlanValue::Unknown => f.write_str("(known after apply)"),
            PlanValue::Sensitive => f.write_str("(sensitive value)"),
        }
    }
}

/// One changed field. `path` uses dots for nesting (`tags.team`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// Field path as written in the Katalog (`versioning`, `tags.team`).
    pub path: String,
    /// Observed value.
    pub before: PlanValue,
    /// Declared value.
    pub after: PlanValue,
    /// Changing this field requires replacing the resource.
    pub forces_replacement: bool,
}

impl FieldChange {
    /// A change of `path` from `before` to `after`.
    pub fn new(path: impl Into<String>, before: PlanValue, after: PlanValue) -> Self {
        Self {
            path: path.into(),
            before,
            after,
            forces_replacement: false,
        }
    }

    /// Mark the change as forcing replacement.
    pub fn forcing_replacement(mut self) -> Self {
        self.forces_replacement = true;
        self
    }
}

/// Why a planned action will not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "reason", content = "message")]
pub enum Blocked {
    /// The resource belongs to someone else, or to no one and `adopt` is not set.
    Conflict(String),
    /// `managementPolicy: Observe`: changes are reported, not made.
    ObserveOnly,
    /// An immutable field differs; replacement needs an explicit opt-in.
    ReplacementRequired,
    /// An operation is already running on the resource; wait for it.
    Busy(String),
}

/// The diff of one declaration against what was observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Provider block.
    pub provider: String,
    /// Kind.
    pub kind: String,
    /// Resource name.
    pub name: String,
    /// What converging needs.
    pub action: Action,
    /// Field by field changes (for Create: every declared field from null).
    pub changes: Vec<FieldChange>,
    /// Fields whose change forces replacement.
    pub requires_replacement: Vec<String>,
    /// Set when the action will not be carried out, and why.
    pub blocked: Option<Blocked>,
    /// Extra lines worth showing (pending modifications, defaults applied).
    pub notes: Vec<String>,
}

impl Plan {
    /// An empty plan with `action`.
    pub fn new(provider: &str, kind: &str, name: &str, action: Action) -> Self {
        Self {
            provider: provider.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            action,
            changes: Vec::new(),
            requires_replacement: Vec::new(),
            blocked: None,
            notes: Vec::new(),
        }
    }

    /// The action that will actually be carried out (Noop when blocked).
    pub fn effective_action(&self) -> Action {
        if self.blocked.is_some() {
            Action::Noop
        } else {
            self.action
        }
    }

    /// Nothing will change.
    pub fn is_noop(&self) -> bool {
        self.effective_action() == Action::Noop
    }

    /// `aws.s3 "name"`.
    pub fn address(&self) -> String {
        format!("{}.{} {:?}", self.provider, self.kind, self.name)
    }

    /// One line saying what will happen, for status messages and summaries.
    pub fn summary(&self) -> String {
        let what = match self.action {
            Action::Create => "will be created".to_string(),
            Action::Update => format!(
                "will be updated in place ({})",
                self.changes
                    .iter()
                    .map(|c| c.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Action::Replace => {
                format!(
                    "requires replacement ({})",
                    self.requires_replacement.join(", ")
                )
            }
            Action::Delete => "will be deleted".to_string(),
            Action::Noop => "is up to date".to_string(),
        };
        match &self.blocked {
            None => format!("{} {what}", self.address()),
            Some(b) => format!("{} {what}, but {}", self.address(), blocked_text(b)),
        }
    }

    /// Render terraform-style:
    ///
    /// ```text
    ///   # aws.s3 "assets" will be updated in place
    ///   ~ aws.s3 "assets" {
    ///       ~ versioning = false -> true
    ///       ~ region     = "eu-west-1" -> "us-east-1" # forces replacement
    ///     }
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (symbol, headline) = match self.action {
            Action::Create => ("+", "will be created".to_string()),
            Action::Update => ("~", "will be updated in place".to_string()),
            Action::Replace => ("-/+", "must be replaced".to_string()),
            Action::Delete => ("-", "will be destroyed".to_string()),
            Action::Noop => (" ", "is up to date".to_string()),
        };
        let _ = writeln!(out, "  # {} {headline}", self.address());
        if let Some(b) = &self.blocked {
            let _ = writeln!(out, "  # not applied: {}", blocked_text(b));
        }
        for n in &self.notes {
            let _ = writeln!(out, "  # {n}");
        }
        if self.changes.is_empty() {
            return out;
        }
        let _ = writeln!(out, "  {symbol} {} {{", self.address());
        let width = self.changes.iter().map(|c| c.path.len()).max().unwrap_or(0);
        for c in &self.changes {
            let (sym, text) = match (&c.before, &c.after) {
                (PlanValue::Absent, after) => ("+", format!("{after}")),
                (before, PlanValue::Absent) => ("-", format!("{before} -> null")),
                (before, after) => ("~", format!("{before} -> {after}")),
            };
            let forces = if c.forces_replacement {
                " # forces replacement"
            } else {
                ""
            };
            let _ = writeln!(out, "      {sym} {:width$} = {text}{forces}", c.path);
        }
        let _ = writeln!(out, "    }}");
        out
    }
}

impl Blocked {
    /// Why the action will not be carried out, in words (plan output and status messages).
    pub fn describe(&self) -> String {
        blocked_text(self)
    }
}

fn blocked_text(b: &Blocked) -> String {
    match b {
        Blocked::Conflict(m) => format!("conflict: {m}"),
        Blocked::ObserveOnly => "managementPolicy is Observe (read only)".to_string(),
        Blocked::ReplacementRequired => {
            "replacement is never done automatically; recreate the resource under a new name"
                .to_string()
        }
        Blocked::Busy(m) => format!("waiting: {m}"),
    }
}

/// Compare a declared map of string tags with the observed one: `tags.KEY` changes.
/// Only keys in `desired` are compared unless `exact`, in which case observed keys missing from
/// `desired` are removals.
pub fn diff_tags(
    path: &str,
    desired: &std::collections::BTreeMap<String, String>,
    observed: &std::collections::BTreeMap<String, String>,
    exact: bool,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, v) in desired {
        match observed.get(k) {
            Some(o) if o == v => {}
            o => out.push(FieldChange::new(
                format!("{path}.{k}"),
                PlanValue::from_option(o.map(|s| Value::String(s.clone())).as_ref()),
                PlanValue::Known(Value::String(v.clone())),
            )),
        }
    }
    if exact {
        for (k, o) in observed {
            if !desired.contains_key(k) {
                out.push(FieldChange::new(
                    format!("{path}.{k}"),
                    PlanValue::Known(Value::String(o.clone())),
                    PlanValue::Absent,
                ));
            }
        }
    }
    out
}

/// The `+ field = value` lines of a Create: every declared field from nothing.
pub fn creation_changes(fields: &Map<String, Value>, sensitive: &[&str]) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, v) in fields {
        if sensitive.contains(&k.as_str()) {
            out.push(FieldChange::new(k, PlanValue::Absent, PlanValue::Sensitive));
        } else if let Value::Object(m) = v {
            for (sub, sv) in m {
                out.push(FieldChange::new(
                    format!("{k}.{sub}"),
                    PlanValue::Absent,
                    PlanValue::Known(sv.clone()),
                ));
            }
        } else {
            out.push(FieldChange::new(
                k,
                PlanValue::Absent,
                PlanValue::Known(v.clone()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn renders_update_with_replacement_and_unknown() {
        let mut p = Plan::new("aws", "s3", "assets", Action::Replace);
        p.changes.push(FieldChange::new(
            "versioning",
            PlanValue::Known(json!(false)),
            PlanValue::Known(json!(true)),
        ));
        p.changes.push(
            FieldChange::new(
                "region",
                PlanValue::Known(json!("eu-west-1")),
                PlanValue::Known(json!("us-east-1")),
            )
            .forcing_replacement(),
        );
        p.changes.push(FieldChange::new(
            "endpoint",
            PlanValue::Absent,
            PlanValue::Unknown,
        ));
        p.requires_replacement.push("region".into());
        p.blocked = Some(Blocked::ReplacementRequired);
        let text = p.render();
        assert!(
            text.contains("# aws.s3 \"assets\" must be replaced"),
            "{text}"
        );
        assert!(text.contains("~ versioning = false -> true"), "{text}");
        assert!(
            text.contains("~ region     = \"eu-west-1\" -> \"us-east-1\" # forces replacement"),
            "{text}"
        );
        assert!(
            text.contains("+ endpoint   = (known after apply)"),
            "{text}"
        );
        assert!(
            text.contains("not applied: replacement is never done automatically"),
            "{text}"
        );
        assert_eq!(p.effective_action(), Action::Noop);
        assert!(p.summary().contains("requires replacement (region)"));
    }

    #[test]
    fn tag_diff_exact_and_additive() {
        let desired = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let observed = BTreeMap::from([
            ("a".to_string(), "2".to_string()),
            ("b".to_string(), "x".to_string()),
        ]);
        let additive = diff_tags("tags", &desired, &observed, false);
        assert_eq!(additive.len(), 1);
        assert_eq!(additive[0].path, "tags.a");
        let exact = diff_tags("tags", &desired, &observed, true);
        assert_eq!(exact.len(), 2);
        assert_eq!(exact[1].after, PlanValue::Absent);
    }

    #[test]
    fn creation_hides_sensitive_values() {
        let fields =
            json!({"identifier": "db", "masterPasswordSecret": {"name": "s"}, "tags": {"t": "1"}});
        let ch = creation_changes(fields.as_object().unwrap(), &["masterPasswordSecret"]);
        assert!(ch
            .iter()
            .any(|c| c.path == "masterPasswordSecret" && c.after == PlanValue::Sensitive));
        assert!(ch.iter().any(|c| c.path == "tags.t"));
        let json = serde_json::to_value(&ch[0]).unwrap();
        assert!(json.get("forcesReplacement").is_some());
    }
}
