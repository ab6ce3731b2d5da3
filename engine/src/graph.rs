//! One graph per CRD entry: every Kubernetes child and external resource is a node, every
//! `.resources.<id>` reference and every `after:` is an edge (composition.md, rule 1).
//!
//! The loader gathers, per declaration, its `id`, its `after` list and the references its
//! templates make ([`NodeSpec`]); [`build`] checks them (unknown or duplicate ids, cycles naming
//! every node on them, outputs a provider does not declare, field paths a kind does not have,
//! sensitive values flowing where they may not) and orders the nodes topologically. Everything
//! here is iterative — Kahn's algorithm for the order, an explicit-stack Tarjan for cycles — so a
//! Katalog with thousands of nodes neither recurses nor takes more than linear time.
//!
//! The render walk ([`crate::render::walk`]) visits [`Graph::order`]: a node is rendered only when
//! every node it reads is ready; deletion ([`Graph::deletion_order`]) is the reverse.

use std::collections::{BTreeSet, HashMap};

use orkestra_provider_schema::OutputSchema;

use crate::diagnostic::did_you_mean;
use crate::path::Path;

/// Which declaration of a [`crate::CrdEntry`] a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRef {
    /// `entry.kube[i]`.
    Kube(usize),
    /// `entry.external[i]`.
    External(usize),
}

/// One node of the graph.
#[derive(Debug, Clone)]
pub struct Node {
    pub node: NodeRef,
    /// Its `id`, when it has one.
    pub id: Option<String>,
    /// How messages name it: `deployments[web]`, `aws.rds db`.
    pub label: String,
    /// Where it is written (the declaration's `source`).
    pub source: String,
    /// What it reads, one entry per distinct (node, path).
    pub deps: Vec<Dep>,
}

/// One edge: this node reads `path` of node `on` (an empty path for `after:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// Index into [`Graph::nodes`].
    pub on: usize,
    /// The path under `.resources.<id>` (`["outputs", "endpoint"]`).
    pub path: Vec<String>,
}

impl Dep {
    /// `outputs.endpoint` (empty for an `after:` edge).
    pub fn value(&self) -> String {
        self.path.join(".")
    }
}

/// The nodes of one CRD entry in Katalog order (Kubernetes children, then external resources)
/// and the order they are rendered in.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Every node once, each after every node it depends on; independent nodes keep Katalog order.
    pub order: Vec<usize>,
}

impl Graph {
    /// The node written at `source`.
    pub fn by_source(&self, source: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.source == source)
    }

    /// The node of a declaration.
    pub fn by_ref(&self, r: NodeRef) -> Option<usize> {
        self.nodes.iter().position(|n| n.node == r)
    }

    /// The node named `id`.
    pub fn by_id(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id.as_deref() == Some(id))
    }

    /// Whether any node reads another (a graph without edges renders in one pass).
    pub fn has_edges(&self) -> bool {
        self.nodes.iter().any(|n| !n.deps.is_empty())
    }

    /// The order to delete in: every node after everything that depends on it.
    pub fn deletion_order(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().rev().copied()
    }

    /// The nodes that read node `i`.
    pub fn dependents(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.deps.iter().any(|d| d.on == i))
            .map(|(j, _)| j)
    }
}

/// What `.resources.<id>` of a node offers to the templates that read it.
#[derive(Debug, Clone)]
pub enum Exposes {
    /// A Kubernetes child: its live object.
    Kube {
        /// The kind, when the block fixes it (`None` for `custom`).
        kind: Option<&'static str>,
        /// Whether its `data` is sensitive (a Secret, or a Secret with `generate`).
        secret: bool,
    },
    /// An external resource: `{name, id, state, outputs}`.
    External {
        /// The outputs its provider's schema declares (`None` when the provider is unknown).
        outputs: Option<Vec<OutputSchema>>,
    },
}

/// A declaration as the loader saw it, with where each piece is written.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub node: NodeRef,
    pub id: Option<(String, Path)>,
    pub label: String,
    pub source: String,
    pub after: Vec<(String, Path)>,
    pub refs: Vec<Ref>,
    pub exposes: Exposes,
}

/// One `.resources.<id>...` read in a template.
#[derive(Debug, Clone)]
pub struct Ref {
    pub id: String,
    /// The path after the id.
    pub rest: Vec<String>,
    /// The template's place in the file.
    pub at: Path,
    /// The field it fills, for messages (`env[0].value`, `status.fields[1]`).
    pub field: String,
    /// The field may hold a sensitive value (a Secret's data, a provider's secret input).
    pub secret_input: bool,
}

