//! The `procfs` network source: the listening and connected sockets of
//! every container, read from procfs and attributed to the container.
//!
//! Every interval it maps each process to its network namespace and its
//! container (from its cgroup path), reads the socket tables of each
//! namespace holding a container once, and emits a `network` event for each
//! socket not seen at the previous poll: listeners, connections accepted
//! (`inbound`) and connections opened (`outbound`). Sockets of host-network
//! containers live in the host's namespace and are attributed through the
//! file descriptors of the container's processes (`host_network: true`).
//! The host's own sockets are left out unless `include_host` is set.
//!
//! Polling misses a connection opened and closed between two polls
//! (shorter than the interval): the [`conntrack`] listener, a source of its
//! own started beside this one, sees those of bridge-networked containers
//! as they are created. The two share the container addresses this poller
//! learns and the connections either reported ([`shared`]), so that a
//! connection is one event whichever saw it first.

mod addresses;
pub(crate) mod attribution;
mod config;
pub mod conntrack;
mod internal_events;
pub(crate) mod procfs;
mod scan;
pub mod shared;
mod tracker;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{DEFAULT_INTERVAL_MS, NetworkConfig, NetworkSettings};

use crate::{Off, Source, SourceContext, SourceTask, Starter};
use internal_events::{
    NetworkPollFailed, NetworkPollSlow, NetworkRowsRead, NetworkRowsRejected,
    NetworkSocketsUntracked,
};
pub use scan::{Poll, Scanner};
use shared::Shared;
use vigil_core::model::{Event, EventBody};
use vigil_core::time::wall_now;
use vigil_core::validate::Problems;

/// The source name stamped on events.
pub const SOURCE: &str = "procfs";

/// Events handed to the pipeline at once (a first poll on a busy host can
/// find thousands of sockets).
const CHUNK: usize = 512;

/// Why reading procfs failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The proc root could not be listed: nothing can be seen.
    #[error("cannot list the processes under {path}")]
    ListProcesses {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Starts the source on the runtime; it runs until `ctx.shutdown` turns
/// true or the pipeline goes away. `shared` is given when the conntrack
/// listener runs too.
pub fn start(
    settings: NetworkSettings,
    shared: Option<Arc<Shared>>,
    ctx: SourceContext,
) -> JoinHandle<()> {
    tokio::spawn(run(settings, shared, ctx))
}

impl Source for NetworkConfig {
    const KEY: &'static str = "network";
    const NAME: &'static str = "network";
    type Settings = NetworkSettings;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn check(&self, at: &str, problems: &mut Problems) -> Option<NetworkSettings> {
        NetworkConfig::check(self, at, problems)
    }

    fn start(settings: NetworkSettings, starter: &Starter<'_>) -> Result<Vec<SourceTask>, Off> {
        if !settings.proc_root.join("self/net/tcp").exists() {
            return Err(Off::Unavailable(format!(
                "no socket tables under {}",
                settings.proc_root.display()
            )));
        }
        tracing::info!(
            "network: on (procfs, every {} ms)",
            settings.interval.as_millis()
        );
        // The listener stops with the poller: same switch, own metrics.
        let conntrack = start_conntrack(&settings, starter.context(conntrack::SOURCE));
        let shared = conntrack.as_ref().map(|(shared, _)| shared.clone());
        let mut done = vec![SourceTask::Task(start(
            settings,
            shared,
            starter.context(SOURCE),
        ))];
        done.extend(conntrack.map(|(_, thread)| SourceTask::Thread(thread)));
        Ok(done)
    }
}

/// Starts the conntrack listener when wanted and possible, logging why not
/// otherwise; returns the state it shares with the procfs poller and its
/// thread.
fn start_conntrack(
    settings: &NetworkSettings,
    ctx: SourceContext,
) -> Option<(Arc<Shared>, std::thread::JoinHandle<()>)> {
    if !settings.conntrack {
        tracing::info!("conntrack: off (sources.network.conntrack = false or --no-conntrack)");
        return None;
    }
    let shared = Shared::new(settings.dedup_window, settings.max_tracked_sockets);
    match conntrack::start(settings, shared.clone(), ctx) {
        Ok(thread) => {
            tracing::info!("conntrack: on (netlink, new connections)");
            Some((shared, thread))
        }
        Err(e) => {
            tracing::info!("conntrack: off ({})", vigil_core::error::chain(&e));
            None
        }
    }
}

async fn run(settings: NetworkSettings, shared: Option<Arc<Shared>>, ctx: SourceContext) {
    let interval = settings.interval;
    let cap = settings.max_tracked_sockets;
    let mut scanner = Some(match shared {
        Some(shared) => Scanner::with_shared(settings, shared),
        None => Scanner::new(settings),
    });
    let mut shutdown = ctx.shutdown.clone();
    let mut tick = tokio::time::interval(interval);
    // A slow poll delays the next rather than bunching the missed ones.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        let Some(mut s) = scanner.take() else { return };
        let started = Instant::now();
        // procfs reads block: off the async workers.
        let joined = tokio::task::spawn_blocking(move || {
            let result = s.poll();
            (s, result)
        })
        .await;
        let Ok((s, result)) = joined else {
            // The blocking task panicked or was cancelled (runtime shutdown).
            tracing::error!(source = SOURCE, "network: poll task failed; source stopped");
            return;
        };
        scanner = Some(s);
        let took = started.elapsed();
        if took > interval {
            NetworkPollSlow { took, interval }.emit(&ctx.metrics);
        }
        let poll = match result {
            Ok(poll) => poll,
            Err(e) => {
                NetworkPollFailed { error: &e }.emit(&ctx.metrics);
                continue;
            }
        };
        NetworkRowsRead {
            rows: poll.rows,
            new: poll.events.len(),
            took,
        }
        .emit(&ctx.metrics);
        if poll.rejected > 0 {
            NetworkRowsRejected {
                count: poll.rejected,
                example: poll.rejected_example.as_deref().unwrap_or(""),
            }
            .emit(&ctx.metrics);
        }
        if poll.untracked > 0 {
            NetworkSocketsUntracked {
                count: poll.untracked,
                cap,
            }
            .emit(&ctx.metrics);
        }
        let time = wall_now();
        let mut events = poll.events.into_iter().map(|body| Event {
            id: ctx.next_id(),
            time,
            node: ctx.node.to_string(),
            source: SOURCE.to_owned(),
            body: EventBody::Network(body),
        });
        loop {
            let chunk: Vec<Event> = events.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            if !ctx.send(chunk).await {
                return;
            }
        }
    }
}

/// Resolves when shutdown is requested (or the host is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
