//! The Docker source's internal events: each logs with structured fields
//! and bumps its counter together.

use std::path::Path;
use std::time::Duration;
use vigil_core::error::chain;

use vigil_core::metrics::{PluginMetrics, SourceMetrics};

/// The event stream is open (first time, or again after a break).
pub struct DockerStreamOpened<'a> {
    pub socket: &'a Path,
    pub api_version: String,
    /// The `since` sent, `seconds.nanoseconds`.
    pub since: &'a str,
    /// Whether this follows a break (counted as a reconnect).
    pub reconnect: bool,
    pub down_for: Duration,
}

impl DockerStreamOpened<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        if self.reconnect {
            PluginMetrics::add(&m.counters.reconnects, 1);
            tracing::info!(
                source = "docker",
                socket = %self.socket.display(),
                since = self.since,
                down_ms = self.down_for.as_millis() as u64,
                reconnects = PluginMetrics::get(&m.counters.reconnects),
                "docker: event stream reconnected, resuming from the last event seen"
            );
        } else {
            tracing::info!(source = "docker", socket = %self.socket.display(), api_version = %self.api_version, since = self.since, "docker: event stream open");
        }
    }
}

/// The event stream broke (daemon restart, socket closed, read error).
pub struct DockerStreamInterrupted<'a> {
    pub reason: &'a str,
}

impl DockerStreamInterrupted<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            source = "docker",
            reason = self.reason,
            "docker: event stream interrupted; reconnecting"
        );
    }
}

/// The daemon could not be reached; the source retries.
pub struct DockerConnectFailed<'a> {
    pub socket: &'a Path,
    pub error: &'a dyn std::error::Error,
    pub attempt: u32,
    pub retry_in: Duration,
}

impl DockerConnectFailed<'_> {
    pub fn emit(&self) {
        // Loud at first, then once every ten attempts: the daemon may be down for long.
        if self.attempt <= 1 || self.attempt.is_multiple_of(10) {
            tracing::warn!(source = "docker", socket = %self.socket.display(), error = %chain(self.error), attempt = self.attempt, retry_in_ms = self.retry_in.as_millis() as u64, "docker: cannot reach the daemon");
        } else {
            tracing::debug!(source = "docker", error = %chain(self.error), attempt = self.attempt, "docker: cannot reach the daemon");
        }
    }
}

/// Events may have been lost: after a break, the daemon could not replay
/// everything since the last event seen. Besides this log line and counter,
/// the source sends a `vigil-events-gap` container event (see
/// `events::GAP_RAW_ACTION`).
pub struct DockerEventsGap<'a> {
    /// Last event time seen before the break, `seconds.nanoseconds`.
    pub since: &'a str,
    pub reason: &'a str,
}

impl DockerEventsGap<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.gaps, 1);
        tracing::error!(
            source = "docker",
            since = self.since,
            reason = self.reason,
            "DOCKER EVENTS MAY HAVE BEEN LOST: the gap in the event stream could not be closed; the running containers are re-inventoried, but containers created and removed during the gap are not seen"
        );
    }
}

/// A container or exec could not be inspected; the event is sent with the
/// attributes of the Docker event only (no security configuration).
pub struct DockerInspectFailed<'a> {
    pub object: &'a str,
    pub error: &'a dyn std::error::Error,
    /// The object was gone (removed right away): common for `--rm` containers.
    pub gone: bool,
}

impl DockerInspectFailed<'_> {
    pub fn emit(&self) {
        if self.gone {
            tracing::info!(
                source = "docker",
                object = self.object,
                "docker: object gone before it could be inspected; event sent without its configuration"
            );
        } else {
            tracing::warn!(source = "docker", object = self.object, error = %chain(self.error), "docker: inspect failed; event sent without its configuration");
        }
    }
}

/// A service's spec could not be fetched or read (a malformed answer of the
/// API, or the service removed meanwhile): one log line, the record counted
/// as rejected; the service event is sent without its spec and the source
/// goes on.
pub struct DockerServiceSpecUnreadable<'a> {
    pub service: &'a str,
    pub error: &'a str,
}

impl DockerServiceSpecUnreadable<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.rejected, 1);
        tracing::error!(
            source = "docker",
            service = self.service,
            error = self.error,
            "docker: cannot read a swarm service's spec; its event is sent without it"
        );
    }
}

/// Whether this node is in a swarm and a manager, logged at each (re)connect.
pub struct DockerSwarmRole {
    pub role: super::swarm::SwarmRole,
}

impl DockerSwarmRole {
    pub fn emit(&self) {
        let manager = self.role == super::swarm::SwarmRole::Manager;
        let active = self.role != super::swarm::SwarmRole::Inactive;
        tracing::info!(
            source = "docker",
            swarm_active = active,
            swarm_manager = manager,
            "docker: {}",
            self.role.describe()
        );
    }
}
