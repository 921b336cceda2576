//! The records the kernel programs write (`bpf/vigil.bpf.c`), decoded from
//! the ring buffer's bytes without `unsafe`: every field is read at its
//! offset in the C layout, in the machine's byte order, and every length
//! the record carries is checked against its buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vigil_core::model::Protocol;

/// `EVENT_CONNECT`: the first word of a `struct connect_event`.
pub const EVENT_CONNECT: u32 = 1;

/// Size of `struct connect_event` without its tail padding.
const CONNECT_LEN: usize = 92;

/// `EVENT_EXEC`: the first word of a `struct exec_event`.
pub const EVENT_EXEC: u32 = 2;

/// Size of `struct exec_event`.
const EXEC_LEN: usize = 568;
/// Where its variable parts start, and their capacity.
const EXEC_PARENT_COMM: usize = 40;
const EXEC_FILENAME: usize = 56;
const EXEC_ARGS: usize = 312;
/// Capacity of `exec_event.args` (`EXEC_ARGS_MAX`).
pub const EXEC_ARGS_MAX: usize = 256;
/// `EXEC_ARGS_TRUNCATED` in `exec_event.flags`.
const EXEC_ARGS_TRUNCATED: u16 = 1;

/// Indexes of the kernel's `counters` map (`enum counter`).
pub mod counter {
    /// Events written to the ring.
    pub const SUBMITTED: u32 = 0;
    /// Events lost because the ring was full.
    pub const RING_FULL: u32 = 1;
    /// Connects not followed because the in-flight map was full.
    pub const PENDING_FULL: u32 = 2;
    /// Connects whose address or socket could not be read.
    pub const READ_FAILED: u32 = 3;
    /// How many there are.
    pub const COUNT: u32 = 4;
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;

/// One `connect(2)` on a TCP or UDP socket, as the kernel saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Process (thread group) id, in the host's PID namespace.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Inode of the caller's network namespace.
    pub netns: u32,
    /// The caller's cgroup v2 id (the inode of its cgroup directory).
    pub cgroup_id: u64,
    /// The syscall's return value: 0, `-EINPROGRESS`, or `-errno`.
    pub ret: i32,
    pub protocol: Protocol,
    /// Destination; an IPv4-mapped IPv6 address is turned into IPv4.
    pub remote: IpAddr,
    pub remote_port: u16,
    /// The socket's local end after the call (unspecified and 0 when the
    /// kernel had not bound it, e.g. a refused call).
    pub local: IpAddr,
    pub local_port: u16,
    /// The calling thread's name.
    pub comm: String,
}

/// One successful `execve`/`execveat`, as the kernel saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// Process (thread group) id, in the host's PID namespace.
    pub pid: u32,
    /// Its id in its own PID namespace (1: a container's init).
    pub namespace_pid: u32,
    /// The real parent's process id.
    pub parent_pid: u32,
    /// The real parent's name (`comm`).
    pub parent_name: String,
    /// Real user id, in the initial user namespace.
    pub uid: u32,
    /// The caller's cgroup v2 id.
    pub cgroup_id: u64,
    /// The executed path as the caller named it.
    pub binary: String,
    /// `argv`, as far as it was read.
    pub args: Vec<String>,
    /// Whether `argv` was longer than what was read.
    pub args_truncated: bool,
}

/// A ring buffer record of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An outbound connect.
    Connect(Connect),
    /// A program executed.
    Exec(Exec),
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than its kind's layout.
    #[error("record of {len} bytes is too short for its kind {kind}")]
    Short { kind: u32, len: usize },
    /// A kind this userspace does not know (a program/loader mismatch).
    #[error("unknown record kind {0}")]
    Kind(u32),
    /// An address family or protocol the programs should have filtered out.
    #[error("unexpected family {family} or protocol {protocol}")]
    Family { family: u16, protocol: u16 },
    /// An exec record whose argument length exceeds its buffer.
    #[error("exec record claims {0} bytes of arguments (at most 256)")]
    ArgsLength(u16),
}

/// Decodes one ring buffer record.
pub fn decode(bytes: &[u8]) -> Result<Record, WireError> {
    let kind = u32_at(bytes, 0).ok_or(WireError::Short {
        kind: 0,
        len: bytes.len(),
    })?;
    match kind {
        EVENT_CONNECT => decode_connect(bytes).map(Record::Connect),
        EVENT_EXEC => decode_exec(bytes).map(Record::Exec),
        _ => Err(WireError::Kind(kind)),
    }
}

