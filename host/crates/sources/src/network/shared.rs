//! What the procfs poller and the conntrack listener share: the addresses
//! of container namespaces the poller has seen (so a flow can be
//! attributed by address), and the connections either has reported
//! recently (so that one connection is one event, whichever saw it first).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vigil_core::model::{ContainerRef, Protocol};

/// A connection as seen from inside its container: what the container's
/// socket table shows, and what conntrack's tuple maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub udp: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl FlowKey {
    pub fn new(protocol: Protocol, local: SocketAddr, remote: SocketAddr) -> Self {
        Self {
            udp: protocol == Protocol::Udp,
            local,
            remote,
        }
    }
}

/// Connections reported within a window, bounded: the oldest is forgotten
/// first when full (at worst a connection is then reported by both).
#[derive(Debug)]
pub struct RecentFlows {
    seen: HashMap<FlowKey, Instant>,
    order: VecDeque<(FlowKey, Instant)>,
    window: Duration,
    cap: usize,
}

impl RecentFlows {
    pub fn new(window: Duration, cap: usize) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
            window,
            cap: cap.max(1),
        }
    }

    /// True when `key` was not reported within the window: the caller
    /// reports it, and it is remembered. False: already reported.
    pub fn claim(&mut self, key: FlowKey, now: Instant) -> bool {
        while let Some(&(k, at)) = self.order.front() {
            if now.duration_since(at) < self.window && self.order.len() < self.cap {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&k) == Some(&at) {
                self.seen.remove(&k);
            }
        }
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key, now);
        self.order.push_back((key, now));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// State shared by the two network sources.
#[derive(Debug)]
pub struct Shared {
    /// Addresses of container namespaces, from the poller's last look.
    addresses: Mutex<HashMap<IpAddr, ContainerRef>>,
    recent: Mutex<RecentFlows>,
}

impl Shared {
    pub fn new(window: Duration, cap: usize) -> Arc<Self> {
        Arc::new(Self {
            addresses: Mutex::new(HashMap::new()),
            recent: Mutex::new(RecentFlows::new(window, cap)),
        })
    }

    /// Replaces the container addresses learned from procfs.
    pub fn set_addresses(&self, addresses: HashMap<IpAddr, ContainerRef>) {
        *self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = addresses;
    }

    /// The container holding `ip`, as the poller last saw it.
    pub fn container_of(&self, ip: IpAddr) -> Option<ContainerRef> {
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ip)
            .cloned()
    }

    /// See [`RecentFlows::claim`].
    pub fn claim(&self, key: FlowKey) -> bool {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .claim(key, Instant::now())
    }
}
