//! The read position kept across restarts: which file (device and inode,
//! so a file replaced while Vigil was down is recognised) and the offset
//! of the first byte not yet delivered.
//!
//! Written atomically (a temporary file synced, then renamed over the old
//! one) so that a crash leaves the previous position or the new one, never
//! a torn file; at most once a second while lines flow, and at shutdown.
//! Delivery is at-least-once: after a crash, the lines of the last second
//! before it are read again.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

/// The file's content: the position and the log it belongs to (a position
/// saved for another path is not used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub path: PathBuf,
    #[serde(flatten)]
    pub position: Position,
}

/// Why the position could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PositionError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode {path}")]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The saved position, `None` when nothing was saved yet.
pub fn load(file: &Path) -> Result<Option<Saved>, PositionError> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PositionError::Read {
                path: file.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| PositionError::Decode {
            path: file.to_owned(),
            source,
        })
}

/// Replaces the saved position atomically.
pub fn save(file: &Path, saved: &Saved) -> Result<(), PositionError> {
    let err = |source| PositionError::Write {
        path: file.to_owned(),
        source,
    };
    let mut tmp_name = file.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let json = serde_json::to_vec(saved).map_err(|e| err(std::io::Error::other(e)))?;
    let mut f = vigil_core::fsperm::create_private(&tmp).map_err(err)?;
    f.write_all(&json).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, file).map_err(err)?;
    // The rename itself survives a power loss once the directory is synced.
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
