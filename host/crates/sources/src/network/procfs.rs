//! Reading procfs: the socket tables of a network namespace
//! (`/proc/<pid>/net/{tcp,tcp6,udp,udp6}`), a process's network namespace
//! and the socket inodes it holds open.
//!
//! Processes vanish between listing and reading all the time: every reader
//! here treats a missing file as "nothing", never as an error, and no odd
//! content makes it panic (a malformed row is counted as rejected).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use vigil_core::model::Protocol;

/// One row of a socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketRow {
    /// `tcp` or `udp` (v4 and v6 tables alike).
    pub protocol: Protocol,
    /// Local end; an IPv4-mapped IPv6 address is turned into IPv4.
    pub local: SocketAddr,
    /// Remote end; unspecified address and port 0 when not connected.
    pub remote: SocketAddr,
    /// The kernel's state number (`include/net/tcp_states.h`).
    pub state: u8,
    /// The socket's inode, 0 when no process holds it any more (TIME_WAIT).
    pub inode: u64,
}

/// TCP_CLOSE: for TCP a socket neither listening nor connected; for UDP
/// the state of every unconnected (bound) socket.
const CLOSE: u8 = 7;
/// TCP_LISTEN.
const LISTEN: u8 = 10;

impl SocketRow {
    /// The state as `ss` spells it; unconnected UDP is `UNCONN`.
    pub fn state_name(&self) -> &'static str {
        if self.protocol == Protocol::Udp && self.state == CLOSE {
            return "UNCONN";
        }
        match self.state {
            1 => "ESTABLISHED",
            2 => "SYN_SENT",
            3 => "SYN_RECV",
            4 => "FIN_WAIT1",
            5 => "FIN_WAIT2",
            6 => "TIME_WAIT",
            7 => "CLOSE",
            8 => "CLOSE_WAIT",
            9 => "LAST_ACK",
            10 => "LISTEN",
            11 => "CLOSING",
            12 => "NEW_SYN_RECV",
            _ => "UNKNOWN",
        }
    }

    /// A TCP listener or a bound, unconnected UDP socket.
    pub fn is_listening(&self) -> bool {
        match self.protocol {
            Protocol::Tcp => self.state == LISTEN,
            Protocol::Udp => self.state == CLOSE,
        }
    }

    /// Whether the row stands for a listener or a connection worth a
    /// report. A TCP socket in CLOSE is bound but not used yet; it is
    /// reported once it listens or connects. Closing states are kept: a
    /// connection first seen in TIME_WAIT still happened.
    pub fn is_reportable(&self) -> bool {
        match self.protocol {
            Protocol::Tcp => (1..=11).contains(&self.state) && self.state != CLOSE,
            Protocol::Udp => self.state == 1 || self.state == CLOSE,
        }
    }
}

/// The four tables of a namespace and the protocol each holds.
pub const TABLES: [(&str, Protocol); 4] = [
    ("tcp", Protocol::Tcp),
    ("tcp6", Protocol::Tcp),
    ("udp", Protocol::Udp),
    ("udp6", Protocol::Udp),
];

/// Parses a whole table (header line first). Returns the rows and the
/// lines that could not be parsed.
pub fn parse_table(text: &str, protocol: Protocol) -> (Vec<SocketRow>, Vec<&str>) {
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        match parse_row(line, protocol) {
            Some(row) => rows.push(row),
            None => rejected.push(line),
        }
    }
    (rows, rejected)
}

/// Parses one row: `sl local remote st tx:rx tr:when retrnsmt uid timeout inode …`.
pub fn parse_row(line: &str, protocol: Protocol) -> Option<SocketRow> {
    let mut fields = line.split_ascii_whitespace();
    fields.next()?.strip_suffix(':')?;
    let local = parse_endpoint(fields.next()?)?;
    let remote = parse_endpoint(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // Skip tx:rx, tr:when, retrnsmt, uid and timeout.
    let inode = fields.nth(5)?.parse().ok()?;
    Some(SocketRow {
        protocol,
        local,
        remote,
        state,
        inode,
    })
}

/// Parses `ADDR:PORT` in hex. The kernel prints the address as 32-bit
/// words in the machine's byte order (`%08X` of the raw network-order
/// bytes), so each word's native bytes are the address bytes; the port is
/// a plain number.
pub fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    // Slicing below is by byte: refuse anything but ASCII first.
    if !addr.is_ascii() {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(&addr[i * 8..i * 8 + 8])?);
            }
            // `::ffff:a.b.c.d` is an IPv4 peer of a dual-stack socket:
            // shown as IPv4 so that plugins match one spelling.
            IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

/// Reads the socket tables of `pid`'s network namespace. `Err` when the
/// process is gone (the caller tries another process of the namespace);
/// a missing v6 table (IPv6 disabled) is just empty.
pub fn read_tables(proc_root: &Path, pid: u32) -> io::Result<Vec<(Protocol, String)>> {
    let dir = proc_root.join(pid.to_string()).join("net");
    let mut out = Vec::with_capacity(TABLES.len());
    for (name, protocol) in TABLES {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => out.push((protocol, text)),
            Err(e) if name.ends_with('6') && e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The numeric entries of the proc root: every process (thread-group leaders).
pub fn pids(proc_root: &Path) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir(proc_root)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The inode of the network namespace of `who` (a pid or `self`), from the
/// `net:[INODE]` link; `None` when the process is gone or not readable.
pub fn netns(proc_root: &Path, who: &str) -> Option<u64> {
    let link = std::fs::read_link(proc_root.join(who).join("ns/net")).ok()?;
    bracketed(link.to_str()?, "net:")
}

/// A process's cgroup file; `None` when it is gone.
pub fn cgroup(proc_root: &Path, pid: u32) -> Option<String> {
    std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()
}

/// The socket inodes `pid` holds open (its `fd/*` links `socket:[INODE]`),
/// passed to `found`; nothing when the process is gone.
pub fn socket_inodes(proc_root: &Path, pid: u32, mut found: impl FnMut(u64)) {
    let Ok(dir) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
        return;
    };
    for entry in dir.filter_map(Result::ok) {
        if let Some(inode) = std::fs::read_link(entry.path())
            .ok()
            .and_then(|l| bracketed(l.to_str()?, "socket:"))
        {
            found(inode);
        }
    }
}

/// Parses `<prefix>[NUMBER]`.
pub fn bracketed(text: &str, prefix: &str) -> Option<u64> {
    text.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()
}
