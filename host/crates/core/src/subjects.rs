//! What a plugin was shown, so that what it says can be checked.
//!
//! A plugin's findings name entities; the host does not take a plugin's word
//! for which container or pod a finding is about, because the response stage
//! acts on those names (issue 10: a plugin that named a container it was
//! never shown had it disconnected, paused and renamed). Each plugin's runner
//! keeps a [`SubjectWindow`]: for each event handed to that plugin recently,
//! the container (id, name) and pod (`namespace/name`, uid when the event
//! carried it) it is about, by event id; and for each other plugin's finding
//! handed to it (`correlate`), the containers and pods the host verified for
//! that finding, by finding id. A finding's `container` and `pod` entities
//! are checked against the subjects of the events (or findings) **it cites**
//! in `event-ids` ([`SubjectWindow::check`]), so a plugin shown containers A
//! and B cannot name B on a finding about A's event:
//!
//! - a container is verified when its id is the id of a cited container, a
//!   prefix of at least [`MIN_PREFIX`] hex digits of exactly one cited id,
//!   or (id empty, or not an id) the name of exactly one cited container.
//!   The host then fills in the full id and the latest name it was shown;
//! - a pod is verified when its id is the `namespace/name` of a cited pod;
//!   the uid the events showed, if any, comes with it;
//! - everything else is unverified (kept, marked `"verified": false`), and
//!   so is every container and pod of a finding that cites no event the
//!   plugin was shown within the window: a finding that cites nothing
//!   verifies nothing. Every built-in plugin cites the events its findings
//!   are about (a tick finding cites the events it counted).
//!
//! At most [`MAX_CITED`] of a finding's event ids are looked up.
//!
//! Entities of other kinds are not checked.
//!
//! Bounds: two generations, each of at most [`GENERATION_CAP`] containers,
//! as many pods, and [`EVENTS_PER_SUBJECT`] times as many cited-able events
//! (and findings); the current one becomes the previous one after
//! [`GENERATION_TTL`] or when one of them is full. An event stays citable for
//! at least one and at most two generations after it was handed over (so a
//! finding a plugin makes on a tick, minutes after the events, still
//! verifies), and memory stays bounded whatever the event rate: at high
//! rates the window is the latest `2 × EVENTS_PER_SUBJECT × GENERATION_CAP`
//! events rather than 20 minutes. Event ids are kept as 64-bit hashes keyed
//! by a random key per window (a plugin cannot pick an id that collides with
//! another event's without knowing the key); the subjects as shared
//! references to the container and pod tables. Recording an event whose
//! subjects are already in the current generation costs three hash lookups
//! and one insert, without allocation (beyond the tables' growth).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod audit_pod_uids;
mod event;

pub use event::{Subject, for_each_subject};

use crate::model::{Entity, EntityKind, Event, Finding, ProcessEvent};

/// How long one generation lasts: an event stays citable for between one
/// and two of these after it was handed over.
pub const GENERATION_TTL: Duration = Duration::from_secs(10 * 60);
/// Containers (and, separately, pods) one generation holds.
pub const GENERATION_CAP: usize = 2048;
/// Events (and, separately, findings) one generation holds, per subject it holds.
pub const EVENTS_PER_SUBJECT: usize = 8;
/// The shortest container id prefix the host resolves (Docker's short id).
pub const MIN_PREFIX: usize = 12;
/// Event ids of one finding the host looks up (a finding citing more is
/// checked against its first ones).
pub const MAX_CITED: usize = 1024;

/// What the host concluded about one entity of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Not a kind the host checks (image, node, file, user, address).
    #[default]
    NotChecked,
    /// A container or pod that is not a subject of an event the finding
    /// cites (among those the plugin was shown recently).
    Unverified,
    /// A subject of an event the finding cites, as the host knows it.
    Verified {
        /// The full container id, or the pod's `namespace/name`.
        id: String,
        /// The container's name as shown (empty for pods, or when unknown).
        name: String,
        /// The pod's uid, when an event showed it.
        uid: Option<String>,
    },
}

/// The subjects of one cited event (or of one fed finding's entity).
#[derive(Debug, Clone, Default)]
struct Shown {
    /// A full container id (a key of a container table).
    container: Option<Arc<str>>,
    /// A pod's `namespace/name` (a key of a pod table).
    pod: Option<Arc<str>>,
}

impl Shown {
    fn is_empty(&self) -> bool {
        self.container.is_none() && self.pod.is_none()
    }
}

