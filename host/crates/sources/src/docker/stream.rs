//! The connection loop: connect, inventory, follow the event stream, and on
//! a break reconnect with backoff and resume where the stream stopped.
//!
//! Resuming: the Engine keeps its last 256 events in memory and replays
//! those at or after `since` (inclusive, nanosecond precision). Events are
//! timed before they are published, so they are not strictly ordered by
//! time: the source resumes a second before the latest event seen and drops
//! the replayed events it already sent (by time, actor and action). If the
//! replay does not contain an event already seen, the daemon no longer holds
//! the events of the gap (it restarted, or its buffer rolled over): that is
//! reported as a gap, never papered over — logged, counted, and sent down
//! the pipeline as a container event with raw action `vigil-events-gap`
//! ([`events::GAP_RAW_ACTION`]) so that plugins see it too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::events::{self, DockerEvent, Enrich, Mapped, since_param};
use super::internal_events::{
    DockerConnectFailed, DockerEventsGap, DockerInspectFailed, DockerStreamInterrupted,
    DockerStreamOpened, DockerSwarmRole,
};
use super::inventory::{SOURCE, inspect_container, inspect_exec, inventory, is_not_found};
use super::swarm::{self, SwarmRole};
use super::tracker::Tracker;
use super::{DockerError, DockerSettings};
use crate::SourceContext;
use vigil_core::error::chain;
use vigil_core::metrics::PluginMetrics;
use vigil_core::model::{Event, EventBody};
use vigil_core::time::wall_now;

/// How far before the latest event seen the stream resumes.
const RESUME_SLACK_NANOS: u64 = 1_000_000_000;
/// Event keys remembered to drop replayed duplicates.
const SEEN_CAP: usize = 4096;
/// Undecodable events in a row (on replays) before the source skips ahead.
const MAX_DECODE_FAILURES: u32 = 3;

/// One event's identity: time, actor, action.
type Key = (u64, String, String);

/// Where to resume, and which recent events were already sent.
#[derive(Debug, Default)]
pub struct Cursor {
    latest: Option<u64>,
    floor: u64,
    seen: HashSet<Key>,
    order: VecDeque<Key>,
}

impl Cursor {
    /// A cursor that resumes no earlier than `floor` (nanos).
    pub fn new(floor: u64) -> Self {
        Self {
            floor,
            ..Self::default()
        }
    }

    /// The `since` to resume from, nanoseconds.
    pub fn since(&self) -> u64 {
        self.latest.map_or(self.floor, |t| {
            t.saturating_sub(RESUME_SLACK_NANOS).max(self.floor)
        })
    }

    /// Whether any event was recorded (a replay can then be checked).
    pub fn has_seen_any(&self) -> bool {
        !self.order.is_empty()
    }

    /// Whether this event was already sent.
    pub fn is_seen(&self, e: &DockerEvent) -> bool {
        self.seen.contains(&key(e))
    }

