//! Which Docker container holds an address, from Docker's data root, in
//! time for containers that live a few milliseconds.
//!
//! A container that connects and exits at once is gone before any poll,
//! and once it has stopped Docker clears its address from
//! `config.v2.json`. But Docker writes the container's `hosts` file, with
//! `<address> <hostname>`, when it sets up the network namespace, before
//! the process starts; and it rewrites `config.v2.json` (running, with the
//! addresses) right after the start and again at the stop. So a container
//! holds:
//! - the addresses of its networks in `config.v2.json` while it runs, and
//! - the addresses its `hosts` file gives its own hostname while it is
//!   being started: the file is newer than `config.v2.json`, which is still
//!   the one from creation or from the previous stop (not running).
//!
//! The `hosts` file is the container's `/etc/hosts`, bind-mounted
//! read-write: once its process runs, the container can write anything
//! there, and bump its mtime at will. So it is trusted only in the
//! starting window, before Docker has written the running state; once the
//! container runs, its addresses come from `config.v2.json` alone (written
//! by the daemon, out of the container's reach) and its `hosts` file is not
//! even read. And an address held by a running container per
//! `config.v2.json` is never taken from it by any `hosts` file, however
//! recent: a container that rewrites its `/etc/hosts` to name another
//! container's address does not get that container's flows. (What remains:
//! in the few milliseconds between its process starting and Docker
//! recording it as running, a container could name in its `hosts` file an
//! address no running container holds; a stopped container's flows do not
//! exist.) The file is read at most [`HOSTS_MAX_BYTES`]; a larger one
//! (Docker writes a few hundred bytes) is not used, counted and logged.
//!
//! When two containers claim an address, a claim from `config.v2.json`
//! beats one from a `hosts` file, and between claims of the same kind the
//! most recent wins (one stopped long ago, one that just got the address).
//! Files are re-read only when their mtime changes, so a rescan costs a
//! directory listing and two `stat`s per container.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

use super::internal_events::ConntrackHostsFileOversized;
use crate::network::attribution;
use vigil_core::metrics::SourceMetrics;
use vigil_core::model::ContainerRef;

/// The most of a `hosts` file read. Docker writes a few hundred bytes; the
/// container can make it as large as its disk allows.
pub const HOSTS_MAX_BYTES: u64 = 64 * 1024;

