//! Whether a Kubernetes child is ready, decided from its live object alone.
//!
//! The agent applies a child and gets back the object as the API server holds it; this module
//! answers, without any I/O, whether that object has become what the CR needs — a Deployment
//! rolled out and available *for its current generation*, a Job complete, a claim bound — or what
//! it still lacks, in a message that names the object (`Deployment shop: 1/3 replicas available`).
//! A CR is `Ready` only when every one of its children is (composition.md, rule 2).
//!
//! The rules, per kind (built-in API groups only; a custom kind that happens to share a name is
//! ready once applied):
//!
//! - **Deployment** (`apps`): the controller has observed the object's generation
//!   (`status.observedGeneration >= metadata.generation`), `updatedReplicas` and
//!   `availableReplicas` reach `spec.replicas` (default 1), no replicas of an older template are
//!   left (`status.replicas <= updatedReplicas`, as `kubectl rollout status` checks) and the
//!   `Available` condition is `True`.
//! - **StatefulSet** (`apps`): generation observed, `readyReplicas` and `updatedReplicas` reach
//!   `spec.replicas` (default 1; `updatedReplicas` only with the `RollingUpdate` strategy, less a
//!   `partition`).
//! - **DaemonSet** (`apps`): generation observed, `updatedNumberScheduled` and `numberAvailable`
//!   reach `desiredNumberScheduled`.
//! - **Job** (`batch`): the `Complete` condition is `True`; `Failed=True` is not ready, with the
//!   failure's reason and message.
//! - **Pod** (core): the `Ready` condition is `True` (or the Pod has `Succeeded`); otherwise the
//!   phase and the first container's waiting reason (`ImagePullBackOff`).
//! - **PersistentVolumeClaim** (core): `status.phase` is `Bound`.
//! - Everything else (Service, ConfigMap, Secret, ServiceAccount, RBAC, CronJob, Ingress, custom
//!   kinds): ready once applied.
//!
//! Not implemented here: composition.md's `readyWhen:` override (it needs the Katalog model to
//! carry the condition per entry).

use serde_json::Value;

/// The answer for one child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The child is what the CR needs.
    Ready,
    /// Not yet (or not any more); `message` names the object and what it lacks.
    NotReady {
        /// E.g. `Deployment shop: 1/3 replicas available`.
        message: String,
    },
}

impl Readiness {
    /// Whether this is [`Readiness::Ready`].
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }

    /// The message of a [`Readiness::NotReady`].
    pub fn message(&self) -> Option<&str> {
        match self {
            Readiness::Ready => None,
            Readiness::NotReady { message } => Some(message),
        }
    }
}

/// How many not-ready children [`summary`] names before it only counts the rest.
pub const SHOWN: usize = 3;

/// The readiness of a child of `kind` from its live object (as the API server returned it). The
/// object's `apiVersion`, when present, must be the kind's built-in group for a rule to apply.
pub fn of(kind: &str, live: &Value) -> Readiness {
    let group = live
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(|av| av.split_once('/').map_or("", |(g, _)| g));
    let builtin = |g: &str| group.is_none_or(|have| have == g);
    let name = live
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let what = format!("{kind} {name}");
    let verdict = match kind {
        "Deployment" if builtin("apps") => deployment(live),
        "StatefulSet" if builtin("apps") => stateful_set(live),
        "DaemonSet" if builtin("apps") => daemon_set(live),
        "Job" if builtin("batch") => job(live),
        "Pod" if builtin("") => pod(live),
        "PersistentVolumeClaim" if builtin("") => claim(live),
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => Readiness::Ready,
        Err(lack) => Readiness::NotReady {
            message: format!("{what}: {lack}"),
        },
    }
}

/// One line for a CR's `Ready=False` message from the messages of its not-ready children:
/// the first [`SHOWN`] joined with `; `, then how many more. `None` when every child is ready.
pub fn summary(messages: &[String]) -> Option<String> {
    if messages.is_empty() {
        return None;
    }
    let mut s = messages
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if messages.len() > SHOWN {
        s.push_str(&format!("; and {} more not ready", messages.len() - SHOWN));
    }
    Some(s)
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// `(status, reason, message)` of the condition `type_`.
fn condition<'a>(v: &'a Value, type_: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let c = v
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
    Some((s("status"), s("reason"), s("message")))
}

/// The controller has seen the current spec (`observedGeneration >= generation`).
fn generation_observed(v: &Value) -> Result<(), String> {
    let Some(generation) = int(v, "/metadata/generation") else {
        return Ok(());
    };
    match int(v, "/status/observedGeneration") {
        Some(o) if o >= generation => Ok(()),
        Some(o) => Err(format!(
            "generation {generation} not observed yet by its controller (observed {o})"
        )),
        None => Err(format!(
            "generation {generation} not observed yet by its controller"
        )),
    }
}