    /// Records an event as sent.
    pub fn record(&mut self, e: &DockerEvent) {
        self.latest = Some(self.latest.map_or(e.time_nano, |t| t.max(e.time_nano)));
        let k = key(e);
        if self.seen.insert(k.clone()) {
            self.order.push_back(k);
        }
        while self.order.len() > SEEN_CAP {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// Gives up on what lies before `now`: resume from there.
    pub fn skip_to(&mut self, now: u64) {
        self.floor = now;
        self.latest = None;
    }
}

fn key(e: &DockerEvent) -> Key {
    (e.time_nano, e.actor.clone(), e.action.clone())
}

/// Connects to the configured socket (see [`vigil_core::docker::connect`]).
/// Also used by the responder's Docker quarantine.
pub async fn connect(s: &DockerSettings) -> Result<Docker, DockerError> {
    Ok(vigil_core::docker::connect(&s.socket, s.request_timeout).await?)
}

/// Why following the stream stopped.
enum End {
    /// The host is shutting down (or the pipeline is gone).
    Shutdown,
    /// The stream broke; reconnect.
    Broken(String),
}

struct Source {
    settings: DockerSettings,
    ctx: SourceContext,
    cursor: Cursor,
    tracker: Tracker,
    decode_failures: u32,
    /// This node's place in a swarm, as last asked.
    role: SwarmRole,
}

/// Runs the source until shutdown.
pub async fn run(settings: DockerSettings, ctx: SourceContext) {
    let mut shutdown = ctx.shutdown.clone();
    let mut src = Source {
        tracker: Tracker::new(settings.max_tracked_containers),
        cursor: Cursor::new(wall_now()),
        settings,
        ctx,
        decode_failures: 0,
        role: SwarmRole::Inactive,
    };
    let mut backoff = src.settings.initial_backoff;
    let mut attempt = 0u32;
    let mut broken_at: Option<Instant> = None;
    let mut needs_inventory = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let docker = match connect(&src.settings).await {
            Ok(d) => d,
            Err(e) => {
                attempt += 1;
                DockerConnectFailed {
                    socket: &src.settings.socket,
                    error: &e,
                    attempt,
                    retry_in: backoff,
                }
                .emit();
                if !sleep_unless_stopped(backoff, &mut shutdown).await {
                    return;
                }
                backoff = (backoff * 2).min(src.settings.max_backoff);
                continue;
            }
        };
        attempt = 0;
        backoff = src.settings.initial_backoff;
        let since = since_param(src.cursor.since());
        let version = docker.client_version();
        DockerStreamOpened {
            socket: &src.settings.socket,
            api_version: format!("{}.{}", version.major_version, version.minor_version),
            since: &since,
            reconnect: broken_at.is_some(),
            down_for: broken_at.map_or(Duration::ZERO, |t| t.elapsed()),
        }
        .emit(&src.ctx.metrics);
        if src.settings.swarm {
            src.probe_swarm(&docker).await;
        }
        if needs_inventory {
            // Services before containers: a plugin then knows a task
            // container's service when the container arrives.
            if !src.swarm_inventory(&docker).await {
                return;
            }
            match inventory(&docker, &src.ctx, &mut src.tracker).await {
                Ok(Some(n)) => {
                    needs_inventory = false;
                    tracing::info!(
                        source = SOURCE,
                        running = n,
                        "docker: inventory of running containers sent"
                    );
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(source = SOURCE, error = %chain(&e), "docker: inventory failed; continuing with the event stream")
                }
            }
        }
        let check_replay = broken_at.is_some() && src.cursor.has_seen_any();
        match src
            .follow(&docker, since, check_replay, &mut shutdown)
            .await
        {
            End::Shutdown => return,
            End::Broken(reason) => {
                DockerStreamInterrupted { reason: &reason }.emit();
                broken_at = Some(Instant::now());
                if !sleep_unless_stopped(backoff, &mut shutdown).await {
                    return;
                }
            }
        }
    }
}

impl Source {
    /// Follows the stream from `since`. With `check_replay`, the first event
    /// must be one already seen (the daemon replays from before the break).
    async fn follow(
        &mut self,
        docker: &Docker,
        since: String,
        mut check_replay: bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        let mut types = vec!["container".to_owned(), "network".to_owned()];
        if self.settings.swarm {
            // Harmless off a manager (nothing comes), and a node that becomes
            // a manager later (`docker swarm init`) is followed at once.
            types.extend(["service", "node", "secret", "config"].map(str::to_owned));
        }
        let filters = HashMap::from([("type".to_owned(), types)]);
        let mut stream = docker.events(Some(EventsOptions {
            since: Some(since.clone()),
            until: None,
            filters: Some(filters),
        }));
        let replay_deadline = tokio::time::Instant::now() + self.settings.replay_wait;
        loop {
            let item = tokio::select! {
                biased;
                () = stopped(shutdown) => return End::Shutdown,
                () = tokio::time::sleep_until(replay_deadline), if check_replay => {
                    check_replay = false;
                    if !self.gap(docker, &since, "the daemon replayed nothing from before the break (restarted?)").await {
                        return End::Shutdown;
                    }
                    continue;
                }
                item = stream.next() => item,
            };
            let msg = match item {
                None => return End::Broken("the daemon closed the event stream".into()),
                Some(Err(
                    e @ (bollard::errors::Error::JsonDataError { .. }
                    | bollard::errors::Error::JsonSerdeError { .. }),
                )) => {
                    PluginMetrics::add(&self.ctx.metrics.counters.received, 1);
                    self.ctx.rejected(&format!("undecodable Docker event: {e}"));
                    self.decode_failures += 1;
                    if self.decode_failures >= MAX_DECODE_FAILURES {
                        // The same bad record comes back on every replay: skip past it.
                        self.decode_failures = 0;
                        if !self.gap(docker, &since, "an undecodable event keeps coming back on replay; skipping ahead to now").await {
                            return End::Shutdown;
                        }
                        self.cursor.skip_to(wall_now());
                    }
                    return End::Broken(format!("undecodable event: {e}"));
                }
                Some(Err(e)) => return End::Broken(chain(&e)),
                Some(Ok(msg)) => msg,
            };
            PluginMetrics::add(&self.ctx.metrics.counters.received, 1);
            let ev = match DockerEvent::try_from(msg) {
                Ok(ev) => ev,
                Err(e) => {
                    self.ctx.rejected(&e.to_string());
                    continue;
                }
            };
            let seen = self.cursor.is_seen(&ev);
            if check_replay {
                check_replay = false;
                if !seen && !self.gap(docker, &since, "the last events seen before the break are no longer held by the daemon").await {
                    return End::Shutdown;
                }
            }
            if seen {
                tracing::trace!(source = SOURCE, action = %ev.action, actor = %ev.actor, "replayed event already sent");
                continue;
            }
            self.decode_failures = 0;
            self.cursor.record(&ev);
            if !self.handle(docker, ev).await {
                return End::Shutdown;
            }
        }
    }

