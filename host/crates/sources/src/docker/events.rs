//! Docker Engine events (`GET /events`) into container events: the pure
//! mapping from an event's type, action and attributes, kept apart from the
//! I/O so that it is unit-tested without a daemon.

use std::collections::HashMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};

use vigil_core::model::{
    ContainerAction, ContainerEvent, EventBody, ExecInfo, KeyValue, SwarmObject,
};
use vigil_normalize::Origin;
use vigil_normalize::docker_inspect::{Inspect, event_from_inspect};

/// Attributes Docker adds to a container event besides the container's
/// labels; everything else in `Actor.Attributes` is a label.
const NON_LABEL_ATTRIBUTES: [&str; 7] = [
    "image",
    "name",
    "execID",
    "exitCode",
    "signal",
    "oldName",
    "container",
];

/// Docker container actions without a variant of their own: kept, as
/// `other` with the raw action (`copy`/`export`/`archive-path` move data
/// out of a container, which a detector may care about).
const OTHER_CONTAINER_ACTIONS: [&str; 11] = [
    "commit",
    "copy",
    "export",
    "resize",
    "top",
    "archive-path",
    "extract-to-dir",
    "health_status",
    "exec_detach",
    "detach",
    "prune",
];

/// One event of the Engine's stream, checked: what the mapping needs is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEvent {
    /// `container` or `network` (the stream is filtered to these).
    pub scope: Scope,
    /// The raw action, e.g. `exec_start: sh -c id` or `die`.
    pub action: String,
    /// The actor: the container id, or the network id for network events.
    pub actor: String,
    /// The actor's attributes (labels, name, image, exitCode …).
    pub attributes: HashMap<String, String>,
    /// When it happened, nanoseconds since the epoch.
    pub time_nano: u64,
}

/// The object type of an event the source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A container's lifecycle.
    Container,
    /// A network; only `connect`/`disconnect` concern containers.
    Network,
    /// A Docker Swarm object (only a manager's stream has these).
    Swarm(SwarmObject),
}

/// Why an Engine event was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event has no or an unexpected `Type`.
    #[error("unexpected event type {0:?}")]
    Type(Option<EventMessageTypeEnum>),
    /// A required field is missing.
    #[error("event without {0}")]
    Missing(&'static str),
    /// `timeNano`/`time` is not a positive time.
    #[error("event with an invalid time ({0})")]
    Time(i64),
    /// The action is not one Docker documents for this type.
    #[error("unknown {scope} action {action:?}")]
    UnknownAction { scope: &'static str, action: String },
    /// An attribute that must be a number is not.
    #[error("attribute {name} is not a number: {value:?}")]
    Attribute { name: &'static str, value: String },
}

impl TryFrom<EventMessage> for DockerEvent {
    type Error = EventError;

    fn try_from(m: EventMessage) -> Result<Self, EventError> {
        let scope = match m.typ {
            Some(EventMessageTypeEnum::CONTAINER) => Scope::Container,
            Some(EventMessageTypeEnum::NETWORK) => Scope::Network,
            Some(EventMessageTypeEnum::SERVICE) => Scope::Swarm(SwarmObject::Service),
            Some(EventMessageTypeEnum::NODE) => Scope::Swarm(SwarmObject::Node),
            Some(EventMessageTypeEnum::SECRET) => Scope::Swarm(SwarmObject::Secret),
            Some(EventMessageTypeEnum::CONFIG) => Scope::Swarm(SwarmObject::Config),
            other => return Err(EventError::Type(other)),
        };
        let action = m
            .action
            .filter(|a| !a.is_empty())
            .ok_or(EventError::Missing("Action"))?;
        let actor = m.actor.ok_or(EventError::Missing("Actor"))?;
        let id = actor
            .id
            .filter(|i| !i.is_empty())
            .ok_or(EventError::Missing("Actor.ID"))?;
        let time_nano = match (m.time_nano, m.time) {
            (Some(n), _) if n > 0 => n as u64,
            (None, Some(s)) if s > 0 => (s as u64).saturating_mul(1_000_000_000),
            (Some(n), _) => return Err(EventError::Time(n)),
            (None, Some(s)) => return Err(EventError::Time(s)),
            (None, None) => return Err(EventError::Missing("timeNano")),
        };
        Ok(Self {
            scope,
            action,
            actor: id,
            attributes: actor.attributes.unwrap_or_default(),
            time_nano,
        })
    }
}

/// What to do with an event after mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A container event, built from the attributes; `enrich` says what the
    /// source should fetch to complete it.
    Container {
        /// Boxed: a container event is large next to `Ignored`.
        event: Box<ContainerEvent>,
        enrich: Enrich,
    },
    /// Docker Swarm activity; a service that still exists is to be
    /// inspected for its spec.
    Swarm(SwarmChange),
    /// Not about a container (a network created or removed): skipped.
    Ignored,
}

/// One Swarm event's facts, from its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmChange {
    /// The kind of object.
    pub object: SwarmObject,
    /// `create`, `update` or `remove`.
    pub action: String,
    /// The object's id.
    pub id: String,
    /// The object's name.
    pub name: String,
    /// The other attributes (`replicas.old` …), sorted by key.
    pub changes: Vec<KeyValue>,
}

