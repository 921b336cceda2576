//! The `ebpf` source: every outbound `connect(2)` on a TCP or UDP socket,
//! IPv4 and IPv6, with its result, and every successful `exec`, seen in the
//! kernel as it happens and attributed to its container — however short
//! the connection or the process and however the container is networked
//! (host network included).
//!
//! Kernel side: `ebpf/bpf/vigil.bpf.c`, compiled by build.rs with clang and
//! loaded with libbpf (CO-RE against the kernel's BTF); raw tracepoints on
//! `sys_enter`/`sys_exit` and `sched_process_exec`, a bounded in-flight
//! map, one ring buffer, and per-CPU counters for what is lost there.
//! Userspace (a thread of its own, libbpf's objects not being `Send`):
//! decodes each record ([`wire`]), maps the caller's cgroup v2 id to a
//! container ([`cgroups`]), names it from Docker's data root, and hands a
//! `network` event (`source: "ebpf"`, `direction: outbound`) or a process
//! event (WIT 0.1.3: binary, argv cut at 256 bytes, pid, parent, uid, the
//! container's terminal setting) to the pipeline.
//!
//! Where the programs cannot load (no `CAP_BPF`/`CAP_PERFMON`, no BTF, an
//! old kernel, a kernel that refuses them, no cgroup v2 hierarchy) the
//! source is off with the reason logged; the `network` source (procfs and
//! conntrack) runs as without it.

pub mod cgroups;
mod config;
mod internal_events;
#[cfg(test)]
mod tests;
pub mod wire;

mod loader;
mod runner;

use std::path::PathBuf;
use std::time::Duration;

pub use config::{EbpfConfig, EbpfSettings};

use crate::{Off, Source, SourceTask, Starter};
use vigil_core::validate::Problems;

/// The source name stamped on events and metrics.
pub const SOURCE: &str = "ebpf";

/// How long a ring buffer poll waits, so that shutdown is seen.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Why the source is off or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// This build carries no kernel programs (an architecture the C program
    /// does not describe).
    #[error("this build has no eBPF programs for its architecture")]
    NoPrograms,
    /// The kernel publishes no BTF: CO-RE cannot relocate the programs.
    #[error("the kernel publishes no BTF ({path} missing; needs CONFIG_DEBUG_INFO_BTF)")]
    NoBtf { path: PathBuf },
    /// The mount table could not be read.
    #[error("cannot read {path}")]
    Mountinfo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No cgroup v2 hierarchy: containers could not be told apart.
    #[error(
        "no cgroup v2 hierarchy mounted (per {path}): containers cannot be told apart by cgroup id"
    )]
    NoCgroup2 { path: PathBuf },
    /// `cgroup_root` is not a cgroup v2 hierarchy.
    #[error("{path} is not a cgroup v2 hierarchy (no cgroup.procs)")]
    NotCgroup2 { path: PathBuf },
    /// libbpf refused the object before loading it.
    #[error("cannot open the eBPF object")]
    Open(#[source] libbpf_rs::Error),
    /// The kernel refused to load the programs or create the maps (no
    /// privilege, an old kernel, the verifier).
    #[error("the kernel refused the eBPF programs (needs root or CAP_BPF and CAP_PERFMON)")]
    Load(#[source] libbpf_rs::Error),
    /// A program could not be attached.
    #[error("cannot attach the eBPF program {name}")]
    Attach {
        name: String,
        #[source]
        source: libbpf_rs::Error,
    },
    /// The object lacks a map the loader needs (a build mismatch).
    #[error("the eBPF object has no map `{0}`")]
    MissingMap(&'static str),
    /// The ring buffer could not be set up.
    #[error("cannot set up the ring buffer")]
    Ring(#[source] libbpf_rs::Error),
    /// Polling the ring buffer failed.
    #[error("cannot poll the ring buffer")]
    Poll(#[source] libbpf_rs::Error),
    /// The drop counters could not be read.
    #[error("cannot read the kernel counters")]
    Counters(#[source] libbpf_rs::Error),
    /// The source's thread could not be spawned.
    #[error("cannot start the eBPF thread")]
    Spawn(#[source] std::io::Error),
    /// The thread ended before saying whether the programs loaded.
    #[error("the eBPF thread ended while loading")]
    Vanished,
}

impl Source for EbpfConfig {
    const KEY: &'static str = "ebpf";
    const NAME: &'static str = "ebpf";
    type Settings = EbpfSettings;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn check(&self, at: &str, problems: &mut Problems) -> Option<EbpfSettings> {
        EbpfConfig::check(self, at, problems)
    }

    fn start(settings: EbpfSettings, starter: &Starter<'_>) -> Result<Vec<SourceTask>, Off> {
        let why = |e: EbpfError| {
            Off::Unavailable(format!(
                "{}; the network source (procfs, conntrack) runs without it",
                vigil_core::error::chain(&e)
            ))
        };
        let btf = PathBuf::from(loader::KERNEL_BTF);
        if !btf.exists() {
            return Err(why(EbpfError::NoBtf { path: btf }));
        }
        let cgroup_root = match &settings.cgroup_root {
            Some(root) => root.clone(),
            None => {
                let mountinfo = settings.proc_root.join("self/mountinfo");
                let text = std::fs::read_to_string(&mountinfo).map_err(|source| {
                    why(EbpfError::Mountinfo {
                        path: mountinfo.clone(),
                        source,
                    })
                })?;
                cgroups::cgroup2_mount(&text)
                    .ok_or_else(|| why(EbpfError::NoCgroup2 { path: mountinfo }))?
            }
        };
        if !cgroup_root.join("cgroup.procs").exists() {
            return Err(why(EbpfError::NotCgroup2 { path: cgroup_root }));
        }
        let thread = runner::start(settings, cgroup_root, starter.context(SOURCE)).map_err(why)?;
        Ok(vec![SourceTask::Thread(thread)])
    }
}
