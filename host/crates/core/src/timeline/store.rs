//! The bounded store behind [`super::Timeline`]: one [`Track`] per entity
//! in three maps (containers by full id, pods by `namespace/name`, services
//! by id), each track two rings (events, findings), the whole capped in
//! entities with least-recently-active eviction. Every item that leaves
//! other than by a query is counted in [`TimelineMetrics`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::item::Item;
use crate::metrics::TimelineMetrics;
use crate::subjects::Subject;

/// The kind of a tracked entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    Container,
    Pod,
    Service,
}

impl TrackKind {
    /// The name as in `ENTITY` (`container:…`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Pod => "pod",
            Self::Service => "service",
        }
    }
}

/// The bounds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub events_per_entity: usize,
    pub findings_per_entity: usize,
    pub max_age_ns: u64,
    pub max_entities: usize,
}

/// One entity's recent history.
#[derive(Debug, Default)]
pub(crate) struct Track {
    /// A container's or service's name, as last seen (empty for pods).
    pub(crate) name: Box<str>,
    /// A pod's uid, when an event carried it.
    pub(crate) uid: Box<str>,
    /// A Swarm task container's service id (from its labels; empty for
    /// other containers and other kinds), so that what happens to the
    /// container later (network, process events, findings) reaches the
    /// service's timeline as well.
    pub(crate) service: Box<str>,
    pub(crate) events: VecDeque<Arc<Item>>,
    pub(crate) findings: VecDeque<Arc<Item>>,
    /// The store's clock when this track last gained an item (LRU order).
    pub(crate) touched: u64,
}

impl Track {
    fn len(&self) -> usize {
        self.events.len() + self.findings.len()
    }

    /// Drops the items older than `cutoff` from both rings; returns how many.
    fn expire(&mut self, cutoff: u64) -> usize {
        let mut n = 0;
        for ring in [&mut self.events, &mut self.findings] {
            // Items arrive roughly in time order; one that arrived late with
            // an old time is dropped when it reaches the front.
            while ring.front().is_some_and(|i| i.time < cutoff) {
                ring.pop_front();
                n += 1;
            }
        }
        n
    }
}

/// Every tracked entity.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) limits: Limits,
    pub(crate) containers: HashMap<Box<str>, Track>,
    pub(crate) pods: HashMap<Box<str>, Track>,
    pub(crate) services: HashMap<Box<str>, Track>,
    clock: u64,
    items: usize,
    /// Reused to build pod keys without allocating.
    key: String,
    /// Source names, shared by the items of their events.
    sources: Vec<Arc<str>>,
}

