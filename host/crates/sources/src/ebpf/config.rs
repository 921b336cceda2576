//! The eBPF source's configuration: raw (serde, every field documented) and
//! validated into [`EbpfSettings`], reporting every problem at once.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vigil_core::validate::{Problems, join};

use crate::network::attribution::ContainerRoots;

/// The `ebpf` source as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EbpfConfig {
    /// Load the kernel programs (needs root or `CAP_BPF` + `CAP_PERFMON`,
    /// a kernel with BTF and ring buffers: 5.8 or later). Where they cannot
    /// load, the source logs why and is off; the `network` source (procfs
    /// and conntrack) runs as without it. Off by default while a connection
    /// still open at a procfs poll is reported by both sources.
    pub enabled: bool,
    /// Also emit the connects of the host itself (processes in no
    /// container), with no `container`. Off by default, as for the
    /// `network` source.
    pub include_host: bool,
    /// Size of the kernel ring buffer, in bytes: a power of two, at least
    /// 64 KiB. An event that finds it full is lost in the kernel (counted
    /// in `vigil_source_gaps_total{source="ebpf"}`, logged).
    pub ring_buffer_bytes: u32,
    /// Connects in flight (between the syscall's entry and its exit)
    /// followed at once. Beyond, a connect is not followed (counted in
    /// `vigil_source_overflow_total{source="ebpf"}`, logged).
    pub max_pending_connects: u32,
    /// Containers whose name and image are cached.
    pub max_cached_containers: usize,
    /// Where procfs is mounted (the host's: Vigil must run in the host's PID
    /// namespace, whose network namespace tells host-network containers).
    pub proc_root: PathBuf,
    /// Where the host's cgroup v2 hierarchy is mounted (walked to map the
    /// kernel's cgroup ids to containers). Empty: the first `cgroup2` mount
    /// of `<proc_root>/self/mountinfo` (`/sys/fs/cgroup`, or
    /// `/sys/fs/cgroup/unified` on hybrid nodes). In a container, mount the
    /// host's hierarchy and name it here: the container's own cgroup
    /// namespace shows only its own cgroups.
    pub cgroup_root: PathBuf,
    /// Docker's data root: a container's name, image and terminal setting
    /// are read from `<docker_root>/containers/<id>/config.v2.json`.
    pub docker_root: PathBuf,
    /// containerd's state directory, for containers Docker does not know
    /// (a Kubernetes node's, through CRI): their name, image, pod and
    /// terminal setting are read from the OCI bundle
    /// `<containerd_state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`.
    /// Empty: not looked at.
    pub containerd_state: PathBuf,
    /// CRI-O's storage run root, likewise:
    /// `<crio_runroot>/<driver>-containers/<id>/userdata/config.json`.
    /// Empty: not looked at.
    pub crio_runroot: PathBuf,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            include_host: false,
            ring_buffer_bytes: 1 << 22,
            max_pending_connects: 16_384,
            max_cached_containers: 4_096,
            proc_root: PathBuf::from("/proc"),
            cgroup_root: PathBuf::new(),
            docker_root: PathBuf::from("/var/lib/docker"),
            containerd_state: PathBuf::from("/run/containerd"),
            crio_runroot: PathBuf::from("/run/containers/storage"),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbpfSettings {
    /// Whether events without a container are emitted.
    pub include_host: bool,
    /// Ring buffer size (a power of two, at least 64 KiB).
    pub ring_buffer_bytes: u32,
    /// Capacity of the in-flight connect map (positive).
    pub max_pending_connects: u32,
    /// Cap of cached container names (positive).
    pub max_cached_containers: usize,
    /// procfs mount point (absolute).
    pub proc_root: PathBuf,
    /// cgroup v2 mount point (absolute), `None` to find it in mountinfo.
    pub cgroup_root: Option<PathBuf>,
    /// Where containers are named.
    pub containers: ContainerRoots,
}

impl EbpfConfig {
    /// Checks every field (problems at `at.FIELD`) and resolves the configuration.
    pub fn check(&self, at: &str, problems: &mut Problems) -> Option<EbpfSettings> {
        let before = problems.len();
        let mut bad = |field: &str, reason: &str| problems.push(join(at, field), reason);
        if self.ring_buffer_bytes < 64 * 1024 || !self.ring_buffer_bytes.is_power_of_two() {
            bad(
                "ring_buffer_bytes",
                "must be a power of two of at least 65536",
            );
        }
        if self.max_pending_connects == 0 {
            bad("max_pending_connects", "must be positive");
        }
        if self.max_cached_containers == 0 {
            bad("max_cached_containers", "must be positive");
        }
        if !self.proc_root.is_absolute() {
            bad("proc_root", "must be an absolute path");
        }
        if !self.cgroup_root.as_os_str().is_empty() && !self.cgroup_root.is_absolute() {
            bad(
                "cgroup_root",
                "must be an absolute path (or empty: found in mountinfo)",
            );
        }
        let containers = ContainerRoots::check(
            &self.docker_root,
            &self.containerd_state,
            &self.crio_runroot,
            &mut bad,
        );
        if problems.len() > before {
            return None;
        }
        Some(EbpfSettings {
            include_host: self.include_host,
            ring_buffer_bytes: self.ring_buffer_bytes,
            max_pending_connects: self.max_pending_connects,
            max_cached_containers: self.max_cached_containers,
            proc_root: self.proc_root.clone(),
            cgroup_root: (!self.cgroup_root.as_os_str().is_empty())
                .then(|| self.cgroup_root.clone()),
            containers,
        })
    }
}
