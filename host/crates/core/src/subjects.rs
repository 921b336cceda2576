//! What a plugin was shown, so that what it says can be checked.
//!
//! A plugin's findings name entities; the host does not take a plugin's word
//! for which container or pod a finding is about, because the response stage
//! acts on those names (issue 10: a plugin that named a container it was
//! never shown had it disconnected, paused and renamed). Each plugin's runner
//! keeps a [`SubjectWindow`]: the containers (id, name) and pods
//! (`namespace/name`, uid when an event carried it) of the events handed to
//! that plugin recently. A finding's `container` and `pod` entities are
//! checked against it ([`SubjectWindow::check`]):
//!
//! - a container is verified when its id is a shown container id, a prefix of
//!   at least [`MIN_PREFIX`] hex digits of exactly one shown id, or (id empty,
//!   or not an id) the name of exactly one shown container. The host then
//!   fills in the full id and the name as shown;
//! - a pod is verified when its id is the `namespace/name` of a shown pod;
//!   the uid the events showed, if any, comes with it;
//! - everything else is unverified (kept, marked `"verified": false`).
//!
//! Entities of other kinds are not checked.
//!
//! Bounds: two generations of at most [`GENERATION_CAP`] containers and as
//! many pods each; the current one becomes the previous one after
//! [`GENERATION_TTL`] or when full. A subject therefore stays verifiable for
//! at least one and at most two generations after it was last shown (so a
//! finding a plugin makes on a tick, minutes after the events, still
//! verifies), and memory stays bounded whatever the event rate. Recording a
//! subject already in the current generation is one hash lookup, without
//! allocation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::{Entity, EntityKind, Event, EventBody, Finding};

/// How long one generation lasts: a subject stays verifiable for between one
/// and two of these after it was last shown.
pub const GENERATION_TTL: Duration = Duration::from_secs(10 * 60);
/// Containers (and, separately, pods) one generation holds.
pub const GENERATION_CAP: usize = 2048;
/// The shortest container id prefix the host resolves (Docker's short id).
pub const MIN_PREFIX: usize = 12;

/// What the host concluded about one entity of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Not a kind the host checks (image, node, file, user, address).
    #[default]
    NotChecked,
    /// A container or pod the plugin was not shown (recently).
    Unverified,
    /// A subject of an event the plugin was shown, as the host knows it.
    Verified {
        /// The full container id, or the pod's `namespace/name`.
        id: String,
        /// The container's name as shown (empty for pods, or when unknown).
        name: String,
        /// The pod's uid, when an event showed it.
        uid: Option<String>,
    },
}

#[derive(Debug)]
struct Generation {
    started: Instant,
    /// Container id → name.
    containers: HashMap<Box<str>, Box<str>>,
    /// Pod `namespace/name` → uid (empty when none was shown).
    pods: HashMap<Box<str>, Box<str>>,
}

impl Generation {
    fn new(started: Instant) -> Self {
        Self {
            started,
            containers: HashMap::new(),
            pods: HashMap::new(),
        }
    }
}

/// The subjects of the events one plugin was shown recently. See the module docs.
#[derive(Debug)]
pub struct SubjectWindow {
    current: Generation,
    previous: Generation,
    ttl: Duration,
    cap: usize,
    /// Reused to build pod keys without allocating.
    key: String,
}

impl Default for SubjectWindow {
    fn default() -> Self {
        Self::new(GENERATION_TTL, GENERATION_CAP)
    }
}

impl SubjectWindow {
    /// A window whose generations last `ttl` and hold `cap` subjects of each kind.
    pub fn new(ttl: Duration, cap: usize) -> Self {
        let now = Instant::now();
        Self {
            current: Generation::new(now),
            previous: Generation::new(now),
            ttl,
            cap: cap.max(1),
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
            match &e.body {
                EventBody::Container(c) => {
                    self.container(&c.id, &c.name, now);
                    if let Some((ns, name, uid)) = kubelet_labels(&c.labels) {
                        self.pod(ns, name, uid, now);
                    }
                }
                EventBody::Network(n) => {
                    if let Some(c) = &n.container {
                        self.container(&c.id, &c.name, now);
                        if let Some((ns, name)) = c.pod.split_once('/') {
                            self.pod(ns, name, "", now);
                        }
                    }
                }
                EventBody::Kubernetes(k) if k.resource == "pods" => {
                    // Only the pod watcher puts the pod's uid in `audit-id`;
                    // an audit event's is the request's.
                    let uid = if e.source == "k8s-watch" && k.subresource.is_empty() {
                        k.audit_id.as_str()
                    } else {
                        ""
                    };
                    self.pod(&k.namespace, &k.name, uid, now);
                }
                EventBody::Kubernetes(_) | EventBody::File(_) => {}
            }
        }
    }

    /// Notes the subjects of other plugins' findings handed to this plugin
    /// (`correlate`): each entity's kind with the host's verdict on it for
    /// the plugin that reported it. Only verified containers and pods are
    /// recorded, as the host matched them: an unverified entity stays
    /// unverifiable, since passing it through a plugin does not vouch for it.
    pub fn record_verified<'a>(
        &mut self,
        subjects: impl IntoIterator<Item = (EntityKind, &'a Verdict)>,
    ) {
        let now = Instant::now();
        self.expire(now);
        for (kind, v) in subjects {
            let Verdict::Verified { id, name, uid } = v else {
                continue;
            };
            match kind {
                EntityKind::Container => self.container(id, name, now),
                EntityKind::Pod => {
                    if let Some((ns, pod)) = id.split_once('/') {
                        self.pod(ns, pod, uid.as_deref().unwrap_or(""), now);
                    }
                }
                _ => {}
            }
        }
    }