/// Hashes a `u64` that already is a keyed hash: no second pass.
#[derive(Debug, Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in, so it stays a hash.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ById<V> = HashMap<u64, V, BuildHasherDefault<Prehashed>>;

#[derive(Debug)]
struct Generation {
    started: Instant,
    /// Container id → name.
    containers: HashMap<Arc<str>, Box<str>>,
    /// Pod `namespace/name` → uid (empty when none was shown).
    pods: HashMap<Arc<str>, Box<str>>,
    /// Keyed hash of an event id → what the event was about.
    events: ById<Shown>,
    /// Keyed hash of a fed finding's id → its verified containers and pods.
    findings: ById<Box<[Shown]>>,
}

impl Generation {
    fn new(started: Instant) -> Self {
        Self {
            started,
            containers: HashMap::new(),
            pods: HashMap::new(),
            events: ById::default(),
            findings: ById::default(),
        }
    }

    /// Empties it for reuse, keeping its tables' memory.
    fn reset(&mut self, started: Instant) {
        self.started = started;
        self.containers.clear();
        self.pods.clear();
        self.events.clear();
        self.findings.clear();
    }
}

/// The subjects of the events one plugin was shown recently. See the module docs.
#[derive(Debug)]
pub struct SubjectWindow {
    current: Generation,
    previous: Generation,
    ttl: Duration,
    cap: usize,
    event_cap: usize,
    /// The key of the event-id hashes.
    hasher: RandomState,
    /// Reused to build pod keys without allocating.
    key: String,
}

impl Default for SubjectWindow {
    fn default() -> Self {
        Self::new(GENERATION_TTL, GENERATION_CAP)
    }
}

impl SubjectWindow {
    /// A window whose generations last `ttl` and hold `cap` subjects of each
    /// kind (and [`EVENTS_PER_SUBJECT`] × `cap` events).
    pub fn new(ttl: Duration, cap: usize) -> Self {
        let now = Instant::now();
        let cap = cap.max(1);
        Self {
            current: Generation::new(now),
            previous: Generation::new(now),
            ttl,
            cap,
            event_cap: cap.saturating_mul(EVENTS_PER_SUBJECT),
            hasher: RandomState::new(),
            key: String::new(),
        }
    }

