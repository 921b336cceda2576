//! One poll: every process's network namespace and container, the socket
//! tables of each namespace that holds a container, and an event for each
//! socket not seen at the previous poll.
//!
//! Attribution: a namespace whose processes all belong to one container
//! (its own network namespace, the common case) gives all its sockets to
//! that container without looking at file descriptors. The host's namespace
//! (host-network containers) and namespaces shared by several containers (a
//! pod, `--network container:…`) need the owner of each new socket: the
//! container process holding `socket:[inode]` open. A socket nobody holds
//! any more (TIME_WAIT) goes, in a shared namespace, to the container of
//! its lowest pid (the pod's infrastructure container, usually), and in the
//! host's namespace to the host.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::NetworkError;
use super::addresses::Addresses;
use super::attribution::{self, ContainerNames};
use super::config::NetworkSettings;
use super::procfs::{self, SocketRow};
use super::shared::{FlowKey, Shared};
use super::tracker::{Seen, SocketKey, Tracker};
use vigil_core::model::{Direction, NetworkEvent, Protocol};

/// A process: its network namespace and its container, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Its pid in the proc root's PID namespace.
    pub pid: u32,
    /// Inode of its network namespace.
    pub netns: u64,
    /// Id of its container; `None` for the host's processes.
    pub container: Option<String>,
}

/// Every process readable under `proc_root`, in pid order. A process that
/// vanishes while being read is left out; only an unreadable proc root is
/// an error.
pub fn processes(proc_root: &Path) -> Result<Vec<Process>, NetworkError> {
    let pids = procfs::pids(proc_root).map_err(|source| NetworkError::ListProcesses {
        path: proc_root.to_owned(),
        source,
    })?;
    Ok(pids
        .into_iter()
        .filter_map(|pid| {
            let netns = procfs::netns(proc_root, &pid.to_string())?;
            let container = procfs::cgroup(proc_root, pid)
                .and_then(|c| attribution::container_id(&c).map(str::to_owned));
            Some(Process {
                pid,
                netns,
                container,
            })
        })
        .collect())
}