impl SwarmChange {
    /// Whether the source should inspect the service for its spec.
    pub fn wants_spec(&self) -> bool {
        self.object == SwarmObject::Service && self.action != "remove"
    }
}

/// Extra data fetched from the daemon for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrich {
    /// Nothing: the attributes say it all.
    Nothing,
    /// Inspect the container: its security configuration (create, start).
    Container,
    /// Inspect this exec: command, user, privileged, tty.
    Exec(String),
}

/// The action verb: Docker appends details to some actions
/// (`exec_create: sh -c id`, `health_status: healthy`).
pub fn verb(action: &str) -> (&str, Option<&str>) {
    match action.split_once(':') {
        Some((v, rest)) => (v.trim(), Some(rest.trim())),
        None => (action.trim(), None),
    }
}

/// Maps a container action verb.
pub fn container_action(verb: &str) -> Option<ContainerAction> {
    use ContainerAction as A;
    Some(match verb {
        "create" => A::Create,
        "start" => A::Start,
        "restart" => A::Restart,
        "stop" => A::Stop,
        "die" => A::Die,
        "kill" => A::Kill,
        "destroy" => A::Destroy,
        "pause" => A::Pause,
        "unpause" => A::Unpause,
        "exec_create" => A::ExecCreate,
        "exec_start" => A::ExecStart,
        "exec_die" => A::ExecDie,
        "oom" => A::Oom,
        "rename" => A::Rename,
        "update" => A::Update,
        "attach" => A::Attach,
        v if OTHER_CONTAINER_ACTIONS.contains(&v) => A::Other,
        _ => return None,
    })
}

/// Maps one checked event to a container event built from its attributes.
pub fn map(e: &DockerEvent) -> Result<Mapped, EventError> {
    let (verb, detail) = verb(&e.action);
    let attr = |k: &str| e.attributes.get(k).cloned().unwrap_or_default();
    match e.scope {
        Scope::Swarm(object) => {
            if !matches!(verb, "create" | "update" | "remove") {
                return Err(EventError::UnknownAction {
                    scope: object.as_str(),
                    action: e.action.clone(),
                });
            }
            let mut changes: Vec<KeyValue> = e
                .attributes
                .iter()
                .filter(|(k, _)| k.as_str() != "name")
                .map(|(k, v)| KeyValue::new(k.as_str(), v.as_str()))
                .collect();
            changes.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(Mapped::Swarm(SwarmChange {
                object,
                action: verb.to_owned(),
                id: e.actor.clone(),
                name: attr("name"),
                changes,
            }))
        }
        Scope::Network => {
            let action = match verb {
                "connect" => ContainerAction::NetworkConnect,
                "disconnect" => ContainerAction::NetworkDisconnect,
                "create" | "destroy" | "remove" | "prune" => return Ok(Mapped::Ignored),
                _ => {
                    return Err(EventError::UnknownAction {
                        scope: "network",
                        action: e.action.clone(),
                    });
                }
            };
            let container = e
                .attributes
                .get("container")
                .filter(|c| !c.is_empty())
                .ok_or(EventError::Missing("Actor.Attributes.container"))?;
            let event = ContainerEvent {
                action,
                raw_action: e.action.clone(),
                id: container.clone(),
                network: if attr("name").is_empty() {
                    e.actor.clone()
                } else {
                    attr("name")
                },
                ..ContainerEvent::default()
            };
            Ok(Mapped::Container {
                event: Box::new(event),
                enrich: Enrich::Nothing,
            })
        }
        Scope::Container => {
            let action = container_action(verb).ok_or_else(|| EventError::UnknownAction {
                scope: "container",
                action: e.action.clone(),
            })?;
            let mut labels: Vec<KeyValue> = e
                .attributes
                .iter()
                .filter(|(k, _)| !NON_LABEL_ATTRIBUTES.contains(&k.as_str()))
                .map(|(k, v)| KeyValue::new(k.as_str(), v.as_str()))
                .collect();
            labels.sort_by(|a, b| a.key.cmp(&b.key));
            let mut event = ContainerEvent {
                action,
                raw_action: e.action.clone(),
                id: e.actor.clone(),
                name: attr("name"),
                image: attr("image"),
                labels,
                ..ContainerEvent::default()
            };
            let mut enrich = Enrich::Nothing;
            match action {
                ContainerAction::Create | ContainerAction::Start => enrich = Enrich::Container,
                ContainerAction::Kill => event.signal = attr("signal"),
                ContainerAction::Die => event.exit_code = exit_code(e)?,
                ContainerAction::ExecCreate
                | ContainerAction::ExecStart
                | ContainerAction::ExecDie => {
                    if action == ContainerAction::ExecDie {
                        event.exit_code = exit_code(e)?;
                    }
                    event.exec = Some(ExecInfo {
                        command: detail.unwrap_or_default().to_owned(),
                        ..ExecInfo::default()
                    });
                    if action != ContainerAction::ExecDie
                        && let Some(exec) = e.attributes.get("execID").filter(|x| !x.is_empty())
                    {
                        enrich = Enrich::Exec(exec.clone());
                    }
                }
                _ => {}
            }
            Ok(Mapped::Container {
                event: Box::new(event),
                enrich,
            })
        }
    }
}

