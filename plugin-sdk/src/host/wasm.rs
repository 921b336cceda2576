//! The real imports, inside a component.

use crate::bindings::vigil::detector::{clock, log, state, threat_intel};
use crate::types::{IpMatch, KeyValue, Level, StateError, Timestamp};

pub(super) fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<KeyValue> = fields.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect();
    log::log(level, message, &fields);
}

pub(super) fn state_get(key: &str) -> Option<Vec<u8>> {
    state::get(key)
}

pub(super) fn state_set(key: &str, value: &[u8]) -> Result<(), StateError> {
    state::set(key, value)
}

pub(super) fn state_delete(key: &str) {
    state::delete(key);
}

pub(super) fn state_keys(prefix: &str) -> Vec<String> {
    state::keys(prefix)
}

pub(super) fn now() -> Timestamp {
    clock::now()
}

pub(super) fn input_ended() -> bool {
    clock::input_ended()
}

pub(super) fn lookup_ip(ip: &str) -> Vec<IpMatch> {
    threat_intel::lookup_ip(ip)
}