fn deployment(v: &Value) -> Result<(), String> {
    generation_observed(v)?;
    let want = int(v, "/spec/replicas").unwrap_or(1);
    let updated = int(v, "/status/updatedReplicas").unwrap_or(0);
    let available = int(v, "/status/availableReplicas").unwrap_or(0);
    let total = int(v, "/status/replicas").unwrap_or(0);
    let stalled = condition(v, "Progressing")
        .filter(|(s, r, _)| *s == "False" && *r == "ProgressDeadlineExceeded")
        .map(|(_, _, m)| format!(" (ProgressDeadlineExceeded: {m})"))
        .unwrap_or_default();
    if updated < want {
        return Err(format!("{updated}/{want} replicas updated{stalled}"));
    }
    if total > updated {
        return Err(format!(
            "{} old replicas pending termination{stalled}",
            total - updated
        ));
    }
    if available < want {
        return Err(format!("{available}/{want} replicas available{stalled}"));
    }
    match condition(v, "Available") {
        Some(("True", _, _)) => Ok(()),
        Some((_, reason, message)) => Err(format!("not Available ({reason}: {message})")),
        None => Err("no Available condition yet".into()),
    }
}

fn stateful_set(v: &Value) -> Result<(), String> {
    generation_observed(v)?;
    let want = int(v, "/spec/replicas").unwrap_or(1);
    let ready = int(v, "/status/readyReplicas").unwrap_or(0);
    let strategy = v
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate");
    if strategy == "RollingUpdate" {
        let partition = int(v, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
        let want_updated = (want - partition).max(0);
        let updated = int(v, "/status/updatedReplicas").unwrap_or(0);
        if updated < want_updated {
            return Err(format!("{updated}/{want_updated} replicas updated"));
        }
    }
    if ready < want {
        return Err(format!("{ready}/{want} replicas ready"));
    }
    Ok(())
}

fn daemon_set(v: &Value) -> Result<(), String> {
    generation_observed(v)?;
    let Some(desired) = int(v, "/status/desiredNumberScheduled") else {
        return Err("not scheduled by its controller yet".into());
    };
    let updated = int(v, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(v, "/status/numberAvailable").unwrap_or(0);
    if updated < desired {
        return Err(format!("{updated}/{desired} scheduled pods updated"));
    }
    if available < desired {
        return Err(format!("{available}/{desired} scheduled pods available"));
    }
    Ok(())
}

fn job(v: &Value) -> Result<(), String> {
    if let Some(("True", _, _)) = condition(v, "Complete") {
        return Ok(());
    }
    if let Some(("True", reason, message)) = condition(v, "Failed") {
        let reason = if reason.is_empty() { "Failed" } else { reason };
        return Err(if message.is_empty() {
            format!("failed ({reason})")
        } else {
            format!("failed ({reason}: {message})")
        });
    }
    let active = int(v, "/status/active").unwrap_or(0);
    let succeeded = int(v, "/status/succeeded").unwrap_or(0);
    let completions = int(v, "/spec/completions").unwrap_or(1);
    Err(format!(
        "not complete ({succeeded}/{completions} succeeded, {active} active)"
    ))
}

fn pod(v: &Value) -> Result<(), String> {
    let phase = v
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    if phase == "Succeeded" {
        return Ok(());
    }
    if let Some(("True", _, _)) = condition(v, "Ready") {
        return Ok(());
    }
    let waiting = v
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|c| {
            c.pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .map(|r| format!(", container {}: {r}", c["name"].as_str().unwrap_or("?")))
        })
        .unwrap_or_default();
    Err(format!("not Ready (phase {phase}{waiting})"))
}

fn claim(v: &Value) -> Result<(), String> {
    match v.pointer("/status/phase").and_then(Value::as_str) {
        Some("Bound") => Ok(()),
        Some(phase) => Err(format!("phase {phase}, not Bound")),
        None => Err("not Bound yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn not_ready(r: Readiness) -> String {
        match r {
            Readiness::NotReady { message } => message,
            Readiness::Ready => panic!("expected NotReady"),
        }
    }

    fn deploy(generation: i64, replicas: Option<i64>, status: Value) -> Value {
        let mut spec = json!({});
        if let Some(r) = replicas {
            spec["replicas"] = json!(r);
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "shop", "generation": generation},
               "spec": spec, "status": status})
    }

    fn available(status: &str) -> Value {
        json!([{"type": "Available", "status": status, "reason": "MinimumReplicasAvailable", "message": "m"}])
    }

    #[test]
    fn a_deployment_just_created_has_no_status_and_is_not_ready() {
        let d = deploy(1, Some(3), json!({}));
        assert_eq!(
            not_ready(of("Deployment", &d)),
            "Deployment shop: generation 1 not observed yet by its controller"
        );
    }

    #[test]
    fn a_deployment_counts_available_replicas() {
        let d = deploy(
            1,
            Some(3),
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                   "availableReplicas": 1, "conditions": available("False")}),
        );
        assert_eq!(
            not_ready(of("Deployment", &d)),
            "Deployment shop: 1/3 replicas available"
        );
        let d = deploy(
            1,
            Some(3),
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                   "availableReplicas": 3, "readyReplicas": 3, "conditions": available("True")}),
        );
        assert_eq!(of("Deployment", &d), Readiness::Ready);
    }

    #[test]
    fn a_deployment_whose_generation_the_controller_has_not_seen_is_not_ready() {
        // Fully available, but for the previous spec (generation 1): the new one is not rolled out.
        let d = deploy(
            2,
            Some(3),
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                   "availableReplicas": 3, "conditions": available("True")}),
        );
        assert_eq!(
            not_ready(of("Deployment", &d)),
            "Deployment shop: generation 2 not observed yet by its controller (observed 1)"
        );
    }

    #[test]
    fn a_deployment_mid_rollout_is_not_ready() {
        let d = deploy(
            2,
            Some(3),
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1,
                   "availableReplicas": 3, "conditions": available("True")}),
        );
        assert_eq!(
            not_ready(of("Deployment", &d)),
            "Deployment shop: 1/3 replicas updated"
        );
        let d = deploy(
            2,
            Some(3),
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3,
                   "availableReplicas": 3, "conditions": available("True")}),
        );
        assert_eq!(
            not_ready(of("Deployment", &d)),
            "Deployment shop: 1 old replicas pending termination"
        );
    }

    #[test]
    fn a_deployment_without_replicas_wants_one() {
        let none = deploy(
            1,
            None,
            json!({"observedGeneration": 1, "conditions": available("False")}),
        );
        assert_eq!(
            not_ready(of("Deployment", &none)),
            "Deployment shop: 0/1 replicas updated"
        );
        let one = deploy(
            1,
            None,
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                   "availableReplicas": 1, "conditions": available("True")}),
        );
        assert_eq!(of("Deployment", &one), Readiness::Ready);
    }

    #[test]
    fn a_deployment_scaled_to_zero_is_ready_once_available() {
        let d = deploy(
            1,
            Some(0),
            json!({"observedGeneration": 1, "conditions": available("True")}),
        );
        assert_eq!(of("Deployment", &d), Readiness::Ready);
    }

    #[test]
    fn a_deployment_needs_the_available_condition_and_names_a_stalled_rollout() {
        let d = deploy(
            1,
            Some(1),
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(
            not_ready(of("Deployment", &d)),
            "Deployment shop: no Available condition yet"
        );
        let d = deploy(
            1,
            Some(2),
            json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 0,
                   "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                   "message": "ReplicaSet \"shop-1\" has timed out progressing."}]}),
        );
        assert_eq!(
            not_ready(of("Deployment", &d)),
            "Deployment shop: 0/2 replicas available (ProgressDeadlineExceeded: ReplicaSet \"shop-1\" has timed out progressing.)"
        );
    }

    #[test]
    fn a_custom_kind_named_like_a_builtin_is_ready_once_applied() {
        let d =
            json!({"apiVersion": "example.io/v1", "kind": "Deployment", "metadata": {"name": "x"}});
        assert_eq!(of("Deployment", &d), Readiness::Ready);
    }

    fn sts(generation: i64, replicas: Option<i64>, status: Value) -> Value {
        let mut v = deploy(generation, replicas, status);
        v["kind"] = json!("StatefulSet");
        v["metadata"]["name"] = json!("db");
        v
    }

    #[test]
    fn a_stateful_set_needs_its_generation_and_ready_updated_replicas() {
        let lag = sts(
            3,
            Some(2),
            json!({"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2}),
        );
        assert_eq!(
            not_ready(of("StatefulSet", &lag)),
            "StatefulSet db: generation 3 not observed yet by its controller (observed 2)"
        );
        let updating = sts(
            3,
            Some(2),
            json!({"observedGeneration": 3, "readyReplicas": 2, "updatedReplicas": 1}),
        );
        assert_eq!(
            not_ready(of("StatefulSet", &updating)),
            "StatefulSet db: 1/2 replicas updated"
        );
        let starting = sts(
            3,
            Some(2),
            json!({"observedGeneration": 3, "readyReplicas": 1, "updatedReplicas": 2}),
        );
        assert_eq!(
            not_ready(of("StatefulSet", &starting)),
            "StatefulSet db: 1/2 replicas ready"
        );
        let done = sts(
            3,
            Some(2),
            json!({"observedGeneration": 3, "readyReplicas": 2, "updatedReplicas": 2}),
        );
        assert_eq!(of("StatefulSet", &done), Readiness::Ready);
        let default_one = sts(1, None, json!({"observedGeneration": 1}));
        assert_eq!(
            not_ready(of("StatefulSet", &default_one)),
            "StatefulSet db: 0/1 replicas updated"
        );
        let mut on_delete = sts(
            1,
            Some(1),
            json!({"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 0}),
        );
        on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert_eq!(of("StatefulSet", &on_delete), Readiness::Ready);
    }

    #[test]
    fn a_daemon_set_counts_scheduled_pods() {
        let ds = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                   "metadata": {"name": "agent", "generation": 2}, "status": status})
        };
        assert_eq!(
            not_ready(of("DaemonSet", &ds(json!({"observedGeneration": 1})))),
            "DaemonSet agent: generation 2 not observed yet by its controller (observed 1)"
        );
        assert_eq!(
            not_ready(of(
                "DaemonSet",
                &ds(json!({"observedGeneration": 2, "desiredNumberScheduled": 3,
                           "updatedNumberScheduled": 3, "numberAvailable": 2}))
            )),
            "DaemonSet agent: 2/3 scheduled pods available"
        );
        assert_eq!(
            of(
                "DaemonSet",
                &ds(json!({"observedGeneration": 2, "desiredNumberScheduled": 3,
                           "updatedNumberScheduled": 3, "numberAvailable": 3}))
            ),
            Readiness::Ready
        );
    }

    #[test]
    fn a_job_is_ready_when_complete_and_names_its_failure() {
        let j = |status: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}, "status": status});
        assert_eq!(
            not_ready(of("Job", &j(json!({"active": 1})))),
            "Job migrate: not complete (0/1 succeeded, 1 active)"
        );
        assert_eq!(
            of(
                "Job",
                &j(json!({"succeeded": 1, "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True"},
                    {"type": "Complete", "status": "True"}]}))
            ),
            Readiness::Ready
        );
        assert_eq!(
            not_ready(of(
                "Job",
                &j(json!({"failed": 6, "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit"}]}))
            )),
            "Job migrate: failed (BackoffLimitExceeded: Job has reached the specified backoff limit)"
        );
    }

    #[test]
    fn a_pod_needs_its_ready_condition() {
        let p = |status: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": status});
        assert_eq!(
            not_ready(of(
                "Pod",
                &p(json!({"phase": "Pending", "containerStatuses": [
                    {"name": "web", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}))
            )),
            "Pod p: not Ready (phase Pending, container web: ImagePullBackOff)"
        );
        assert_eq!(
            of(
                "Pod",
                &p(
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
                )
            ),
            Readiness::Ready
        );
        assert_eq!(
            not_ready(of(
                "Pod",
                &p(
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]})
                )
            )),
            "Pod p: not Ready (phase Running)"
        );
        assert_eq!(
            of("Pod", &p(json!({"phase": "Succeeded"}))),
            Readiness::Ready
        );
    }

    #[test]
    fn a_claim_must_be_bound() {
        let c = |status: Value| json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "status": status});
        assert_eq!(
            not_ready(of("PersistentVolumeClaim", &c(json!({"phase": "Pending"})))),
            "PersistentVolumeClaim data: phase Pending, not Bound"
        );
        assert_eq!(
            of("PersistentVolumeClaim", &c(json!({"phase": "Bound"}))),
            Readiness::Ready
        );
    }

    #[test]
    fn other_kinds_are_ready_once_applied() {
        for kind in [
            "Service",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "ClusterRole",
            "RoleBinding",
            "CronJob",
            "Ingress",
            "Widget",
        ] {
            let v = json!({"kind": kind, "metadata": {"name": "x"}});
            assert_eq!(of(kind, &v), Readiness::Ready, "{kind}");
        }
    }

    #[test]
    fn the_summary_names_the_first_few_and_counts_the_rest() {
        assert_eq!(summary(&[]), None);
        let one = vec!["Deployment a: 0/1 replicas available".to_string()];
        assert_eq!(
            summary(&one).as_deref(),
            Some("Deployment a: 0/1 replicas available")
        );
        let many: Vec<String> = (0..5).map(|i| format!("Job j{i}: not complete")).collect();
        assert_eq!(
            summary(&many).as_deref(),
            Some("Job j0: not complete; Job j1: not complete; Job j2: not complete; and 2 more not ready")
        );
    }
}