fn exit_code(e: &DockerEvent) -> Result<Option<i32>, EventError> {
    match e.attributes.get("exitCode") {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| EventError::Attribute {
            name: "exitCode",
            value: v.clone(),
        }),
    }
}

/// Completes a `create`/`start` event with the container's inspected
/// configuration, normalised exactly as recorded `docker inspect` output
/// is. The event's own facts (action, raw action) are kept; state that
/// belongs to later events (exit code, lifetime) is not taken from the
/// inspect, which may already see the container dead.
pub fn complete_with_inspect(event: &mut ContainerEvent, i: &Inspect) {
    let origin = Origin {
        node: "",
        source: "",
    };
    let EventBody::Container(mut full) = event_from_inspect(
        i,
        event.action,
        &event.raw_action,
        &origin,
        0,
        String::new(),
    )
    .body
    else {
        return;
    };
    full.exit_code = None;
    full.lifetime_ms = None;
    if full.id.is_empty() {
        full.id = std::mem::take(&mut event.id);
    }
    if full.name.is_empty() {
        full.name = std::mem::take(&mut event.name);
    }
    if full.image.is_empty() {
        full.image = std::mem::take(&mut event.image);
    }
    *event = full;
}

/// Completes an exec event with the inspected exec; the command from the
/// event's action is kept when the inspect has none.
pub fn complete_with_exec(event: &mut ContainerEvent, mut info: ExecInfo) {
    if info.command.is_empty()
        && let Some(old) = &event.exec
    {
        info.command.clone_from(&old.command);
    }
    event.exec = Some(info);
}

/// The `since` parameter for a time in nanoseconds: `seconds.nanoseconds`,
/// which the Engine compares at full precision (inclusive).
pub fn since_param(nanos: u64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

/// The `raw_action` of the event the source sends when it could not close a
/// gap in the Engine's event stream: events were lost (the daemon restarted,
/// or its buffer of recent events rolled over while Vigil was disconnected).
/// The event is a container event with action `other`, no container id,
/// source `docker`, and the labels [`GAP_SINCE_LABEL`] and
/// [`GAP_REASON_LABEL`]; its time is when the gap was found. Plugins see it
/// like any container event (monitoring-tamper reports it), within the existing WIT types.
pub const GAP_RAW_ACTION: &str = "vigil-events-gap";
/// Label of the gap event: the time of the last event seen before the break,
/// `seconds.nanoseconds` (Docker's `since`).
pub const GAP_SINCE_LABEL: &str = "vigil.gap.since";
/// Label of the gap event: why the gap could not be closed.
pub const GAP_REASON_LABEL: &str = "vigil.gap.reason";

/// The body of the gap event (see [`GAP_RAW_ACTION`]).
pub fn gap_body(since: &str, reason: &str) -> EventBody {
    EventBody::Container(ContainerEvent {
        action: ContainerAction::Other,
        raw_action: GAP_RAW_ACTION.to_owned(),
        labels: vec![
            KeyValue::new(GAP_SINCE_LABEL, since),
            KeyValue::new(GAP_REASON_LABEL, reason),
        ],
        ..ContainerEvent::default()
    })
}
