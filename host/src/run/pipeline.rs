//! The batcher between the sources' queue and the plugin workers: groups
//! events per kind (up to a batch, or [`LINGER`]) and routes each batch to
//! the current [`WorkerPool`]. A reload swaps the pool here: what is pending
//! goes to the old pool, which finishes its queue before the new one starts,
//! so each event is handled by exactly one plugin set. Every batch is also
//! recorded in the timeline here, and containers created and started are
//! counted for the heartbeat (the fleet's churn).

use std::sync::Arc;
use std::time::Duration;

use super::events_out::EventsOut;
use vigil_core::metrics::{HostCounters, PluginMetrics};
use vigil_core::model::{
    Batch, ContainerAction, Event, EventBody, EventKind, ProcessEvent, ServiceEvent,
};
use vigil_core::timeline::Timeline;
use vigil_runtime::workers::WorkerPool;

/// How long the batcher waits to fill a batch: the latency it adds.
pub const LINGER: Duration = Duration::from_millis(10);

/// Pending events and the pool they go to.
pub struct Pipeline {
    pending: [Vec<Event>; 4],
    pool: Option<WorkerPool>,
    events_out: Option<EventsOut>,
    /// Gets every event, a batch at a time (`None`: `[timeline]` off).
    timeline: Option<Arc<Timeline>>,
    /// `containers_created` and `containers_started` are counted here.
    counters: Arc<HostCounters>,
    /// When the pending events must be flushed; armed only while events
    /// wait, so an idle host does not wake up 100 times a second.
    pub flush_at: Option<tokio::time::Instant>,
}

fn slot(kind: EventKind) -> usize {
    match kind {
        EventKind::Container => 0,
        EventKind::Kubernetes => 1,
        EventKind::Network => 2,
        EventKind::File => 3,
    }
}

impl Pipeline {
    pub fn new(
        pool: WorkerPool,
        events_out: Option<EventsOut>,
        timeline: Option<Arc<Timeline>>,
        counters: Arc<HostCounters>,
    ) -> Self {
        Self {
            pending: Default::default(),
            pool: Some(pool),
            events_out,
            timeline,
            counters,
            flush_at: None,
        }
    }

    /// Takes a batch from a source.
    pub fn push(&mut self, batch: Batch) {
        match batch {
            Batch::Events(events) => self.push_events(events),
            Batch::Services(services) => self.push_services(services),
            Batch::Processes(processes) => self.push_processes(processes),
        }
    }

    /// Process events are routed at once, after what is pending (a source
    /// sends them a poll's worth at a time: the batching is done), so that a
    /// plugin sees a container's start before the programs it runs.
    fn push_processes(&mut self, processes: Vec<ProcessEvent>) {
        self.flush();
        if let Some(out) = &mut self.events_out {
            out.write_processes(&processes);
        }
        if let Some(t) = &self.timeline {
            t.record_processes(&processes, vigil_core::time::wall_now());
        }
        if let Some(pool) = &self.pool {
            pool.route_processes(Arc::new(processes));
        }
    }

    /// Swarm events are rare: routed at once, after what is pending, so
    /// that a plugin sees a task container's events and its service's in
    /// the order the source sent them.
    fn push_services(&mut self, services: Vec<ServiceEvent>) {
        self.flush();
        if let Some(t) = &self.timeline {
            t.record_services(&services, vigil_core::time::wall_now());
        }
        if let Some(pool) = &self.pool {
            pool.route_services(Arc::new(services));
        }
    }

    fn push_events(&mut self, batch: Vec<Event>) {
        if let Some(out) = &mut self.events_out {
            out.write(&batch);
        }
        // Here, on the one thread that batches, not in the plugin workers:
        // one lock per source batch, no contention with detection.
        if let Some(t) = &self.timeline {
            t.record_events(&batch, vigil_core::time::wall_now());
        }
        if self.flush_at.is_none() {
            self.flush_at = Some(tokio::time::Instant::now() + LINGER);
        }
        self.count_churn(&batch);
        for e in batch {
            let s = slot(e.kind());
            self.pending[s].push(e);
            if self.pending[s].len() >= vigil_runtime::dispatch::DEFAULT_BATCH {
                let full = std::mem::take(&mut self.pending[s]);
                self.route(full);
            }
        }
    }

    /// Containers created and started, whichever source saw them: the
    /// heartbeat carries the totals, and `vigil fleet` sums them over the
    /// nodes (`fleet/churn-spike`).
    fn count_churn(&self, batch: &[Event]) {
        let (mut created, mut started) = (0, 0);
        for e in batch {
            if let EventBody::Container(c) = &e.body {
                match c.action {
                    ContainerAction::Create => created += 1,
                    ContainerAction::Start | ContainerAction::Restart => started += 1,
                    _ => {}
                }
            }
        }
        if created > 0 {
            PluginMetrics::add(&self.counters.containers_created, created);
        }
        if started > 0 {
            PluginMetrics::add(&self.counters.containers_started, started);
        }
    }

    fn route(&self, batch: Vec<Event>) {
        if let Some(pool) = &self.pool {
            pool.route(Arc::new(batch));
        }
    }

    /// Routes everything pending.
    pub fn flush(&mut self) {
        self.flush_at = None;
        for s in 0..self.pending.len() {
            if !self.pending[s].is_empty() {
                let batch = std::mem::take(&mut self.pending[s]);
                self.route(batch);
            }
        }
    }

    /// Gives every plugin a tick.
    pub fn tick(&self, now: u64) {
        if let Some(pool) = &self.pool {
            pool.tick(now);
        }
    }

    /// Flushes, then waits until the current pool has handled everything
    /// queued to it and its workers have ended (plugin state flushed).
    /// Events arriving meanwhile wait in the sources' queue.
    pub fn drain(&mut self) {
        self.flush();
        if let Some(pool) = self.pool.take() {
            // Joining threads blocks: tell the runtime so that the sources
            // keep running on the other worker.
            tokio::task::block_in_place(|| pool.shutdown());
        }
    }

    /// Installs a new pool (after [`Self::drain`]).
    pub fn install(&mut self, pool: WorkerPool) {
        self.pool = Some(pool);
    }

    /// Drains and drops the pool (shutdown).
    pub fn finish(mut self) {
        self.drain();
    }
}
