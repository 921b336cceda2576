//! The host's imports — log, state, clock, threat intelligence — behind plain
//! functions.
//!
//! Inside a component (`wasm32`) they call the WIT imports. On native targets
//! they use an in-process fake, private to the calling thread, that tests
//! arrange and inspect through [`crate::testing`]: state in a map, the clock
//! from `SystemTime` unless a test fixed it (and the input never ending
//! unless a test ended it), threat intelligence from answers
//! a test configured, and log records captured for the test to read. Because
//! `cargo test` runs each test on its own thread, tests do not see each
//! other's fake.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod fake;
#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(not(target_arch = "wasm32"))]
use fake as backend;
#[cfg(target_arch = "wasm32")]
use wasm as backend;

/// Structured logging into the host's log, tagged with the plugin's name.
///
/// The host caps the rate and size of records; keep logging off the per-event
/// path.
pub mod log {
    use super::backend;
    pub use crate::types::Level;

    /// Writes one record with `fields` as structured key-value pairs.
    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        backend::log(level, message, fields);
    }

    /// Very fine detail.
    pub fn trace(message: &str, fields: &[(&str, &str)]) {
        log(Level::Trace, message, fields);
    }

    /// Detail for developers.
    pub fn debug(message: &str, fields: &[(&str, &str)]) {
        log(Level::Debug, message, fields);
    }

    /// Normal operation.
    pub fn info(message: &str, fields: &[(&str, &str)]) {
        log(Level::Info, message, fields);
    }

    /// Something unexpected that the plugin handled.
    pub fn warn(message: &str, fields: &[(&str, &str)]) {
        log(Level::Warn, message, fields);
    }

    /// Something the plugin could not handle.
    pub fn error(message: &str, fields: &[(&str, &str)]) {
        log(Level::Error, message, fields);
    }
}

/// A small key-value store private to the plugin, persisted by the host so
/// that baselines survive restarts. Bounded by the host's key, value and total
/// size limits.
pub mod state {
    use super::backend;
    pub use crate::types::StateError;

    /// The value stored under `key`, if any.
    #[must_use]
    pub fn get(key: &str) -> Option<Vec<u8>> {
        backend::state_get(key)
    }

    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// # Errors
    /// When the key is empty or too long, the value too large, or the plugin's
    /// quota would be exceeded; nothing is stored then.
    pub fn set(key: &str, value: &[u8]) -> Result<(), StateError> {
        backend::state_set(key, value)
    }

    /// Removes `key`; removing a missing key is not an error.
    pub fn delete(key: &str) {
        backend::state_delete(key);
    }

    /// The keys that start with `prefix`, in lexicographic order.
    #[must_use]
    pub fn keys(prefix: &str) -> Vec<String> {
        backend::state_keys(prefix)
    }
}

/// The host's clock; plugins have no other source of time.
pub mod clock {
    use super::backend;
    use crate::types::Timestamp;

    /// The current wall-clock time in nanoseconds since the Unix epoch. During
    /// replay, the time of the latest event replayed.
    #[must_use]
    pub fn now() -> Timestamp {
        backend::now()
    }

    /// Whether the input has ended (WIT 0.1.4): true only during the final
    /// [`on_tick`](crate::Detector::on_tick) of a replay, after every event
    /// was delivered. Nothing follows it, so report there what you hold
    /// back. Always false in `vigil run`: live input never ends.
    ///
    /// In native tests, false unless [`crate::testing::set_input_ended`]
    /// said otherwise.
    #[must_use]
    pub fn input_ended() -> bool {
        backend::input_ended()
    }
}

/// Threat intelligence answered by the host from the feeds it loaded.
pub mod threat_intel {
    use super::backend;
    pub use crate::types::IpMatch;

    /// Every feed entry matching `ip` (IPv4 or IPv6 text); empty when none
    /// matches or `ip` is not an address.
    #[must_use]
    pub fn lookup_ip(ip: &str) -> Vec<IpMatch> {
        backend::lookup_ip(ip)
    }
}
