//! `validation:` rules (upstream Orkestra's admission rules), enforced where Kubernetes itself
//! enforces things: each rule compiles to a CEL expression, so the API server refuses a bad CR
//! with the rule's message before the agent ever sees it. A `deny` rule of an entry whose CRD
//! orkestra generates goes into that CRD's `x-kubernetes-validations`; every other rule (a
//! `warn` rule, or any rule of an entry whose CRD comes from a `crdFile` or already exists and is
//! not orkestra's) goes into a ValidatingAdmissionPolicy with its binding ([`admission_policies`]),
//! so the user's CRD is never rewritten. `warn` binds with the `Warn` action: the API server
//! accepts the CR and answers with the rule's message as a warning (kubectl prints it).
//!
//! A policy, unlike a CRD rule, sees every update of the CR (the agent's finalizer patches
//! included), so it ratchets as the API server ratchets CRD rules: an update that leaves the
//! rule's field as it was passes even when the stored CR breaks a rule added later; otherwise a
//! CR created before the rule could never be finalized.
//!
//! A rule names a field of the CR (`spec.image`) and one comparison. As upstream has it, a field
//! that is absent fails every comparison but `notExists`, so each expression is guarded with
//! `has()` on every step of the path.

use serde_json::{json, Value};

/// One comparison a rule makes on its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Equals(Value),
    NotEquals(Value),
    Prefix(String),
    NotPrefix(String),
    Suffix(String),
    NotSuffix(String),
    Contains(String),
    NotContains(String),
    /// `min`, `greaterThanOrEqual`, `gte`.
    AtLeast(f64),
    /// `max`, `lessThanOrEqual`, `lte`.
    AtMost(f64),
    GreaterThan(f64),
    LessThan(f64),
    /// `between: "1,5"` (inclusive) and `notBetween`.
    Between(f64, f64, bool),
    In(Vec<String>, bool),
    Regex(String),
    Exists,
    NotExists,
}

/// The comparison keys a rule may use (upstream's shorthands).
pub const CHECK_KEYS: &[&str] = &[
    "equals",
    "notEquals",
    "prefix",
    "notPrefix",
    "suffix",
    "notSuffix",
    "contains",
    "notContains",
    "min",
    "max",
    "greaterThan",
    "gt",
    "lessThan",
    "lt",
    "greaterThanOrEqual",
    "gte",
    "lessThanOrEqual",
    "lte",
    "between",
    "notBetween",
    "in",
    "notIn",
    "regex",
    "exists",
    "notExists",
];

impl Check {
    /// The check `key: value` stands for, or why the value does not fit it.
    pub fn parse(key: &str, v: &Value) -> Result<Self, String> {
        let text = || match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(format!("`{key}` takes a text value")),
        };
        let num = || match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| format!("`{key}` takes a number")),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("`{key}` takes a number, found {s:?}")),
            _ => Err(format!("`{key}` takes a number")),
        };
        let pair = || -> Result<(f64, f64), String> {
            let t = text()?;
            let (a, b) = t
                .split_once(',')
                .ok_or_else(|| format!("`{key}` takes \"LOW,HIGH\", found {t:?}"))?;
            let p = |s: &str| {
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("`{key}`: {s:?} is not a number"))
            };
            Ok((p(a)?, p(b)?))
        };
        let list = || -> Result<Vec<String>, String> {
            match v {
                Value::Array(a) => Ok(a.iter().map(crate::template::functions::to_text).collect()),
                _ => Ok(text()?.split(',').map(|s| s.trim().to_string()).collect()),
            }
        };
        Ok(match key {
            "equals" => Check::Equals(v.clone()),
            "notEquals" => Check::NotEquals(v.clone()),
            "prefix" => Check::Prefix(text()?),
            "notPrefix" => Check::NotPrefix(text()?),
            "suffix" => Check::Suffix(text()?),
            "notSuffix" => Check::NotSuffix(text()?),
            "contains" => Check::Contains(text()?),
            "notContains" => Check::NotContains(text()?),
            "min" | "greaterThanOrEqual" | "gte" => Check::AtLeast(num()?),
            "max" | "lessThanOrEqual" | "lte" => Check::AtMost(num()?),
            "greaterThan" | "gt" => Check::GreaterThan(num()?),
            "lessThan" | "lt" => Check::LessThan(num()?),
            "between" => pair().map(|(a, b)| Check::Between(a, b, true))?,
            "notBetween" => pair().map(|(a, b)| Check::Between(a, b, false))?,
            "in" => Check::In(list()?, true),
            "notIn" => Check::In(list()?, false),
            "regex" => {
                let r = text()?;
                regex::Regex::new(&r).map_err(|e| format!("invalid regex: {e}"))?;
                Check::Regex(r)
            }
            "exists" => Check::Exists,
            "notExists" => Check::NotExists,
            other => return Err(format!("unknown comparison `{other}`")),
        })
    }
}