    /// Reports a gap (logged, counted, and sent as an event plugins see: see
    /// [`events::GAP_RAW_ACTION`]) and re-inventories the running
    /// containers. Returns false when the pipeline is gone.
    async fn gap(&mut self, docker: &Docker, since: &str, reason: &str) -> bool {
        DockerEventsGap { since, reason }.emit(&self.ctx.metrics);
        let marker = Event {
            id: self.ctx.next_id(),
            time: wall_now(),
            node: self.ctx.node.to_string(),
            source: SOURCE.to_owned(),
            body: events::gap_body(since, reason),
        };
        if !self.ctx.send(vec![marker]).await {
            return false;
        }
        if !self.swarm_inventory(docker).await {
            return false;
        }
        match inventory(docker, &self.ctx, &mut self.tracker).await {
            Ok(sent) => sent.is_some(),
            Err(e) => {
                tracing::warn!(source = SOURCE, error = %chain(&e), "docker: inventory after a gap failed");
                true
            }
        }
    }

    /// Asks whether this node is a swarm manager and logs the answer when
    /// it changed (or is asked the first time).
    async fn probe_swarm(&mut self, docker: &Docker) {
        match swarm::role(docker).await {
            Ok(role) => {
                if role != self.role || role == SwarmRole::Inactive {
                    DockerSwarmRole { role }.emit();
                }
                self.role = role;
            }
            Err(e) => {
                tracing::warn!(source = SOURCE, error = %chain(&e), "docker: cannot tell whether this node is in a swarm")
            }
        }
    }

    /// The service inventory, on a manager. False when the pipeline is gone.
    async fn swarm_inventory(&mut self, docker: &Docker) -> bool {
        if !self.settings.swarm || self.role != SwarmRole::Manager {
            return true;
        }
        match swarm::inventory(docker, &self.ctx).await {
            Ok(Some(n)) => {
                tracing::info!(
                    source = SOURCE,
                    services = n,
                    "docker: inventory of swarm services sent"
                );
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(source = SOURCE, error = %chain(&e), "docker: swarm service inventory failed; continuing");
                true
            }
        }
    }

    /// Maps, completes and sends one event. Returns false when the pipeline is gone.
    async fn handle(&mut self, docker: &Docker, ev: DockerEvent) -> bool {
        let (mut event, enrich) = match events::map(&ev) {
            Ok(Mapped::Container { event, enrich }) => (*event, enrich),
            Ok(Mapped::Ignored) => return true,
            Ok(Mapped::Swarm(change)) => {
                if !self.settings.swarm {
                    return true;
                }
                if self.role != SwarmRole::Manager {
                    // Swarm events: this node became a manager since the
                    // stream opened (`docker swarm init`).
                    self.probe_swarm(docker).await;
                }
                let event = swarm::service_event(docker, &self.ctx, change, ev.time_nano).await;
                return self.ctx.send_services(vec![event]).await;
            }
            Err(e) => {
                self.ctx.rejected(&e.to_string());
                return true;
            }
        };
        match enrich {
            Enrich::Nothing => {}
            Enrich::Container => match inspect_container(docker, &ev.actor).await {
                Ok(i) => events::complete_with_inspect(&mut event, &i),
                Err(e) => DockerInspectFailed {
                    object: &ev.actor,
                    error: &e,
                    gone: is_not_found(&e),
                }
                .emit(),
            },
            Enrich::Exec(exec) => match inspect_exec(docker, &exec).await {
                Ok(info) => events::complete_with_exec(&mut event, info),
                Err(e) => DockerInspectFailed {
                    object: &exec,
                    error: &e,
                    gone: is_not_found(&e),
                }
                .emit(),
            },
        }
        self.tracker.observe(&mut event, ev.time_nano);
        let out = Event {
            id: self.ctx.next_id(),
            time: ev.time_nano,
            node: self.ctx.node.to_string(),
            source: SOURCE.to_owned(),
            body: EventBody::Container(event),
        };
        self.ctx.send(vec![out]).await
    }
}

/// Resolves when shutdown is requested (or the host is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Sleeps `d`; false if shutdown came first.
async fn sleep_unless_stopped(d: Duration, rx: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = stopped(rx) => false,
        () = tokio::time::sleep(d) => true,
    }
}
