//! Watching Katalog objects: each change starts, updates or stops controllers; a re-list after
//! a watch expiry or an API server restart reconciles the whole set.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio_util::sync::CancellationToken;

use crate::context::AgentContext;
use crate::health::Probes;
use crate::supervisor::{katalog_resource, Supervisor};

/// How often Katalog status (CR counts, controller phases) is refreshed.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Watch Katalogs until `shutdown`.
pub async fn watch(
    agent: Arc<AgentContext>,
    sup: Arc<Supervisor>,
    probes: Arc<Probes>,
    shutdown: CancellationToken,
) {
    let api: Api<DynamicObject> = Api::all_with(agent.client.clone(), &katalog_resource());
    let mut wc = watcher::Config::default();
    if let Some(sel) = &agent.config.katalog_selector {
        wc = wc.labels(sel);
    }
    let mut events = watcher::watcher(api, wc).default_backoff().boxed();
    let mut listing: Option<BTreeSet<String>> = None;
    let mut report = tokio::time::interval(REPORT_EVERY);
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = report.tick() => {
                sup.report().await;
                continue;
            }
            e = events.next() => match e {
                Some(e) => e,
                None => return,
            },
        };
        match event {
            Ok(Event::Init) => listing = Some(BTreeSet::new()),
            Ok(Event::InitApply(obj)) => {
                if let (Some(l), Some(n)) = (listing.as_mut(), obj.metadata.name.clone()) {
                    l.insert(n);
                }
                applied(&sup, &obj).await;
            }
            Ok(Event::InitDone) => {
                if let Some(l) = listing.take() {
                    sup.retain(&l);
                }
                probes.set_ready();
                sup.report().await;
            }
            Ok(Event::Apply(obj)) => {
                applied(&sup, &obj).await;
                sup.report().await;
            }
            Ok(Event::Delete(obj)) => {
                if let Some(n) = &obj.metadata.name {
                    sup.remove(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "watching Katalogs (retrying with backoff)"),
        }
    }
}

async fn applied(sup: &Supervisor, obj: &DynamicObject) {
    if sup.apply_object(obj) == Some(false) {
        sup.refused_event(obj).await;
    }
}