/// What the API server does with a CR that breaks a rule (upstream's `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Refuse the CR (the default).
    Deny,
    /// Accept it and answer with the rule's message as a warning.
    Warn,
}

impl Action {
    /// `deny` / `warn` as upstream spells them.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deny" | "Deny" => Some(Action::Deny),
            "warn" | "Warn" => Some(Action::Warn),
            _ => None,
        }
    }

    /// The binding's `validationActions` value.
    fn binding_action(self) -> &'static str {
        match self {
            Action::Deny => "Deny",
            Action::Warn => "Warn",
        }
    }

    /// The word in the policy's name.
    fn word(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
        }
    }
}

/// One `validation.rules[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The CR field, as dotted identifiers (`spec.image`).
    pub field: Vec<String>,
    pub check: Check,
    /// What the API server answers when a CR breaks the rule.
    pub message: String,
    pub action: Action,
    /// The CRD's schema declares the field, so a CRD rule can read it; otherwise only a policy
    /// can (the field is kept unknown, or is metadata beyond the name).
    pub in_crd: bool,
}

impl Rule {
    /// The field as written (`spec.image`).
    pub fn field_path(&self) -> String {
        self.field.join(".")
    }

    /// The CEL expression (over `self`, the whole CR) that holds when the CR keeps the rule:
    /// the form a CRD's `x-kubernetes-validations` takes.
    pub fn cel(&self) -> String {
        self.cel_on("self")
    }

    /// `has(ROOT.a) && has(ROOT.a.b)`: the rule's field is present in `root`.
    fn present_on(&self, root: &str) -> String {
        (1..=self.field.len())
            .map(|n| format!("has({root}.{})", self.field[..n].join(".")))
            .collect::<Vec<_>>()
            .join(" && ")
    }

    /// The expression a ValidatingAdmissionPolicy evaluates: the rule over `object`, or, on an
    /// update, the field as the stored CR has it (present in neither, or equal in both).
    pub fn policy_cel(&self) -> String {
        let path = self.field.join(".");
        let new = self.present_on("object");
        let old = self.present_on("oldObject");
        format!(
            "({}) || (oldObject != null && ((!({new}) && !({old})) || ({new} && {old} && object.{path} == oldObject.{path})))",
            self.cel_on("object")
        )
    }

    /// The rule over the CR at `root` (`self` in a CRD, `object` in a policy).
    fn cel_on(&self, root: &str) -> String {
        let path = format!("{root}.{}", self.field.join("."));
        let present = self.present_on(root);
        let num = |f: f64| {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", f as i64)
            } else {
                format!("{f}")
            }
        };
        // Numbers compare as doubles, so an integer field and a decimal bound agree.
        let as_num = format!("double({path})");
        let cond = match &self.check {
            Check::Exists => return present,
            Check::NotExists => return format!("!({present})"),
            Check::Equals(v) => format!("{path} == {}", literal(v)),
            Check::NotEquals(v) => format!("{path} != {}", literal(v)),
            Check::Prefix(s) => format!("{path}.startsWith({})", quote(s)),
            Check::NotPrefix(s) => format!("!{path}.startsWith({})", quote(s)),
            Check::Suffix(s) => format!("{path}.endsWith({})", quote(s)),
            Check::NotSuffix(s) => format!("!{path}.endsWith({})", quote(s)),
            Check::Contains(s) => format!("{path}.contains({})", quote(s)),
            Check::NotContains(s) => format!("!{path}.contains({})", quote(s)),
            Check::AtLeast(f) => format!("{as_num} >= {}", num(*f)),
            Check::AtMost(f) => format!("{as_num} <= {}", num(*f)),
            Check::GreaterThan(f) => format!("{as_num} > {}", num(*f)),
            Check::LessThan(f) => format!("{as_num} < {}", num(*f)),
            Check::Between(a, b, inside) => {
                let c = format!("{as_num} >= {} && {as_num} <= {}", num(*a), num(*b));
                if *inside {
                    c
                } else {
                    format!("!({c})")
                }
            }
            Check::In(items, inside) => {
                let list: Vec<String> = items.iter().map(|s| quote(s)).collect();
                let c = format!("string({path}) in [{}]", list.join(", "));
                if *inside {
                    c
                } else {
                    format!("!({c})")
                }
            }
            Check::Regex(r) => format!("{path}.matches({})", quote(r)),
        };
        format!("{present} && {cond}")
    }
}

