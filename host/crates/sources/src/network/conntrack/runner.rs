//! The listener's thread: reads datagrams, decodes them, attributes each
//! side of each new flow, and hands the events to the pipeline.
//!
//! A flow whose address is not known yet (a container that has just
//! started) waits up to `attribution_wait`, while Docker's directories are
//! rescanned; it keeps the time it was seen. A dedicated thread rather
//! than a task: the socket read blocks (with a timeout, to see shutdown)
//! and a rescan reads files.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::SOURCE;
use super::decode::{self, FlowKind, Message};
use super::flows::{self, Side};
use super::internal_events::{
    ConntrackEventsLost, ConntrackFlowsRead, ConntrackMessageRejected, ConntrackPendingOverflow,
    ConntrackReadFailed,
};
use super::resolver::Resolver;
use super::socket::{Received, Socket};
use crate::SourceContext;
use crate::network::shared::Shared;
use vigil_core::model::{Event, EventBody};
use vigil_core::time::wall_now;

/// Datagrams read in one go before the events are handed over.
const BURST: usize = 256;
/// How long a failing socket is left alone before the next read.
const BACKOFF: Duration = Duration::from_millis(500);

/// The listener's settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long a flow of an unknown address waits for it to be known.
    pub attribution_wait: Duration,
    /// Flows waiting at most.
    pub max_pending: usize,
}

/// A side of a flow waiting for its address to be known.
struct Waiting {
    side: Side,
    time: u64,
    deadline: Instant,
}

/// The listener's state between datagrams.
struct Listener {
    resolver: Resolver,
    shared: Arc<Shared>,
    limits: Limits,
    waiting: VecDeque<Waiting>,
    ctx: SourceContext,
}

/// Runs until shutdown or until the pipeline is gone.
pub fn run(
    socket: Socket,
    resolver: Resolver,
    shared: Arc<Shared>,
    limits: Limits,
    ctx: SourceContext,
    rt: Handle,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut l = Listener {
        resolver,
        shared,
        limits,
        waiting: VecDeque::new(),
        ctx,
    };
    // Known containers before the first flow.
    l.resolver.rescan(Instant::now());
    loop {
        if *l.ctx.shutdown.borrow() {
            return;
        }
        let mut events = Vec::new();
        let mut unknown = Vec::new();
        let mut got = socket.recv(&mut buf);
        for _ in 0..BURST {
            match got {
                Ok(Received::Datagram(n)) => l.datagram(&buf[..n], &mut events, &mut unknown),
                Ok(Received::Idle) => break,
                Ok(Received::Overrun) => ConntrackEventsLost.emit(&l.ctx.metrics),
                Err(error) => {
                    ConntrackReadFailed { error: &error }.emit(&l.ctx.metrics);
                    std::thread::sleep(BACKOFF);
                    break;
                }
            }
            got = socket.try_recv(&mut buf);
        }
        l.settle(unknown, &mut events);
        if !events.is_empty() && !rt.block_on(l.ctx.send(events)) {
            return;
        }
    }
}

impl Listener {
    /// Decodes a datagram: events for sides known now, the others in `unknown`.
    fn datagram(&mut self, bytes: &[u8], events: &mut Vec<Event>, unknown: &mut Vec<Waiting>) {
        let time = wall_now();
        let now = Instant::now();
        // Addresses are reused: a container removed a moment ago may have
        // left its address to the one connecting now. Re-reading Docker's
        // directories before attributing (rate-limited, only what changed
        // is read) keeps a cached owner from naming the wrong container.
        self.resolver.rescan(now);
        let mut flows = 0u64;
        let before = events.len();
        for m in decode::messages(bytes) {
            let flow = match m {
                Ok(Message::Flow(f)) if f.kind == FlowKind::New => f,
                Ok(_) => continue,
                Err(error) => {
                    ConntrackMessageRejected { error: &error }.emit(&self.ctx.metrics);
                    continue;
                }
            };
            flows += 1;
            for side in flows::sides(&flow).into_iter().flatten() {
                let ip = side.local.ip();
                if let Some(c) = self.resolver.lookup(ip) {
                    self.report(&side, c, time, events);
                } else if self.resolver.worth_waiting(ip, now) {
                    unknown.push(Waiting {
                        side,
                        time,
                        deadline: now + self.limits.attribution_wait,
                    });
                }
            }
        }
        ConntrackFlowsRead {
            flows,
            events: events.len() - before,
        }
        .emit(&self.ctx.metrics);
    }

    /// Rescans for new unknown sides and for those already waiting; what
    /// is still unknown waits, what waited too long is given up.
    fn settle(&mut self, unknown: Vec<Waiting>, events: &mut Vec<Event>) {
        if unknown.is_empty() && self.waiting.is_empty() {
            return;
        }
        let now = Instant::now();
        self.resolver.rescan(now);
        for w in unknown {
            if self.waiting.len() >= self.limits.max_pending {
                self.waiting.pop_front();
                ConntrackPendingOverflow {
                    cap: self.limits.max_pending,
                }
                .emit(&self.ctx.metrics);
            }
            self.waiting.push_back(w);
        }
        let mut keep = VecDeque::with_capacity(self.waiting.len());
        let mut gave_up: Vec<IpAddr> = Vec::new();
        for w in std::mem::take(&mut self.waiting) {
            let ip = w.side.local.ip();
            if let Some(c) = self.resolver.lookup(ip) {
                self.report(&w.side, c, w.time, events);
            } else if now >= w.deadline {
                gave_up.push(ip);
            } else {
                keep.push_back(w);
            }
        }
        self.waiting = keep;
        for ip in gave_up {
            tracing::trace!(source = SOURCE, %ip, "conntrack: address of no container; flow not reported");
            self.resolver.gave_up(ip, now);
        }
    }

    /// One event, unless the poller (or an earlier datagram) reported it.
    fn report(
        &self,
        side: &Side,
        container: vigil_core::model::ContainerRef,
        time: u64,
        events: &mut Vec<Event>,
    ) {
        if !self.shared.claim(side.key()) {
            return;
        }
        events.push(Event {
            id: self.ctx.next_id(),
            time,
            node: self.ctx.node.to_string(),
            source: SOURCE.to_owned(),
            body: EventBody::Network(side.event(container)),
        });
    }
}
