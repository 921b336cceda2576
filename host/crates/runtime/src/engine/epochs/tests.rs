use std::time::Instant;

use wasmtime::{Instance, Module, Trap};

use super::*;
use crate::engine::{EngineSettings, build_engine};

const TICK: Duration = Duration::from_millis(2);

fn engine() -> Engine {
    build_engine(&EngineSettings {
        epoch_tick: TICK,
        max_memory_bytes: 1 << 20,
        pool_instances: 4,
        ..EngineSettings::default()
    })
    .unwrap()
}

/// Waits (bounded) until the ticker has gone back to sleep: the count
/// stops moving for several ticks.
fn settled(epochs: &Epochs) -> u64 {
    let mut last = epochs.ticks();
    loop {
        std::thread::sleep(TICK * 10);
        let now = epochs.ticks();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// `(module (func (export "spin") (loop (br 0))))`: written out in binary,
/// the engine has no text parser.
const SPIN: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
    0x03, 0x02, 0x01, 0x00, // func 0 of type 0
    0x07, 0x08, 0x01, 0x04, b's', b'p', b'i', b'n', 0x00, 0x00, // export "spin"
    0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0
];

fn spin(engine: &Engine) -> (Store<()>, wasmtime::TypedFunc<(), ()>) {
    let module = Module::new(engine, SPIN).unwrap();
    let mut store = Store::new(engine, ());
    store.epoch_deadline_trap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let func = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    (store, func)
}

#[test]
fn the_ticker_advances_only_while_a_call_is_active() {
    let epochs = Epochs::start(&engine(), TICK).unwrap();
    std::thread::sleep(TICK * 20);
    assert_eq!(epochs.ticks(), 0, "no call yet: the ticker must sleep");

    let call = epochs.active();
    std::thread::sleep(TICK * 20);
    assert!(
        epochs.ticks() > 0,
        "a call is active: the epoch must advance"
    );
    drop(call);

    let at_rest = settled(&epochs);
    std::thread::sleep(TICK * 20);
    assert_eq!(
        epochs.ticks(),
        at_rest,
        "no call left: the ticker must sleep again"
    );
}

#[test]
fn concurrent_calls_are_counted_exactly() {
    let epochs = Epochs::start(&engine(), TICK).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let epochs = epochs.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    let outer = epochs.active();
                    if i % 3 == 0 {
                        let _inner = epochs.active();
                    }
                    drop(outer);
                }
            })
        })
        .collect();
    let held = epochs.active();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(epochs.in_flight(), 1);
    drop(held);
    assert_eq!(epochs.in_flight(), 0);
    let at_rest = settled(&epochs);
    std::thread::sleep(TICK * 20);
    assert_eq!(epochs.ticks(), at_rest);
}

#[test]
fn an_endless_loop_is_interrupted_at_its_deadline() {
    let engine = engine();
    let epochs = Epochs::start(&engine, TICK).unwrap();
    let (mut store, func) = spin(&engine);
    let started = Instant::now();
    let err = epochs
        .bounded(&mut store, 50, |store| func.call(store, ()))
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::Interrupt),
        "{err:?}"
    );
    assert!(took >= Duration::from_millis(50), "stopped early: {took:?}");
    assert!(took < Duration::from_secs(5), "stopped late: {took:?}");
    assert_eq!(epochs.in_flight(), 0);
}

#[test]
fn a_call_outside_bounded_traps_at_once() {
    let engine = engine();
    let epochs = Epochs::start(&engine, TICK).unwrap();
    let (mut store, func) = spin(&engine);
    // A fresh store, and a store after a bounded call: both expired.
    let err = func.call(&mut store, ()).unwrap_err();
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::Interrupt),
        "{err:?}"
    );
    let _ = epochs.bounded(&mut store, 10, |store| func.call(store, ()));
    let err = func.call(&mut store, ()).unwrap_err();
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::Interrupt),
        "{err:?}"
    );
}

#[test]
fn drop_joins_the_thread_promptly_asleep_or_mid_tick() {
    let engine = engine();
    let long = Duration::from_secs(3600);

    let asleep = Epochs::start(&engine, long).unwrap();
    let started = Instant::now();
    drop(asleep);
    assert!(started.elapsed() < Duration::from_secs(1));

    let ticking = Epochs::start(&engine, long).unwrap();
    drop(ticking.active());
    let started = Instant::now();
    drop(ticking);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn calls_while_the_ticker_ticks_do_not_wake_it() {
    let epochs = Epochs::start(&engine(), TICK).unwrap();
    let first = epochs.active();
    std::thread::sleep(TICK * 5);
    assert!(
        epochs.ticks() > 0,
        "a call is active: the epoch must advance"
    );
    // 1, or 0 if the thread had not gone to sleep yet when the call came.
    let woken = epochs.wakeups();
    assert!(woken <= 1, "one call, {woken} wake-ups");
    drop(first);
    // Back-to-back calls, one after the other as a replay's batches come:
    // the ticker, awake until the end of its tick, sees them then. A tick
    // may end between two of them and put it to sleep (one wake-up); a
    // signal per call (each is the only one in flight) would be 1000.
    for _ in 0..1000 {
        drop(epochs.active());
    }
    let during = epochs.wakeups() - woken;
    assert!(
        during <= 2,
        "{during} wake-ups for 1000 calls in about a tick"
    );

    // Asleep again: the next call wakes it, and it ticks for that call.
    let at_rest = settled(&epochs);
    let before = epochs.wakeups();
    let call = epochs.active();
    assert_eq!(epochs.wakeups(), before + 1, "asleep: a call must wake it");
    std::thread::sleep(TICK * 10);
    assert!(
        epochs.ticks() > at_rest,
        "woken: the epoch must advance again"
    );
    drop(call);
}
