//! Printing, for `plan`: the [`CrPlan`]s as terraform-style text ([`to_text`]) and as the JSON
//! of cli.md ([`to_json`]). A value plan never shows prints as [`SENSITIVE`]; a whole
//! `(known after apply: …)` placeholder prints as it is.

use orkestra_provider::{Action, PlanValue};
use serde_json::{json, Value};

use super::decide::{Change, CrPlan, PLACEHOLDER_START};
use crate::output::paint;

impl Change {
    /// The change's object as text: `provider.kind "name"`, `Kind "ns/name"` or `Kind "name"`.
    fn address(&self) -> String {
        match (&self.provider, &self.namespace) {
            (Some(p), _) => format!("{p}.{} {:?}", self.kind, self.name),
            (None, Some(ns)) => format!("{} {:?}", self.kind, format!("{ns}/{}", self.name)),
            (None, None) => format!("{} {:?}", self.kind, self.name),
        }
    }
}

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Noop => "noop",
    }
}

fn value_json(v: &PlanValue) -> Value {
    match v {
        PlanValue::Absent => Value::Null,
        PlanValue::Known(v) => v.clone(),
        PlanValue::Unknown => json!("(known after apply)"),
        PlanValue::Sensitive => json!(SENSITIVE),
    }
}

/// What plan prints for a value it never shows (composition.md, rule 5).
pub const SENSITIVE: &str = "(sensitive)";

fn summary(plans: &[CrPlan]) -> [usize; 4] {
    let mut s = [0; 4];
    for c in plans.iter().flat_map(|p| &p.changes) {
        match c.action {
            Action::Create => s[0] += 1,
            Action::Update => s[1] += 1,
            Action::Replace => s[2] += 1,
            Action::Delete => s[3] += 1,
            Action::Noop => {}
        }
    }
    s
}

/// The JSON of cli.md: `{"changes":[…],"summary":{…}}`.
pub fn to_json(plans: &[CrPlan]) -> Value {
    let changes: Vec<Value> = plans
        .iter()
        .flat_map(|p| {
            p.changes.iter().map(move |c| {
                let mut o = json!({
                    "action": action_word(c.action),
                    "target": c.target,
                    "provider": c.provider,
                    "kind": c.kind,
                    "name": c.name,
                    "diff": c.diff.iter().map(|d| {
                        let mut f = json!({"path": d.path, "before": value_json(&d.before), "after": value_json(&d.after)});
                        if d.forces_replacement {
                            f["forcesReplacement"] = json!(true);
                        }
                        f
                    }).collect::<Vec<_>>(),
                    "cr": {"kind": p.kind, "namespace": p.namespace, "name": p.name},
                });
                if let Some(ns) = &c.namespace {
                    o["namespace"] = json!(ns);
                }
                if let Some(b) = &c.blocked {
                    o["blocked"] = json!(b);
                }
                if !c.notes.is_empty() {
                    o["notes"] = json!(c.notes);
                }
                if let Some(w) = &c.waiting {
                    o["waiting"] = crate::render::waiting_json(w);
                }
                if c.orphaned {
                    o["orphaned"] = json!(true);
                }
                if let Some(i) = c.intent {
                    o["intent"] = json!(i);
                }
                o
            })
        })
        .collect();
    let [create, update, replace, delete] = summary(plans);
    json!({"changes": changes, "summary": {"create": create, "update": update, "replace": replace, "delete": delete}})
}

/// A value as text: strings quoted, except a whole `(known after apply: …)` placeholder, which
/// is printed as it is (like terraform's `(known after apply)`).
fn shown(v: &PlanValue) -> String {
    match v {
        PlanValue::Known(Value::String(s))
            if s.starts_with(PLACEHOLDER_START)
                && s.ends_with(')')
                && s.matches(PLACEHOLDER_START).count() == 1 =>
        {
            s.clone()
        }
        PlanValue::Known(Value::String(s)) => format!("{s:?}"),
        PlanValue::Sensitive => SENSITIVE.to_string(),
        other => other.to_string(),
    }
}

