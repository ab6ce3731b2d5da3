//! `kubectl orkestra status [KIND[/NAME]] [-n NS | -A] [-o table|json|yaml] [--watch]`: one row
//! per external resource and per CR, read from the CRs' status (what the agent last wrote).

use std::time::Duration;

use anyhow::bail;
use comfy_table::{presets, Cell, Color, ContentArrangement, Table};
use kube::api::{Api, DynamicObject, ListParams};
use orkestra_provider::{CrStatus, WaitingRow};
use serde_json::{json, Value};

use crate::katalog_object::Origin;
use crate::kinds::{self, ManagedKind};
use crate::kube_client::{connect, explain, is_not_found, runtime, Kube, KubeArgs};
use crate::output::{color_stdout, out};

/// Arguments of `status`.
#[derive(clap::Args)]
pub struct Args {
    /// What to show: a kind (`website`, `websites`, `Website.demo.orkestra.io`), optionally `/NAME`.
    #[arg(value_name = "KIND[/NAME]")]
    target: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespace")]
    all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long, value_parser = ["table", "json", "yaml"], default_value = "table")]
    output: String,
    /// Keep running and redraw whenever something changes.
    #[arg(short = 'w', long)]
    watch: bool,
    #[command(flatten)]
    kube: KubeArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    runtime()?.block_on(run_async(a))
}

/// One CR as status shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    kind: String,
    namespace: Option<String>,
    name: String,
    ready: bool,
    /// The Ready condition's reason/message (when not ready) or empty.
    message: String,
    /// `status.external`, as the agent wrote it.
    external: Vec<Value>,
    /// `status.waiting`: declarations waiting for a value.
    waiting: Vec<WaitingRow>,
}

async fn run_async(a: Args) -> anyhow::Result<i32> {
    let kube = connect(&a.kube).await?;
    let installed = kinds::installed(&kube).await?;
    let (selected, name): (Vec<ManagedKind>, Option<String>) = match &a.target {
        None => (installed.clone(), None),
        Some(t) => {
            let (word, name) = match t.split_once('/') {
                Some((w, n)) if !n.is_empty() => (w, Some(n.to_string())),
                Some(_) => bail!("{t:?}: expected KIND or KIND/NAME"),
                None => (t.as_str(), None),
            };
            (vec![kinds::resolve(&installed, word)?.clone()], name)
        }
    };
    if name.is_some() && a.all_namespaces {
        bail!("a NAME cannot be combined with -A; pass -n NAMESPACE");
    }
    let mut last = String::new();
    loop {
        let items = collect(
            &kube,
            &selected,
            name.as_deref(),
            a.all_namespaces,
            a.target.is_some(),
        )
        .await?;
        let text = format_items(&items, &katalogs_of(&selected), &a.output, color_stdout())?;
        if !a.watch {
            out(&text)?;
            return Ok(0);
        }
        if text != last {
            if color_stdout() {
                // Redraw in place on a terminal; off a terminal each change is appended.
                out("\x1b[2J\x1b[H")?;
            }
            out(&text)?;
            last = text;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
    }
}

async fn collect(
    kube: &Kube,
    kinds: &[ManagedKind],
    name: Option<&str>,
    all: bool,
    explicit: bool,
) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    for kind in kinds {
        let (ar, namespaced) = match kinds::served(kube, kind).await {
            Ok(x) => x,
            // Listing everything: a Katalog whose CRD is not there yet has nothing to show.
            Err(_) if !explicit => continue,
            Err(e) => return Err(e),
        };
        let api: Api<DynamicObject> = if !namespaced || all {
            Api::all_with(kube.client.clone(), &ar)
        } else {
            Api::namespaced_with(kube.client.clone(), &kube.namespace, &ar)
        };
        let objects = match name {
            Some(n) => match api.get(n).await {
                Ok(o) => vec![o],
                Err(e) if is_not_found(&e) => {
                    let where_ = if namespaced {
                        format!(" in namespace {}", kube.namespace)
                    } else {
                        String::new()
                    };
                    bail!("{} {n:?} not found{where_}", kind.api.kind)
                }
                Err(e) => {
                    return Err(explain(
                        e,
                        &format!("get {} {n}", kind.api.kind),
                        &kube.server,
                    ))
                }
            },
            None => match api.list(&ListParams::default()).await {
                Ok(l) => l.items,
                // A CRD removed between discovery and the list: nothing to show for it.
                Err(e) if is_not_found(&e) && !explicit => continue,
                Err(e) => {
                    return Err(explain(
                        e,
                        &format!("list {}", kind.api.plural),
                        &kube.server,
                    ))
                }
            },
        };
        for o in objects {
            items.push(item_of(&kind.api.kind, &serde_json::to_value(&o)?));
        }
    }
    items.sort_by(|a, b| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)));
    Ok(items)
}

