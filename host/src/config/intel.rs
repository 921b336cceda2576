//! `[intel]`: threat-intel feed files answered to plugins through
//! `threat-intel.lookup-ip` (plain IP/CIDR lists or abuse.ch CSV).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Problems, Validate, join};

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

/// `[intel]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// The feeds (`[[intel.feeds]]`); `--intel FILE` adds more.
    pub feeds: Vec<FeedConfig>,
}

impl Validate for IntelConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
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
