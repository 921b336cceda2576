//! `[heartbeat]` (what `vigil run` tells the fleet about itself) and
//! `[fleet]` (how `vigil fleet` reads the fleet's JetStream stream, holds
//! its lease and judges the nodes). The NATS connection of the heartbeat is
//! the first `[[outputs.nats]]` (same server, credentials and TLS rules as
//! the findings); `vigil fleet` has its own connection settings here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Problems, Validate, join};
use vigil_delivery::outputs::nats::{MAX_READ_PAYLOAD_RANGE, NatsConfig};

/// `[heartbeat]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    /// Publish a heartbeat (node, version, plugins and digests, sources,
    /// counters) through the connection of the first `[[outputs.nats]]`.
    pub enabled: bool,
    /// Milliseconds between two heartbeats.
    pub interval_ms: u64,
    /// Subject prefix; each node publishes on `PREFIX.<node>` (bound to a
    /// JetStream stream, like the findings' subject).
    pub subject_prefix: String,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_ms: 10_000,
            subject_prefix: "vigil.heartbeat".into(),
        }
    }
}

impl Validate for HeartbeatConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if !(100..=3_600_000).contains(&self.interval_ms) {
            problems.push(join(path, "interval_ms"), "must be between 100 and 3600000");
        }
        check_subject(
            &self.subject_prefix,
            &join(path, "subject_prefix"),
            problems,
        );
    }
}

/// `[fleet]`: read by `vigil fleet` only.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// `nats://HOST:PORT` or `tls://HOST:PORT` of the fleet's NATS server.
    pub url: String,
    /// User name (with `password_file`).
    pub user: Option<String>,
    /// File holding the password of `user`.
    pub password_file: Option<PathBuf>,
    /// File holding an authentication token.
    pub token_file: Option<PathBuf>,
    /// Send credentials without TLS (default: no; as `[[outputs.nats]]`).
    pub allow_plaintext_credentials: bool,
    /// PEM CA certificates trusted besides the system's roots (TLS).
    pub ca_file: Option<PathBuf>,
    /// Connect and request deadline, in milliseconds.
    pub timeout_ms: u64,
    /// The JetStream stream holding the nodes' findings and heartbeats.
    pub stream: String,
    /// Subject of the nodes' findings (the `subject` of their `[[outputs.nats]]`).
    pub findings_subject: String,
    /// Subject prefix of the heartbeats (the nodes' `heartbeat.subject_prefix`).
    pub heartbeat_subject_prefix: String,
    /// Name of the durable consumer: where the fleet is in the stream, kept by JetStream.
    pub durable: String,
    /// Key-value bucket of the lease (one active `vigil fleet`); with the
    /// suffixes `_reported` and `_churn`, the buckets of the fleet findings
    /// already reported (each reported once) and of the learned churn
    /// baseline (kept across takeovers).
    pub lease_bucket: String,
    /// Lease lifetime in milliseconds: a standby takes over at most this
    /// long after the active instance stopped renewing it.
    pub lease_ttl_ms: u64,
    /// Heartbeat intervals a node may miss before `fleet/node-silent`.
    pub missed_heartbeats: u32,
    /// Nodes whose findings name the same remote address before `fleet/remote-on-nodes`.
    pub remote_min_nodes: usize,
    /// Largest message read; a larger one is counted and skipped. The
    /// connection's frame guard lets through payloads up to the larger of
    /// this and 1 MiB (`nats-server`'s default `max_payload`) plus 64 KiB
    /// of headers, so an oversized message up to there is skipped rather
    /// than cutting the connection.
    pub max_message_bytes: usize,
    /// Where the fleet's picture (`fleet.json`) is written every second.
    pub state_file: Option<PathBuf>,
    /// Built-in plugins that run as fleet rules (each must receive
    /// findings, like `incident`); plugin files that do are loaded from
    /// `[plugins] dir`. Every node's findings are handed to them, and their
    /// findings are fleet findings. Settings, policies, limits and
    /// signatures come from `[plugins]`; `plugins.builtin` does not apply.
    pub rules: Vec<String>,
    /// `fleet/churn-spike`: containers created on all nodes together, per
    /// window, against the fleet's baseline (`[fleet.churn]`).
    pub churn: FleetChurnConfig,
}

/// `[fleet.churn]`: the container-churn plugin's spike rule, on the sum of
/// every node's containers created (each heartbeat's
/// `counters.containers_created`). A window should span several heartbeat
/// intervals: a node's creations count in the window of the heartbeat that
/// reports them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetChurnConfig {
    /// Report `fleet/churn-spike`.
    pub enabled: bool,
    /// Length of a counting window, in seconds (divides an hour).
    pub window_secs: u64,
    /// Hours of observation (by the active instance) before spikes are
    /// reported.
    pub warmup_hours: u64,
    /// How many standard deviations above the mean a window's sum must be.
    pub z_threshold: f64,
    /// The smallest sum in a window that can be a spike.
    pub min_count: u32,
    /// Samples an hour-of-week bucket needs before it is used as the baseline.
    pub min_bucket_samples: u32,
}

impl Default for FleetChurnConfig {
    /// The container-churn plugin's defaults.
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 300,
            warmup_hours: 24,
            z_threshold: 4.0,
            min_count: 10,
            min_bucket_samples: 3,
        }
    }
}

