//! The per-store host state and the host side of the plugin imports:
//! logging, bounded key-value state, the clock and threat-intel lookups.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::bindings::{ClockHost, IpMatch, Level, LogHost, StateError, StateHost, ThreatIntelHost};
use super::limits::MemoryLimiter;
use crate::intel::ThreatIntel;
use crate::state::{PluginState, StateRefusal};
use vigil_core::model::{KeyValue, Timestamp};
use vigil_core::text::escape_control;
use vigil_core::time::wall_now;

/// The time plugins see, and whether their input has ended.
#[derive(Clone, Debug)]
pub enum Clock {
    /// The system's wall clock (live operation: the input never ends).
    Wall,
    /// The replay's clock, so replays are reproducible.
    Replay(ReplayClock),
}

impl Clock {
    /// The current time, nanoseconds since the epoch.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::Wall => wall_now(),
            Self::Replay(c) => c.now(),
        }
    }

    /// Whether the input has ended (`clock.input-ended`, WIT 0.1.4): only
    /// during the final tick of a replay; never on the wall clock.
    pub fn input_ended(&self) -> bool {
        match self {
            Self::Wall => false,
            Self::Replay(c) => c.input_ended(),
        }
    }
}

/// The clock of one replay, shared by the dispatcher that moves it and the
/// plugins that read it (clones share it): the time of the latest event
/// replayed, and whether the input has ended. The dispatcher sets the
/// latter for its final tick only ([`crate::dispatch::Dispatcher::finish`]),
/// so a plugin releases what it holds back then and only then, whatever
/// the events' times.
#[derive(Clone, Debug, Default)]
pub struct ReplayClock {
    time: Arc<AtomicU64>,
    ended: Arc<AtomicBool>,
}

impl ReplayClock {
    /// A clock at 0 whose input has not ended.
    pub fn new() -> Self {
        Self::default()
    }

    /// The time of the latest event replayed, nanoseconds since the epoch.
    pub fn now(&self) -> Timestamp {
        self.time.load(Ordering::Relaxed)
    }

    /// Moves the clock to `time` if that is later (never back).
    pub fn advance(&self, time: Timestamp) {
        self.time.fetch_max(time, Ordering::Relaxed);
    }

    /// Whether the input has ended: true only during the final tick.
    pub fn input_ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    /// Says whether the input has ended (the dispatcher's final tick).
    pub(crate) fn set_input_ended(&self, ended: bool) {
        self.ended.store(ended, Ordering::Relaxed);
    }
}

/// Threat intel that can be swapped while plugins run (feed reloads).
pub type SharedIntel = Arc<RwLock<Arc<ThreatIntel>>>;

/// Everything the host keeps for one plugin's store.
pub struct HostState {
    pub(crate) plugin: Arc<str>,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) state: Arc<Mutex<PluginState>>,
    pub(crate) clock: Clock,
    pub(crate) intel: SharedIntel,
    pub(crate) log_budget: u32,
    pub(crate) logs_dropped: u64,
    pub(crate) state_refusals: u64,
}

impl LogHost for HostState {
    fn log(&mut self, level: Level, message: String, fields: Vec<KeyValue>) {
        if self.log_budget == 0 {
            self.logs_dropped += 1;
            return;
        }
        self.log_budget -= 1;
        // The text is the plugin's: escaped so that it cannot end the line
        // (and forge a host record in the text format) nor drive a
        // terminal, and bounded.
        let message = escape_control(&message, LOG_MESSAGE_BYTES);
        let fields = render_fields(&fields);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "vigil::plugin", plugin, fields, "{message}"),
            Level::Debug => tracing::debug!(target: "vigil::plugin", plugin, fields, "{message}"),
            Level::Info => tracing::info!(target: "vigil::plugin", plugin, fields, "{message}"),
            Level::Warn => tracing::warn!(target: "vigil::plugin", plugin, fields, "{message}"),
            Level::Error => tracing::error!(target: "vigil::plugin", plugin, fields, "{message}"),
        }
    }
}

impl StateHost for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), StateError> {
        let r = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set(key, value);
        r.map_err(|refusal| {
            self.state_refusals += 1;
            match refusal {
                StateRefusal::KeyTooLong(n) => StateError::KeyTooLong(n),
                StateRefusal::ValueTooLarge(n) => StateError::ValueTooLarge(n),
                StateRefusal::QuotaExceeded(n) => StateError::QuotaExceeded(n),
            }
        })
    }

    fn delete(&mut self, key: String) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .delete(&key);
    }

    fn keys(&mut self, prefix: String) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys(&prefix)
    }
}

impl ClockHost for HostState {
    fn now(&mut self) -> Timestamp {
        self.clock.now()
    }

    fn input_ended(&mut self) -> bool {
        self.clock.input_ended()
    }
}

impl ThreatIntelHost for HostState {
    fn lookup_ip(&mut self, ip: String) -> Vec<IpMatch> {
        let intel = self
            .intel
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        intel
            .lookup(&ip)
            .into_iter()
            .map(|m| IpMatch {
                feed: m.feed,
                entry: m.entry,
                category: m.category,
                note: m.note,
            })
            .collect()
    }
}

impl vigil_core::model::Host for HostState {}

/// Bounds of one plugin log record, in bytes of escaped text.
const LOG_MESSAGE_BYTES: usize = 4096;
const LOG_KEY_BYTES: usize = 128;
const LOG_VALUE_BYTES: usize = 1024;
const LOG_FIELDS_BYTES: usize = 4096;
/// Fields of one record rendered; the rest are counted in the record.
const LOG_FIELDS: usize = 32;

/// The fields as `key=value …`, each escaped and bounded.
fn render_fields(fields: &[KeyValue]) -> String {
    let mut out = String::new();
    for kv in fields.iter().take(LOG_FIELDS) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&escape_control(&kv.key, LOG_KEY_BYTES));
        out.push('=');
        out.push_str(&escape_control(&kv.value, LOG_VALUE_BYTES));
        if out.len() > LOG_FIELDS_BYTES {
            break;
        }
    }
    truncate_utf8(&mut out, LOG_FIELDS_BYTES);
    if fields.len() > LOG_FIELDS {
        out.push_str(&format!(
            " (+{} fields not shown)",
            fields.len() - LOG_FIELDS
        ));
    }
    out
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