/// The direction of a socket, seen from its namespace: listeners are
/// `Listen`; a connection whose local port is a listening port of the same
/// namespace was accepted (`Inbound`); any other was opened from here
/// (`Outbound`, its local port being ephemeral).
pub fn direction(row: &SocketRow, listening: &HashSet<(bool, u16)>) -> Direction {
    if row.is_listening() {
        Direction::Listen
    } else if listening.contains(&(row.protocol == Protocol::Udp, row.local.port())) {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}

/// What one poll found.
#[derive(Debug, Default)]
pub struct Poll {
    /// Sockets new since the previous poll.
    pub events: Vec<NetworkEvent>,
    /// Table rows read.
    pub rows: u64,
    /// Rows that could not be parsed.
    pub rejected: u64,
    /// The first row that could not be parsed.
    pub rejected_example: Option<String>,
    /// New sockets not reported because the tracker is full.
    pub untracked: u64,
}

/// Processes of one namespace.
#[derive(Debug, Default)]
struct Namespace {
    /// In pid order.
    pids: Vec<u32>,
    /// Container → its lowest pid here.
    containers: BTreeMap<String, u32>,
}

/// The source's memory between polls.
#[derive(Debug)]
pub struct Scanner {
    settings: NetworkSettings,
    tracker: Tracker,
    names: ContainerNames,
    /// The host's network namespace: pid 1's, or ours when pid 1's cannot
    /// be read (some sandboxes hide it).
    host_netns: Option<u64>,
    /// Shared with the conntrack listener: container addresses are
    /// published there, and connections are reported by one source only.
    shared: Option<Arc<Shared>>,
    /// Addresses of container namespaces and the poll that read them.
    addresses: HashMap<u64, (Vec<IpAddr>, u64)>,
    polls: u64,
}

/// A namespace's addresses are read again after this many polls (they
/// change only on `docker network connect`, rare).
const ADDRESS_REFRESH_POLLS: u64 = 10;

/// How many processes of a namespace are tried before giving it up for
/// this poll: the first normally answers; more only when they exit.
const READ_ATTEMPTS: usize = 3;

impl Scanner {
    /// A scanner with empty memory.
    pub fn new(settings: NetworkSettings) -> Self {
        let root = &settings.proc_root;
        let host_netns = procfs::netns(root, "1").or_else(|| procfs::netns(root, "self"));
        Self {
            tracker: Tracker::new(settings.max_tracked_sockets),
            names: ContainerNames::new(
                &settings.containers,
                settings.max_cached_containers,
                super::SOURCE,
            ),
            host_netns,
            settings,
            shared: None,
            addresses: HashMap::new(),
            polls: 0,
        }
    }

    /// A scanner that shares what it sees with the conntrack listener.
    pub fn with_shared(settings: NetworkSettings, shared: Arc<Shared>) -> Self {
        Self {
            shared: Some(shared),
            ..Self::new(settings)
        }
    }

    /// Reads everything once and returns the sockets that are new.
    pub fn poll(&mut self) -> Result<Poll, NetworkError> {
        let root = self.settings.proc_root.clone();
        let procs = processes(&root)?;
        let mut spaces: BTreeMap<u64, Namespace> = BTreeMap::new();
        for p in &procs {
            let space = spaces.entry(p.netns).or_default();
            space.pids.push(p.pid);
            if let Some(c) = &p.container {
                space.containers.entry(c.clone()).or_insert(p.pid);
            }
        }
        let mut out = Poll::default();
        // Socket owners per namespace, read at most once per poll and only
        // for namespaces that need them.
        let mut owners: HashMap<u64, HashMap<u64, String>> = HashMap::new();
        let mut fresh: Option<Vec<Process>> = None;
        self.tracker.begin();
        self.polls += 1;
        for (&netns, space) in &spaces {
            let host = Some(netns) == self.host_netns;
            if space.containers.is_empty() && !self.settings.include_host {
                continue;
            }
            if !host && !space.containers.is_empty() && self.shared.is_some() {
                self.learn_addresses(&root, netns, space);
            }
            let Some(rows) = read_namespace(&root, space, &mut out) else {
                continue;
            };
            let listening: HashSet<(bool, u16)> = rows
                .iter()
                .filter(|r| r.is_listening())
                .map(|r| (r.protocol == Protocol::Udp, r.local.port()))
                .collect();
            let sole = match (host, space.containers.len()) {
                (false, 1) => space.containers.keys().next(),
                _ => None,
            };
            for row in rows.iter().filter(|r| r.is_reportable()) {
                match self.tracker.observe(SocketKey::new(netns, row)) {
                    Seen::Known => continue,
                    Seen::Untracked => {
                        out.untracked += 1;
                        continue;
                    }
                    Seen::New => {}
                }
                let owner = match sole {
                    Some(id) => Some(id.as_str()),
                    None => {
                        let by_inode = owners.entry(netns).or_insert_with(|| {
                            // Listed again: a process started since the
                            // first listing may own the new socket.
                            let procs =
                                fresh.get_or_insert_with(|| processes(&root).unwrap_or_default());
                            socket_owners(&root, procs, netns)
                        });
                        by_inode.get(&row.inode).map(String::as_str).or_else(|| {
                            // Nobody holds it: in a shared namespace, the
                            // infrastructure container; in the host's, the host.
                            if host {
                                return None;
                            }
                            space
                                .containers
                                .iter()
                                .min_by_key(|(_, pid)| **pid)
                                .map(|(id, _)| id.as_str())
                        })
                    }
                };
                let (container, host_network) = match owner {
                    Some(id) => (Some(self.names.get(id)), host),
                    None if self.settings.include_host => (None, false),
                    None => continue,
                };
                let listen = row.is_listening();
                // A connection conntrack already reported is not repeated.
                if let (false, Some(shared)) = (listen, &self.shared)
                    && !shared.claim(FlowKey::new(row.protocol, row.local, row.remote))
                {
                    continue;
                }
                out.events.push(NetworkEvent {
                    protocol: row.protocol,
                    local_address: row.local.ip().to_string(),
                    local_port: row.local.port(),
                    remote_address: if listen {
                        String::new()
                    } else {
                        row.remote.ip().to_string()
                    },
                    remote_port: row.remote.port(),
                    direction: direction(row, &listening),
                    state: row.state_name().to_owned(),
                    container,
                    host_network,
                });
            }
        }
        self.tracker.end();
        if let Some(shared) = &self.shared {
            self.addresses.retain(|netns, _| spaces.contains_key(netns));
            let mut owners = HashMap::new();
            for (netns, (ips, _)) in &self.addresses {
                let Some(id) = spaces.get(netns).and_then(|s| {
                    s.containers
                        .iter()
                        .min_by_key(|(_, pid)| **pid)
                        .map(|(id, _)| id)
                }) else {
                    continue;
                };
                let container = self.names.get(id);
                owners.extend(ips.iter().map(|ip| (*ip, container.clone())));
            }
            shared.set_addresses(owners);
        }
        let live: HashSet<&str> = procs
            .iter()
            .filter_map(|p| p.container.as_deref())
            .collect();
        self.names.retain(&live);
        Ok(out)
    }
}

impl Scanner {
    /// Reads the addresses of a container namespace when not known or stale.
    fn learn_addresses(&mut self, root: &Path, netns: u64, space: &Namespace) {
        let stale = self
            .addresses
            .get(&netns)
            .is_none_or(|(_, at)| self.polls - at >= ADDRESS_REFRESH_POLLS);
        if !stale {
            return;
        }
        let Some(pid) = space.pids.first() else {
            return;
        };
        let found = Addresses::read(root, &pid.to_string());
        self.addresses.insert(netns, (found.local, self.polls));
    }
}

/// The rows of a namespace's four tables, read through one of its
/// processes; `None` when none of the processes tried is still there.
fn read_namespace(root: &Path, space: &Namespace, out: &mut Poll) -> Option<Vec<SocketRow>> {
    let tables = space
        .pids
        .iter()
        .take(READ_ATTEMPTS)
        .find_map(|pid| procfs::read_tables(root, *pid).ok())?;
    let mut rows = Vec::new();
    for (protocol, text) in &tables {
        let (mut parsed, rejected) = procfs::parse_table(text, *protocol);
        out.rows += (parsed.len() + rejected.len()) as u64;
        out.rejected += rejected.len() as u64;
        if out.rejected_example.is_none() {
            out.rejected_example = rejected.first().map(|l| l.trim().to_owned());
        }
        rows.append(&mut parsed);
    }
    Some(rows)
}

/// Socket inode → container, over the container processes of `netns`.
fn socket_owners(root: &Path, procs: &[Process], netns: u64) -> HashMap<u64, String> {
    let mut owners = HashMap::new();
    for p in procs.iter().filter(|p| p.netns == netns) {
        if let Some(id) = &p.container {
            procfs::socket_inodes(root, p.pid, |inode| {
                owners.entry(inode).or_insert_with(|| id.clone());
            });
        }
    }
    owners
}
