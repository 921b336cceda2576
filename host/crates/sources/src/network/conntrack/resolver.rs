//! Address → container, for the conntrack listener.
//!
//! Looks in Docker's container directories (fresh enough for containers
//! that live milliseconds, see `docker_dirs`) and then in the addresses of
//! container namespaces the procfs poller has seen (any engine, e.g. a
//! Kubernetes pod under containerd). An address neither knows is worth a
//! rescan of Docker's directories only when it could be a container's: not
//! one of the host's own addresses, and on a subnet the host reaches
//! directly (a bridge); the address of a remote server never is. Rescans
//! are rate-limited, and an address that stayed unknown is not asked about
//! again for a while.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::docker_dirs::DockerDirs;
use crate::network::addresses::{self, Addresses};
use crate::network::shared::Shared;
use vigil_core::model::ContainerRef;

/// The host's addresses are read again this often.
const HOST_REFRESH: Duration = Duration::from_secs(30);
/// Rescans of Docker's directories at most this often.
const MIN_RESCAN: Duration = Duration::from_millis(20);
/// An address that stayed unknown is not rescanned for again before this.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Unknown addresses remembered at most (then forgotten all at once).
const NEGATIVE_CAP: usize = 16_384;

/// See the module documentation.
#[derive(Debug)]
pub struct Resolver {
    docker: DockerDirs,
    shared: Arc<Shared>,
    proc_root: PathBuf,
    host: Addresses,
    host_read: Option<Instant>,
    last_rescan: Option<Instant>,
    unknown: HashMap<IpAddr, Instant>,
}

impl Resolver {
    pub fn new(docker: DockerDirs, shared: Arc<Shared>, proc_root: PathBuf) -> Self {
        Self {
            docker,
            shared,
            proc_root,
            host: Addresses::default(),
            host_read: None,
            last_rescan: None,
            unknown: HashMap::new(),
        }
    }

    /// The container holding `ip`, from what is known now (no I/O).
    pub fn lookup(&self, ip: IpAddr) -> Option<ContainerRef> {
        self.docker
            .owner(ip)
            .cloned()
            .or_else(|| self.shared.container_of(ip))
    }

    /// Whether `ip` may belong to a container not known yet: worth a
    /// rescan and a short wait.
    pub fn worth_waiting(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.refresh_host(now);
        if !addresses::is_meaningful(ip) || self.host.is_local(ip) || !self.host.is_connected(ip) {
            return false;
        }
        self.unknown
            .get(&ip)
            .is_none_or(|at| now.duration_since(*at) >= NEGATIVE_TTL)
    }

    /// Re-reads Docker's directories unless done very recently. True when
    /// something changed (then unknown addresses are asked about again).
    pub fn rescan(&mut self, now: Instant) -> bool {
        if self
            .last_rescan
            .is_some_and(|at| now.duration_since(at) < MIN_RESCAN)
        {
            return false;
        }
        self.last_rescan = Some(now);
        let changed = self.docker.rescan();
        if changed {
            self.unknown.clear();
        }
        changed
    }

    /// Notes that `ip` stayed unknown after waiting.
    pub fn gave_up(&mut self, ip: IpAddr, now: Instant) {
        if self.unknown.len() >= NEGATIVE_CAP {
            self.unknown.clear();
        }
        self.unknown.insert(ip, now);
    }

    fn refresh_host(&mut self, now: Instant) {
        if self
            .host_read
            .is_some_and(|at| now.duration_since(at) < HOST_REFRESH)
        {
            return;
        }
        self.host_read = Some(now);
        // Our own namespace: the one the conntrack socket listens in.
        self.host = Addresses::read(&self.proc_root, "self");
    }
}
