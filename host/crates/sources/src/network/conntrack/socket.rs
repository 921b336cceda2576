//! The `NETLINK_NETFILTER` socket subscribed to conntrack events, through
//! rustix (safe wrappers over the syscalls: no `unsafe` here).
//!
//! Opening checks everything that would otherwise fail silently: the
//! protocol exists, the process may join the groups (`CAP_NET_ADMIN` in
//! the namespace's user namespace), ctnetlink answers a request (the
//! `nf_conntrack_netlink` module is there), and the kernel sends events
//! (`net.netfilter.nf_conntrack_events` is not 0).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, sockopt};

use super::decode::{self, Message, SUBSYS_CTNETLINK};

/// `NFNLGRP_CONNTRACK_NEW` as a `bind` group mask (group n is bit n-1).
const GROUP_NEW: u32 = 1 << 0;
/// `IPCTNL_MSG_CT_GET_STATS`: answered with one message, cheap.
const MSG_CT_GET_STATS: u8 = 5;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;

/// Why conntrack events cannot be followed here.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// `socket(AF_NETLINK, …, NETLINK_NETFILTER)` failed (no netfilter netlink).
    #[error("cannot open a NETLINK_NETFILTER socket")]
    Open(#[source] std::io::Error),
    /// Joining the conntrack group was refused (no `CAP_NET_ADMIN`).
    #[error("cannot join the conntrack event group (CAP_NET_ADMIN is needed)")]
    Subscribe(#[source] std::io::Error),
    /// The probe request could not be sent or answered.
    #[error("ctnetlink did not answer a request")]
    Probe(#[source] std::io::Error),
    /// ctnetlink answered the probe with an error.
    #[error("ctnetlink refused a request (errno {errno}: {reason})")]
    Refused { errno: i32, reason: &'static str },
    /// Conntrack events are turned off by sysctl.
    #[error("conntrack events are disabled (net.netfilter.nf_conntrack_events = 0)")]
    EventsDisabled,
}

/// A subscribed socket; each [`Socket::recv`] returns one datagram.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

/// What [`Socket::recv`] got.
#[derive(Debug)]
pub enum Received {
    /// A datagram of this many bytes.
    Datagram(usize),
    /// Nothing within the timeout.
    Idle,
    /// The kernel dropped events: the receive buffer overflowed.
    Overrun,
}

impl Socket {
    /// Opens, probes and subscribes to new-connection events. `receive_buffer`
    /// is asked with `SO_RCVBUFFORCE` (bursts of short connections must not
    /// overflow it), falling back to `SO_RCVBUF` (capped by `rmem_max`).
    pub fn open(
        proc_root: &Path,
        receive_buffer: usize,
        timeout: Duration,
    ) -> Result<Self, SocketError> {
        if events_disabled(proc_root) {
            return Err(SocketError::EventsDisabled);
        }
        probe(timeout)?;
        let fd = raw_socket().map_err(SocketError::Open)?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, GROUP_NEW))
            .map_err(|e| SocketError::Subscribe(e.into()))?;
        if sockopt::set_socket_recv_buffer_size_force(&fd, receive_buffer).is_err() {
            // Without the force the kernel caps it at net.core.rmem_max.
            let _ = sockopt::set_socket_recv_buffer_size(&fd, receive_buffer);
        }
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(timeout))
            .map_err(|e| SocketError::Open(e.into()))?;
        Ok(Self { fd })
    }

    /// Waits up to the timeout for one datagram into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<Received> {
        loop {
            return match rustix::net::recv(&self.fd, &mut *buf, RecvFlags::empty()) {
                Ok((n, _)) => Ok(Received::Datagram(n)),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => Ok(Received::Idle),
                Err(Errno::NOBUFS) => Ok(Received::Overrun),
                Err(e) => Err(e.into()),
            };
        }
    }

    /// One more datagram if one is already waiting (draining a burst).
    pub fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<Received> {
        loop {
            return match rustix::net::recv(&self.fd, &mut *buf, RecvFlags::DONTWAIT) {
                Ok((n, _)) => Ok(Received::Datagram(n)),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => Ok(Received::Idle),
                Err(Errno::NOBUFS) => Ok(Received::Overrun),
                Err(e) => Err(e.into()),
            };
        }
    }
}

fn raw_socket() -> std::io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(netlink::NETFILTER),
    )?)
}

/// `nf_conntrack_events`: 0 off, 1 on, 2 on when someone listens (the
/// default since Linux 6.1). A missing file (module not loaded yet) is
/// left to the probe.
fn events_disabled(proc_root: &Path) -> bool {
    std::fs::read_to_string(proc_root.join("sys/net/netfilter/nf_conntrack_events"))
        .is_ok_and(|v| v.trim() == "0")
}

/// Asks ctnetlink for its statistics on a socket of its own and reads the
/// answer: an error here names what is missing, where a subscription alone
/// would just never deliver anything.
fn probe(timeout: Duration) -> Result<(), SocketError> {
    let fd = raw_socket().map_err(SocketError::Open)?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(timeout))
        .map_err(|e| SocketError::Probe(e.into()))?;
    let mut req = Vec::with_capacity(20);
    req.extend_from_slice(&20u32.to_ne_bytes());
    req.extend_from_slice(&u16::from_be_bytes([SUBSYS_CTNETLINK, MSG_CT_GET_STATS]).to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id 0.
    req.extend_from_slice(&[0, 0, 0, 0]);
    rustix::net::send(&fd, &req, SendFlags::empty()).map_err(|e| SocketError::Probe(e.into()))?;
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())
            .map_err(|e| SocketError::Probe(e.into()))?;
        for m in decode::messages(&buf[..n]) {
            match m {
                Ok(Message::Error { errno: 0 }) => return Ok(()),
                Ok(Message::Error { errno }) => {
                    return Err(SocketError::Refused {
                        errno,
                        reason: match Errno::from_raw_os_error(errno) {
                            Errno::PERM => "no CAP_NET_ADMIN",
                            Errno::OPNOTSUPP | Errno::NOENT | Errno::PROTONOSUPPORT => {
                                "ctnetlink is not available (module nf_conntrack_netlink)"
                            }
                            _ => "unexpected error",
                        },
                    });
                }
                // The statistics themselves; the acknowledgement follows.
                Ok(_) | Err(_) => {}
            }
        }
    }
}