impl Store {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            containers: HashMap::new(),
            pods: HashMap::new(),
            services: HashMap::new(),
            clock: 0,
            items: 0,
            key: String::new(),
            sources: Vec::new(),
        }
    }

    /// The shared name of a source (a handful exist).
    pub(crate) fn source(&mut self, name: &str) -> Arc<str> {
        if let Some(s) = self.sources.iter().find(|s| ***s == *name) {
            return s.clone();
        }
        let s: Arc<str> = Arc::from(name);
        // Sources are few; a bound anyway, since the name comes from the event.
        if self.sources.len() < 64 {
            self.sources.push(s.clone());
        }
        s
    }

    pub(crate) fn entities(&self) -> usize {
        self.containers.len() + self.pods.len() + self.services.len()
    }

    pub(crate) fn map(&self, kind: TrackKind) -> &HashMap<Box<str>, Track> {
        match kind {
            TrackKind::Container => &self.containers,
            TrackKind::Pod => &self.pods,
            TrackKind::Service => &self.services,
        }
    }

    fn map_mut(&mut self, kind: TrackKind) -> &mut HashMap<Box<str>, Track> {
        match kind {
            TrackKind::Container => &mut self.containers,
            TrackKind::Pod => &mut self.pods,
            TrackKind::Service => &mut self.services,
        }
    }

    /// Adds `item` to the timeline of `subject` (an event's, or a
    /// finding's when `finding`), at wall time `now`.
    pub(crate) fn push(
        &mut self,
        subject: Subject<'_>,
        item: &Arc<Item>,
        finding: bool,
        now: u64,
        m: &TimelineMetrics,
    ) {
        let cutoff = now.saturating_sub(self.limits.max_age_ns);
        if item.time < cutoff {
            add(&m.counters.expired, 1);
            return;
        }
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        let (kind, name, uid) = match subject {
            Subject::Container { id, name } => {
                key.push_str(id);
                (TrackKind::Container, name, "")
            }
            Subject::Pod {
                namespace,
                name,
                uid,
            } => {
                key.push_str(namespace);
                key.push('/');
                key.push_str(name);
                (TrackKind::Pod, "", uid)
            }
            Subject::Service { id, name } => {
                key.push_str(id);
                (TrackKind::Service, name, "")
            }
        };
        if !self.map(kind).contains_key(key.as_str()) && self.entities() >= self.limits.max_entities
        {
            self.evict_lru(m);
        }
        self.clock += 1;
        let clock = self.clock;
        let limits = self.limits;
        let map = self.map_mut(kind);
        if !map.contains_key(key.as_str()) {
            map.insert(key.as_str().into(), Track::default());
        }
        let Some(track) = map.get_mut(key.as_str()) else {
            self.key = key;
            return;
        };
        if !name.is_empty() && *track.name != *name {
            track.name = name.into();
        }
        if !uid.is_empty() && *track.uid != *uid {
            track.uid = uid.into();
        }
        track.touched = clock;
        let expired = track.expire(cutoff);
        let (ring, cap) = if finding {
            (&mut track.findings, limits.findings_per_entity)
        } else {
            (&mut track.events, limits.events_per_entity)
        };
        let mut overflow = 0;
        while ring.len() >= cap.max(1) {
            ring.pop_front();
            overflow += 1;
        }
        ring.push_back(item.clone());
        self.items = self.items + 1 - overflow - expired;
        self.key = key;
        add(&m.counters.expired, expired as u64);
        add(&m.counters.ring_overflow, overflow as u64);
        let recorded = if finding {
            &m.counters.findings_recorded
        } else {
            &m.counters.events_recorded
        };
        add(recorded, 1);
        self.gauges(m);
    }

    /// Notes that container `id` is a task of service `service` (a
    /// container's service never changes; a first link is kept).
    pub(crate) fn link_service(&mut self, id: &str, service: &str) {
        if let Some(t) = self.containers.get_mut(id)
            && t.service.is_empty()
        {
            t.service = service.into();
        }
    }

    /// The service container `id` is a task of, if known: its id and name.
    pub(crate) fn service_of(&self, id: &str) -> Option<(Box<str>, Box<str>)> {
        let service = &self.containers.get(id)?.service;
        if service.is_empty() {
            return None;
        }
        let name = self
            .services
            .get(&**service)
            .map_or_else(|| Box::from(""), |t| t.name.clone());
        Some((service.clone(), name))
    }

    /// Removes the least recently active entity. A scan: it runs only when
    /// a new entity arrives at the cap, and entities are few (containers
    /// and pods of one node).
    fn evict_lru(&mut self, m: &TimelineMetrics) {
        let oldest = [TrackKind::Container, TrackKind::Pod, TrackKind::Service]
            .into_iter()
            .flat_map(|k| self.map(k).iter().map(move |(key, t)| (t.touched, k, key)))
            .min_by_key(|(touched, _, _)| *touched)
            .map(|(_, k, key)| (k, key.clone()));
        if let Some((kind, key)) = oldest
            && let Some(t) = self.map_mut(kind).remove(&key)
        {
            self.items -= t.len();
            add(&m.counters.entities_evicted, 1);
            add(&m.counters.items_evicted, t.len() as u64);
        }
    }

    /// Drops expired items everywhere and the entities left empty.
    pub(crate) fn sweep(&mut self, now: u64, m: &TimelineMetrics) {
        let cutoff = now.saturating_sub(self.limits.max_age_ns);
        let mut expired = 0;
        for kind in [TrackKind::Container, TrackKind::Pod, TrackKind::Service] {
            self.map_mut(kind).retain(|_, t| {
                expired += t.expire(cutoff);
                t.len() > 0
            });
        }
        self.items -= expired;
        add(&m.counters.expired, expired as u64);
        self.gauges(m);
    }

    /// Drops the expired items of one track (before it is read).
    pub(crate) fn expire_one(&mut self, kind: TrackKind, key: &str, now: u64, m: &TimelineMetrics) {
        let cutoff = now.saturating_sub(self.limits.max_age_ns);
        if let Some(t) = self.map_mut(kind).get_mut(key) {
            let n = t.expire(cutoff);
            self.items -= n;
            add(&m.counters.expired, n as u64);
            self.gauges(m);
        }
    }

    fn gauges(&self, m: &TimelineMetrics) {
        m.entities.store(self.entities() as u64, Ordering::Relaxed);
        m.items.store(self.items as u64, Ordering::Relaxed);
    }

    /// Puts back a track read from a snapshot (at start), within the limits.
    pub(crate) fn restore(&mut self, kind: TrackKind, key: &str, track: Track) {
        if self.entities() >= self.limits.max_entities || track.len() == 0 {
            return;
        }
        self.clock += 1;
        let mut track = track;
        track.touched = self.clock;
        self.items += track.len();
        self.map_mut(kind).insert(key.into(), track);
    }
}

/// Adds `n` to a counter.
fn add(c: &std::sync::atomic::AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
