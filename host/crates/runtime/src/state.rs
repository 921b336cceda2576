//! Plugins' private key-value state: bounded, and persisted by the host so
//! that baselines survive restarts.
//!
//! Each plugin has its own [`PluginState`]; nothing is shared between
//! plugins. When a directory is given, the state is saved atomically (write
//! to a temporary file, then rename) to `<dir>/<plugin>.state.json` after
//! every call that changed it, and loaded at start.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    /// Reading the state file failed.
    #[error("cannot read plugin state {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state file is not valid.
    #[error("plugin state {path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Writing the state file failed.
    #[error("cannot write plugin state {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A refused write, mirrored from WIT `state-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRefusal {
    KeyTooLong(u32),
    ValueTooLarge(u32),
    QuotaExceeded(u64),
}

/// The bounds of one plugin's state.
#[derive(Debug, Clone, Copy)]
pub struct StateBounds {
    pub quota_bytes: u64,
    pub max_value_bytes: u32,
    pub max_key_bytes: u32,
}

/// One plugin's key-value store.
#[derive(Debug)]
pub struct PluginState {
    entries: BTreeMap<String, Vec<u8>>,
    bytes: u64,
    bounds: StateBounds,
    file: Option<PathBuf>,
    dirty: bool,
}

impl PluginState {
    /// An in-memory store (replay, tests).
    pub fn in_memory(bounds: StateBounds) -> Self {
        Self {
            entries: BTreeMap::new(),
            bytes: 0,
            bounds,
            file: None,
            dirty: false,
        }
    }

    /// A store persisted under `dir`, loaded from its file if present.
    pub fn persisted(
        dir: &Path,
        plugin: &str,
        bounds: StateBounds,
    ) -> Result<Self, StateStoreError> {
        let path = dir.join(format!("{}.state.json", sanitize(plugin)));
        let mut state = Self {
            file: Some(path.clone()),
            ..Self::in_memory(bounds)
        };
        match fs::read(&path) {
            Ok(bytes) => {
                let raw: BTreeMap<String, String> =
                    serde_json::from_slice(&bytes).map_err(|source| StateStoreError::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                for (k, v) in raw {
                    let value = hex_decode(&v).ok_or_else(|| StateStoreError::Corrupt {
                        path: path.clone(),
                        source: serde::de::Error::custom(format!("value of key {k:?} is not hex")),
                    })?;
                    state.bytes += (k.len() + value.len()) as u64;
                    state.entries.insert(k, value);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateStoreError::Read { path, source }),
        }
        Ok(state)
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    pub fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), StateRefusal> {
        if key.is_empty() || key.len() > self.bounds.max_key_bytes as usize {
            return Err(StateRefusal::KeyTooLong(self.bounds.max_key_bytes));
        }
        if value.len() > self.bounds.max_value_bytes as usize {
            return Err(StateRefusal::ValueTooLarge(self.bounds.max_value_bytes));
        }
        let old = self
            .entries
            .get(&key)
            .map_or(0, |v| (key.len() + v.len()) as u64);
        let new_total = self.bytes - old + (key.len() + value.len()) as u64;
        if new_total > self.bounds.quota_bytes {
            return Err(StateRefusal::QuotaExceeded(self.bounds.quota_bytes));
        }
        self.bytes = new_total;
        self.entries.insert(key, value);
        self.dirty = true;
        Ok(())
    }

    pub fn delete(&mut self, key: &str) {
        if let Some(v) = self.entries.remove(key) {
            self.bytes -= (key.len() + v.len()) as u64;
            self.dirty = true;
        }
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.entries
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Total bytes used (keys plus values).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Saves the store if it is persisted and changed since the last save.
    pub fn flush(&mut self) -> Result<(), StateStoreError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let raw: BTreeMap<&str, String> = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), hex_encode(v)))
            .collect();
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                use std::os::unix::fs::DirBuilderExt;
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(vigil_core::fsperm::DIR_MODE)
                    .create(parent)?;
            }
            let mut f = vigil_core::fsperm::create_private(&tmp)?;
            f.write_all(&serde_json::to_vec(&raw).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().map_err(|source| StateStoreError::Write {
            path: path.clone(),
            source,
        })?;
        self.dirty = false;
        Ok(())
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