/// A problem [`build`] found, placed at a path of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `unknown-id`, `duplicate-id`, `invalid-id`, `cycle`, `unknown-output`,
    /// `unknown-field-path`, `sensitive-flow`.
    pub code: &'static str,
    pub at: Path,
    pub message: String,
}

/// Whether `id` is a valid id: `[a-z][A-Za-z0-9]*`.
pub fn valid_id(id: &str) -> bool {
    let mut c = id.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase()) && c.all(|c| c.is_ascii_alphanumeric())
}

/// The top-level fields of a live object of `kind` that templates may read.
fn kube_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Secret" => &["apiVersion", "kind", "metadata", "data", "type"],
        "ConfigMap" => &["apiVersion", "kind", "metadata", "data", "binaryData"],
        "ServiceAccount" => &[
            "apiVersion",
            "kind",
            "metadata",
            "secrets",
            "automountServiceAccountToken",
        ],
        _ => &["apiVersion", "kind", "metadata", "spec", "status"],
    }
}

/// The fields of `{name, id, state, outputs}`.
const EXTERNAL_FIELDS: &[&str] = &["name", "id", "state", "outputs"];

/// Check the specs and build the graph. `status_refs` are reads in `status.fields`: they are
/// checked like the others but make no edges (status is written after every node).
pub fn build(specs: Vec<NodeSpec>, status_refs: &[Ref]) -> (Graph, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, s) in specs.iter().enumerate() {
        let Some((id, at)) = &s.id else { continue };
        if !valid_id(id) {
            problems.push(Problem {
                code: "invalid-id",
                at: at.clone(),
                message: format!(
                    "id {id:?} must start with a lowercase letter and hold only letters and digits"
                ),
            });
        }
        match ids.get(id) {
            Some(&first) => problems.push(Problem {
                code: "duplicate-id",
                at: at.clone(),
                message: format!(
                    "id `{id}` is already used by {} ({})",
                    specs[first].label, specs[first].source
                ),
            }),
            None => {
                ids.insert(id.clone(), i);
            }
        }
    }
    let known = || ids.keys().map(String::as_str).collect::<Vec<_>>();
    let mut nodes: Vec<Node> = Vec::with_capacity(specs.len());
    for s in &specs {
        let mut deps: Vec<Dep> = Vec::new();
        let mut add = |on: usize, path: Vec<String>| {
            if !deps.iter().any(|d| d.on == on && d.path == path) {
                deps.push(Dep { on, path });
            }
        };
        for r in &s.refs {
            match ids.get(&r.id) {
                Some(&on) => {
                    check_ref(r, &specs[on], &mut problems);
                    add(on, r.rest.clone());
                }
                None => problems.push(unknown_id(&r.id, &r.at, &known())),
            }
        }
        for (id, at) in &s.after {
            match ids.get(id) {
                Some(&on) => add(on, Vec::new()),
                None => problems.push(unknown_id(id, at, &known())),
            }
        }
        nodes.push(Node {
            node: s.node,
            id: s.id.as_ref().map(|(id, _)| id.clone()),
            label: s.label.clone(),
            source: s.source.clone(),
            deps,
        });
    }
    for r in status_refs {
        match ids.get(&r.id) {
            Some(&on) => check_ref(r, &specs[on], &mut problems),
            None => problems.push(unknown_id(&r.id, &r.at, &known())),
        }
    }
    let adj: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| n.deps.iter().map(|d| d.on).collect())
        .collect();
    for comp in cycles(&adj) {
        let mut members = comp.clone();
        members.sort_unstable();
        let reads: Vec<String> = members
            .iter()
            .flat_map(|&m| {
                let nodes = &nodes;
                nodes[m]
                    .deps
                    .iter()
                    .filter(|d| members.contains(&d.on))
                    .map(move |d| {
                        let what = if d.path.is_empty() {
                            "comes after".to_string()
                        } else {
                            format!("reads {} of", d.value())
                        };
                        format!("{} {what} {}", nodes[m].label, nodes[d.on].label)
                    })
            })
            .collect();
        let names: Vec<&str> = members.iter().map(|&m| nodes[m].label.as_str()).collect();
        let first = &specs[members[0]];
        let at = first
            .id
            .as_ref()
            .map(|(_, p)| p.clone())
            .or_else(|| first.refs.first().map(|r| r.at.clone()))
            .or_else(|| first.after.first().map(|(_, p)| p.clone()))
            .unwrap_or_default();
        problems.push(Problem {
            code: "cycle",
            at,
            message: format!(
                "a cycle between {}: {}; none of them could ever be rendered",
                names.join(", "),
                reads.join(", ")
            ),
        });
    }
    let order = topological(&adj);
    (Graph { nodes, order }, problems)
}

