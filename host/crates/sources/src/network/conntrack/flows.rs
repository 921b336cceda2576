//! A conntrack entry into network events, as the container sees it.
//!
//! Conntrack runs in the host's namespace and sees a bridge container's
//! traffic as it is routed: the original tuple's source is the container
//! for a connection it opens; the reply tuple's source is the container
//! for a connection it accepts (after DNAT of a published port, the
//! original destination is the host's address, the reply's source the
//! container's). Each side owned by a container gives one event whose
//! local and remote ends are those of the container's socket, so they
//! match what the procfs poller would report for the same connection.

use std::net::{IpAddr, SocketAddr};

use super::decode::{Flow, IPPROTO_TCP, IPPROTO_UDP};
use crate::network::shared::FlowKey;
use vigil_core::model::{ContainerRef, Direction, NetworkEvent, Protocol};

/// The state reported for a connection seen by conntrack.
pub const STATE_NEW: &str = "new";

/// One side of a flow a container may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub direction: Direction,
    pub protocol: Protocol,
    /// The container's end.
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Side {
    /// The key the procfs poller uses for the same socket.
    pub fn key(&self) -> FlowKey {
        FlowKey::new(self.protocol, self.local, self.remote)
    }

    /// The event for this side owned by `container`.
    pub fn event(&self, container: ContainerRef) -> NetworkEvent {
        NetworkEvent {
            protocol: self.protocol,
            local_address: self.local.ip().to_string(),
            local_port: self.local.port(),
            remote_address: self.remote.ip().to_string(),
            remote_port: self.remote.port(),
            direction: self.direction,
            state: STATE_NEW.to_owned(),
            container: Some(container),
            host_network: false,
        }
    }
}

/// The two sides of a TCP or UDP flow (outbound from the original source,
/// inbound to the reply source); none for other protocols, which the
/// event model cannot carry.
pub fn sides(flow: &Flow) -> Option<[Side; 2]> {
    let protocol = match flow.orig.protocol {
        IPPROTO_TCP => Protocol::Tcp,
        IPPROTO_UDP => Protocol::Udp,
        _ => return None,
    };
    let o = &flow.orig;
    let at = |ip: IpAddr, port| SocketAddr::new(ip.to_canonical(), port);
    let outbound = Side {
        direction: Direction::Outbound,
        protocol,
        local: at(o.src, o.src_port),
        remote: at(o.dst, o.dst_port),
    };
    // Without a reply tuple (never sent for events; defensive) the
    // accepting end is the original destination.
    let inbound = match &flow.reply {
        Some(r) => Side {
            direction: Direction::Inbound,
            protocol,
            local: at(r.src, r.src_port),
            remote: at(r.dst, r.dst_port),
        },
        None => Side {
            direction: Direction::Inbound,
            protocol,
            local: outbound.remote,
            remote: outbound.local,
        },
    };
    Some([outbound, inbound])
}

/// Every event of `flow` whose side `owner` attributes to a container.
pub fn flow_events(
    flow: &Flow,
    mut owner: impl FnMut(IpAddr) -> Option<ContainerRef>,
    out: &mut Vec<NetworkEvent>,
) {
    for side in sides(flow).into_iter().flatten() {
        if let Some(c) = owner(side.local.ip()) {
            out.push(side.event(c));
        }
    }
}
