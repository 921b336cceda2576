//! The replay clock as the dispatcher moves it: the latest event time, and
//! the end of input said during the final tick only.

use vigil_core::model::{ContainerEvent, EventBody};

use super::*;
use crate::Clock;

fn event(time: u64) -> Event {
    Event {
        id: format!("e{time}"),
        time,
        node: String::new(),
        source: String::new(),
        body: EventBody::Container(ContainerEvent::default()),
    }
}

#[test]
fn the_input_ends_for_the_final_tick_only() {
    let clock = ReplayClock::new();
    let plugins_see = Clock::Replay(clock.clone());
    let mut dispatcher = Dispatcher::new(Vec::new(), 2, clock.clone());
    let mut events = vec![event(5), event(3), event(4)];
    dispatcher.push(&mut events, &mut |_, _, _| {});
    assert_eq!(plugins_see.now(), 5, "the latest event time, never back");
    assert!(!plugins_see.input_ended(), "input to come");

    // Raised as `finish` raises it for its tick, the plugins' clock sees it
    // (what a plugin does with it then is checked through the binary:
    // tests/scenarios/monitoring-tamper); `finish` lowers it after its
    // tick, for a dispatcher given more input.
    clock.set_input_ended(true);
    assert!(plugins_see.input_ended(), "clones share the clock");
    dispatcher.finish(&mut |_, _, _| {});
    assert!(
        !plugins_see.input_ended(),
        "false again after the final tick"
    );
    assert_eq!(dispatcher.now(), 5);

    assert!(!Clock::Wall.input_ended(), "live input never ends");
}
