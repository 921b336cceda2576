//! Synchronous dispatch of events to plugins in batches, for replay and
//! plugin tests: events are grouped per kind, each batch is routed by the
//! plugins' subscriptions and encoded once ([`crate::routing`]), and
//! findings come back in order.
//!
//! With a thread pool (`vigil replay --threads`), the plugins of one batch
//! are called concurrently ([`concurrent`]); their outcomes are still
//! handled in plugin order, so the findings are those of one thread.

mod concurrent;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::routing::{Pick, Route, RoutedBatch};
use crate::{CallOutcome, LoadedPlugin, PluginRunner};
use vigil_core::model::packed::PackedEvents;
use vigil_core::model::{Event, EventKind, Finding};
use vigil_core::subjects::Verdict;

/// The default batch size: the runtime's performance contract.
pub const DEFAULT_BATCH: usize = 256;

/// Batches events per kind and runs them through every subscribed plugin.
pub struct Dispatcher {
    runners: Vec<PluginRunner>,
    pending: [Vec<Event>; 4],
    /// The packed encoding's buffer, reused from batch to batch.
    packed: PackedEvents,
    batch: usize,
    clock: Arc<AtomicU64>,
    /// Calls that faulted, across all plugins.
    pub failed_calls: u64,
    /// Where the plugins of a batch are called concurrently; `None`: one
    /// after the other on the caller's thread.
    pool: Option<Arc<rayon::ThreadPool>>,
}

fn slot(kind: EventKind) -> usize {
    match kind {
        EventKind::Container => 0,
        EventKind::Kubernetes => 1,
        EventKind::Network => 2,
        EventKind::File => 3,
    }
}

impl Dispatcher {
    /// `clock` is advanced to the latest event time seen (the replay clock).
    pub fn new(runners: Vec<PluginRunner>, batch: usize, clock: Arc<AtomicU64>) -> Self {
        Self {
            runners,
            pending: Default::default(),
            packed: PackedEvents::default(),
            batch: batch.max(1),
            clock,
            failed_calls: 0,
            pool: None,
        }
    }

    /// Calls the plugins of each batch concurrently on `pool` (each plugin
    /// is still called with its batches in order, and the replay clock
    /// only moves between batches, so plugins see what one thread shows).
    pub fn with_pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The loaded plugins.
    pub fn runners(&self) -> &[PluginRunner] {
        &self.runners
    }

    /// Queues events (draining `events`), running full batches.
    pub fn push(
        &mut self,
        events: &mut Vec<Event>,
        out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>),
    ) {
        for e in events.drain(..) {
            self.clock.fetch_max(e.time, Ordering::Relaxed);
            let s = slot(e.kind());
            self.pending[s].push(e);
            if self.pending[s].len() >= self.batch {
                self.run(s, out);
            }
        }
    }

    fn run(&mut self, s: usize, out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>)) {
        let batch = std::mem::take(&mut self.pending[s]);
        if batch.is_empty() {
            return;
        }
        let routes: Vec<Route<'_>> = self
            .runners
            .iter()
            .map(|r| Route {
                subscription: r.subscription(),
                packed: r.plugin().takes_packed(),
            })
            .collect();
        let routed = RoutedBatch::route(Arc::new(batch), &routes, std::mem::take(&mut self.packed));
        drop(routes);
        let outcomes = concurrent::call_each(&mut self.runners, self.pool.as_deref(), |i, r| {
            (*routed.pick(i) != Pick::Nothing).then(|| r.deliver(&routed, i))
        });
        for (r, outcome) in self.runners.iter_mut().zip(outcomes) {
            let Some(outcome) = outcome else { continue };
            match outcome {
                CallOutcome::Findings(fs) => {
                    for f in fs {
                        let verdicts = r.check(&f);
                        out(r.plugin(), f, verdicts);
                    }
                }
                CallOutcome::Failed(_) => self.failed_calls += 1,
                CallOutcome::Skipped => {}
            }
        }
        let (events, packed) = routed.recycle();
        self.packed = packed;
        if let Some(mut events) = events {
            events.clear();
            self.pending[s] = events;
        }
    }

    /// Runs what is pending, then gives every plugin a final tick.
    pub fn finish(&mut self, out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>)) {
        for s in 0..self.pending.len() {
            if !self.pending[s].is_empty() {
                self.run(s, out);
            }
        }
        let now = self.clock.load(Ordering::Relaxed);
        for r in &mut self.runners {
            match r.on_tick(now) {
                CallOutcome::Findings(fs) => {
                    for f in fs {
                        let verdicts = r.check(&f);
                        out(r.plugin(), f, verdicts);
                    }
                }
                CallOutcome::Failed(_) => self.failed_calls += 1,
                CallOutcome::Skipped => {}
            }
        }
    }

    /// The replay clock's current time.
    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }
}
