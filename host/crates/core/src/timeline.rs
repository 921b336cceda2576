//! The timeline: a bounded history of recent events and findings per
//! container, pod and Swarm service, for `vigil timeline ENTITY`, the admin
//! endpoint's `/timeline` and the evidence bundle of a quarantine.
//!
//! Which entities an event is about comes from
//! [`crate::subjects::for_each_subject`], the same mapping that decides what
//! a plugin was shown. Each event becomes one [`Item`] (a one-line summary,
//! not the event), shared by every entity it names; findings are recorded
//! by the delivery pipeline after suppression and dedup (what an operator
//! was told), on the containers and pods the host verified and on the Swarm
//! services those containers are tasks of (a task container's labels link
//! it to its service, as a kubelet's link a container to its pod).
//!
//! Bounds ([`TimelineConfig`]): per entity a ring of events and a ring of
//! findings; an age past which items are dropped; a number of entities past
//! which the least recently active one is evicted. Every item dropped by a
//! bound is counted (`vigil_timeline_*`).
//!
//! Cost on the hot path: the batcher records a whole batch under one lock
//! (never taken by the plugin workers); per event with a subject, one
//! shared item (its summary and id: three small allocations); per event
//! about a container, one more lookup (is it a Swarm task?); an event
//! without a subject costs a match.

mod config;
mod item;
mod query;
mod store;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

pub use config::{MAX_ENTITIES, MAX_EVENTS_PER_ENTITY, MAX_FINDINGS_PER_ENTITY, TimelineConfig};
pub use item::{ID_BYTES, Item, ItemKind, SUMMARY_BYTES};
pub use query::{EntityQuery, QueryError, SYNTAX};
pub use store::{Limits, TrackKind};

use crate::finding_record::FindingRecord;
use crate::metrics::TimelineMetrics;
use crate::model::{EntityKind, Event, ProcessEvent, ServiceEvent, SwarmObject};
use crate::subjects::{MIN_PREFIX, Subject, for_each_subject};
use crate::time::format_rfc3339;
use store::{Store, Track};

/// The schema of a [`Snapshot`] (`DATA_DIR/timeline.json`).
pub const SNAPSHOT_SCHEMA: &str = "vigil.timeline/v1";

/// The shared timeline of a running host.
#[derive(Debug)]
pub struct Timeline {
    store: Mutex<Store>,
    metrics: Arc<TimelineMetrics>,
}

impl Limits {
    /// The bounds `cfg` sets.
    pub fn from_config(cfg: &TimelineConfig) -> Self {
        Self {
            events_per_entity: cfg.events_per_entity,
            findings_per_entity: cfg.findings_per_entity,
            max_age_ns: cfg.max_age_secs.saturating_mul(1_000_000_000),
            max_entities: cfg.max_entities,
        }
    }
}

/// The entity a [`TimelineView`] is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewEntity {
    pub kind: TrackKind,
    /// Full container id, pod `namespace/name`, or service id.
    pub id: String,
    /// A container's or service's name (empty when unknown, and for pods).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A pod's uid, when an event carried it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// One item as a view shows it: with its time in RFC 3339 as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewItem {
    /// `time`, RFC 3339 UTC.
    pub at: String,
    #[serde(flatten)]
    pub item: Item,
}

/// The timeline of one entity, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineView {
    /// The entity as asked (`container:web`).
    pub query: String,
    /// The entity matched, if any.
    pub entity: Option<ViewEntity>,
    /// Other entities the query matched (a container name reused by a new
    /// container): their ids, to ask for by id. The most recently active
    /// match is the one shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_matches: Vec<String>,
    /// Events and findings in time order.
    pub items: Vec<ViewItem>,
    /// The bounds the timeline was kept with.
    pub limits: Limits,
    /// When the view was made (or the snapshot written), RFC 3339 UTC.
    pub as_of: String,
}

impl TimelineView {
    /// Whether an entity matched.
    pub fn found(&self) -> bool {
        self.entity.is_some()
    }
}

