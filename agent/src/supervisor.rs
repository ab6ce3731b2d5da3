//! The set of running Katalogs: starts, updates and stops entry controllers as Katalogs appear,
//! change and go, refuses Katalogs that do not load, and reports all of it on each Katalog's status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use orkestra_engine::{Katalog, Loaded};
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::context::AgentContext;
use crate::controller::{self, EntryController, Phase};
use crate::error::KubeContext;
use crate::katalog_doc;

/// Field manager of Katalog status.
pub const FIELD_MANAGER: &str = "orkestra-agent-katalog";

/// The Katalog kind (cluster-scoped, `orkestra.orkspace.io/v1`).
pub fn katalog_resource() -> ApiResource {
    ApiResource {
        group: "orkestra.orkspace.io".into(),
        version: "v1".into(),
        api_version: "orkestra.orkspace.io/v1".into(),
        kind: "Katalog".into(),
        plural: "katalogs".into(),
    }
}

/// One Katalog as the agent runs it.
#[derive(Debug)]
struct KatalogRun {
    /// Hash of the loaded document: an unchanged Katalog is not restarted.
    hash: String,
    generation: Option<i64>,
    /// `None` when accepted, else why not.
    refused: Option<String>,
    diagnostics: Vec<Value>,
    controllers: Vec<EntryController>,
    /// Entries not started because another Katalog already runs their kind.
    conflicts: Vec<(String, String, String, String)>,
    /// A Katalog object in the cluster (its status is written), not a file.
    in_cluster: bool,
    /// When Accepted last flipped.
    transition: String,
    last_written: Option<Value>,
}

/// Runs Katalogs.
#[derive(Debug)]
pub struct Supervisor {
    agent: Arc<AgentContext>,
    katalogs: Mutex<BTreeMap<String, KatalogRun>>,
}

