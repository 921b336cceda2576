//! Epoch interruption on demand. wasmtime interrupts a call when the
//! engine's epoch passes the store's deadline, so the epoch has to advance
//! while a plugin runs, and only then: a ticker that ran forever was most of
//! `vigil run`'s CPU at rest (issue 11). [`Epochs`] counts the calls in
//! flight; its thread ticks while there is one and sleeps on a condvar, with
//! no timed wake-up, while there is none. A call wakes it only if it sleeps:
//! a ticking thread sees the calls at the end of its tick, so back-to-back
//! calls (a replay's batches) cost no wake-up, no context switch each.
//!
//! Every entry into a guest goes through [`Epochs::bounded`], which sets the
//! deadline, keeps the ticker awake for the call, and leaves the store's
//! deadline expired afterwards. A store's deadline starts expired too
//! (wasmtime's default of 0), so a call that bypasses `bounded` traps at its
//! first epoch check instead of running unbounded with no one ticking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Engine, Store};

/// Something that owns the store a call runs in (a store, or a live plugin
/// instance holding its store next to its functions).
pub trait HasStore {
    /// The store's data.
    type Data: 'static;
    /// The store calls into the guest run in.
    fn store(&mut self) -> &mut Store<Self::Data>;
}

impl<T: 'static> HasStore for Store<T> {
    type Data = T;
    fn store(&mut self) -> &mut Store<T> {
        self
    }
}

/// A handle on the engine's epoch ticker; clones share one thread, which
/// stops when the last handle (and the last [`ActiveCall`]) is dropped, so
/// no call can outlive the ticker that bounds it.
#[derive(Clone)]
pub struct Epochs {
    owner: Arc<Owner>,
}

/// Keeps the ticker awake while it lives: one per call in flight.
#[must_use = "the ticker sleeps again as soon as the guard is dropped"]
pub struct ActiveCall {
    owner: Arc<Owner>,
}

/// Stops and joins the thread when dropped.
struct Owner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the handles and the thread share.
struct Shared {
    engine: Engine,
    tick: Duration,
    state: Mutex<State>,
    wake: Condvar,
    ticks: AtomicU64,
    /// Times a call woke the sleeping ticker (tests).
    wakeups: AtomicU64,
}

struct State {
    /// Calls in flight.
    active: usize,
    stop: bool,
    /// The ticker waits for a call, with no timed wake-up: the next call
    /// has to wake it.
    asleep: bool,
}

impl Epochs {
    /// Starts the (sleeping) ticker thread of `engine`, which advances the
    /// epoch every `tick` while a call is in flight.
    pub fn start(engine: &Engine, tick: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            engine: engine.clone(),
            tick,
            state: Mutex::new(State {
                active: 0,
                stop: false,
                asleep: false,
            }),
            wake: Condvar::new(),
            ticks: AtomicU64::new(0),
            wakeups: AtomicU64::new(0),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("vigil-epoch".into())
                .spawn(move || shared.run())?
        };
        Ok(Self {
            owner: Arc::new(Owner {
                shared,
                thread: Some(thread),
            }),
        })
    }

    /// The tick: deadlines are rounded up to it.
    pub fn tick(&self) -> Duration {
        self.owner.shared.tick
    }

    /// How many times the epoch has advanced (tests, metrics).
    pub fn ticks(&self) -> u64 {
        self.owner.shared.ticks.load(Ordering::Relaxed)
    }

    /// Marks a call in flight until the guard is dropped; wakes the ticker
    /// if it sleeps.
    pub fn active(&self) -> ActiveCall {
        let shared = &self.owner.shared;
        let mut state = shared.lock();
        state.active += 1;
        if state.asleep {
            // Under the lock it set `asleep` and waits under: it cannot miss this.
            state.asleep = false;
            shared.wakeups.fetch_add(1, Ordering::Relaxed);
            shared.wake.notify_one();
        }
        ActiveCall {
            owner: self.owner.clone(),
        }
    }

    /// Runs `call`, which enters the guest through `subject`'s store, under
    /// a deadline of `deadline_ms` (rounded up to ticks), with the ticker
    /// awake; the store's deadline is expired again afterwards.
    pub fn bounded<S: HasStore, R>(
        &self,
        subject: &mut S,
        deadline_ms: u64,
        call: impl FnOnce(&mut S) -> R,
    ) -> R {
        let _active = self.active();
        set_deadline(subject.store(), deadline_ticks(deadline_ms, self.tick()));
        let out = call(subject);
        // Until the next `bounded`, any entry into the guest traps at once.
        set_deadline(subject.store(), 0);
        out
    }

    /// Calls in flight (tests).
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.owner.shared.lock().active
    }

    /// Times a call woke the sleeping ticker (tests).
    #[cfg(test)]
    fn wakeups(&self) -> u64 {
        self.owner.shared.wakeups.load(Ordering::Relaxed)
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        // No notification: the ticker sees the count at the end of its tick.
        self.owner.shared.lock().active -= 1;
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            while state.active == 0 && !state.stop {
                state.asleep = true;
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            // Awake, whoever woke it (a call, a stop, or no one).
            state.asleep = false;
            if state.stop {
                return;
            }
            // A timed wait rather than a sleep, so that a stop ends it.
            state = self
                .wake
                .wait_timeout_while(state, self.tick, |s| !s.stop)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if state.stop {
                return;
            }
            self.engine.increment_epoch();
            self.ticks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the one place a deadline is set, with the ticker awake"
)]
fn set_deadline<T: 'static>(store: &mut Store<T>, ticks: u64) {
    store.set_epoch_deadline(ticks);
}

/// The deadline in ticks of a call allowed `deadline_ms`.
fn deadline_ticks(deadline_ms: u64, tick: Duration) -> u64 {
    let tick_ms = tick.as_millis().max(1) as u64;
    // +1: the epoch may advance right after the deadline is set.
    deadline_ms.div_ceil(tick_ms) + 1
}

#[cfg(test)]
mod tests;
