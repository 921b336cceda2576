//! Synchronous dispatch of events (and process events) to plugins in
//! batches, for replay and plugin tests: events are grouped per kind, each batch is routed by the
//! plugins' subscriptions and encoded once ([`crate::routing`]), and
//! findings come back in order.
//!
//! With a thread pool (`vigil replay --threads`), the plugins of one batch
//! are called concurrently ([`concurrent`]); their outcomes are still
//! handled in plugin order, so the findings are those of one thread.
//!
//! The findings of each call are then handed to the plugins that receive
//! findings ([`crate::feed`]), breadth first and in plugin order, before the
//! next batch: a replay gives the same findings in the same order each time.

mod concurrent;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::feed::{FedFindings, Producer};
use crate::routing::{Pick, Route, RoutedBatch, pick_processes};
use crate::{CallOutcome, LoadedPlugin, PluginRunner, ReplayClock};
use vigil_core::model::packed::PackedEvents;
use vigil_core::model::{Event, EventKind, Finding, Heartbeat, ProcessEvent};
use vigil_core::subjects::Verdict;

/// The sender index of findings no loaded plugin made: no plugin is
/// skipped when they are handed on.
const FROM_OUTSIDE: usize = usize::MAX;

/// The default batch size: the runtime's performance contract.
pub const DEFAULT_BATCH: usize = 256;

/// Batches events per kind and runs them through every subscribed plugin.
pub struct Dispatcher {
    runners: Vec<PluginRunner>,
    pending: [Vec<Event>; 4],
    /// The packed encoding's buffer, reused from batch to batch.
    packed: PackedEvents,
    batch: usize,
    clock: ReplayClock,
    /// Calls that faulted, across all plugins.
    pub failed_calls: u64,
    /// Where the plugins of a batch are called concurrently; `None`: one
    /// after the other on the caller's thread.
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The node stamped on findings handed on (`--node`).
    pub node: String,
    /// Findings waiting to be handed on: the index of the plugin that
    /// reported them, and the batch.
    feed: VecDeque<(usize, FedFindings)>,
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
    /// `clock` is advanced to the latest event time seen, and says the
    /// input has ended during [`Self::finish`]'s tick (the replay clock the
    /// plugins were loaded with).
    pub fn new(runners: Vec<PluginRunner>, batch: usize, clock: ReplayClock) -> Self {
        Self {
            runners,
            pending: Default::default(),
            packed: PackedEvents::default(),
            batch: batch.max(1),
            clock,
            failed_calls: 0,
            pool: None,
            node: String::new(),
            feed: VecDeque::new(),
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
            self.clock.advance(e.time);
            let s = slot(e.kind());
            self.pending[s].push(e);
            if self.pending[s].len() >= self.batch {
                self.run(s, out);
            }
        }
    }

