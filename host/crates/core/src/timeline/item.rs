//! One line of a timeline: an event or a finding, reduced to what an
//! operator reads (time, kind, where it came from, one bounded summary).
//! The full event is not kept: a summary costs a few hundred bytes at most,
//! and one item is shared (`Arc`) by every entity the event is about.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::finding_record::FindingRecord;
use crate::model::{
    ContainerAction, Event, EventBody, EventKind, ProcessEvent, ServiceEvent, Severity,
};

/// Most bytes of an item's summary (cut on a character boundary).
pub const SUMMARY_BYTES: usize = 512;
/// Most bytes of an item's id (event ids are a source's; this bounds them).
pub const ID_BYTES: usize = 128;

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A container event.
    Container,
    /// Kubernetes API activity.
    Kubernetes,
    /// A connection or socket.
    Network,
    /// A file-integrity change.
    File,
    /// A Swarm service event (created, updated, removed; with its spec).
    Service,
    /// A program executed in the container (WIT 0.1.3 process events).
    Process,
    /// A finding about the entity.
    Finding,
}

impl ItemKind {
    /// The name as written in JSON and on the terminal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Kubernetes => "kubernetes",
            Self::Network => "network",
            Self::File => "file",
            Self::Service => "service",
            Self::Process => "process",
            Self::Finding => "finding",
        }
    }
}

impl From<EventKind> for ItemKind {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::Container => Self::Container,
            EventKind::Kubernetes => Self::Kubernetes,
            EventKind::Network => Self::Network,
            EventKind::File => Self::File,
        }
    }
}

/// One event or finding of a timeline. Its text fields come from outside
/// the host (sources, plugins): escape them before printing
/// ([`crate::text::escape_control`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// When it happened: the event's time, or when the host recorded the
    /// finding; nanoseconds since the epoch.
    pub time: u64,
    /// Event kind, or `finding`.
    pub kind: ItemKind,
    /// The source that produced the event, or the plugin that reported the finding.
    #[serde(serialize_with = "ser_arc_str", deserialize_with = "de_arc_str")]
    pub source: Arc<str>,
    /// The event's id, or the finding's record id.
    pub id: Box<str>,
    /// What happened, on one line (at most [`SUMMARY_BYTES`]).
    pub summary: Box<str>,
    /// A finding's `plugin/rule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<Box<str>>,
    /// A finding's severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

fn ser_arc_str<S: Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

fn de_arc_str<'de, D: Deserializer<'de>>(de: D) -> Result<Arc<str>, D::Error> {
    String::deserialize(de).map(Arc::from)
}

impl Item {
    /// The item of an event; `source` is the event's source, interned by the caller.
    pub fn of_event(e: &Event, source: Arc<str>) -> Self {
        Self {
            time: e.time,
            kind: e.kind().into(),
            source,
            id: bounded(&e.id, ID_BYTES),
            summary: event_summary(&e.body),
            rule_id: None,
            severity: None,
        }
    }

    /// The item of a Swarm service event; `source` interned by the caller.
    pub fn of_service(e: &ServiceEvent, source: Arc<str>) -> Self {
        let mut s = format!("service {} {}", e.action, e.name);
        if let Some(spec) = &e.service {
            let _ = write!(s, " (spec v{}, image {}", spec.version, spec.image);
            if let Some(n) = spec.replicas {
                let _ = write!(s, ", {n} replicas");
            }
            if !spec.networks.is_empty() {
                let _ = write!(s, ", networks {}", spec.networks.join(","));
            }
            s.push(')');
        }
        if !e.actor.is_empty() {
            let _ = write!(s, " by {}", e.actor);
        }
        Self {
            time: e.time,
            kind: ItemKind::Service,
            source,
            id: bounded(&e.id, ID_BYTES),
            summary: bounded(&s, SUMMARY_BYTES),
            rule_id: None,
            severity: None,
        }
    }

    /// The item of a process event; `source` interned by the caller.
    pub fn of_process(e: &ProcessEvent, source: Arc<str>) -> Self {
        let mut s = match &e.path {
            // A write names the file first: that is what changed.
            Some(path) => format!("{} {path} by {}", e.action, e.binary),
            None => format!("{} {}", e.action, e.binary),
        };
        // argv[0] when it is not the binary's own name: what a multi-call
        // binary run through `/proc/self/exe` was asked to be.
        if let Some(argv0) = e.args.first()
            && argv0.rsplit('/').next() != Some(e.binary_name())
        {
            let _ = write!(s, " [{argv0}]");
        }
        let args = e.args.get(1..).unwrap_or_default();
        if !args.is_empty() {
            let _ = write!(s, " {}", args.join(" "));
        }
        if e.args_truncated {
            s.push_str(" …");
        }
        let _ = write!(
            s,
            " (pid {}, parent {} {}, uid {})",
            e.pid, e.parent_pid, e.parent_name, e.uid
        );
        Self {
            time: e.time,
            kind: ItemKind::Process,
            source,
            id: bounded(&e.id, ID_BYTES),
            summary: bounded(&s, SUMMARY_BYTES),
            rule_id: None,
            severity: None,
        }
    }

