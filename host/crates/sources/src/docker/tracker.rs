//! What the source remembers about each container between its events: name
//! and image (network events carry neither) and when it started, so `die`
//! and `destroy` carry the container's lifetime: a container that lives
//! for a second is a signal of its own.

use std::collections::HashMap;

use vigil_core::model::{ContainerAction, ContainerEvent};

#[derive(Debug, Default, Clone)]
struct Tracked {
    name: String,
    image: String,
    /// Start time, nanoseconds since the epoch.
    started: Option<u64>,
    /// Start → die, once it died.
    lifetime_ms: Option<u64>,
}

/// Per-container memory, bounded.
#[derive(Debug)]
pub struct Tracker {
    containers: HashMap<String, Tracked>,
    cap: usize,
    /// Whether the cap was hit (logged once).
    full_logged: bool,
}

impl Tracker {
    /// A tracker of at most `cap` containers.
    pub fn new(cap: usize) -> Self {
        Self {
            containers: HashMap::new(),
            cap,
            full_logged: false,
        }
    }

    /// Notes a container seen running by the inventory, started at `started` (nanos).
    pub fn running(&mut self, id: &str, name: &str, image: &str, started: Option<u64>) {
        if let Some(t) = self.entry(id) {
            t.name = name.to_owned();
            t.image = image.to_owned();
            t.started = started;
            t.lifetime_ms = None;
        }
    }

    /// Updates the memory with an event at `time` (nanos) and completes the
    /// event with what is known: name, image, `lifetime_ms` on die/destroy.
    pub fn observe(&mut self, e: &mut ContainerEvent, time: u64) {
        if e.action == ContainerAction::Destroy {
            let known = self.containers.remove(&e.id);
            if let Some(t) = known {
                fill(e, &t);
                e.lifetime_ms = t
                    .lifetime_ms
                    .or_else(|| t.started.map(|s| ms_between(s, time)));
            }
            return;
        }
        let Some(t) = self.entry(&e.id) else { return };
        if !e.name.is_empty() {
            t.name.clone_from(&e.name);
        }
        if !e.image.is_empty() {
            t.image.clone_from(&e.image);
        }
        match e.action {
            ContainerAction::Start => {
                t.started = Some(time);
                t.lifetime_ms = None;
            }
            ContainerAction::Die => {
                t.lifetime_ms = t.started.map(|s| ms_between(s, time));
                e.lifetime_ms = t.lifetime_ms;
            }
            _ => {}
        }
        let t = t.clone();
        fill(e, &t);
    }

    /// Containers tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.containers.len()
    }

    fn entry(&mut self, id: &str) -> Option<&mut Tracked> {
        if !self.containers.contains_key(id) && self.containers.len() >= self.cap {
            if !self.full_logged {
                self.full_logged = true;
                tracing::warn!(
                    source = "docker",
                    cap = self.cap,
                    "too many tracked containers: new ones get no lifetime (destroy events missed?)"
                );
            }
            return None;
        }
        Some(self.containers.entry(id.to_owned()).or_default())
    }
}

fn fill(e: &mut ContainerEvent, t: &Tracked) {
    if e.name.is_empty() {
        e.name.clone_from(&t.name);
    }
    if e.image.is_empty() {
        e.image.clone_from(&t.image);
    }
}

fn ms_between(start: u64, end: u64) -> u64 {
    end.saturating_sub(start) / 1_000_000
}
