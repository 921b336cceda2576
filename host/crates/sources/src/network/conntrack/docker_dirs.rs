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
//! - the addresses its `hosts` file gives its own hostname when that file
//!   is newer than `config.v2.json` (it is being started: the config is
//!   the one from creation or from the previous stop).
//!
//! When two containers claim an address (one stopped long ago, one that
//! just got the address), the most recent claim wins. Files are re-read
//! only when their mtime changes, so a rescan costs a directory listing
//! and two `stat`s per container.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::network::attribution;
use vigil_core::model::ContainerRef;

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

impl Entry {
    /// The addresses this container holds now, with the time of the claim.
    fn claims(&self) -> impl Iterator<Item = (IpAddr, SystemTime)> + '_ {
        let starting = matches!((self.hosts_mtime, self.config_mtime), (Some(h), Some(c)) if h > c);
        let when = self
            .hosts_mtime
            .max(self.config_mtime)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let running = self
            .running
            .then_some(&self.network_ips)
            .into_iter()
            .flatten();
        let hosts = ((self.running || starting) && self.own_address)
            .then_some(&self.hosts_ips)
            .into_iter()
            .flatten();
        running.chain(hosts).map(move |ip| (*ip, when))
    }
}

/// Docker's container directories, followed by mtime.
#[derive(Debug)]
pub struct DockerDirs {
    dir: PathBuf,
    entries: HashMap<String, Entry>,
    owners: HashMap<IpAddr, ContainerRef>,
}

impl DockerDirs {
    /// Follows `<docker_root>/containers`.
    pub fn new(docker_root: &Path) -> Self {
        Self {
            dir: docker_root.join("containers"),
            entries: HashMap::new(),
            owners: HashMap::new(),
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
            changed |= refresh(entry, &id, &dir);
            present.push(id);
        }
        let before = self.entries.len();
        let present: std::collections::HashSet<String> = present.into_iter().collect();
        self.entries.retain(|id, _| present.contains(id));
        changed |= self.entries.len() != before;
        if changed {
            let mut best: HashMap<IpAddr, (SystemTime, &Entry)> = HashMap::new();
            for entry in self.entries.values() {
                for (ip, when) in entry.claims() {
                    let slot = best.entry(ip).or_insert((when, entry));
                    if when > slot.0 {
                        *slot = (when, entry);
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

/// Re-reads an entry's files whose mtime changed; true if any did.
fn refresh(entry: &mut Entry, id: &str, dir: &Path) -> bool {
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
    }
    if hosts_mtime != entry.hosts_mtime {
        changed = true;
        entry.hosts_mtime = hosts_mtime;
        entry.hosts_ips = std::fs::read_to_string(dir.join("hosts"))
            .map(|t| hosts_addresses(&t, &entry.hostname))
            .unwrap_or_default();
    }
    changed
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