/// One entity in a [`Snapshot`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotEntity {
    pub kind: TrackKind,
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// A Swarm task container's service id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    pub events: Vec<Item>,
    pub findings: Vec<Item>,
}

/// The whole timeline, as written to `DATA_DIR/timeline.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always [`SNAPSHOT_SCHEMA`].
    pub schema: String,
    /// When it was written, nanoseconds since the epoch.
    pub written_ns: u64,
    pub limits: Limits,
    pub entities: Vec<SnapshotEntity>,
}

fn lock(m: &Mutex<Store>) -> MutexGuard<'_, Store> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Timeline {
    /// An empty timeline with the bounds of `cfg`.
    pub fn new(cfg: &TimelineConfig, metrics: Arc<TimelineMetrics>) -> Self {
        Self::with_limits(Limits::from_config(cfg), metrics)
    }

    /// An empty timeline with `limits`.
    pub fn with_limits(limits: Limits, metrics: Arc<TimelineMetrics>) -> Self {
        Self {
            store: Mutex::new(Store::new(limits)),
            metrics,
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> Limits {
        lock(&self.store).limits
    }

    /// Applies new bounds (config reload); they take hold as items arrive
    /// and at the next [`sweep`](Self::sweep).
    pub fn set_limits(&self, limits: Limits) {
        lock(&self.store).limits = limits;
    }

    /// Records a batch of events at wall time `now`: one lock for the batch.
    /// A task container's event is its service's as well: directly when it
    /// carries the service's labels (lifecycle events), through the link
    /// those left otherwise (network events).
    pub fn record_events(&self, batch: &[Event], now: u64) {
        let mut store = lock(&self.store);
        for e in batch {
            let mut item: Option<Arc<Item>> = None;
            let (mut task, mut service) = (None, None);
            for_each_subject(e, |s| {
                let it = match &item {
                    Some(it) => it.clone(),
                    None => {
                        let source = store.source(&e.source);
                        let it = Arc::new(Item::of_event(e, source));
                        item = Some(it.clone());
                        it
                    }
                };
                match s {
                    Subject::Container { id, .. } => task = Some(id),
                    Subject::Service { id, .. } => service = Some(id),
                    Subject::Pod { .. } => {}
                }
                store.push(s, &it, false, now, &self.metrics);
            });
            match (task, service, item) {
                (Some(task), Some(service), _) => store.link_service(task, service),
                (Some(task), None, Some(it)) => {
                    push_to_service(&mut store, task, &it, now, &self.metrics);
                }
                _ => {}
            }
        }
    }

    /// Records Swarm service events at wall time `now` under their service
    /// (events about nodes, secrets and configs have no timeline entity).
    pub fn record_services(&self, batch: &[ServiceEvent], now: u64) {
        let mut store = lock(&self.store);
        for e in batch {
            if e.object != SwarmObject::Service {
                continue;
            }
            let source = store.source(&e.source);
            let it = Arc::new(Item::of_service(e, source));
            let subject = Subject::Service {
                id: &e.object_id,
                name: &e.name,
            };
            store.push(subject, &it, false, now, &self.metrics);
        }
    }

    /// Records process events (WIT 0.1.3) at wall time `now` under their
    /// container, its pod and its Swarm service (the host's own processes
    /// have no timeline entity).
    pub fn record_processes(&self, batch: &[ProcessEvent], now: u64) {
        let mut store = lock(&self.store);
        for e in batch {
            let Some(c) = &e.container else { continue };
            let source = store.source(&e.source);
            let it = Arc::new(Item::of_process(e, source));
            if !c.id.is_empty() {
                let subject = Subject::Container {
                    id: &c.id,
                    name: c.name.trim_start_matches('/'),
                };
                store.push(subject, &it, false, now, &self.metrics);
                push_to_service(&mut store, &c.id, &it, now, &self.metrics);
            }
            if let Some((namespace, name)) = c.pod.split_once('/') {
                let subject = Subject::Pod {
                    namespace,
                    name,
                    uid: "",
                };
                store.push(subject, &it, false, now, &self.metrics);
            }
        }
    }

    /// Records a finding (as delivered: after suppression and dedup) on
    /// each container and pod entity the host verified, and on the Swarm
    /// service of each such container that is a task (once per service); an
    /// unverified one is not recorded (a plugin must not write into the
    /// history of an entity it was not shown), counted in
    /// `vigil_timeline_findings_unverified_total`.
    ///
    /// Findings have no service entity kind (WIT): a finding reaches a
    /// service's timeline through the task containers it names, as
    /// container-escape's `swarm-service` finding names the service's tasks
    /// on this node. One naming no task of this node is on no service's
    /// timeline.
    pub fn record_finding(&self, f: &FindingRecord, now: u64) {
        let mut item: Option<Arc<Item>> = None;
        let mut services: Vec<Box<str>> = Vec::new();
        let mut store = lock(&self.store);
        for e in &f.entities {
            let subject = match e.kind {
                EntityKind::Container => Subject::Container {
                    id: &e.id,
                    name: &e.name,
                },
                EntityKind::Pod => match e.id.split_once('/') {
                    Some((namespace, name)) => Subject::Pod {
                        namespace,
                        name,
                        uid: e.uid.as_deref().unwrap_or(""),
                    },
                    None => continue,
                },
                _ => continue,
            };
            if !e.is_verified() {
                self.metrics
                    .counters
                    .findings_unverified
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            let it = item
                .get_or_insert_with(|| Arc::new(Item::of_finding(f, now)))
                .clone();
            store.push(subject, &it, true, now, &self.metrics);
            if e.kind == EntityKind::Container
                && let Some((service, name)) = store.service_of(&e.id)
                && !services.contains(&service)
            {
                let subject = Subject::Service {
                    id: &service,
                    name: &name,
                };
                store.push(subject, &it, true, now, &self.metrics);
                services.push(service);
            }
        }
    }

    /// Drops what is older than the age bound, and the entities left empty.
    pub fn sweep(&self, now: u64) {
        lock(&self.store).sweep(now, &self.metrics);
    }

    /// The timeline of `q` as of `now`.
    pub fn query(&self, q: &EntityQuery, now: u64) -> TimelineView {
        let mut store = lock(&self.store);
        let (found, others) = find(&store, q);
        let mut view = TimelineView {
            query: q.to_string(),
            entity: None,
            other_matches: others,
            items: Vec::new(),
            limits: store.limits,
            as_of: format_rfc3339(now),
        };
        let Some((kind, key)) = found else {
            return view;
        };
        store.expire_one(kind, &key, now, &self.metrics);
        let Some(t) = store.map(kind).get(key.as_str()) else {
            return view;
        };
        view.entity = Some(ViewEntity {
            kind,
            id: key,
            name: t.name.to_string(),
            uid: t.uid.to_string(),
        });
        let mut items: Vec<Arc<Item>> = t.events.iter().chain(&t.findings).cloned().collect();
        drop(store);
        // Stable: events of the same nanosecond keep their arrival order.
        items.sort_by_key(|i| i.time);
        view.items = items
            .into_iter()
            .map(|i| ViewItem {
                at: format_rfc3339(i.time),
                item: (*i).clone(),
            })
            .collect();
        view
    }

    /// Everything held, for `DATA_DIR/timeline.json`. The lock is held
    /// while the items are cloned, not while they are written.
    pub fn snapshot(&self, now: u64) -> Snapshot {
        /// One track's items as shared with the store.
        struct Held {
            kind: TrackKind,
            id: String,
            name: String,
            uid: String,
            service: String,
            events: Vec<Arc<Item>>,
            findings: Vec<Arc<Item>>,
        }
        let store = lock(&self.store);
        let limits = store.limits;
        let mut held = Vec::with_capacity(store.entities());
        for kind in [TrackKind::Container, TrackKind::Pod, TrackKind::Service] {
            for (key, t) in store.map(kind) {
                held.push(Held {
                    kind,
                    id: key.to_string(),
                    name: t.name.to_string(),
                    uid: t.uid.to_string(),
                    service: t.service.to_string(),
                    events: t.events.iter().cloned().collect(),
                    findings: t.findings.iter().cloned().collect(),
                });
            }
        }
        drop(store);
        let own =
            |v: Vec<Arc<Item>>| -> Vec<Item> { v.into_iter().map(|i| (*i).clone()).collect() };
        Snapshot {
            schema: SNAPSHOT_SCHEMA.to_owned(),
            written_ns: now,
            limits,
            entities: held
                .into_iter()
                .map(|h| SnapshotEntity {
                    kind: h.kind,
                    id: h.id,
                    name: h.name,
                    uid: h.uid,
                    service: h.service,
                    events: own(h.events),
                    findings: own(h.findings),
                })
                .collect(),
        }
    }

    /// A timeline holding `snap` within `limits` (a restarted host; or, with
    /// the snapshot's own limits, a stopped host's timeline read back).
    /// Items past the age bound at `now` are dropped.
    pub fn restore(&self, snap: Snapshot, now: u64) {
        let mut store = lock(&self.store);
        let limits = store.limits;
        let cutoff = now.saturating_sub(limits.max_age_ns);
        let keep = |v: Vec<Item>, cap: usize| -> VecDeque<Arc<Item>> {
            let fresh: Vec<Arc<Item>> = v
                .into_iter()
                .filter(|i| i.time >= cutoff)
                .map(Arc::new)
                .collect();
            let skip = fresh.len().saturating_sub(cap);
            fresh.into_iter().skip(skip).collect()
        };
        for e in snap.entities {
            let track = Track {
                name: e.name.into(),
                uid: e.uid.into(),
                service: e.service.into(),
                events: keep(e.events, limits.events_per_entity),
                findings: keep(e.findings, limits.findings_per_entity),
                touched: 0,
            };
            store.restore(e.kind, &e.id, track);
        }
        store.sweep(now, &self.metrics);
    }
}

/// Adds the event `item` (about container `task`) to the timeline of the
/// container's Swarm service, if it is a task of one.
fn push_to_service(store: &mut Store, task: &str, item: &Arc<Item>, now: u64, m: &TimelineMetrics) {
    if let Some((id, name)) = store.service_of(task) {
        store.push(
            Subject::Service {
                id: &id,
                name: &name,
            },
            item,
            false,
            now,
            m,
        );
    }
}

/// The track `q` names (kind, key) and the other tracks it also matched.
fn find(store: &Store, q: &EntityQuery) -> (Option<(TrackKind, String)>, Vec<String>) {
    let (kind, wanted) = match q {
        EntityQuery::Pod { namespace, name } => {
            let key = format!("{namespace}/{name}");
            let hit = store.pods.contains_key(key.as_str());
            return (hit.then_some((TrackKind::Pod, key)), Vec::new());
        }
        EntityQuery::Container(c) => (TrackKind::Container, c.as_str()),
        EntityQuery::Service(s) => (TrackKind::Service, s.as_str()),
    };
    let map = store.map(kind);
    if map.contains_key(wanted) {
        return (Some((kind, wanted.to_owned())), Vec::new());
    }
    let lower = wanted.to_ascii_lowercase();
    let by_prefix = lower.len() >= MIN_PREFIX && lower.bytes().all(|b| b.is_ascii_hexdigit());
    let mut hits: Vec<(&str, u64)> = map
        .iter()
        .filter(|(key, t)| *t.name == *wanted || (by_prefix && key.starts_with(lower.as_str())))
        .map(|(key, t)| (&**key, t.touched))
        .collect();
    // The most recently active first.
    hits.sort_by_key(|h| std::cmp::Reverse(h.1));
    let mut ids = hits.into_iter().map(|(k, _)| k.to_owned());
    let first = ids.next();
    (first.map(|k| (kind, k)), ids.collect())
}
