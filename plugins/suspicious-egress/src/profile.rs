//! Learned per-image port profiles, persisted in the plugin's state.
//!
//! A profile belongs to an image *repository* (every tag shares it). It
//! learns the ports the image's containers connect to — outside the
//! containers' networks and towards other containers, separately — until it
//! is warm: `warmup_secs` after it was first seen *and* after
//! `warmup_min_connections` outbound connections. From then on it no longer
//! learns, so a port an attacker adds later is never absorbed into it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use vigil_plugin_sdk::host::{log, state};

/// State keys of profiles start with this.
pub(crate) const KEY_PREFIX: &str = "img/";
/// Longest repository kept in a state key (the host refuses keys over 512 bytes).
const MAX_KEY_REPO: usize = 400;

/// One image's profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Profile {
    /// When it was first seen (seconds since the epoch, event time).
    #[serde(rename = "f")]
    pub(crate) first_seen: u64,
    /// When it was last seen (seconds), for eviction.
    #[serde(rename = "l")]
    pub(crate) last_seen: u64,
    /// Outbound connections counted while learning.
    #[serde(rename = "c")]
    pub(crate) connections: u32,
    /// Learning is over.
    #[serde(rename = "w")]
    pub(crate) warm: bool,
    /// Packed ports (see [`crate::net::pack`]) reached outside the containers' networks, sorted.
    #[serde(rename = "e", default)]
    pub(crate) external: Vec<u32>,
    /// Packed ports reached on other containers, sorted.
    #[serde(rename = "i", default)]
    pub(crate) internal: Vec<u32>,
    #[serde(skip)]
    dirty: bool,
}

impl Profile {
    /// Counts one outbound connection at `now` (seconds) and says whether the
    /// profile is warm (it latches).
    pub(crate) fn observe(&mut self, now: u64, warmup_secs: u64, warmup_min: u32) -> bool {
        self.last_seen = self.last_seen.max(now);
        if !self.warm {
            self.connections = self.connections.saturating_add(1);
            self.warm = now.saturating_sub(self.first_seen) >= warmup_secs
                && self.connections >= warmup_min;
            self.dirty = true;
        }
        self.warm
    }

    /// Whether a packed port is in the list for this kind of destination.
    pub(crate) fn knows(&self, internal: bool, packed: u32) -> bool {
        self.ports(internal).binary_search(&packed).is_ok()
    }

    /// Learns a packed port; false when the list is full.
    pub(crate) fn learn(&mut self, internal: bool, packed: u32, max: usize) -> bool {
        let list = if internal {
            &mut self.internal
        } else {
            &mut self.external
        };
        match list.binary_search(&packed) {
            Ok(_) => true,
            Err(_) if list.len() >= max => false,
            Err(at) => {
                list.insert(at, packed);
                self.dirty = true;
                true
            }
        }
    }

    pub(crate) fn ports(&self, internal: bool) -> &[u32] {
        if internal {
            &self.internal
        } else {
            &self.external
        }
    }
}

/// Every profile, loaded from state on first use.
#[derive(Debug, Clone, Default)]
pub(crate) struct Profiles {
    by_repo: HashMap<String, Profile>,
    loaded: bool,
    /// Changes not yet persisted.
    pub(crate) pending: u32,
    warned_full: bool,
    warned_state: bool,
}

impl Profiles {
    /// Loads the persisted profiles once (keeping the `max` most recent).
    pub(crate) fn ensure_loaded(&mut self, max: usize) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let mut skipped = 0usize;
        for key in state::keys(KEY_PREFIX) {
            let repo = &key[KEY_PREFIX.len()..];
            match state::get(&key).and_then(|bytes| serde_json::from_slice::<Profile>(&bytes).ok())
            {
                Some(profile) => {
                    self.by_repo.insert(repo.to_owned(), profile);
                }
                None => {
                    skipped += 1;
                    state::delete(&key);
                }
            }
        }
        while self.by_repo.len() > max {
            self.evict_one();
        }
        if skipped > 0 {
            log::warn(
                "unreadable port profiles dropped",
                &[("profiles", &skipped.to_string())],
            );
        }
    }

    /// The profile of `repo`, created at `now` (seconds) if new; when `max`
    /// profiles exist, the least recently seen one is forgotten first.
    pub(crate) fn entry(&mut self, repo: &str, now: u64, max: usize) -> &mut Profile {
        if !self.by_repo.contains_key(repo) {
            if self.by_repo.len() >= max {
                if !self.warned_full {
                    self.warned_full = true;
                    log::warn(
                        "too many image port profiles: the least recently seen are forgotten",
                        &[("max_images", &max.to_string())],
                    );
                }
                self.evict_one();
            }
            self.pending += 1;
            self.by_repo.insert(
                repo.to_owned(),
                Profile {
                    first_seen: now,
                    last_seen: now,
                    dirty: true,
                    ..Profile::default()
                },
            );
        }
        self.by_repo
            .get_mut(repo)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    fn evict_one(&mut self) {
        let Some(oldest) = self
            .by_repo
            .iter()
            .min_by_key(|(repo, p)| (p.last_seen, (*repo).clone()))
            .map(|(repo, _)| repo.clone())
        else {
            return;
        };
        self.by_repo.remove(&oldest);
        state::delete(&key(&oldest));
    }

    /// Writes every changed profile to state.
    pub(crate) fn persist(&mut self) {
        self.pending = 0;
        let mut failed = None;
        for (repo, profile) in &mut self.by_repo {
            if !profile.dirty {
                continue;
            }
            profile.dirty = false;
            let Ok(bytes) = serde_json::to_vec(profile) else {
                continue;
            };
            if let Err(error) = state::set(&key(repo), &bytes) {
                failed = Some(format!("{error:?}"));
            }
        }
        if let Some(error) = failed
            && !self.warned_state
        {
            self.warned_state = true;
            log::warn(
                "port profiles could not all be persisted; they are kept in memory",
                &[("error", &error)],
            );
        }
    }
}

/// The state key of a repository's profile.
fn key(repo: &str) -> String {
    let mut end = repo.len().min(MAX_KEY_REPO);
    while !repo.is_char_boundary(end) {
        end -= 1;
    }
    format!("{KEY_PREFIX}{}", &repo[..end])
}