/// The part of `config.v2.json` read here.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigV2 {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Config")]
    config: Inner,
    #[serde(rename = "State")]
    state: State,
    #[serde(rename = "NetworkSettings")]
    network: Option<NetworkSettings>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Inner {
    #[serde(rename = "Image")]
    image: String,
    #[serde(rename = "Hostname")]
    hostname: String,
    #[serde(rename = "Labels")]
    labels: Option<HashMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct State {
    #[serde(rename = "Running")]
    running: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NetworkSettings {
    #[serde(rename = "Networks")]
    networks: Option<HashMap<String, Endpoint>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Endpoint {
    #[serde(rename = "IPAddress")]
    ipv4: String,
    #[serde(rename = "GlobalIPv6Address")]
    ipv6: String,
}

/// One container directory as last read.
#[derive(Debug, Default)]
struct Entry {
    config_mtime: Option<SystemTime>,
    hosts_mtime: Option<SystemTime>,
    container: ContainerRef,
    hostname: String,
    running: bool,
    /// From `config.v2.json` (meaningful while running).
    network_ips: Vec<IpAddr>,
    /// From `hosts`, the lines naming the container's hostname.
    hosts_ips: Vec<IpAddr>,
    /// Whether the container has addresses of its own: on a network other
    /// than `host` or `none` (a host-network container's `hosts` file may
    /// name the host's address; one sharing another's namespace has no
    /// network of its own).
    own_address: bool,
}

/// Where a claim on an address comes from, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Evidence {
    /// The `hosts` file of a container being started.
    HostsFile,
    /// `config.v2.json` of a running container (the daemon's record).
    Engine,
}

impl Entry {
    /// Whether Docker has prepared the container's network for a start it
    /// has not recorded yet: the only time its `hosts` file is trusted.
    fn starting(&self) -> bool {
        !self.running
            && self.own_address
            && matches!((self.hosts_mtime, self.config_mtime), (Some(h), Some(c)) if h > c)
    }

    /// The addresses this container holds now, with the strength and time
    /// of each claim.
    fn claims(&self) -> impl Iterator<Item = (IpAddr, Evidence, SystemTime)> + '_ {
        let engine = self
            .running
            .then_some(&self.network_ips)
            .into_iter()
            .flatten()
            .map(|ip| {
                let when = self.config_mtime.unwrap_or(SystemTime::UNIX_EPOCH);
                (*ip, Evidence::Engine, when)
            });
        let hosts = self
            .starting()
            .then_some(&self.hosts_ips)
            .into_iter()
            .flatten()
            .map(|ip| {
                let when = self.hosts_mtime.unwrap_or(SystemTime::UNIX_EPOCH);
                (*ip, Evidence::HostsFile, when)
            });
        engine.chain(hosts)
    }
}

/// Docker's container directories, followed by mtime.
#[derive(Debug)]
pub struct DockerDirs {
    dir: PathBuf,
    entries: HashMap<String, Entry>,
    owners: HashMap<IpAddr, ContainerRef>,
    metrics: Arc<SourceMetrics>,
}

impl DockerDirs {
    /// Follows `<docker_root>/containers`; an oversized `hosts` file is
    /// counted in `metrics`.
    pub fn new(docker_root: &Path, metrics: Arc<SourceMetrics>) -> Self {
        Self {
            dir: docker_root.join("containers"),
            entries: HashMap::new(),
            owners: HashMap::new(),
            metrics,
        }
    }

    /// The container holding `ip` at the last rescan.
    pub fn owner(&self, ip: IpAddr) -> Option<&ContainerRef> {
        self.owners.get(&ip)
    }

    /// Re-reads what changed; true when any container changed. A missing
    /// directory (Docker not installed) is just empty.
    pub fn rescan(&mut self) -> bool {
        let Ok(list) = std::fs::read_dir(&self.dir) else {
            let changed = !self.entries.is_empty();
            self.entries.clear();
            self.owners.clear();
            return changed;
        };
        let mut changed = false;
        let mut present = Vec::new();
        for e in list.filter_map(Result::ok) {
            let Some(id) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let dir = e.path();
            let entry = self.entries.entry(id.clone()).or_default();
            changed |= refresh(entry, &id, &dir, &self.metrics);
            present.push(id);
        }
        let before = self.entries.len();
        let present: std::collections::HashSet<String> = present.into_iter().collect();
        self.entries.retain(|id, _| present.contains(id));
        changed |= self.entries.len() != before;
        if changed {
            let mut best: HashMap<IpAddr, ((Evidence, SystemTime), &Entry)> = HashMap::new();
            for entry in self.entries.values() {
                for (ip, evidence, when) in entry.claims() {
                    let claim = (evidence, when);
                    let slot = best.entry(ip).or_insert((claim, entry));
                    if claim > slot.0 {
                        *slot = (claim, entry);
                    }
                }
            }
            self.owners = best
                .into_iter()
                .map(|(ip, (_, e))| (ip, e.container.clone()))
                .collect();
        }
        changed
    }
}

/// Re-reads an entry's files whose mtime changed; true if any did. The
/// `hosts` file is read only while it can be trusted ([`Entry::starting`]).
fn refresh(entry: &mut Entry, id: &str, dir: &Path, metrics: &SourceMetrics) -> bool {
    let mtime = |name: &str| {
        std::fs::metadata(dir.join(name))
            .and_then(|m| m.modified())
            .ok()
    };
    let (config_mtime, hosts_mtime) = (mtime("config.v2.json"), mtime("hosts"));
    let mut changed = false;
    if config_mtime != entry.config_mtime {
        changed = true;
        entry.config_mtime = config_mtime;
        let config: ConfigV2 = std::fs::read(dir.join("config.v2.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let labels = config.config.labels.unwrap_or_default();
        entry.container = ContainerRef {
            id: id.to_owned(),
            name: config.name.trim_start_matches('/').to_owned(),
            image: config.config.image,
            pod: attribution::pod(&labels),
        };
        entry.hostname = config.config.hostname;
        entry.running = config.state.running;
        let networks = config.network.and_then(|n| n.networks).unwrap_or_default();
        entry.own_address = !networks.is_empty()
            && !networks.contains_key("host")
            && !networks.contains_key("none");
        entry.network_ips = networks
            .values()
            .flat_map(|e| [e.ipv4.parse().ok(), e.ipv6.parse().ok()])
            .flatten()
            .collect();
        // The hostname may have changed what the hosts file means.
        entry.hosts_mtime = None;
        entry.hosts_ips.clear();
    }
    if hosts_mtime != entry.hosts_mtime {
        changed = true;
        entry.hosts_mtime = hosts_mtime;
        entry.hosts_ips = if entry.starting() {
            let path = dir.join("hosts");
            match read_capped(&path, HOSTS_MAX_BYTES) {
                Some(text) => hosts_addresses(&text, &entry.hostname),
                None => {
                    ConntrackHostsFileOversized {
                        path: &path,
                        cap: HOSTS_MAX_BYTES,
                    }
                    .emit(metrics);
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
    }
    changed
}

/// The text of `path` when it has at most `cap` bytes: `Some("")` when it
/// cannot be read (gone, not UTF-8: nothing to learn from it), `None` when
/// it is larger (not used, and worth a word).
pub fn read_capped(path: &Path, cap: u64) -> Option<String> {
    let Ok(file) = std::fs::File::open(path) else {
        return Some(String::new());
    };
    let mut bytes = Vec::new();
    if file.take(cap + 1).read_to_end(&mut bytes).is_err() {
        return Some(String::new());
    }
    if bytes.len() as u64 > cap {
        return None;
    }
    Some(String::from_utf8(bytes).unwrap_or_default())
}

/// The addresses an `/etc/hosts` text gives `hostname` (loopback and
/// link-local lines, always present, are not the container's own).
pub fn hosts_addresses(text: &str, hostname: &str) -> Vec<IpAddr> {
    if hostname.is_empty() {
        return Vec::new();
    }
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?;
            let mut f = line.split_ascii_whitespace();
            let ip: IpAddr = f.next()?.parse().ok()?;
            let names_it = f.any(|n| n == hostname || n.split('.').next() == Some(hostname));
            (names_it && super::super::addresses::is_meaningful(ip)).then_some(ip)
        })
        .collect()
}
