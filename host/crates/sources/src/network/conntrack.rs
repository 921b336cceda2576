//! The `conntrack` network source: new connections as the kernel's
//! connection tracker creates them, from ctnetlink multicast events
//! (`NETLINK_NETFILTER`, group `NFNLGRP_CONNTRACK_NEW`), so that a
//! connection shorter than the procfs poller's interval is still seen.
//!
//! Conntrack belongs to a network namespace; Vigil listens in its own (the
//! host's), where it sees the traffic of bridge-networked containers as it
//! is routed or NATed through the host, with the container's own address
//! as the original source (outbound) or the reply source (inbound). Flows
//! are attributed by that address (see `resolver`); a flow no container
//! address is part of (the host's own, host-network containers') is left
//! to the procfs poller, which attributes those through socket inodes.
//!
//! Each side owned by a container becomes one `network` event with
//! `source: "conntrack"` and `state: "new"`; a connection either source
//! already reported is not reported again by the other (`shared`).
//! Limitations: only TCP and UDP (the event model has no other protocol);
//! connections inside one container's namespace (its loopback) never reach
//! the host's conntrack; neither do flows the host does not track (no
//! conntrack rule in the namespace: Docker's NAT rules make it track).

mod decode;
mod docker_dirs;
mod flows;
mod internal_events;
mod resolver;
mod runner;
mod socket;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use decode::{DecodeError, Flow, FlowKind, Message, Messages, Tuple, encode, messages};
pub use docker_dirs::{DockerDirs, hosts_addresses};
pub use flows::{STATE_NEW, Side, flow_events, sides};
pub use socket::SocketError;

use super::config::NetworkSettings;
use super::shared::Shared;
use crate::SourceContext;

/// The source name stamped on events and metrics.
pub const SOURCE: &str = "conntrack";

/// How long a socket read waits, so that shutdown is seen.
const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// Why the source could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    /// The netlink socket could not be opened or subscribed.
    #[error("conntrack events unavailable")]
    Socket(#[source] SocketError),
    /// The listener's thread could not be spawned.
    #[error("cannot start the conntrack thread")]
    Spawn(#[source] std::io::Error),
}

/// Opens the socket and starts the listener on its own thread. Must be
/// called inside the Tokio runtime. An error says why conntrack is off.
pub fn start(
    settings: &NetworkSettings,
    shared: Arc<Shared>,
    ctx: SourceContext,
) -> Result<std::thread::JoinHandle<()>, ConntrackError> {
    let socket = socket::Socket::open(
        &settings.proc_root,
        settings.conntrack_receive_buffer_bytes,
        READ_TIMEOUT,
    )
    .map_err(ConntrackError::Socket)?;
    let resolver = resolver::Resolver::new(
        DockerDirs::new(&settings.containers.docker, ctx.metrics.clone()),
        shared.clone(),
        settings.proc_root.clone(),
    );
    let limits = runner::Limits {
        attribution_wait: settings.attribution_wait,
        max_pending: settings.max_pending_flows,
    };
    let rt = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("vigil-conntrack".into())
        .spawn(move || runner::run(socket, resolver, shared, limits, ctx, rt))
        .map_err(ConntrackError::Spawn)
}