    /// Runs process events (WIT 0.1.3: `vigil replay` of what `vigil run
    /// --emit-events` wrote) through every plugin whose subscription wants
    /// some of them, in batches, after every event pending — as `vigil run`
    /// routes them, so a plugin sees a container's start before the
    /// programs run in it.
    pub fn push_processes(
        &mut self,
        processes: Vec<ProcessEvent>,
        out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>),
    ) {
        if processes.is_empty() {
            return;
        }
        for s in 0..self.pending.len() {
            self.run(s, out);
        }
        for chunk in processes.chunks(self.batch) {
            let latest = chunk.iter().map(|p| p.time).max().unwrap_or_default();
            self.clock.advance(latest);
            let batch = Arc::new(chunk.to_vec());
            let picks: Vec<Option<Arc<Vec<ProcessEvent>>>> = self
                .runners
                .iter()
                .map(|r| pick_processes(&batch, r.subscription()))
                .collect();
            let outcomes =
                concurrent::call_each(&mut self.runners, self.pool.as_deref(), |i, r| {
                    picks[i].as_ref().map(|p| r.on_process_events(p))
                });
            for (i, outcome) in outcomes.into_iter().enumerate() {
                if let Some(outcome) = outcome {
                    self.outcome(i, outcome, out);
                }
            }
            self.hand_on(out);
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
        for (i, outcome) in outcomes.into_iter().enumerate() {
            if let Some(outcome) = outcome {
                self.outcome(i, outcome, out);
            }
        }
        self.hand_on(out);
        let (events, packed) = routed.recycle();
        self.packed = packed;
        if let Some(mut events) = events {
            events.clear();
            self.pending[s] = events;
        }
    }

    /// Runs what is pending, then gives every plugin a final tick, during
    /// which (and only then) the clock says the input has ended
    /// (`clock.input-ended`, WIT 0.1.4): nothing follows, so a plugin
    /// reports what it holds back.
    pub fn finish(&mut self, out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>)) {
        for s in 0..self.pending.len() {
            if !self.pending[s].is_empty() {
                self.run(s, out);
            }
        }
        let now = self.clock.now();
        self.clock.set_input_ended(true);
        self.tick(now, out);
        // A dispatcher used again (more input) starts with input to come.
        self.clock.set_input_ended(false);
    }

    /// Gives every plugin a tick at `now`, then hands on what they report.
    pub fn tick(&mut self, now: u64, out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>)) {
        for i in 0..self.runners.len() {
            let outcome = self.runners[i].on_tick(now);
            self.outcome(i, outcome, out);
        }
        self.hand_on(out);
    }

    /// Hands findings made elsewhere (the nodes' findings `vigil fleet`
    /// reads) to every plugin that receives findings, then what those
    /// report in turn, breadth first: the queue of [`Self::hand_on`], with
    /// no plugin as the sender.
    pub fn hand_findings(
        &mut self,
        batch: FedFindings,
        out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>),
    ) {
        if batch.is_empty() {
            return;
        }
        self.feed.push_back((FROM_OUTSIDE, batch));
        self.hand_on(out);
    }

    /// Hands heartbeats `vigil fleet` read to every plugin that exports
    /// `fleet`, then what those report to the plugins that receive
    /// findings, as for [`Self::hand_findings`].
    pub fn hand_heartbeats(
        &mut self,
        batch: &[Heartbeat],
        out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>),
    ) {
        if batch.is_empty() {
            return;
        }
        for i in 0..self.runners.len() {
            if self.runners[i].takes_heartbeats() {
                let outcome = self.runners[i].on_heartbeats(batch);
                self.outcome(i, outcome, out);
            }
        }
        self.hand_on(out);
    }

    /// Emits the findings of plugin `i`'s call and queues them to be handed
    /// on when another plugin receives findings and the depth allows.
    fn outcome(
        &mut self,
        i: usize,
        outcome: CallOutcome,
        out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>),
    ) {
        let fs = match outcome {
            CallOutcome::Findings(fs) => fs,
            CallOutcome::Failed(_) => {
                self.failed_calls += 1;
                return;
            }
            CallOutcome::Skipped => return,
        };
        let receivers = self
            .runners
            .iter()
            .enumerate()
            .any(|(j, r)| j != i && r.takes_findings());
        let r = &mut self.runners[i];
        let hand_on = receivers && !fs.is_empty() && r.may_hand_on(fs.len());
        let mut fed = FedFindings::default();
        for f in fs {
            let verdicts = r.check(&f);
            if hand_on {
                let by = Producer {
                    plugin: &r.plugin().info.name,
                    version: &r.plugin().info.version,
                    node: &self.node,
                    time: self.clock.now(),
                    depth: r.last_depth(),
                };
                fed.push(by, &f, &verdicts);
            }
            out(r.plugin(), f, verdicts);
        }
        if !fed.is_empty() {
            self.feed.push_back((i, fed));
        }
    }

    /// Hands queued findings to every other plugin that receives findings,
    /// breadth first, until none is left (the depth bound ends every chain).
    fn hand_on(&mut self, out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>)) {
        while let Some((from, batch)) = self.feed.pop_front() {
            for j in 0..self.runners.len() {
                if j != from && self.runners[j].takes_findings() {
                    let outcome = self.runners[j].on_findings(&batch);
                    self.outcome(j, outcome, out);
                }
            }
        }
    }

    /// The replay clock's current time.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests;