fn unknown_id(id: &str, at: &Path, known: &[&str]) -> Problem {
    let hint = did_you_mean(id, known.iter().copied());
    Problem {
        code: "unknown-id",
        at: at.clone(),
        message: if known.is_empty() {
            format!("`.resources.{id}`: no declaration in this entry has an `id`{hint}")
        } else {
            format!("`.resources.{id}`: no declaration in this entry has id `{id}`{hint}")
        },
    }
}

/// Check one read against what the node it reads offers.
fn check_ref(r: &Ref, target: &NodeSpec, problems: &mut Vec<Problem>) {
    let shown = if r.rest.is_empty() {
        format!(".resources.{}", r.id)
    } else {
        format!(".resources.{}.{}", r.id, r.rest.join("."))
    };
    let mut sensitive = false;
    match &target.exposes {
        Exposes::External { outputs } => {
            match r.rest.first().map(String::as_str) {
                None => {}
                Some(f) if EXTERNAL_FIELDS.contains(&f) => {}
                Some(f) => {
                    let hint = did_you_mean(f, EXTERNAL_FIELDS.iter().copied());
                    problems.push(Problem {
                        code: "unknown-field-path",
                        at: r.at.clone(),
                        message: format!(
                            "`{shown}`: {} offers name, id, state and outputs, not `{f}`{hint}",
                            target.label
                        ),
                    });
                    return;
                }
            }
            if let (Some(outputs), Some("outputs")) = (outputs, r.rest.first().map(String::as_str))
            {
                match r.rest.get(1) {
                    None => sensitive = outputs.iter().any(|o| o.sensitive),
                    Some(name) => match outputs.iter().find(|o| o.name == name) {
                        Some(o) => sensitive = o.sensitive,
                        None => {
                            let hint = did_you_mean(name, outputs.iter().map(|o| o.name));
                            let declared: Vec<&str> = outputs.iter().map(|o| o.name).collect();
                            problems.push(Problem {
                                code: "unknown-output",
                                at: r.at.clone(),
                                message: format!(
                                    "`{shown}`: {} declares no output `{name}` (it has {}){hint}",
                                    target.label,
                                    if declared.is_empty() {
                                        "none".to_string()
                                    } else {
                                        declared.join(", ")
                                    }
                                ),
                            });
                            return;
                        }
                    },
                }
            }
        }
        Exposes::Kube { kind, secret } => {
            if let (Some(kind), Some(f)) = (kind, r.rest.first()) {
                let fields = kube_fields(kind);
                if !fields.contains(&f.as_str()) {
                    let hint = did_you_mean(f, fields.iter().copied());
                    problems.push(Problem {
                        code: "unknown-field-path",
                        at: r.at.clone(),
                        message: format!(
                            "`{shown}`: a live {kind} has no field `{f}` (it has {}){hint}",
                            fields.join(", ")
                        ),
                    });
                    return;
                }
            }
            sensitive =
                *secret && matches!(r.rest.first().map(String::as_str), None | Some("data"));
        }
    }
    if sensitive && !r.secret_input {
        problems.push(Problem {
            code: "sensitive-flow",
            at: r.at.clone(),
            message: format!(
                "`{shown}` is sensitive and may flow only into a Secret's data or stringData or a provider's secret input, not into `{}`",
                r.field
            ),
        });
    }
}

/// Kahn's algorithm over "node depends on adj[node]", lowest index first among the ready, so
/// independent nodes keep Katalog order. Nodes on or behind a cycle are appended in index order
/// (the loader refuses such a Katalog; the order only has to be total).
fn topological(adj: &[Vec<usize>]) -> Vec<usize> {
    let n = adj.len();
    let mut waiting_on: Vec<usize> = adj
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.sort_unstable();
            d.dedup();
            d.len()
        })
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, deps) in adj.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for &d in deps {
            if seen.insert(d) {
                dependents[d].push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting_on[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            waiting_on[j] -= 1;
            if waiting_on[j] == 0 {
                ready.insert(j);
            }
        }
    }
    if order.len() < n {
        let placed: BTreeSet<usize> = order.iter().copied().collect();
        order.extend((0..n).filter(|i| !placed.contains(i)));
    }
    order
}

