//! The Docker source's configuration: raw (serde, every field documented)
//! and validated into [`DockerSettings`], reporting every problem at once.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_core::validate::{Problems, join};

pub use vigil_core::docker::DEFAULT_SOCKET;

/// The `docker` source as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// Run this source (when the socket exists: a host without Docker just
    /// logs that the source is off).
    pub enabled: bool,
    /// Path of the Docker Engine API Unix socket. Only a local socket is
    /// supported: the Engine API grants root on the host, and Vigil never
    /// sends it anything but read requests.
    pub socket: PathBuf,
    /// Per-request timeout for inspect and list calls, in milliseconds
    /// (the event stream itself has none: it is meant to stay open).
    pub request_timeout_ms: u64,
    /// First delay before reconnecting after the event stream broke, in
    /// milliseconds; doubles per failed attempt up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    /// Longest delay between two reconnection attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// How long to wait, after reopening the stream, for the daemon to replay
    /// the last event seen before the break, in milliseconds. If it does not,
    /// the daemon no longer holds the events of the gap (it restarted, or
    /// its event buffer rolled over) and the gap is reported.
    pub replay_wait_ms: u64,
    /// Containers whose start time is tracked (to compute lifetimes); beyond
    /// this, new containers get no `lifetime_ms`. Bounds memory when
    /// `destroy` events are missed.
    pub max_tracked_containers: usize,
    /// Follow Docker Swarm activity when this node is a swarm manager:
    /// service, node, secret and config events, each service event with the
    /// service's inspected spec, and an inventory of the services at start.
    /// Plugins receive it through `on-service-events`. A worker node (or a
    /// daemon outside a swarm) has none; its task containers are seen as
    /// containers either way.
    pub swarm: bool,
}

fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_initial_backoff_ms() -> u64 {
    100
}
fn default_max_backoff_ms() -> u64 {
    5_000
}
fn default_replay_wait_ms() -> u64 {
    2_000
}
fn default_max_tracked_containers() -> usize {
    65_536
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: PathBuf::from(DEFAULT_SOCKET),
            request_timeout_ms: default_request_timeout_ms(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            replay_wait_ms: default_replay_wait_ms(),
            max_tracked_containers: default_max_tracked_containers(),
            swarm: true,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerSettings {
    /// The Engine API socket (absolute path).
    pub socket: PathBuf,
    /// Timeout of one inspect/list request (whole seconds, at least one: the client's granularity).
    pub request_timeout: Duration,
    /// First reconnection delay.
    pub initial_backoff: Duration,
    /// Reconnection delay cap.
    pub max_backoff: Duration,
    /// How long to wait for the replay of the boundary event after a reconnect.
    pub replay_wait: Duration,
    /// Cap of tracked containers.
    pub max_tracked_containers: usize,
    /// Whether Swarm activity is followed on a manager.
    pub swarm: bool,
}

impl DockerConfig {
    /// Checks every field (problems at `at.FIELD`) and resolves the configuration.
    pub fn check(&self, at: &str, problems: &mut Problems) -> Option<DockerSettings> {
        let before = problems.len();
        let mut bad = |field: &str, reason: &str| problems.push(join(at, field), reason);
        if !self.socket.is_absolute() {
            bad("socket", "must be an absolute path");
        }
        if self.request_timeout_ms == 0 {
            bad("request_timeout_ms", "must be positive");
        }
        if self.initial_backoff_ms == 0 {
            bad("initial_backoff_ms", "must be positive");
        }
        if self.max_backoff_ms < self.initial_backoff_ms {
            bad("max_backoff_ms", "must be at least initial_backoff_ms");
        }
        if self.max_tracked_containers == 0 {
            bad("max_tracked_containers", "must be positive");
        }
        if problems.len() > before {
            return None;
        }
        Some(DockerSettings {
            socket: self.socket.clone(),
            request_timeout: Duration::from_millis(self.request_timeout_ms.max(1_000)),
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            replay_wait: Duration::from_millis(self.replay_wait_ms),
            max_tracked_containers: self.max_tracked_containers,
            swarm: self.swarm,
        })
    }
}