    /// Notes the subjects of a batch handed to the plugin.
    pub fn record<'a>(&mut self, batch: impl IntoIterator<Item = &'a Event>) {
        self.record_at(batch, Instant::now());
    }

    /// [`record`](Self::record) at a given time (tests).
    pub fn record_at<'a>(&mut self, batch: impl IntoIterator<Item = &'a Event>, now: Instant) {
        self.expire(now);
        for e in batch {
            let mut shown = Shown::default();
            for_each_subject(e, |s| match s {
                Subject::Container { id, name } => {
                    shown.container = self.container(id, name, now);
                }
                Subject::Pod {
                    namespace,
                    name,
                    uid,
                } => {
                    // An audit event's pod uid travels beside it.
                    let noted = (uid.is_empty() && e.source == "k8s-audit")
                        .then(|| audit_pod_uids::of(&e.id))
                        .flatten();
                    let uid = noted.as_deref().unwrap_or(uid);
                    shown.pod = self.pod(namespace, name, uid, now);
                }
                // Findings name no services yet: nothing to check them against.
                Subject::Service { .. } => {}
            });
            self.event(&e.id, shown, now);
        }
    }

    /// Notes the containers (and their pods) of process events handed to
    /// the plugin (WIT 0.1.3), so that its findings citing them verify.
    pub fn record_processes<'a>(&mut self, batch: impl IntoIterator<Item = &'a ProcessEvent>) {
        let now = Instant::now();
        self.expire(now);
        for e in batch {
            let mut shown = Shown::default();
            if let Some(c) = &e.container {
                shown.container = self.container(&c.id, &c.name, now);
                if let Some((namespace, name)) = c.pod.split_once('/') {
                    shown.pod = self.pod(namespace, name, "", now);
                }
            }
            self.event(&e.id, shown, now);
        }
    }

    /// Notes other plugins' findings handed to this plugin (`correlate`):
    /// each finding's id with its entities' kinds and the host's verdict on
    /// them for the plugin that reported it. A finding of this plugin that
    /// cites a fed finding's id may name its verified containers and pods.
    /// Only verified ones are recorded, as the host matched them: an
    /// unverified entity stays unverifiable, since passing it through a
    /// plugin does not vouch for it.
    pub fn record_findings<'a, S>(&mut self, findings: impl IntoIterator<Item = (&'a str, S)>)
    where
        S: IntoIterator<Item = (EntityKind, &'a Verdict)>,
    {
        let now = Instant::now();
        self.expire(now);
        for (finding_id, subjects) in findings {
            let mut shown = Vec::new();
            for (kind, v) in subjects {
                let Verdict::Verified { id, name, uid } = v else {
                    continue;
                };
                match kind {
                    EntityKind::Container => shown.push(Shown {
                        container: self.container(id, name, now),
                        pod: None,
                    }),
                    EntityKind::Pod => {
                        if let Some((ns, pod)) = id.split_once('/') {
                            shown.push(Shown {
                                container: None,
                                pod: self.pod(ns, pod, uid.as_deref().unwrap_or(""), now),
                            });
                        }
                    }
                    _ => {}
                }
            }
            shown.retain(|s| !s.is_empty());
            if finding_id.is_empty() || shown.is_empty() {
                continue;
            }
            if self.current.findings.len() >= self.event_cap {
                self.rotate(now);
            }
            let h = self.hasher.hash_one(finding_id);
            self.current.findings.insert(h, shown.into_boxed_slice());
        }
    }

    /// Drops generations that are too old at `now`.
    fn expire(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.current.started);
        if age >= self.ttl.saturating_mul(2) {
            self.previous.reset(now);
            self.current.reset(now);
        } else if age >= self.ttl {
            self.rotate(now);
        }
    }

    fn rotate(&mut self, now: Instant) {
        std::mem::swap(&mut self.current, &mut self.previous);
        self.current.reset(now);
    }

    /// Notes that event `id` was about `shown`.
    fn event(&mut self, id: &str, shown: Shown, now: Instant) {
        if id.is_empty() || shown.is_empty() {
            return;
        }
        if self.current.events.len() >= self.event_cap {
            self.rotate(now);
            // The subjects just noted moved to the previous generation:
            // note them again, so they live as long as this event.
            if let Some(c) = &shown.container {
                let name = self
                    .previous
                    .containers
                    .get(&**c)
                    .cloned()
                    .unwrap_or_default();
                self.container(c, &name, now);
            }
            if let Some(p) = &shown.pod
                && let Some((ns, name)) = p.split_once('/')
            {
                let uid = self.previous.pods.get(&**p).cloned().unwrap_or_default();
                self.pod(ns, name, &uid, now);
            }
        }
        let h = self.hasher.hash_one(id);
        self.current.events.insert(h, shown);
    }

    /// Notes a container; its id as held by the tables.
    fn container(&mut self, id: &str, name: &str, now: Instant) -> Option<Arc<str>> {
        if id.is_empty() {
            return None;
        }
        let name = name.trim_start_matches('/');
        if let Some((key, known)) = self.current.containers.get_key_value(id) {
            let key = Arc::clone(key);
            if !name.is_empty() && **known != *name {
                self.current
                    .containers
                    .insert(Arc::clone(&key), name.into());
            }
            return Some(key);
        }
        if self.current.containers.len() >= self.cap {
            self.rotate(now);
        }
        let (key, old_name) = self
            .previous
            .containers
            .remove_entry(id)
            .unwrap_or_else(|| (Arc::from(id), Box::from("")));
        let name = if name.is_empty() {
            old_name
        } else {
            name.into()
        };
        self.current.containers.insert(Arc::clone(&key), name);
        Some(key)
    }

    /// Notes a pod; its `namespace/name` as held by the tables.
    fn pod(&mut self, namespace: &str, name: &str, uid: &str, now: Instant) -> Option<Arc<str>> {
        if namespace.is_empty() || name.is_empty() {
            return None;
        }
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.push_str(namespace);
        key.push('/');
        key.push_str(name);
        let held = if let Some((held, known)) = self.current.pods.get_key_value(key.as_str()) {
            let held = Arc::clone(held);
            if !uid.is_empty() && **known != *uid {
                self.current.pods.insert(Arc::clone(&held), uid.into());
            }
            held
        } else {
            if self.current.pods.len() >= self.cap {
                self.rotate(now);
            }
            let (held, old_uid) = self
                .previous
                .pods
                .remove_entry(key.as_str())
                .unwrap_or_else(|| (Arc::from(key.as_str()), Box::from("")));
            let uid = if uid.is_empty() { old_uid } else { uid.into() };
            self.current.pods.insert(Arc::clone(&held), uid);
            held
        };
        self.key = key;
        Some(held)
    }

    /// The verdict on each entity of `finding`, in order.
    pub fn check(&mut self, finding: &Finding) -> Vec<Verdict> {
        self.check_at(finding, Instant::now())
    }

    /// [`check`](Self::check) at a given time (tests).
    pub fn check_at(&mut self, finding: &Finding, now: Instant) -> Vec<Verdict> {
        self.expire(now);
        let checked = finding
            .entities
            .iter()
            .any(|e| matches!(e.kind, EntityKind::Container | EntityKind::Pod));
        let cited = if checked {
            self.cited(finding)
        } else {
            Cited::default()
        };
        finding
            .entities
            .iter()
            .map(|e| self.verdict(e, &cited))
            .collect()
    }

    /// The containers and pods of the events (and fed findings) `finding` cites.
    fn cited(&self, finding: &Finding) -> Cited {
        let mut cited = Cited::default();
        let mut add = |s: &Shown| {
            if let Some(c) = &s.container
                && !cited.containers.contains(c)
            {
                cited.containers.push(Arc::clone(c));
            }
            if let Some(p) = &s.pod
                && !cited.pods.contains(p)
            {
                cited.pods.push(Arc::clone(p));
            }
        };
        for id in finding.event_ids.iter().take(MAX_CITED) {
            let h = self.hasher.hash_one(id.as_str());
            for g in self.generations() {
                if let Some(s) = g.events.get(&h) {
                    add(s);
                }
                if let Some(list) = g.findings.get(&h) {
                    list.iter().for_each(&mut add);
                }
            }
        }
        cited
    }

    fn verdict(&self, e: &Entity, cited: &Cited) -> Verdict {
        match e.kind {
            EntityKind::Container => self.container_verdict(&e.id, &e.name, cited),
            EntityKind::Pod => self.pod_verdict(&e.id, cited),
            _ => Verdict::NotChecked,
        }
    }

    fn generations(&self) -> [&Generation; 2] {
        [&self.current, &self.previous]
    }

    /// The latest name a container was shown under (empty when unknown).
    fn name_of(&self, id: &str) -> &str {
        self.generations()
            .into_iter()
            .find_map(|g| g.containers.get(id))
            .map_or("", |n| &**n)
    }

    fn container_verdict(&self, id: &str, name: &str, cited: &Cited) -> Verdict {
        let verified = |id: &str| Verdict::Verified {
            id: id.to_owned(),
            name: self.name_of(id).to_owned(),
            uid: None,
        };
        if !id.is_empty()
            && let Some(c) = cited.containers.iter().find(|c| ***c == *id)
        {
            return verified(c);
        }
        let lower = id.to_ascii_lowercase();
        let by_prefix = lower.len() >= MIN_PREFIX && lower.bytes().all(|b| b.is_ascii_hexdigit());
        // Docker's own names never start with `/` here; the API shows them so.
        let wanted = if id.is_empty() { name } else { id }.trim_start_matches('/');
        let mut found: Option<&str> = None;
        for c in &cited.containers {
            let hit = if by_prefix {
                c.starts_with(lower.as_str())
            } else {
                !wanted.is_empty() && self.name_of(c) == wanted
            };
            if !hit {
                continue;
            }
            match found {
                // Two different containers answer to it: not one the host can name.
                Some(_) => return Verdict::Unverified,
                None => found = Some(&**c),
            }
        }
        found.map_or(Verdict::Unverified, verified)
    }

    fn pod_verdict(&self, id: &str, cited: &Cited) -> Verdict {
        let Some(key) = cited.pods.iter().find(|p| ***p == *id) else {
            return Verdict::Unverified;
        };
        let uid = self
            .generations()
            .into_iter()
            .find_map(|g| g.pods.get(&**key))
            .filter(|uid| !uid.is_empty());
        Verdict::Verified {
            id: key.to_string(),
            name: String::new(),
            uid: uid.map(|u| u.to_string()),
        }
    }

    /// Subjects currently held (containers, pods), for tests and sizing.
    pub fn len(&self) -> (usize, usize) {
        (
            self.current.containers.len() + self.previous.containers.len(),
            self.current.pods.len() + self.previous.pods.len(),
        )
    }

    /// Events (and fed findings) currently citable, for tests and sizing.
    pub fn events_len(&self) -> usize {
        self.generations()
            .iter()
            .map(|g| g.events.len() + g.findings.len())
            .sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0) && self.events_len() == 0
    }
}

/// The distinct containers and pods a finding cites.
#[derive(Debug, Default)]
struct Cited {
    containers: Vec<Arc<str>>,
    pods: Vec<Arc<str>>,
}

#[cfg(test)]
mod tests;
