//! The native stand-in for the host's imports: one fake per thread, arranged
//! and inspected through [`crate::testing`].

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::testing::{LogRecord, StateLimits};
use crate::types::{IpMatch, KeyValue, Level, StateError, Timestamp};

#[derive(Default)]
pub(crate) struct Fake {
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) state: BTreeMap<String, Vec<u8>>,
    pub(crate) limits: StateLimits,
    pub(crate) now: Option<Timestamp>,
    pub(crate) input_ended: bool,
    pub(crate) threat_intel: HashMap<String, Vec<IpMatch>>,
}

thread_local! {
    static FAKE: RefCell<Fake> = RefCell::new(Fake::default());
}

/// Runs `f` on this thread's fake.
pub(crate) fn with<R>(f: impl FnOnce(&mut Fake) -> R) -> R {
    FAKE.with(|fake| f(&mut fake.borrow_mut()))
}

pub(super) fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let record = LogRecord {
        level,
        message: message.to_owned(),
        fields: fields.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect(),
    };
    with(|fake| fake.logs.push(record));
}

pub(super) fn state_get(key: &str) -> Option<Vec<u8>> {
    with(|fake| fake.state.get(key).cloned())
}

pub(super) fn state_set(key: &str, value: &[u8]) -> Result<(), StateError> {
    with(|fake| {
        let limits = fake.limits;
        if key.is_empty() || key.len() > limits.max_key_bytes as usize {
            return Err(StateError::KeyTooLong(limits.max_key_bytes));
        }
        if value.len() > limits.max_value_bytes as usize {
            return Err(StateError::ValueTooLarge(limits.max_value_bytes));
        }
        let others: usize = fake
            .state
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if (others + key.len() + value.len()) as u64 > limits.quota_bytes {
            return Err(StateError::QuotaExceeded(limits.quota_bytes));
        }
        fake.state.insert(key.to_owned(), value.to_vec());
        Ok(())
    })
}

pub(super) fn state_delete(key: &str) {
    with(|fake| fake.state.remove(key));
}

pub(super) fn state_keys(prefix: &str) -> Vec<String> {
    with(|fake| {
        fake.state
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    })
}

pub(super) fn now() -> Timestamp {
    with(|fake| fake.now).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    })
}

pub(super) fn input_ended() -> bool {
    with(|fake| fake.input_ended)
}

pub(super) fn lookup_ip(ip: &str) -> Vec<IpMatch> {
    with(|fake| fake.threat_intel.get(ip).cloned().unwrap_or_default())
}
