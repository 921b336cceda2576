//! Threat intelligence answered to plugins through `threat-intel.lookup-ip`.
//!
//! Feeds are local files: plain lists (one address or CIDR block per line,
//! `#` comments) and abuse.ch-style CSV (quoted fields, `#` header lines; the
//! first field that parses as an address is the entry, the last non-empty
//! field is kept as the note, e.g. the malware family). `vigil run` reloads
//! them when they change ([`reload`]).

mod config;
pub mod reload;

pub use config::{FeedConfig, IntelConfig};

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// One matching entry, mirrored from WIT `ip-match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelMatch {
    pub feed: String,
    pub entry: String,
    pub category: String,
    pub note: String,
}

/// Why a feed could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    /// The file could not be read.
    #[error("cannot read threat-intel feed {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file has lines, but not one of them is an address or a block:
    /// not a feed (an HTML error page, a truncated download, the wrong file).
    #[error(
        "threat-intel feed {path} has no address or CIDR entry in its {skipped} non-comment lines"
    )]
    NoEntries { path: PathBuf, skipped: u64 },
}

#[derive(Debug, Clone)]
struct Block {
    net: IpAddr,
    prefix: u8,
    hit: IntelMatch,
}

/// Every loaded feed, indexed for lookup.
#[derive(Debug, Default)]
pub struct ThreatIntel {
    exact: HashMap<IpAddr, Vec<IntelMatch>>,
    blocks: Vec<Block>,
    /// Lines that were neither an address, a block nor a comment.
    pub skipped_lines: u64,
}

impl ThreatIntel {
    /// No feeds: every lookup answers nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads every feed file, all or nothing: the first file that cannot be
    /// read or holds no entry at all is the error.
    pub fn load_files(paths: &[PathBuf], category: &str) -> Result<Self, IntelError> {
        Self::load_feeds(paths.iter().map(|p| (p.as_path(), category)))
    }

    /// Loads every `(file, category)` feed, all or nothing, like
    /// [`load_files`](Self::load_files).
    pub fn load_feeds<'a>(
        feeds: impl IntoIterator<Item = (&'a Path, &'a str)>,
    ) -> Result<Self, IntelError> {
        let mut intel = Self::empty();
        for (path, category) in feeds {
            intel.load_file(path, category)?;
        }
        Ok(intel)
    }

    /// Loads a feed file; `category` labels all its entries (e.g. `c2`).
    /// An empty file (or only comments) is a valid, empty feed; a file whose
    /// every line is unreadable is refused.
    pub fn load_file(&mut self, path: &Path, category: &str) -> Result<usize, IntelError> {
        let text = std::fs::read_to_string(path).map_err(|source| IntelError::Read {
            path: path.to_owned(),
            source,
        })?;
        let feed = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let skipped_before = self.skipped_lines;
        let added = self.load_text(&feed, category, &text);
        let skipped = self.skipped_lines - skipped_before;
        if added == 0 && skipped > 0 {
            return Err(IntelError::NoEntries {
                path: path.to_owned(),
                skipped,
            });
        }
        Ok(added)
    }

    /// Loads a feed from text; returns the number of entries added.
    pub fn load_text(&mut self, feed: &str, category: &str, text: &str) -> usize {
        let mut added = 0;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
                continue;
            }
            let fields: Vec<&str> = line
                .split(',')
                .map(|f| f.trim().trim_matches('"').trim())
                .collect();
            let Some((entry, net, prefix)) = fields
                .iter()
                .find_map(|f| parse_entry(f).map(|(n, p)| (*f, n, p)))
            else {
                self.skipped_lines += 1;
                continue;
            };
            let note = if fields.len() > 1 {
                fields
                    .iter()
                    .rev()
                    .find(|f| !f.is_empty())
                    .copied()
                    .unwrap_or("")
            } else {
                ""
            };
            let hit = IntelMatch {
                feed: feed.to_owned(),
                entry: entry.to_owned(),
                category: category.to_owned(),
                note: note.to_owned(),
            };
            let full = if net.is_ipv4() { 32 } else { 128 };
            if prefix == full {
                self.exact.entry(net).or_default().push(hit);
            } else {
                self.blocks.push(Block { net, prefix, hit });
            }
            added += 1;
        }
        added
    }

    /// Every entry matching `ip`; empty when `ip` is not an address.
    pub fn lookup(&self, ip: &str) -> Vec<IntelMatch> {
        let Ok(addr) = ip.trim().parse::<IpAddr>() else {
            return Vec::new();
        };
        let mut out = self.exact.get(&addr).cloned().unwrap_or_default();
        out.extend(
            self.blocks
                .iter()
                .filter(|b| contains(b.net, b.prefix, addr))
                .map(|b| b.hit.clone()),
        );
        out
    }

    /// Number of entries loaded.
    pub fn len(&self) -> usize {
        self.exact.values().map(Vec::len).sum::<usize>() + self.blocks.len()
    }

    /// True when no entry is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn parse_entry(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(full);
    (prefix <= full).then_some((addr, prefix))
}

fn contains(net: IpAddr, prefix: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lists_and_abuse_ch_csv() {
        let mut ti = ThreatIntel::empty();
        assert_eq!(
            ti.load_text(
                "list.txt",
                "c2",
                "# comment\n198.51.100.7\n203.0.113.0/24\nnot an ip\n2001:db8::/32\n"
            ),
            3
        );
        assert_eq!(ti.skipped_lines, 1);
        let csv = "# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n\"2024-01-01 00:00:00\",\"192.0.2.9\",\"443\",\"online\",\"2024-01-02\",\"QakBot\"\n";
        assert_eq!(ti.load_text("feodo.csv", "botnet", csv), 1);
        assert_eq!(ti.lookup("198.51.100.7")[0].entry, "198.51.100.7");
        assert_eq!(ti.lookup("203.0.113.200")[0].entry, "203.0.113.0/24");
        assert_eq!(ti.lookup("2001:db8::1")[0].feed, "list.txt");
        let hit = &ti.lookup("192.0.2.9")[0];
        assert_eq!(
            (hit.category.as_str(), hit.note.as_str()),
            ("botnet", "QakBot")
        );
        assert!(ti.lookup("203.0.114.1").is_empty());
        assert!(ti.lookup("garbage").is_empty());
        assert_eq!(ti.len(), 4);
    }
}