/// The strongly connected components that are cycles (more than one node, or a node reading
/// itself), by Tarjan's algorithm with an explicit stack.
fn cycles(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const NONE: usize = usize::MAX;
    let n = adj.len();
    let (mut index, mut low) = (vec![NONE; n], vec![0usize; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut out, mut next) = (Vec::new(), Vec::new(), 0usize);
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        calls.push((root, 0));
        while let Some(top) = calls.last_mut() {
            let v = top.0;
            if let Some(&w) = adj[v].get(top.1) {
                top.1 += 1;
                if index[w] == NONE {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 || adj[v].contains(&v) {
                    out.push(comp);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(i: usize, id: &str, reads: &[&str]) -> NodeSpec {
        NodeSpec {
            node: NodeRef::Kube(i),
            id: Some((id.to_string(), Path::root().key(id))),
            label: format!("configMaps[{id}]"),
            source: format!("s[{i}]"),
            after: Vec::new(),
            refs: reads
                .iter()
                .map(|r| Ref {
                    id: r.to_string(),
                    rest: vec!["data".into(), "k".into()],
                    at: Path::root().key(id).key("data"),
                    field: "data.k".into(),
                    secret_input: false,
                })
                .collect(),
            exposes: Exposes::Kube {
                kind: Some("ConfigMap"),
                secret: false,
            },
        }
    }

    #[test]
    fn order_puts_every_node_after_what_it_reads_and_keeps_katalog_order_otherwise() {
        let (g, p) = build(
            vec![
                spec(0, "a", &["c"]),
                spec(1, "b", &[]),
                spec(2, "c", &["b"]),
                spec(3, "d", &[]),
            ],
            &[],
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(g.order, vec![1, 2, 0, 3]);
        assert_eq!(g.deletion_order().collect::<Vec<_>>(), vec![3, 0, 2, 1]);
        assert_eq!(g.dependents(2).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn a_cycle_names_every_node_on_it_and_nothing_else() {
        let (_, p) = build(
            vec![
                spec(0, "a", &["b"]),
                spec(1, "b", &["c"]),
                spec(2, "c", &["a"]),
                spec(3, "d", &["a"]),
            ],
            &[],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, "cycle");
        for n in ["configMaps[a]", "configMaps[b]", "configMaps[c]"] {
            assert!(p[0].message.contains(n), "{}", p[0].message);
        }
        assert!(!p[0].message.contains("configMaps[d]"), "{}", p[0].message);
    }

    #[test]
    fn a_node_reading_itself_is_a_cycle() {
        let (_, p) = build(vec![spec(0, "a", &["a"])], &[]);
        assert_eq!(p.iter().map(|p| p.code).collect::<Vec<_>>(), ["cycle"]);
    }

    #[test]
    fn unknown_and_duplicate_ids_are_reported_with_a_hint() {
        let (_, p) = build(
            vec![
                spec(0, "web", &["webb"]),
                spec(1, "web", &[]),
                spec(2, "Bad-id", &[]),
            ],
            &[],
        );
        let codes: Vec<&str> = p.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["duplicate-id", "invalid-id", "unknown-id"], "{p:?}");
        assert!(
            p[2].message.contains("did you mean `web`"),
            "{}",
            p[2].message
        );
    }

    #[test]
    fn a_long_chain_and_a_long_cycle_need_no_recursion() {
        let n = 20_000;
        let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let chain: Vec<NodeSpec> = (0..n)
            .map(|i| {
                let reads: Vec<&str> = if i + 1 < n {
                    vec![ids[i + 1].as_str()]
                } else {
                    vec![]
                };
                spec(i, &ids[i], &reads)
            })
            .collect();
        let (g, p) = build(chain.clone(), &[]);
        assert!(p.is_empty());
        assert_eq!(g.order.first(), Some(&(n - 1)));
        let mut cyclic = chain;
        cyclic[n - 1] = spec(n - 1, &ids[n - 1], &[ids[0].as_str()]);
        let (_, p) = build(cyclic, &[]);
        assert_eq!(p.iter().filter(|p| p.code == "cycle").count(), 1);
    }
}
