//! Synchronous dispatch of events to plugins in batches, for replay and
//! plugin tests: events are grouped per kind, each batch goes only to the
//! plugins subscribed to that kind, and findings come back in order.
//!
//! The findings of each call are then handed to the plugins that receive
//! findings ([`crate::feed`]), breadth first and in plugin order, before the
//! next batch: a replay gives the same findings in the same order each time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::feed::{FedFindings, Producer};
use crate::{CallOutcome, LoadedPlugin, PluginRunner};
use vigil_core::model::{Event, EventKind, Finding};
use vigil_core::subjects::Verdict;

/// The default batch size: the runtime's performance contract.
pub const DEFAULT_BATCH: usize = 256;

/// Batches events per kind and runs them through every subscribed plugin.
pub struct Dispatcher {
    runners: Vec<PluginRunner>,
    pending: [Vec<Event>; 4],
    batch: usize,
    clock: Arc<AtomicU64>,
    /// Calls that faulted, across all plugins.
    pub failed_calls: u64,
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
    /// `clock` is advanced to the latest event time seen (the replay clock).
    pub fn new(runners: Vec<PluginRunner>, batch: usize, clock: Arc<AtomicU64>) -> Self {
        Self {
            runners,
            pending: Default::default(),
            batch: batch.max(1),
            clock,
            failed_calls: 0,
            node: String::new(),
            feed: VecDeque::new(),
        }
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
        if let Some(kind) = batch.first().map(Event::kind) {
            for i in 0..self.runners.len() {
                if self.runners[i].subscribes(kind) {
                    let outcome = self.runners[i].on_events(&batch);
                    self.outcome(i, outcome, out);
                }
            }
            self.hand_on(out);
        }
        let mut batch = batch;
        batch.clear();
        self.pending[s] = batch;
    }

    /// Runs what is pending, then gives every plugin a final tick.
    pub fn finish(&mut self, out: &mut impl FnMut(&LoadedPlugin, Finding, Vec<Verdict>)) {
        for s in 0..self.pending.len() {
            if !self.pending[s].is_empty() {
                self.run(s, out);
            }
        }
        let now = self.clock.load(Ordering::Relaxed);
        for i in 0..self.runners.len() {
            let outcome = self.runners[i].on_tick(now);
            self.outcome(i, outcome, out);
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
                    time: self.clock.load(Ordering::Relaxed),
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
        self.clock.load(Ordering::Relaxed)
    }
}
