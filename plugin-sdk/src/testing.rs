//! Arranging and inspecting the native fake behind [`crate::host`], and
//! reading findings in assertions (native targets only).
//!
//! The fake is private to the calling thread, and `cargo test` runs each test
//! on a thread of its own, so tests start from a clean fake and cannot see each
//! other's. Call [`reset`] to start over within a test.
//!
//! ```
//! use vigil_plugin_sdk::{host, testing, IpMatch};
//!
//! testing::set_now(1_700_000_000_000_000_000);
//! testing::set_threat_intel("203.0.113.9", vec![IpMatch {
//!     feed: "c2.txt".into(),
//!     entry: "203.0.113.0/24".into(),
//!     category: "c2".into(),
//!     note: String::new(),
//! }]);
//!
//! assert_eq!(host::clock::now(), 1_700_000_000_000_000_000);
//! assert_eq!(host::threat_intel::lookup_ip("203.0.113.9")[0].category, "c2");
//! host::log::warn("beacon", &[("ip", "203.0.113.9")]);
//! assert_eq!(testing::take_logs()[0].message, "beacon");
//! ```

use std::collections::BTreeMap;

use crate::Detector;
use crate::host::fake;
use crate::types::{Finding, IpMatch, KeyValue, Level, Severity, Timestamp};

/// One record written through [`crate::host::log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its level.
    pub level: Level,
    /// Its message.
    pub message: String,
    /// Its structured fields, in the order given.
    pub fields: Vec<KeyValue>,
}

/// The fake state store's limits. The defaults are the fake's own and
/// generous; set the host's configured limits to test how a plugin copes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Longest key, in bytes (an empty key is always refused).
    pub max_key_bytes: u32,
    /// Largest value, in bytes.
    pub max_value_bytes: u32,
    /// Total of all keys' and values' bytes.
    pub quota_bytes: u64,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
            quota_bytes: 1024 * 1024,
        }
    }
}

/// Forgets everything: logs, state, limits, the fixed time, the end of
/// input, threat intelligence.
pub fn reset() {
    fake::with(|fake| *fake = fake::Fake::default());
}

/// Fixes what [`crate::host::clock::now`] returns, in nanoseconds since the
/// Unix epoch.
pub fn set_now(now: Timestamp) {
    fake::with(|fake| fake.now = Some(now));
}

/// Lets [`crate::host::clock::now`] follow the system clock again.
pub fn clear_now() {
    fake::with(|fake| fake.now = None);
}

/// Sets what [`crate::host::clock::input_ended`] returns (false until a
/// test sets it): `true` to simulate the final tick of a replay, `false`
/// for an ordinary tick again.
///
/// ```
/// use vigil_plugin_sdk::{host, testing};
///
/// assert!(!host::clock::input_ended());
/// testing::set_input_ended(true);
/// assert!(host::clock::input_ended());
/// ```
pub fn set_input_ended(ended: bool) {
    fake::with(|fake| fake.input_ended = ended);
}

/// Makes [`crate::host::threat_intel::lookup_ip`] answer `matches` for `ip`
/// (compared as text, exactly).
pub fn set_threat_intel(ip: impl Into<String>, matches: Vec<IpMatch>) {
    fake::with(|fake| {
        fake.threat_intel.insert(ip.into(), matches);
    });
}

/// Forgets every threat-intelligence answer.
pub fn clear_threat_intel() {
    fake::with(|fake| fake.threat_intel.clear());
}

/// The log records written so far.
#[must_use]
pub fn logs() -> Vec<LogRecord> {
    fake::with(|fake| fake.logs.clone())
}

/// The log records written so far, forgetting them.
#[must_use]
pub fn take_logs() -> Vec<LogRecord> {
    fake::with(|fake| std::mem::take(&mut fake.logs))
}

/// A copy of the whole state store.
#[must_use]
pub fn state() -> BTreeMap<String, Vec<u8>> {
    fake::with(|fake| fake.state.clone())
}

/// Sets the state store's limits.
pub fn set_state_limits(limits: StateLimits) {
    fake::with(|fake| fake.limits = limits);
}

/// A detector made with [`Default`] and configured with `settings` (`"{}"`
/// for the defaults), as the host starts one.
///
/// # Panics
/// When the settings are refused, listing every problem: a test that meant
/// to configure a detector should fail loudly.
#[must_use]
#[track_caller]
pub fn configured<D: Detector>(settings: &str) -> D {
    let mut detector = D::default();
    if let Err(error) = detector.configure(settings) {
        panic!("settings refused: {:?}", error.problems);
    }
    detector
}

