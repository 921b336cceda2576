//! `[timeline]`: how much recent history the host keeps per entity.

use serde::{Deserialize, Serialize};

use crate::validate::{Problems, Validate, join};

/// Most events kept per entity that the config accepts: a query answers at
/// most this many, so it bounds the admin response too.
pub const MAX_EVENTS_PER_ENTITY: usize = 4096;
/// Most findings kept per entity that the config accepts.
pub const MAX_FINDINGS_PER_ENTITY: usize = 1024;
/// Most entities tracked that the config accepts.
pub const MAX_ENTITIES: usize = 100_000;

/// `[timeline]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimelineConfig {
    /// Keep a timeline of recent events and findings per container, pod and
    /// service (`vigil timeline`, the admin endpoint's `/timeline`, the
    /// evidence bundle's `timeline.json`).
    pub enabled: bool,
    /// Events kept per entity (a ring: the oldest goes first, counted in
    /// `vigil_timeline_ring_overflow_total`). At most 4096.
    pub events_per_entity: usize,
    /// Findings kept per entity, apart from its events so that a flood of
    /// events does not push them out. At most 1024.
    pub findings_per_entity: usize,
    /// Events and findings older than this are dropped (counted in
    /// `vigil_timeline_expired_total`), in seconds.
    pub max_age_secs: u64,
    /// Entities tracked at once; beyond it the least recently active one is
    /// evicted with its history (counted in
    /// `vigil_timeline_entities_evicted_total`). At most 100000.
    pub max_entities: usize,
    /// How often the timeline is written to `DATA_DIR/timeline.json` (also
    /// at shutdown) so that `vigil timeline --data-dir` reads a stopped
    /// host's; 0 writes it at shutdown only. In seconds.
    pub persist_interval_secs: u64,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            events_per_entity: 64,
            findings_per_entity: 16,
            max_age_secs: 3600,
            max_entities: 1024,
            persist_interval_secs: 60,
        }
    }
}

impl Validate for TimelineConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        let mut range = |key: &str, v: usize, max: usize| {
            if v == 0 || v > max {
                problems.push(join(path, key), format!("must be 1 to {max}, not {v}"));
            }
        };
        range(
            "events_per_entity",
            self.events_per_entity,
            MAX_EVENTS_PER_ENTITY,
        );
        range(
            "findings_per_entity",
            self.findings_per_entity,
            MAX_FINDINGS_PER_ENTITY,
        );
        range("max_entities", self.max_entities, MAX_ENTITIES);
        // A week: beyond that the ring size, not the age, is the bound anyway.
        const MAX_AGE: u64 = 7 * 24 * 3600;
        if self.max_age_secs == 0 || self.max_age_secs > MAX_AGE {
            problems.push(
                join(path, "max_age_secs"),
                format!("must be 1 to {MAX_AGE} (a week), not {}", self.max_age_secs),
            );
        }
        if self.persist_interval_secs > 86_400 {
            problems.push(
                join(path, "persist_interval_secs"),
                format!(
                    "must be 0 (at shutdown only) to 86400 (a day), not {}",
                    self.persist_interval_secs
                ),
            );
        }
    }
}