impl Supervisor {
    /// No Katalogs yet.
    pub fn new(agent: Arc<AgentContext>) -> Self {
        Self {
            agent,
            katalogs: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, KatalogRun>> {
        self.katalogs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Names of the Katalogs known.
    pub fn names(&self) -> BTreeSet<String> {
        self.lock().keys().cloned().collect()
    }

    /// Run (or keep running, or restart) the Katalog object `obj`. `Some(accepted)` when it was
    /// (re)loaded, `None` when its content had not changed.
    pub fn apply_object(&self, obj: &DynamicObject) -> Option<bool> {
        let value = serde_json::to_value(obj).unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        match katalog_doc::load_object(&value, &self.agent.provider_schemas) {
            Ok((file, loaded)) => {
                self.apply(&name, &file.text, obj.metadata.generation, loaded, true)
            }
            Err(e) => {
                let loaded = Loaded {
                    katalog: None,
                    diagnostics: Vec::new(),
                    uses: Vec::new(),
                };
                tracing::warn!(katalog = %name, error = %e, "Katalog object could not be read");
                self.apply(&name, &e.to_string(), obj.metadata.generation, loaded, true)
            }
        }
    }

    /// Run a loaded Katalog under `name`. `text` identifies its content (unchanged text, no
    /// restart: `None`); otherwise `Some(accepted)`.
    pub fn apply(
        &self,
        name: &str,
        text: &str,
        generation: Option<i64>,
        loaded: Loaded,
        in_cluster: bool,
    ) -> Option<bool> {
        let hash: String = sha2::Sha256::digest(text.as_bytes())
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut all = self.lock();
        if let Some(run) = all.get_mut(name) {
            if run.hash == hash {
                run.generation = generation;
                return None;
            }
        }
        let previous = all.remove(name);
        let was_accepted = previous.as_ref().map(|p| p.refused.is_none());
        let previous_transition = previous.as_ref().map(|p| p.transition.clone());
        // Stop the old controllers before starting new ones for the same kinds.
        drop(previous);
        let diagnostics: Vec<Value> = loaded
            .diagnostics
            .iter()
            .map(katalog_doc::diagnostic_json)
            .collect();
        let mut run = KatalogRun {
            hash,
            generation,
            refused: None,
            diagnostics,
            controllers: Vec::new(),
            conflicts: Vec::new(),
            in_cluster,
            transition: String::new(),
            last_written: None,
        };
        match loaded.katalog {
            None => {
                let summary = katalog_doc::error_summary(&loaded.diagnostics);
                let why = if summary.is_empty() {
                    "the Katalog did not load".to_string()
                } else {
                    summary
                };
                tracing::warn!(katalog = %name, reason = %why, "Katalog refused");
                run.refused = Some(why);
            }
            Some(k) => {
                let katalog = Arc::new(k);
                let mut starting = Vec::new();
                for (i, entry) in katalog.entries.iter().enumerate() {
                    let (av, kind) = (entry.api.api_version(), entry.api.kind.clone());
                    let owner = all.iter().find_map(|(other, r)| {
                        r.controllers
                            .iter()
                            .any(|c| c.api_version == av && c.kind == kind)
                            .then(|| other.clone())
                    });
                    if let Some(other) = owner {
                        let msg = format!("{kind}.{av} is already run by Katalog {other}");
                        tracing::warn!(katalog = %name, entry = %entry.name, "{msg}");
                        run.conflicts.push((entry.name.clone(), av, kind, msg));
                        continue;
                    }
                    starting.push((i, Arc::new(controller::EntryStats::new())));
                }
                // Every started entry's figures, for the entries that depend on it.
                let siblings: Arc<controller::Siblings> = Arc::new(
                    starting
                        .iter()
                        .map(|(i, s)| (katalog.entries[*i].name.clone(), s.clone()))
                        .collect(),
                );
                for (i, stats) in starting {
                    run.controllers.push(controller::start(
                        self.agent.clone(),
                        katalog.clone(),
                        i,
                        stats,
                        siblings.clone(),
                    ));
                }
                tracing::info!(katalog = %name, entries = katalog.entries.len(), "Katalog accepted");
            }
        }
        let accepted = run.refused.is_none();
        run.transition = match (was_accepted, previous_transition) {
            (Some(a), Some(t)) if a == accepted => t,
            _ => orkestra_provider::status::now_rfc3339(),
        };
        all.insert(name.to_string(), run);
        Some(accepted)
    }

    /// Stop the Katalog `name` (its object was deleted).
    pub fn remove(&self, name: &str) {
        if self.lock().remove(name).is_some() {
            tracing::info!(katalog = %name, "Katalog removed; its controllers stopped");
        }
    }

    /// Stop every in-cluster Katalog not in `keep` (after a re-list).
    pub fn retain(&self, keep: &BTreeSet<String>) {
        self.lock()
            .retain(|name, run| !run.in_cluster || keep.contains(name));
    }

    /// Whether `name` runs and was accepted.
    pub fn accepted(&self, name: &str) -> Option<bool> {
        self.lock().get(name).map(|r| r.refused.is_none())
    }

    /// Update CR counts in metrics and write each in-cluster Katalog's status when it changed
    /// (leader only).
    pub async fn report(&self) {
        let mut pending = Vec::new();
        {
            let all = self.lock();
            for (name, run) in all.iter() {
                for c in &run.controllers {
                    let crd = crate::metrics::CrdLabels { crd: c.crd.clone() };
                    self.agent
                        .metrics
                        .managed
                        .get_or_create(&crd)
                        .set(c.stats.managed() as i64);
                    self.agent
                        .metrics
                        .failing
                        .get_or_create(&crd)
                        .set(c.stats.failing() as i64);
                }
                if !run.in_cluster {
                    continue;
                }
                let status = status_of(run);
                if run.last_written.as_ref() != Some(&status) {
                    pending.push((name.clone(), status));
                }
            }
        }
        if !self.agent.is_leader() {
            return;
        }
        let api: Api<DynamicObject> = Api::all_with(self.agent.client.clone(), &katalog_resource());
        for (name, status) in pending {
            let patch = json!({"apiVersion": "orkestra.orkspace.io/v1", "kind": "Katalog", "metadata": {"name": name}, "status": status});
            let r = api
                .patch_status(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await
                .ctx(|| format!("writing the status of Katalog {name}"));
            match r {
                Ok(_) => {
                    if let Some(run) = self.lock().get_mut(&name) {
                        run.last_written = Some(status);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Katalog status not written"),
            }
        }
    }

    /// Post an event on a refused Katalog object (leader only).
    pub async fn refused_event(&self, obj: &DynamicObject) {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let why = self.lock().get(&name).and_then(|r| r.refused.clone());
        if let (Some(why), true) = (why, self.agent.is_leader()) {
            self.agent
                .events
                .warning(obj, &katalog_resource(), "KatalogInvalid", "Load", why)
                .await;
        }
    }
}

/// A Katalog's status: Accepted, diagnostics, one row per CRD entry.
fn status_of(run: &KatalogRun) -> Value {
    let (status, reason, message) = match &run.refused {
        None => (
            "True",
            "Loaded",
            format!(
                "{} CRD entries",
                run.controllers.len() + run.conflicts.len()
            ),
        ),
        Some(why) => ("False", "Invalid", why.clone()),
    };
    let mut crds: Vec<Value> = run
        .controllers
        .iter()
        .map(|c| {
            let (controller, message) = match c.stats.phase() {
                Phase::Starting => ("Starting", String::new()),
                Phase::WaitingForCrd(m) => ("WaitingForCRD", m),
                Phase::WaitingForDependency(m) => ("WaitingForDependency", m),
                Phase::Running => ("Running", String::new()),
            };
            json!({
                "name": c.name, "apiVersion": c.api_version, "kind": c.kind,
                "controller": controller, "message": message,
                "managed": c.stats.managed(), "failing": c.stats.failing(),
            })
        })
        .collect();
    for (name, av, kind, msg) in &run.conflicts {
        crds.push(json!({"name": name, "apiVersion": av, "kind": kind, "controller": "Conflict", "message": msg, "managed": 0, "failing": 0}));
    }
    let mut condition = json!({
        "type": "Accepted", "status": status, "reason": reason, "message": message,
        "lastTransitionTime": run.transition,
    });
    let mut s = json!({"conditions": [], "diagnostics": run.diagnostics, "crds": crds});
    if let Some(g) = run.generation {
        condition["observedGeneration"] = json!(g);
        s["observedGeneration"] = json!(g);
    }
    s["conditions"] = json!([condition]);
    s
}

/// Run the Katalog files of `--katalog` (refusing the agent's start when one does not load).
pub fn apply_files(
    sup: &Supervisor,
    files: &[std::path::PathBuf],
) -> Result<(), crate::error::Error> {
    for path in files {
        let (file, loaded) = katalog_doc::load_path(path, &sup.agent.provider_schemas)?;
        let name = loaded
            .katalog
            .as_ref()
            .map_or_else(|| path.display().to_string(), |k: &Katalog| k.name.clone());
        for d in &loaded.diagnostics {
            tracing::warn!("{}", d.render(Some(&file)));
        }
        let summary = katalog_doc::error_summary(&loaded.diagnostics);
        if sup.apply(&name, &file.text, None, loaded, false) == Some(false) {
            return Err(crate::error::Error::Katalog {
                name,
                message: summary,
            });
        }
    }
    Ok(())
}

impl Supervisor {
    /// Stop every Katalog's controllers (at shutdown).
    pub fn stop_all(&self) {
        self.lock().clear();
    }
}