impl FleetChurnConfig {
    /// The rule as the picture applies it.
    pub fn rule(&self) -> crate::fleet::churn::ChurnRule {
        crate::fleet::churn::ChurnRule {
            enabled: self.enabled,
            window_secs: self.window_secs,
            warmup_windows: u32::try_from(self.warmup_hours * 3_600 / self.window_secs.max(1))
                .unwrap_or(u32::MAX),
            z_threshold: self.z_threshold,
            min_count: self.min_count,
            min_bucket_samples: self.min_bucket_samples,
        }
    }
}

impl Validate for FleetChurnConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        // Shorter than the plugin's 60 s allowed: heartbeats may come every
        // 100 ms (and tests use short windows).
        if !(1..=3_600).contains(&self.window_secs) || 3_600 % self.window_secs != 0 {
            problems.push(
                join(path, "window_secs"),
                "must be between 1 and 3600 and divide an hour (60, 300, 600, 900 …)",
            );
        }
        if self.warmup_hours > 24 * 7 * 8 {
            problems.push(
                join(path, "warmup_hours"),
                "must be at most 1344 (eight weeks)",
            );
        }
        if !(self.z_threshold.is_finite() && self.z_threshold > 0.0) {
            problems.push(join(path, "z_threshold"), "must be a positive number");
        }
        if self.min_count == 0 {
            problems.push(join(path, "min_count"), "must be at least 1");
        }
        if self.min_bucket_samples == 0 {
            problems.push(join(path, "min_bucket_samples"), "must be at least 1");
        }
    }
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            user: None,
            password_file: None,
            token_file: None,
            allow_plaintext_credentials: false,
            ca_file: None,
            timeout_ms: 5_000,
            stream: "VIGIL".into(),
            findings_subject: "vigil.findings".into(),
            heartbeat_subject_prefix: "vigil.heartbeat".into(),
            durable: "vigil-fleet".into(),
            lease_bucket: "vigil_fleet".into(),
            lease_ttl_ms: 10_000,
            missed_heartbeats: 3,
            remote_min_nodes: 3,
            max_message_bytes: 1 << 20,
            state_file: None,
            rules: Vec::new(),
            churn: FleetChurnConfig::default(),
        }
    }
}

impl FleetConfig {
    /// The connection settings in the form the NATS output takes them.
    pub fn connection(&self) -> NatsConfig {
        let mut c = NatsConfig::to(&self.url, &self.findings_subject);
        c.user = self.user.clone();
        c.password_file = self.password_file.clone();
        c.token_file = self.token_file.clone();
        c.allow_plaintext_credentials = self.allow_plaintext_credentials;
        c.ca_file = self.ca_file.clone();
        c.timeout_ms = self.timeout_ms;
        c.max_read_payload_bytes = self.read_payload_cap();
        c
    }

    /// What the frame guard lets the server send: a message of
    /// `max_message_bytes` or of the server's default `max_payload`
    /// (either is read, the larger skipped), with room for JetStream's
    /// headers; within the guard's own bounds.
    fn read_payload_cap(&self) -> usize {
        let headers = 64 << 10;
        (self.max_message_bytes.max(1 << 20) + headers).min(*MAX_READ_PAYLOAD_RANGE.end())
    }
}

impl Validate for FleetConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if !(self.url.starts_with("nats://") || self.url.starts_with("tls://")) {
            problems.push(join(path, "url"), "must start with nats:// or tls://");
        }
        if self.user.is_some() != self.password_file.is_some() {
            problems.push(join(path, "user"), "user and password_file go together");
        }
        if !(100..=600_000).contains(&self.timeout_ms) {
            problems.push(join(path, "timeout_ms"), "must be between 100 and 600000");
        }
        if !(1_000..=600_000).contains(&self.lease_ttl_ms) {
            problems.push(
                join(path, "lease_ttl_ms"),
                "must be between 1000 and 600000",
            );
        }
        for (key, name) in [
            ("stream", &self.stream),
            ("durable", &self.durable),
            ("lease_bucket", &self.lease_bucket),
        ] {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.push(join(path, key), "must be letters, digits, '_' or '-'");
            }
        }
        check_subject(
            &self.findings_subject,
            &join(path, "findings_subject"),
            problems,
        );
        check_subject(
            &self.heartbeat_subject_prefix,
            &join(path, "heartbeat_subject_prefix"),
            problems,
        );
        for (i, rule) in self.rules.iter().enumerate() {
            if !vigil_runtime::builtin::names().any(|n| n == rule) {
                let known: Vec<&str> = vigil_runtime::builtin::names().collect();
                problems.push(
                    format!("{}[{i}]", join(path, "rules")),
                    format!("{rule:?} is not a built-in plugin ({})", known.join(", ")),
                );
            }
        }
        if self.missed_heartbeats == 0 {
            problems.push(join(path, "missed_heartbeats"), "must be at least 1");
        }
        if self.remote_min_nodes < 2 {
            problems.push(join(path, "remote_min_nodes"), "must be at least 2");
        }
        if !(1024..=64 << 20).contains(&self.max_message_bytes) {
            problems.push(
                join(path, "max_message_bytes"),
                "must be between 1024 and 67108864",
            );
        }
        self.churn.validate(&join(path, "churn"), problems);
    }
}

/// A literal NATS subject: dot-separated tokens, no wildcard or space.
fn check_subject(s: &str, path: &str, problems: &mut Problems) {
    let ok = !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty() && !t.contains(['*', '>']) && !t.chars().any(char::is_whitespace)
        });
    if !ok {
        problems.push(
            path,
            format!("{s:?} is not a literal subject (dot-separated tokens, no wildcard)"),
        );
    }
}