/// Read one CR's status through the agent's typed contract ([`CrStatus`]).
pub fn item_of(kind: &str, cr: &Value) -> Item {
    let (status, unreadable) = match CrStatus::of(cr) {
        Ok(s) => (s, None),
        Err(e) => (CrStatus::default(), Some(e)),
    };
    let ready_cond = status.ready();
    let ready = ready_cond.is_some_and(|c| c.is_true());
    let message = match (ready_cond, unreadable) {
        (_, Some(e)) => format!("the status does not fit orkestra's status type: {e}"),
        (None, None) => "not reconciled yet".to_string(),
        (Some(_), None) if ready => String::new(),
        (Some(c), None) => match (c.reason.is_empty(), c.message.is_empty()) {
            (false, false) => format!("{}: {}", c.reason, c.message),
            (true, false) => c.message.clone(),
            (false, true) => c.reason.clone(),
            (true, true) => String::new(),
        },
    };
    Item {
        kind: kind.to_string(),
        namespace: cr
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string),
        name: cr
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        ready,
        message,
        external: status
            .external
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .collect(),
        waiting: status.waiting,
    }
}

/// The output in the requested format.
pub fn format_items(
    items: &[Item],
    katalogs: &[(String, Option<Origin>)],
    format: &str,
    color: bool,
) -> anyhow::Result<String> {
    let data = json!({
        "items": items.iter().map(|i| json!({
            "cr": {"kind": i.kind, "namespace": i.namespace, "name": i.name},
            "ready": i.ready,
            "external": i.external,
            "waiting": i.waiting,
        })).collect::<Vec<_>>(),
        "katalogs": katalogs.iter().map(|(name, origin)| json!({
            "name": name,
            "source": origin.as_ref().map(|o| &o.source),
            "digest": origin.as_ref().map(|o| &o.digest),
        })).collect::<Vec<_>>(),
    });
    match format {
        "json" => Ok(format!("{}\n", serde_json::to_string_pretty(&data)?)),
        "yaml" => Ok(serde_yaml_ng::to_string(&data)?),
        _ => {
            let mut text = table(items, color);
            for (name, origin) in katalogs {
                if let Some(o) = origin {
                    text.push_str(&format!("katalog {name}: {o}\n"));
                }
            }
            Ok(text)
        }
    }
}

