//! Polling with a deadline: the one loop behind every "wait until …" of the
//! tests, so that each failure says what was awaited, for how long, and what
//! the test could see at that moment.

use std::time::{Duration, Instant};

/// How often a condition is looked at again.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `poll` until it gives a value; panics after `timeout` with `what`
/// and whatever `show` describes (the state the test was looking at).
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut poll: impl FnMut() -> Option<T>,
    show: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = poll() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            show()
        );
        std::thread::sleep(POLL);
    }
}

/// [`wait_for`] a condition.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    show: impl Fn() -> String,
) {
    wait_for(what, timeout, || done().then_some(()), show);
}