/// Terraform-style text.
pub fn to_text(plans: &[CrPlan], color: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let [create, update, replace, delete] = summary(plans);
    for p in plans {
        let who = format!(
            "{} {}{}",
            p.kind,
            p.namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            p.name
        );
        let visible: Vec<&Change> = p
            .changes
            .iter()
            .filter(|c| c.action != Action::Noop || c.blocked.is_some() || c.orphaned)
            .collect();
        if visible.is_empty() {
            let _ = writeln!(
                out,
                "{who}: no changes; the cluster and the external systems match the Katalog.\n"
            );
            continue;
        }
        let _ = writeln!(out, "{who}:\n");
        for c in visible {
            let (sym, headline, code) = match c.action {
                Action::Create => ("+", "will be created", "32"),
                Action::Update => ("~", "will be updated in place", "33"),
                Action::Replace => ("-/+", "must be replaced", "31"),
                Action::Delete => ("-", "will be destroyed", "31"),
                Action::Noop => (" ", "is up to date", "0"),
            };
            let headline = if c.orphaned {
                "is no longer declared (orphaned row in status.external)"
            } else {
                headline
            };
            let _ = writeln!(out, "  # {} {headline}", c.address());
            if let Some(b) = &c.blocked {
                let _ = writeln!(out, "  # not applied: {b}");
            }
            for n in &c.notes {
                let _ = writeln!(out, "  # {n}");
            }
            if !c.diff.is_empty() {
                let _ = writeln!(out, "  {} {} {{", paint(sym, code, color), c.address());
                let width = c.diff.iter().map(|d| d.path.len()).max().unwrap_or(0);
                for d in &c.diff {
                    let (s, text, code) = match (&d.before, &d.after) {
                        (PlanValue::Absent, after) => ("+", shown(after), "32"),
                        (before, PlanValue::Absent) => {
                            ("-", format!("{} -> null", shown(before)), "31")
                        }
                        (before, after) => {
                            ("~", format!("{} -> {}", shown(before), shown(after)), "33")
                        }
                    };
                    let forces = if d.forces_replacement {
                        paint(" # forces replacement", "31", color)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "      {} {:width$} = {text}{forces}",
                        paint(s, code, color),
                        d.path
                    );
                }
                let _ = writeln!(out, "    }}");
            }
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "Plan: {create} to create, {update} to update, {replace} to replace, {delete} to delete."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::decide::fixtures::{change, diff, one_cr};
    use super::super::decide::{waiting_note, FieldDiff};
    use super::*;
    use orkestra_engine::Waiting;

    #[test]
    fn text_has_terraform_summary() {
        let plans = vec![CrPlan {
            kind: "Website".into(),
            namespace: Some("ns".into()),
            name: "blog".into(),
            changes: vec![Change {
                action: Action::Replace,
                target: "external",
                provider: Some("aws".into()),
                kind: "s3".into(),
                namespace: None,
                name: "b".into(),
                diff: vec![
                    FieldDiff {
                        path: "region".into(),
                        before: PlanValue::Known(json!("eu-west-1")),
                        after: PlanValue::Known(json!("us-east-1")),
                        forces_replacement: true,
                    },
                    FieldDiff {
                        path: "arn".into(),
                        before: PlanValue::Absent,
                        after: PlanValue::Unknown,
                        forces_replacement: false,
                    },
                ],
                notes: vec![],
                blocked: None,
                waiting: None,
                orphaned: false,
                intent: None,
            }],
        }];
        let t = to_text(&plans, false);
        assert!(t.contains("-/+ aws.s3 \"b\" {"), "{t}");
        assert!(
            t.contains("~ region = \"eu-west-1\" -> \"us-east-1\" # forces replacement"),
            "{t}"
        );
        assert!(t.contains("+ arn    = (known after apply)"), "{t}");
        assert!(
            t.ends_with("Plan: 0 to create, 0 to update, 1 to replace, 0 to delete.\n"),
            "{t}"
        );
        let j = to_json(&plans);
        assert_eq!(j["summary"]["replace"], 1);
        assert_eq!(j["changes"][0]["diff"][1]["after"], "(known after apply)");
    }

    #[test]
    fn placeholders_print_as_they_are_and_waiting_nodes_say_so() {
        let w = Waiting {
            node: "deployments[web]".into(),
            source: "s".into(),
            on: "aws.rds db".into(),
            on_id: "db".into(),
            on_state: "Creating".into(),
            value: "outputs.endpoint".into(),
        };
        let placeholder = orkestra_engine::render::known_after_apply(&w.known_after());
        let mut c = change("Deployment", "kubernetes");
        c.diff = vec![
            diff(
                "spec.env[0].value",
                PlanValue::Absent,
                PlanValue::Known(json!(placeholder)),
            ),
            diff(
                "spec.env[1].value",
                PlanValue::Absent,
                PlanValue::Known(json!(format!("http://{placeholder}:80"))),
            ),
        ];
        c.notes.push(waiting_note(&w, true));
        c.waiting = Some(w);
        let plans = one_cr(vec![c]);
        let text = to_text(&plans, false);
        assert!(
            text.contains("+ spec.env[0].value = (known after apply: db.outputs.endpoint)\n"),
            "{text}"
        );
        assert!(
            text.contains("= \"http://(known after apply: db.outputs.endpoint):80\""),
            "{text}"
        );
        assert!(
            text.contains("# deployments[web] waits for aws.rds db (Creating): outputs.endpoint; neither created nor changed until then, so not dry-run"),
            "{text}"
        );
        let j = to_json(&plans);
        let c = &j["changes"][0];
        assert_eq!(
            c["diff"][0]["after"],
            "(known after apply: db.outputs.endpoint)"
        );
        assert_eq!(
            c["waiting"],
            json!({"node": "deployments[web]", "waitsFor": "aws.rds db", "state": "Creating", "value": "outputs.endpoint"})
        );
        assert_eq!(j["summary"]["create"], 1);
    }

    #[test]
    fn orphaned_rows_are_shown_but_change_nothing() {
        let mut c = change("s3", "external");
        c.action = Action::Noop;
        c.provider = Some("aws".into());
        c.namespace = None;
        c.orphaned = true;
        c.notes.push("no longer declared: left in place".into());
        let plans = one_cr(vec![c]);
        let text = to_text(&plans, false);
        assert!(
            text.contains("# aws.s3 \"x\" is no longer declared (orphaned row in status.external)\n  # no longer declared: left in place\n"),
            "{text}"
        );
        assert!(text.ends_with("Plan: 0 to create, 0 to update, 0 to replace, 0 to delete.\n"));
        let j = to_json(&plans);
        assert_eq!(j["changes"][0]["action"], "noop");
        assert_eq!(j["changes"][0]["orphaned"], true);
        assert_eq!(j["summary"]["delete"], 0);
    }
}