/// The Katalogs behind `kinds`, once each, with where they were applied from.
fn katalogs_of(kinds: &[ManagedKind]) -> Vec<(String, Option<Origin>)> {
    let mut out: Vec<(String, Option<Origin>)> = Vec::new();
    for k in kinds {
        if !out.iter().any(|(n, _)| n == &k.katalog) {
            out.push((k.katalog.clone(), k.origin.clone()));
        }
    }
    out
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn dash(x: &str) -> String {
    if x.is_empty() {
        "-".to_string()
    } else {
        x.to_string()
    }
}

/// kubectl-style columns, no borders; nothing is cut off the message column off a terminal.
fn table(items: &[Item], color: bool) -> String {
    if items.is_empty() {
        return "No resources found.\n".to_string();
    }
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    if color {
        t.enforce_styling();
        t.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.force_no_tty();
        t.set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header([
        "NAMESPACE",
        "CR",
        "READY",
        "PROVIDER",
        "KIND",
        "NAME",
        "ID",
        "STATE",
        "LAST SYNC",
        "MESSAGE",
    ]);
    for col in t.column_iter_mut() {
        col.set_padding((0, 3));
    }
    let ready_cell = |r: bool| {
        let word = if r { "True" } else { "False" };
        Cell::new(word).fg(if r { Color::Green } else { Color::Red })
    };
    for i in items {
        let ns = i.namespace.clone().unwrap_or_else(|| "-".into());
        let cr = format!("{}/{}", i.kind.to_ascii_lowercase(), i.name);
        t.add_row(vec![
            Cell::new(&ns),
            Cell::new(&cr),
            ready_cell(i.ready),
            Cell::new("-"),
            Cell::new("-"),
            Cell::new("-"),
            Cell::new("-"),
            Cell::new(if i.ready { "Ready" } else { "NotReady" }),
            Cell::new("-"),
            Cell::new(dash(&i.message)),
        ]);
        for row in &i.external {
            let state = s(row, "state");
            let state_color = match state {
                "Ready" => Color::Green,
                "Error" | "Conflict" => Color::Red,
                _ => Color::Yellow,
            };
            t.add_row(vec![
                Cell::new(&ns),
                Cell::new(&cr),
                ready_cell(state == "Ready"),
                Cell::new(dash(s(row, "provider"))),
                Cell::new(dash(s(row, "kind"))),
                Cell::new(dash(s(row, "name"))),
                Cell::new(dash(s(row, "id"))),
                Cell::new(dash(state)).fg(state_color),
                Cell::new(dash(s(row, "lastSyncTime"))),
                Cell::new(dash(s(row, "message"))),
            ]);
        }
        for w in &i.waiting {
            let (kind, name) = w.node.split_once('[').unwrap_or((&w.node, ""));
            let mut message = format!("waits for {} ({})", w.waits_for, w.state);
            if !w.value.is_empty() {
                message.push_str(&format!(": {}", w.value));
            }
            t.add_row(vec![
                Cell::new(&ns),
                Cell::new(&cr),
                ready_cell(false),
                Cell::new("-"),
                Cell::new(kind),
                Cell::new(dash(name.trim_end_matches(']'))),
                Cell::new("-"),
                Cell::new("Waiting").fg(Color::Yellow),
                Cell::new("-"),
                Cell::new(message),
            ]);
        }
    }
    let mut text: String = t.lines().map(|l| format!("{}\n", l.trim_end())).collect();
    if text.is_empty() {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ready_and_message() {
        let cr = json!({"metadata": {"name": "a", "namespace": "ns"}, "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "RenderError", "message": "spec.image: required"}]}});
        let i = item_of("Website", &cr);
        assert!(!i.ready);
        assert_eq!(i.message, "RenderError: spec.image: required");
        let text = format_items(&[i], &[], "table", false).unwrap();
        assert!(text.contains("RenderError: spec.image: required"), "{text}");
        assert!(text.starts_with("NAMESPACE"), "{text}");
    }

    #[test]
    fn shows_each_waiting_declaration_as_a_row() {
        let cr = json!({"metadata": {"name": "a", "namespace": "ns"}, "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "Waiting", "message": "m"}],
            "waiting": [{"node": "deployments[web]", "waitsFor": "aws.rds db", "state": "Creating",
                "value": "outputs.endpoint"}]}});
        let text = format_items(&[item_of("App", &cr)], &[], "table", false).unwrap();
        let row = text.lines().find(|l| l.contains("waits for")).expect(&text);
        assert!(
            row.contains("deployments") && row.contains("Waiting"),
            "{text}"
        );
        assert!(row.contains("web"), "{text}");
        assert!(
            row.contains("waits for aws.rds db (Creating): outputs.endpoint"),
            "{text}"
        );
        let json = format_items(&[item_of("App", &cr)], &[], "json", false).unwrap();
        assert!(json.contains("\"waitsFor\": \"aws.rds db\""), "{json}");
    }
}