/// Decodes a `struct exec_event`. Strings are cut at their first NUL and
/// never read past their buffer, whatever the record says.
fn decode_exec(bytes: &[u8]) -> Result<Exec, WireError> {
    if bytes.len() < EXEC_LEN {
        return Err(WireError::Short {
            kind: EVENT_EXEC,
            len: bytes.len(),
        });
    }
    let r = |at| u32_at(bytes, at).unwrap_or_default();
    let args_len = u16_at(bytes, 32).unwrap_or_default();
    if usize::from(args_len) > EXEC_ARGS_MAX {
        return Err(WireError::ArgsLength(args_len));
    }
    let flags = u16_at(bytes, 34).unwrap_or_default();
    let raw_args = bytes
        .get(EXEC_ARGS..EXEC_ARGS + usize::from(args_len))
        .unwrap_or_default();
    let (args, cut) = split_args(raw_args);
    Ok(Exec {
        pid: r(4),
        namespace_pid: r(36),
        parent_pid: r(8),
        uid: r(12),
        cgroup_id: u64_at(bytes, 16).unwrap_or_default(),
        parent_name: c_string(
            bytes
                .get(EXEC_PARENT_COMM..EXEC_FILENAME)
                .unwrap_or_default(),
        ),
        binary: c_string(bytes.get(EXEC_FILENAME..EXEC_ARGS).unwrap_or_default()),
        args,
        args_truncated: flags & EXEC_ARGS_TRUNCATED != 0 || cut,
    })
}

/// The NUL-separated arguments of an argument block; the second value is
/// true when the block ends inside an argument (read cut short).
fn split_args(raw: &[u8]) -> (Vec<String>, bool) {
    if raw.is_empty() {
        return (Vec::new(), false);
    }
    let cut = raw.last() != Some(&0);
    let body = raw.strip_suffix(&[0]).unwrap_or(raw);
    let args = body
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (args, cut)
}

/// The text before the first NUL of a fixed buffer.
fn c_string(raw: &[u8]) -> String {
    let text = raw.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

fn decode_connect(bytes: &[u8]) -> Result<Connect, WireError> {
    let kind = EVENT_CONNECT;
    if bytes.len() < CONNECT_LEN {
        return Err(WireError::Short {
            kind,
            len: bytes.len(),
        });
    }
    let r = |at| u32_at(bytes, at).unwrap_or_default();
    let h = |at| u16_at(bytes, at).unwrap_or_default();
    let family = h(36);
    let raw_protocol = h(38);
    let protocol = match raw_protocol {
        IPPROTO_TCP => Protocol::Tcp,
        IPPROTO_UDP => Protocol::Udp,
        _ => {
            return Err(WireError::Family {
                family,
                protocol: raw_protocol,
            });
        }
    };
    let addr = |at: usize| -> Option<IpAddr> {
        let raw: [u8; 16] = bytes.get(at..at + 16)?.try_into().ok()?;
        match family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
            // A dual-stack socket's IPv4 peer, shown as IPv4 as the other
            // sources do, so that plugins match one spelling.
            AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(raw)).to_canonical()),
            _ => None,
        }
    };
    let (Some(remote), Some(local)) = (addr(44), addr(60)) else {
        return Err(WireError::Family {
            family,
            protocol: raw_protocol,
        });
    };
    let comm = bytes.get(76..92).unwrap_or_default();
    let comm = comm.split(|b| *b == 0).next().unwrap_or_default();
    Ok(Connect {
        pid: r(4),
        tid: r(8),
        netns: r(12),
        cgroup_id: u64_at(bytes, 16).unwrap_or_default(),
        ret: r(32) as i32,
        protocol,
        remote,
        remote_port: h(40),
        local,
        local_port: h(42),
        comm: String::from_utf8_lossy(comm).into_owned(),
    })
}

/// The event's `state`: `connected`, `in-progress` (a non-blocking
/// connect whose handshake goes on) or `failed: ERRNO`.
pub fn state(ret: i32) -> String {
    const EINPROGRESS: i32 = 115;
    match ret {
        0 => "connected".to_owned(),
        r if r == -EINPROGRESS => "in-progress".to_owned(),
        r => {
            let errno = std::io::Error::from_raw_os_error(-r);
            format!("failed: {}", errno_name(-r).unwrap_or(&errno.to_string()))
        }
    }
}

/// Names of the errors a connect commonly returns.
fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        1 => "EPERM",
        4 => "EINTR",
        11 => "EAGAIN",
        13 => "EACCES",
        22 => "EINVAL",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        101 => "ENETUNREACH",
        104 => "ECONNRESET",
        106 => "EISCONN",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        _ => return None,
    })
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
