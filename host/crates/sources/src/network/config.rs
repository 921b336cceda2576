//! The network source's configuration: raw (serde, every field documented)
//! and validated into [`NetworkSettings`], reporting every problem at once.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_core::validate::{Problems, join};

use super::attribution::ContainerRoots;

/// Default polling interval, in milliseconds.
pub const DEFAULT_INTERVAL_MS: u64 = 1_000;

/// The shortest accepted interval: below it the scan of every process's
/// cgroup and namespace would cost more CPU than it is worth.
const MIN_INTERVAL_MS: u64 = 50;

/// The `procfs` network source as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Run this source (when `proc_root` has socket tables).
    pub enabled: bool,
    /// How often the socket tables are read, in milliseconds. A connection
    /// that opens and closes between two reads is not seen by the poller
    /// (the `conntrack` listener sees those of bridge-networked containers),
    /// so a shorter interval misses fewer short-lived connections at the
    /// cost of CPU.
    pub interval_ms: u64,
    /// Also emit the sockets of the host itself (and of network namespaces
    /// holding no container), with no `container`. Off by default: the
    /// host's own traffic is noise for container detectors.
    pub include_host: bool,
    /// Sockets remembered between two polls so that each is reported once.
    /// Beyond this, new sockets are not reported (counted in
    /// `vigil_source_overflow_total` and logged): reporting them without
    /// remembering them would repeat them on every poll.
    pub max_tracked_sockets: usize,
    /// Containers whose name and image are cached.
    pub max_cached_containers: usize,
    /// Where procfs is mounted: the host's, so that every process is seen
    /// (when Vigil runs in a container, mount the host's `/proc` and run in
    /// the host's PID namespace).
    pub proc_root: PathBuf,
    /// Docker's data root: a container's name and image are read from
    /// `<docker_root>/containers/<id>/config.v2.json` rather than asked of
    /// the daemon, which keeps this source independent of the API socket.
    /// The conntrack listener also learns container addresses there.
    pub docker_root: PathBuf,
    /// containerd's state directory, for containers Docker does not know
    /// (a Kubernetes node's, through CRI): their name, image and pod are
    /// read from the OCI bundle
    /// `<containerd_state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`.
    /// Empty: not looked at.
    pub containerd_state: PathBuf,
    /// CRI-O's storage run root, likewise:
    /// `<crio_runroot>/<driver>-containers/<id>/userdata/config.json`.
    /// Empty: not looked at.
    pub crio_runroot: PathBuf,
    /// Also follow new connections through conntrack events over netlink
    /// (needs `CAP_NET_ADMIN`; off with the reason logged where netlink is
    /// unavailable).
    pub conntrack: bool,
    /// Receive buffer of the netlink socket, in bytes (set with
    /// `SO_RCVBUFFORCE`). When a burst of new connections fills it the
    /// kernel drops events (counted in `vigil_source_gaps_total`, logged).
    pub conntrack_receive_buffer_bytes: usize,
    /// How long a flow from an address no container is known to hold yet
    /// waits for it to become known (a container that has just started),
    /// in milliseconds.
    pub attribution_wait_ms: u64,
    /// Flows waiting for their address at most; beyond, the oldest is
    /// dropped (counted in `vigil_source_overflow_total`, logged).
    pub max_pending_flows: usize,
}

fn default_max_tracked_sockets() -> usize {
    65_536
}
fn default_max_cached_containers() -> usize {
    4_096
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_ms: DEFAULT_INTERVAL_MS,
            include_host: false,
            max_tracked_sockets: default_max_tracked_sockets(),
            max_cached_containers: default_max_cached_containers(),
            proc_root: PathBuf::from("/proc"),
            docker_root: PathBuf::from("/var/lib/docker"),
            containerd_state: PathBuf::from("/run/containerd"),
            crio_runroot: PathBuf::from("/run/containers/storage"),
            conntrack: true,
            conntrack_receive_buffer_bytes: 4 * 1024 * 1024,
            attribution_wait_ms: 1_000,
            max_pending_flows: 4_096,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Time between two polls (at least 50 ms).
    pub interval: Duration,
    /// Whether sockets without a container are emitted.
    pub include_host: bool,
    /// Cap of remembered sockets (positive).
    pub max_tracked_sockets: usize,
    /// Cap of cached container names (positive).
    pub max_cached_containers: usize,
    /// procfs mount point (absolute).
    pub proc_root: PathBuf,
    /// Where containers are named (Docker's data root also gives conntrack
    /// its addresses).
    pub containers: ContainerRoots,
    /// Whether the conntrack listener is wanted.
    pub conntrack: bool,
    /// Netlink receive buffer (at least 64 KiB).
    pub conntrack_receive_buffer_bytes: usize,
    /// Wait for an unknown address (at most 10 s).
    pub attribution_wait: Duration,
    /// Cap of waiting flows (positive).
    pub max_pending_flows: usize,
    /// How long a reported connection is remembered so that the other
    /// source does not report it again: long enough for the poller to have
    /// looked at least a few times.
    pub dedup_window: Duration,
}

impl NetworkConfig {
    /// Checks every field (problems at `at.FIELD`) and resolves the configuration.
    pub fn check(&self, at: &str, problems: &mut Problems) -> Option<NetworkSettings> {
        let before = problems.len();
        let mut bad = |field: &str, reason: &str| problems.push(join(at, field), reason);
        if self.interval_ms < MIN_INTERVAL_MS {
            bad("interval_ms", "must be at least 50");
        }
        if self.max_tracked_sockets == 0 {
            bad("max_tracked_sockets", "must be positive");
        }
        if self.max_cached_containers == 0 {
            bad("max_cached_containers", "must be positive");
        }
        if !self.proc_root.is_absolute() {
            bad("proc_root", "must be an absolute path");
        }
        let containers = ContainerRoots::check(
            &self.docker_root,
            &self.containerd_state,
            &self.crio_runroot,
            &mut bad,
        );
        if self.conntrack_receive_buffer_bytes < 64 * 1024 {
            bad("conntrack_receive_buffer_bytes", "must be at least 65536");
        }
        if self.attribution_wait_ms > 10_000 {
            bad("attribution_wait_ms", "must be at most 10000");
        }
        if self.max_pending_flows == 0 {
            bad("max_pending_flows", "must be positive");
        }
        if problems.len() > before {
            return None;
        }
        let interval = Duration::from_millis(self.interval_ms);
        Some(NetworkSettings {
            interval,
            include_host: self.include_host,
            max_tracked_sockets: self.max_tracked_sockets,
            max_cached_containers: self.max_cached_containers,
            proc_root: self.proc_root.clone(),
            containers,
            conntrack: self.conntrack,
            conntrack_receive_buffer_bytes: self.conntrack_receive_buffer_bytes,
            attribution_wait: Duration::from_millis(self.attribution_wait_ms),
            max_pending_flows: self.max_pending_flows,
            dedup_window: interval.saturating_mul(5).max(Duration::from_secs(10)),
        })
    }
}
