//! Which sockets were already reported, so that each is reported once while
//! it exists and again only if it disappears and comes back.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::procfs::SocketRow;
use vigil_core::model::Protocol;

/// A socket, by namespace and 5-tuple rather than inode: a connection keeps
/// its key through SYN_SENT → ESTABLISHED → TIME_WAIT (where the kernel
/// drops its inode), so it is reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketKey {
    netns: u64,
    udp: bool,
    local: SocketAddr,
    remote: SocketAddr,
}

impl SocketKey {
    /// The key of `row` in namespace `netns`.
    pub fn new(netns: u64, row: &SocketRow) -> Self {
        Self {
            netns,
            udp: row.protocol == Protocol::Udp,
            local: row.local,
            remote: row.remote,
        }
    }
}

/// What [`Tracker::observe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First seen: report it.
    New,
    /// Already reported.
    Known,
    /// New, but the tracker is full: not remembered, so not reported.
    Untracked,
}

/// The sockets seen at the last poll, bounded.
///
/// Invariant: between [`Tracker::begin`] and [`Tracker::end`] every socket
/// still present is observed; `end` forgets those that were not.
#[derive(Debug)]
pub struct Tracker {
    /// Socket → the poll that last saw it.
    seen: HashMap<SocketKey, u64>,
    poll: u64,
    cap: usize,
}

impl Tracker {
    /// A tracker of at most `cap` sockets.
    pub fn new(cap: usize) -> Self {
        Self {
            seen: HashMap::new(),
            poll: 0,
            cap,
        }
    }

    /// Starts a poll.
    pub fn begin(&mut self) {
        self.poll += 1;
    }

    /// Notes that `key` is present in this poll.
    pub fn observe(&mut self, key: SocketKey) -> Seen {
        if let Some(last) = self.seen.get_mut(&key) {
            *last = self.poll;
            return Seen::Known;
        }
        if self.seen.len() >= self.cap {
            return Seen::Untracked;
        }
        self.seen.insert(key, self.poll);
        Seen::New
    }

    /// Ends a poll: forgets the sockets it did not see. Returns how many.
    pub fn end(&mut self) -> usize {
        let before = self.seen.len();
        let poll = self.poll;
        self.seen.retain(|_, last| *last == poll);
        before - self.seen.len()
    }
}
