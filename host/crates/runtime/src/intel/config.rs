//! `[intel]`: threat-intel feed files answered to plugins through
//! `threat-intel.lookup-ip` (plain IP/CIDR lists or abuse.ch CSV), and how
//! often `vigil run` looks at them for changes ([`crate::intel::reload`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use vigil_core::validate::{Problems, Validate, join};

/// One feed file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The file (absolute path); read at startup and at every reload.
    pub path: PathBuf,
    /// Category given to every entry of the feed (e.g. `c2`, `tor-exit`),
    /// returned to plugins with each match.
    #[serde(default = "default_category")]
    pub category: String,
}

fn default_category() -> String {
    "intel".into()
}

/// Default of `intel.poll_interval_ms`.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1000;
/// Shortest accepted non-zero `intel.poll_interval_ms`: a change is acted
/// on after two looks, and each reload parses every feed again.
pub const MIN_POLL_INTERVAL_MS: u64 = 100;
/// Longest accepted `intel.poll_interval_ms` (one hour): a feed older than
/// that is a feed nobody updates.
pub const MAX_POLL_INTERVAL_MS: u64 = 3_600_000;

/// `[intel]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// The feeds (`[[intel.feeds]]`); `--intel FILE` adds more.
    pub feeds: Vec<FeedConfig>,
    /// Time between two looks at the feed files, in milliseconds
    /// (`--intel-poll-ms`): a changed file (new size, modification time or
    /// inode) is reloaded once it stayed the same for one more look; `0`
    /// never reloads them between config reloads.
    pub poll_interval_ms: u64,
}

impl Default for IntelConfig {
    fn default() -> Self {
        Self {
            feeds: Vec::new(),
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
        }
    }
}

impl IntelConfig {
    /// How often `vigil run` polls the feed files, or `None` when it does
    /// not: polling is off, or there is no feed to watch.
    pub fn poll_interval(&self) -> Option<Duration> {
        (self.poll_interval_ms > 0 && !self.feeds.is_empty())
            .then(|| Duration::from_millis(self.poll_interval_ms))
    }
}

impl Validate for IntelConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.poll_interval_ms != 0
            && !(MIN_POLL_INTERVAL_MS..=MAX_POLL_INTERVAL_MS).contains(&self.poll_interval_ms)
        {
            problems.push(
                join(path, "poll_interval_ms"),
                format!(
                    "must be 0 (never) or from {MIN_POLL_INTERVAL_MS} to {MAX_POLL_INTERVAL_MS}"
                ),
            );
        }
        for (i, feed) in self.feeds.iter().enumerate() {
            let at = join(path, &format!("feeds[{i}]"));
            if !feed.path.is_absolute() {
                problems.push(join(&at, "path"), "must be an absolute path");
            } else if !feed.path.is_file() {
                problems.push(
                    join(&at, "path"),
                    format!("{} is not a readable file", feed.path.display()),
                );
            }
            let valid = !feed.category.is_empty()
                && feed
                    .category
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                problems.push(
                    join(&at, "category"),
                    "must be non-empty: letters, digits, '-' or '_'",
                );
            }
        }
    }
}
