//! Kubernetes events (events.k8s.io) on CRs and Katalogs. Publishing never fails a reconcile,
//! and notes never carry object contents (so no Secret value can reach an event).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;

/// Longest note the Events API accepts (1 kB).
const MAX_NOTE: usize = 1000;

/// Publishes events as `orkestra-agent`.
pub struct Events {
    recorder: Recorder,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// A recorder reporting as controller `orkestra-agent`, instance `identity`.
    pub fn new(client: kube::Client, identity: String) -> Self {
        let reporter = Reporter {
            controller: "orkestra-agent".into(),
            instance: Some(identity),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// A Normal event on `obj`.
    pub async fn normal(
        &self,
        obj: &DynamicObject,
        ar: &ApiResource,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(
            obj,
            ar,
            event(EventType::Normal, reason, action, note, None),
        )
        .await;
    }

    /// A Normal event on `obj` about another object (a child): one event series per child.
    pub async fn normal_about(
        &self,
        obj: &DynamicObject,
        ar: &ApiResource,
        reason: &str,
        action: &str,
        note: String,
        related: &serde_json::Value,
    ) {
        let s = |p: &str| {
            related
                .pointer(p)
                .and_then(serde_json::Value::as_str)
                .map(String::from)
        };
        let related = ObjectReference {
            api_version: s("/apiVersion"),
            kind: s("/kind"),
            name: s("/metadata/name"),
            namespace: s("/metadata/namespace"),
            uid: s("/metadata/uid"),
            ..ObjectReference::default()
        };
        let e = event(EventType::Normal, reason, action, note, Some(related));
        self.publish(obj, ar, e).await;
    }

    /// A Warning event on `obj`.
    pub async fn warning(
        &self,
        obj: &DynamicObject,
        ar: &ApiResource,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(
            obj,
            ar,
            event(EventType::Warning, reason, action, note, None),
        )
        .await;
    }

    async fn publish(&self, obj: &DynamicObject, ar: &ApiResource, mut event: Event) {
        if let Some(note) = event.note.as_mut().filter(|n| n.len() > MAX_NOTE) {
            let mut cut = MAX_NOTE - 3;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
            note.push_str("...");
        }
        let reference = obj.object_ref(ar);
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, reason = %event.reason, object = ?reference.name, "publishing an event failed");
        }
    }
}

fn event(
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
    secondary: Option<ObjectReference>,
) -> Event {
    Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary,
    }
}