    /// The item of a finding recorded at `time`.
    pub fn of_finding(f: &FindingRecord, time: u64) -> Self {
        let mut s = String::with_capacity(64);
        s.push_str(&f.title);
        if !f.summary.is_empty() {
            s.push_str(": ");
            s.push_str(&f.summary);
        }
        if let Some(n) = f.count {
            let _ = write!(s, " ({n} occurrences: dedup summary)");
        }
        if f.monitor {
            s.push_str(" [monitor mode]");
        }
        Self {
            time,
            kind: ItemKind::Finding,
            source: Arc::from(f.plugin.as_str()),
            id: bounded(&f.id, ID_BYTES),
            summary: bounded(&s, SUMMARY_BYTES),
            rule_id: Some(bounded(&f.rule_id, ID_BYTES)),
            severity: Some(f.severity),
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn bounded(s: &str, max: usize) -> Box<str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].into()
}

/// One line saying what an event did.
fn event_summary(body: &EventBody) -> Box<str> {
    let mut s = String::with_capacity(96);
    // Writing to a String cannot fail.
    let _ = match body {
        EventBody::Container(c) => {
            let action = if c.action == ContainerAction::Other && !c.raw_action.is_empty() {
                c.raw_action.as_str()
            } else {
                action_name(c.action)
            };
            s.push_str(action);
            let name = c.name.trim_start_matches('/');
            if !name.is_empty() {
                let _ = write!(s, " {name}");
            }
            if !c.image.is_empty() {
                let _ = write!(s, " image={}", c.image);
            }
            if let Some(code) = c.exit_code {
                let _ = write!(s, " exit={code}");
            }
            if !c.signal.is_empty() {
                let _ = write!(s, " signal={}", c.signal);
            }
            if let Some(exec) = &c.exec {
                let _ = write!(s, " exec={:?} user={}", exec.command, exec.user);
            }
            if !c.network.is_empty() {
                let _ = write!(s, " network={}", c.network);
            }
            match &c.security {
                Some(sec) if !sec.network_mode.is_empty() || sec.privileged => write!(
                    s,
                    " network_mode={} privileged={}",
                    sec.network_mode, sec.privileged
                ),
                _ => Ok(()),
            }
        }
        EventBody::Kubernetes(k) => {
            let _ = write!(s, "{} {}", k.verb, k.resource);
            if !k.subresource.is_empty() {
                let _ = write!(s, "/{}", k.subresource);
            }
            let _ = write!(s, " {}/{}", k.namespace, k.name);
            if !k.user.is_empty() {
                let _ = write!(s, " by {}", k.user);
            }
            match k.response_code {
                Some(code) => write!(s, " -> {code}"),
                None => Ok(()),
            }
        }
        EventBody::Network(n) => write!(
            s,
            "{:?} {:?} {}:{} -> {}:{} {}",
            n.direction,
            n.protocol,
            n.local_address,
            n.local_port,
            n.remote_address,
            n.remote_port,
            n.state
        ),
        EventBody::File(f) => write!(s, "{:?} {}", f.change, f.path),
    };
    bounded(&s, SUMMARY_BYTES)
}

fn action_name(a: ContainerAction) -> &'static str {
    use ContainerAction as A;
    match a {
        A::Create => "create",
        A::Start => "start",
        A::Restart => "restart",
        A::Stop => "stop",
        A::Die => "die",
        A::Kill => "kill",
        A::Destroy => "destroy",
        A::Pause => "pause",
        A::Unpause => "unpause",
        A::ExecCreate => "exec-create",
        A::ExecStart => "exec-start",
        A::ExecDie => "exec-die",
        A::Oom => "oom",
        A::Rename => "rename",
        A::Update => "update",
        A::Attach => "attach",
        A::NetworkConnect => "network-connect",
        A::NetworkDisconnect => "network-disconnect",
        A::Running => "running",
        A::Other => "other",
    }
}