    /// Drops generations that are too old at `now`.
    fn expire(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.current.started);
        if age >= self.ttl.saturating_mul(2) {
            self.previous = Generation::new(now);
            self.current = Generation::new(now);
        } else if age >= self.ttl {
            self.rotate(now);
        }
    }

    fn rotate(&mut self, now: Instant) {
        self.previous = std::mem::replace(&mut self.current, Generation::new(now));
    }

    fn container(&mut self, id: &str, name: &str, now: Instant) {
        if id.is_empty() {
            return;
        }
        let name = name.trim_start_matches('/');
        if let Some(known) = self.current.containers.get_mut(id) {
            if !name.is_empty() && **known != *name {
                *known = name.into();
            }
            return;
        }
        if self.current.containers.len() >= self.cap {
            self.rotate(now);
        }
        let (key, old_name) = self
            .previous
            .containers
            .remove_entry(id)
            .unwrap_or_else(|| (id.into(), Box::from("")));
        let name = if name.is_empty() {
            old_name
        } else {
            name.into()
        };
        self.current.containers.insert(key, name);
    }

    fn pod(&mut self, namespace: &str, name: &str, uid: &str, now: Instant) {
        if namespace.is_empty() || name.is_empty() {
            return;
        }
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.push_str(namespace);
        key.push('/');
        key.push_str(name);
        if let Some(known) = self.current.pods.get_mut(key.as_str()) {
            if !uid.is_empty() && **known != *uid {
                *known = uid.into();
            }
        } else {
            if self.current.pods.len() >= self.cap {
                self.rotate(now);
            }
            let old_uid = self
                .previous
                .pods
                .remove(key.as_str())
                .unwrap_or_else(|| Box::from(""));
            let uid = if uid.is_empty() { old_uid } else { uid.into() };
            self.current.pods.insert(key.as_str().into(), uid);
        }
        self.key = key;
    }

    /// The verdict on each entity of `finding`, in order.
    pub fn check(&mut self, finding: &Finding) -> Vec<Verdict> {
        self.check_at(finding, Instant::now())
    }

    /// [`check`](Self::check) at a given time (tests).
    pub fn check_at(&mut self, finding: &Finding, now: Instant) -> Vec<Verdict> {
        self.expire(now);
        finding.entities.iter().map(|e| self.verdict(e)).collect()
    }

    fn verdict(&self, e: &Entity) -> Verdict {
        match e.kind {
            EntityKind::Container => self.container_verdict(&e.id, &e.name),
            EntityKind::Pod => self.pod_verdict(&e.id),
            _ => Verdict::NotChecked,
        }
    }

    fn generations(&self) -> [&Generation; 2] {
        [&self.current, &self.previous]
    }

    fn container_verdict(&self, id: &str, name: &str) -> Verdict {
        let verified = |id: &str, name: &str| Verdict::Verified {
            id: id.to_owned(),
            name: name.to_owned(),
            uid: None,
        };
        if !id.is_empty() {
            for g in self.generations() {
                if let Some((id, name)) = g.containers.get_key_value(id) {
                    return verified(id, name);
                }
            }
        }
        let lower = id.to_ascii_lowercase();
        let by_prefix = lower.len() >= MIN_PREFIX && lower.bytes().all(|b| b.is_ascii_hexdigit());
        // Docker's own names never start with `/` here; the API shows them so.
        let wanted = if id.is_empty() { name } else { id }.trim_start_matches('/');
        let mut found: Option<(&str, &str)> = None;
        for g in self.generations() {
            for (shown_id, shown_name) in &g.containers {
                let hit = if by_prefix {
                    shown_id.starts_with(lower.as_str())
                } else {
                    !wanted.is_empty() && **shown_name == *wanted
                };
                if !hit {
                    continue;
                }
                match found {
                    Some((f, _)) if f == &**shown_id => {}
                    // Two different containers answer to it: not one the host can name.
                    Some(_) => return Verdict::Unverified,
                    None => found = Some((&**shown_id, &**shown_name)),
                }
            }
        }
        match found {
            Some((id, name)) => verified(id, name),
            None => Verdict::Unverified,
        }
    }

    fn pod_verdict(&self, id: &str) -> Verdict {
        for g in self.generations() {
            if let Some((key, uid)) = g.pods.get_key_value(id) {
                return Verdict::Verified {
                    id: key.to_string(),
                    name: String::new(),
                    uid: (!uid.is_empty()).then(|| uid.to_string()),
                };
            }
        }
        Verdict::Unverified
    }

    /// Subjects currently held (containers, pods), for tests and sizing.
    pub fn len(&self) -> (usize, usize) {
        (
            self.current.containers.len() + self.previous.containers.len(),
            self.current.pods.len() + self.previous.pods.len(),
        )
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

/// The pod of a kubelet-managed container, from the labels the kubelet sets.
fn kubelet_labels(labels: &[crate::model::KeyValue]) -> Option<(&str, &str, &str)> {
    let (mut ns, mut name, mut uid) = (None, None, "");
    for kv in labels {
        match kv.key.as_str() {
            "io.kubernetes.pod.namespace" => ns = Some(kv.value.as_str()),
            "io.kubernetes.pod.name" => name = Some(kv.value.as_str()),
            "io.kubernetes.pod.uid" => uid = kv.value.as_str(),
            _ => {}
        }
    }
    Some((ns?, name?, uid))
}

#[cfg(test)]
mod tests;