/// The ValidatingAdmissionPolicy enforcing one action's rules for an entry's CRs, with its
/// binding; `objects` is `None` when the entry has no such rule (an existing policy of that name
/// is then stale: `apply` deletes it).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The policy's and the binding's name.
    pub name: String,
    pub action: Action,
    /// `[policy, binding]`.
    pub objects: Option<[Value; 2]>,
}

/// The policies of `entry` (one per action, `deny` first). `crd_holds_deny`: its CRD, generated by
/// orkestra, already carries the `deny` rules it can read (those with `in_crd`) as
/// `x-kubernetes-validations`.
pub fn admission_policies(
    entry: &crate::katalog::CrdEntry,
    katalog: &str,
    crd_holds_deny: bool,
) -> Vec<Policy> {
    let api = &entry.api;
    [Action::Deny, Action::Warn]
        .into_iter()
        .map(|action| {
            let name = format!("orkestra-{}.{}", action.word(), api.crd_name());
            let rules: Vec<&Rule> = entry
                .validation
                .iter()
                .filter(|r| {
                    r.action == action && !(crd_holds_deny && action == Action::Deny && r.in_crd)
                })
                .collect();
            let objects = (!rules.is_empty()).then(|| {
                let labels = json!({
                    "app.kubernetes.io/managed-by": "orkestra",
                    crate::objects::labels::KATALOG: crate::objects::label_value(katalog),
                });
                let validations: Vec<Value> = rules
                    .iter()
                    .map(|r| json!({"expression": r.policy_cel(), "message": r.message}))
                    .collect();
                [
                    json!({
                        "apiVersion": "admissionregistration.k8s.io/v1",
                        "kind": "ValidatingAdmissionPolicy",
                        "metadata": {"name": name, "labels": labels},
                        "spec": {
                            "failurePolicy": "Fail",
                            // The CR itself, not its status: the agent's status writes are not
                            // the user's input.
                            "matchConstraints": {"resourceRules": [{
                                "apiGroups": [api.group],
                                "apiVersions": [api.version],
                                "operations": ["CREATE", "UPDATE"],
                                "resources": [api.plural],
                            }]},
                            "validations": validations,
                        },
                    }),
                    json!({
                        "apiVersion": "admissionregistration.k8s.io/v1",
                        "kind": "ValidatingAdmissionPolicyBinding",
                        "metadata": {"name": name, "labels": labels},
                        "spec": {
                            "policyName": name,
                            "validationActions": [action.binding_action()],
                        },
                    }),
                ]
            });
            Policy {
                name,
                action,
                objects,
            }
        })
        .collect()
}

/// A CEL string literal (single-quoted; backslashes and quotes escaped).
fn quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A CEL literal for a YAML scalar.
fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".into(),
        other => quote(&other.to_string()),
    }
}