/// The rule ids of `findings`, in order: what most assertions compare.
#[must_use]
pub fn rule_ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule_id.as_str()).collect()
}

/// The rule id and severity of each of `findings`, in order.
#[must_use]
pub fn rule_severities(findings: &[Finding]) -> Vec<(&str, Severity)> {
    findings
        .iter()
        .map(|f| (f.rule_id.as_str(), f.severity))
        .collect()
}

/// The values of `finding`'s evidence under `key`, in order (a key may
/// repeat).
#[must_use]
pub fn evidence<'f>(finding: &'f Finding, key: &str) -> Vec<&'f str> {
    finding
        .evidence
        .iter()
        .filter(|e| e.key == key)
        .map(|e| e.value.as_str())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests {
    use super::*;
    use crate::host::state;
    use crate::types::StateError;

    #[test]
    fn state_round_trips_and_lists_by_prefix() {
        state::set("b/1", b"x").unwrap();
        state::set("a/1", b"y").unwrap();
        state::set("a/2", b"z").unwrap();
        assert_eq!(state::get("a/1").as_deref(), Some(&b"y"[..]));
        assert_eq!(state::keys("a/"), ["a/1", "a/2"]);
        state::delete("a/1");
        state::delete("missing");
        assert_eq!(state::keys(""), ["a/2", "b/1"]);
    }

    #[test]
    fn state_enforces_limits() {
        set_state_limits(StateLimits {
            max_key_bytes: 4,
            max_value_bytes: 4,
            quota_bytes: 10,
        });
        assert_eq!(state::set("", b""), Err(StateError::KeyTooLong(4)));
        assert_eq!(state::set("12345", b""), Err(StateError::KeyTooLong(4)));
        assert_eq!(state::set("k", b"12345"), Err(StateError::ValueTooLarge(4)));
        state::set("k1", b"1234").unwrap();
        assert_eq!(
            state::set("k2", b"1234"),
            Err(StateError::QuotaExceeded(10))
        );
        state::set("k1", b"12").unwrap();
        reset();
        assert!(state().is_empty());
    }

    /// A detector without settings.
    #[derive(Default)]
    struct Quiet;

    impl Detector for Quiet {
        fn describe() -> crate::PluginInfo {
            crate::PluginInfo::builder("quiet", "0.1.0").build()
        }

        fn on_events(&mut self, _batch: &[crate::Event]) -> Vec<Finding> {
            Vec::new()
        }
    }

    #[test]
    fn configures_a_detector() {
        let mut quiet: Quiet = configured("{}");
        assert!(quiet.on_events(&[]).is_empty());
    }

    #[test]
    #[should_panic(expected = "settings refused")]
    fn refused_settings_fail_the_test() {
        let _: Quiet = configured(r#"{"colour": "red"}"#);
    }

    #[test]
    fn reads_rule_ids_and_evidence() {
        use crate::types::Severity;
        let findings = [
            crate::Finding::builder("p/a", Severity::Low)
                .evidence("port", "22")
                .evidence("image", "nginx")
                .evidence("port", "2222")
                .build(),
            crate::Finding::builder("p/b", Severity::High).build(),
        ];
        assert_eq!(rule_ids(&findings), ["p/a", "p/b"]);
        assert_eq!(
            rule_severities(&findings),
            [("p/a", Severity::Low), ("p/b", Severity::High)]
        );
        assert_eq!(evidence(&findings[0], "port"), ["22", "2222"]);
        assert!(evidence(&findings[1], "port").is_empty());
    }

    #[test]
    fn clock_follows_the_system_unless_fixed() {
        assert!(crate::host::clock::now() > 1_600_000_000_000_000_000);
        set_now(5);
        assert_eq!(crate::host::clock::now(), 5);
        clear_now();
        assert!(crate::host::clock::now() > 5);
    }

    #[test]
    fn input_ends_only_when_a_test_ends_it() {
        assert!(!crate::host::clock::input_ended());
        set_input_ended(true);
        assert!(crate::host::clock::input_ended());
        set_input_ended(false);
        assert!(!crate::host::clock::input_ended());
        set_input_ended(true);
        reset();
        assert!(!crate::host::clock::input_ended());
    }
}
