//! The scheduling of reconciles on a paused clock: kube-runtime's real applier (queue, runner,
//! concurrency) with 10,000 Ready objects, 8 workers, a 30 s resync and 120 ms reconciles, then
//! 100 new objects. No API server: the objects sit in a reflector store fed by hand, because the
//! case is about the queue, and a real cluster could not be driven on a virtual clock. The
//! reconciler stands in for the agent's (`controller::guarded`): it holds a worker slot of the
//! [`DriftSchedule`] while it "works" and files the object for its next drift check after.
//!
//! Run with `--nocapture` to see the figures beside those of kube-runtime's own requeue
//! (`Action::requeue(resync)`, what the agent did before), which serves a fixed subset.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Future, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use kube::runtime::controller::{applier, Action, Config};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::Event;
use orkestra_agent::drift::DriftSchedule;
use tokio::time::Instant;

const WORKERS: usize = 8;
const RESYNC: Duration = Duration::from_secs(30);
const RECONCILE: Duration = Duration::from_millis(120);
/// When the new objects arrive: after one full pass over 10,000 (10,000 × 120 ms ÷ 8 = 150 s).
const NEW_AT: Duration = Duration::from_secs(200);
/// How long after that the run is watched.
const WINDOW: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scheduling {
    /// Ready objects requeue themselves through kube-runtime (the agent before issue 17).
    Requeue,
    /// Ready objects are filed with the drift schedule.
    Drift,
}

#[derive(Debug)]
struct Figures {
    /// Ready objects reconciled at least once before the new ones arrive.
    ready_seen_before_new: usize,
    /// Ready objects drift-checked at least once in the window after the new ones arrive.
    ready_checked_in_window: usize,
    /// New objects reconciled at all.
    new_served: usize,
    /// p99 and max of arrival → first reconcile of the new objects.
    new_p99: Duration,
    new_max: Duration,
    reconciles: usize,
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("sim".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

type Reconcile = Pin<Box<dyn Future<Output = Result<Action, std::io::Error>> + Send>>;

async fn simulate(ready: usize, new: usize, scheduling: Scheduling) -> Figures {
    let t0 = Instant::now();
    let (store, mut writer) = reflector::store::<ConfigMap>();
    writer.apply_watcher_event(&Event::Init);
    for i in 0..ready {
        writer.apply_watcher_event(&Event::InitApply(config_map(&format!("ready-{i}"))));
    }
    writer.apply_watcher_event(&Event::InitDone);

    // The watch's initial list: every object once, as the controller's trigger stream sends it.
    let (tx, rx) = futures::channel::mpsc::unbounded::<ObjectRef<ConfigMap>>();
    for i in 0..ready {
        tx.unbounded_send(ObjectRef::new(&format!("ready-{i}")).within("sim"))
            .unwrap();
    }
    let drift = DriftSchedule::new(WORKERS, RESYNC);
    let cached = store.clone();
    let releases = drift
        .clone()
        .releases(move |key: &ObjectRef<ConfigMap>| cached.get(key).is_some());
    let queue = futures::stream::select(rx, releases).map(Ok::<_, Infallible>);

    let log: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let reconciler = {
        let log = log.clone();
        let drift = drift.clone();
        move |obj: Arc<ConfigMap>, _ctx: Arc<()>| -> Reconcile {
            let log = log.clone();
            let drift = drift.clone();
            Box::pin(async move {
                let key = ObjectRef::from_obj(&*obj);
                let slot = drift.started(key.clone());
                tokio::time::sleep(RECONCILE).await;
                log.lock()
                    .unwrap()
                    .push((obj.metadata.name.clone().unwrap(), Instant::now()));
                let action = match scheduling {
                    Scheduling::Requeue => Action::requeue(RESYNC),
                    Scheduling::Drift => {
                        drift.schedule(key);
                        Action::await_change()
                    }
                };
                drop(slot);
                Ok(action)
            })
        }
    };
    let run = applier(
        reconciler,
        |_, _: &std::io::Error, _| Action::requeue(Duration::from_secs(1)),
        Arc::new(()),
        store,
        queue,
        Config::default().concurrency(u16::try_from(WORKERS).unwrap()),
    )
    .for_each(|_| async {});

    let drive = async {
        tokio::time::sleep_until(t0 + NEW_AT).await;
        for i in 0..new {
            let name = format!("new-{i}");
            writer.apply_watcher_event(&Event::Apply(config_map(&name)));
            tx.unbounded_send(ObjectRef::new(&name).within("sim"))
                .unwrap();
        }
        tokio::time::sleep_until(t0 + NEW_AT + WINDOW).await;
    };
    tokio::select! {
        () = run => panic!("the applier stopped"),
        () = drive => {}
    }

    let log = log.lock().unwrap();
    let new_at = t0 + NEW_AT;
    let mut first_new: HashMap<&str, Duration> = HashMap::new();
    let mut before = HashSet::new();
    let mut window = HashSet::new();
    for (name, at) in log.iter() {
        if name.starts_with("new-") {
            first_new.entry(name).or_insert(*at - new_at);
        } else if *at < new_at {
            before.insert(name.as_str());
        } else {
            window.insert(name.as_str());
        }
    }
    let mut latencies: Vec<Duration> = first_new.values().copied().collect();
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(Duration::MAX)
    };
    Figures {
        ready_seen_before_new: before.len(),
        ready_checked_in_window: window.len(),
        new_served: first_new.len(),
        new_p99: pick(0.99),
        new_max: latencies.last().copied().unwrap_or(Duration::MAX),
        reconciles: log.len(),
    }
}

#[tokio::test(start_paused = true)]
async fn every_ready_object_is_drift_checked_and_new_ones_do_not_wait_behind_them() {
    let idle = simulate(0, 100, Scheduling::Drift).await;
    let drift = simulate(10_000, 100, Scheduling::Drift).await;
    let requeue = simulate(10_000, 100, Scheduling::Requeue).await;
    println!("idle agent, 100 new:               {idle:?}");
    println!("drift schedule, 10,000 Ready + 100: {drift:?}");
    println!("kube-runtime requeue (before):      {requeue:?}");

    assert_eq!(idle.new_served, 100, "{idle:?}");
    assert_eq!(drift.ready_seen_before_new, 10_000, "{drift:?}");
    assert_eq!(
        drift.ready_checked_in_window, 10_000,
        "every Ready object gets its drift check: {drift:?}"
    );
    assert_eq!(drift.new_served, 100, "{drift:?}");
    assert!(
        drift.new_p99 <= idle.new_p99 * 2,
        "new objects beside 10,000 Ready ones wait at most twice as long as on an idle agent: \
         p99 {:?} (max {:?}) vs {:?}",
        drift.new_p99,
        drift.new_max,
        idle.new_p99
    );
    // Drift checks use the time the workers have: about all of it, never more.
    let capacity = (NEW_AT + WINDOW).as_secs_f64() / RECONCILE.as_secs_f64() * WORKERS as f64;
    assert!(
        drift.reconciles as f64 > 0.95 * capacity && drift.reconciles as f64 <= capacity + 1.0,
        "{} reconciles of a capacity of {capacity}",
        drift.reconciles
    );
}