/// A name CEL and Go templates both accept: a letter or `_`, then letters, digits and `_`.
pub fn is_ident(t: &str) -> bool {
    let mut c = t.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A field path a rule may name: dotted CEL identifiers, at most 16 steps.
pub fn parse_field(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim().trim_start_matches('.');
    let steps: Vec<String> = s.split('.').map(str::to_string).collect();
    if steps.is_empty() || steps.len() > 16 || !steps.iter().all(|t| is_ident(t)) {
        return Err(format!(
            "field {s:?} must be a dotted path of names (like spec.image); templates and list indexes are not supported in validation"
        ));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(field: &str, key: &str, v: Value) -> Rule {
        Rule {
            field: parse_field(field).unwrap(),
            check: Check::parse(key, &v).unwrap(),
            message: "m".into(),
            action: Action::Deny,
            in_crd: true,
        }
    }

    #[test]
    fn rules_compile_to_guarded_cel() {
        assert_eq!(
            rule("spec.image", "prefix", json!("myorg/")).cel(),
            "has(self.spec) && has(self.spec.image) && self.spec.image.startsWith('myorg/')"
        );
        assert_eq!(
            rule("spec.replicas", "greaterThan", json!("0")).cel(),
            "has(self.spec) && has(self.spec.replicas) && double(self.spec.replicas) > 0"
        );
        assert_eq!(
            rule("spec.env", "in", json!("dev, prod")).cel(),
            "has(self.spec) && has(self.spec.env) && string(self.spec.env) in ['dev', 'prod']"
        );
        assert_eq!(
            rule("spec.tier", "notExists", json!(true)).cel(),
            "!(has(self.spec) && has(self.spec.tier))"
        );
        assert_eq!(
            rule("spec.n", "between", json!("1,2.5")).cel(),
            "has(self.spec) && has(self.spec.n) && double(self.spec.n) >= 1 && double(self.spec.n) <= 2.5"
        );
    }

    #[test]
    fn literals_cannot_break_out_of_the_expression() {
        let r = rule("spec.a", "equals", json!("x' || true || '"));
        assert!(
            r.cel().ends_with("self.spec.a == 'x\\' || true || \\''"),
            "{}",
            r.cel()
        );
        assert!(parse_field("spec.a || true").is_err());
        assert!(parse_field("spec.items[0]").is_err());
        assert!(parse_field("{{ .spec.a }}").is_err());
    }

    #[test]
    fn values_that_do_not_fit_are_errors() {
        assert!(Check::parse("greaterThan", &json!("many")).is_err());
        assert!(Check::parse("between", &json!("1")).is_err());
        assert!(Check::parse("regex", &json!("(")).is_err());
        assert!(Check::parse("nearly", &json!(1)).is_err());
    }

    #[test]
    fn policies_ratchet_and_bind_each_action() {
        let r = rule("spec.image", "prefix", json!("myorg/"));
        assert_eq!(
            r.policy_cel(),
            "(has(object.spec) && has(object.spec.image) && object.spec.image.startsWith('myorg/')) || (oldObject != null && ((!(has(object.spec) && has(object.spec.image)) && !(has(oldObject.spec) && has(oldObject.spec.image))) || (has(object.spec) && has(object.spec.image) && has(oldObject.spec) && has(oldObject.spec.image) && object.spec.image == oldObject.spec.image)))"
        );
        let text = r#"
apiVersion: orkestra.orkspace.io/v1
kind: Katalog
metadata: {name: k}
spec:
  crds:
    app:
      apiTypes: {group: demo.example.io, version: v1, kind: App, plural: apps}
      schema: {type: object, properties: {spec: {type: object, properties: {image: {type: string}, replicas: {type: integer}}}}}
      validation:
        rules:
          - {field: spec.image, prefix: "myorg/", message: "m"}
          - {field: spec.replicas, max: 9, message: "at most nine", action: warn}
      operatorBox: {onCreate: {}}
"#;
        let loaded = crate::load_file(&crate::SourceFile::new("k.yaml", text), &[]);
        let k = loaded
            .katalog
            .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
        let entry = &k.entries[0];
        assert_eq!(entry.validation[0], r);
        assert_eq!(entry.validation[1].action, Action::Warn);
        let all = admission_policies(entry, "k", false);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "orkestra-deny.apps.demo.example.io");
        let [policy, binding] = all[1].objects.clone().unwrap();
        assert_eq!(policy["spec"]["validations"].as_array().unwrap().len(), 1);
        assert_eq!(
            policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"],
            json!(["apps"])
        );
        assert_eq!(binding["spec"]["validationActions"], json!(["Warn"]));
        assert_eq!(
            binding["spec"]["policyName"],
            "orkestra-warn.apps.demo.example.io"
        );
        // A generated CRD carries the deny rules itself: no deny policy.
        let in_crd = admission_policies(entry, "k", true);
        assert!(in_crd[0].objects.is_none());
        assert!(in_crd[1].objects.is_some());
    }
}
