//! Reading one path's state: `stat` plus a SHA-256 of the content.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use vigil_core::model::FileState;

/// `st_mode` file-type mask and the regular-file type.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;

/// Why a path's state could not be read. The path keeps its baseline state
/// (no event) until it can be read again.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// `stat` failed for a reason other than the path being absent.
    #[error("cannot stat {path}")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but cannot be opened (typically permissions).
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading the content failed part-way.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether the error means "not there" (so: deleted, not unreadable).
fn is_absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// The state of `path`, `None` when it does not exist. Symlinks are
/// followed: what matters is what `dockerd` or `systemd` will load through
/// the path (a dangling link reads as absent). Only regular files are
/// hashed; directories, FIFOs, sockets and devices get an empty hash.
pub fn read_state(path: &Path) -> Result<Option<FileState>, ScanError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(source) => {
            return Err(ScanError::Stat {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.is_file() {
        return Ok(Some(state(&meta, String::new())));
    }
    // Non-blocking so that a path swapped for a FIFO between the stat and
    // the open cannot hang the source; the type is checked again on the
    // open descriptor, whose metadata is also the one reported (consistent
    // with the content hashed).
    let mut file = match File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(source) => {
            return Err(ScanError::Open {
                path: path.to_owned(),
                source,
            });
        }
    };
    let read_err = |source| ScanError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Ok(Some(state(&meta, String::new())));
    }
    let sha = hash(&mut file).map_err(read_err)?;
    Ok(Some(state(&meta, sha)))
}

fn hash(file: &mut File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(vigil_core::text::hex(&hasher.finalize()))
}

fn state(meta: &std::fs::Metadata, sha256: String) -> FileState {
    let secs = u64::try_from(meta.mtime()).unwrap_or(0);
    let nanos = u64::try_from(meta.mtime_nsec()).unwrap_or(0);
    FileState {
        sha256,
        size: meta.size(),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: secs.saturating_mul(1_000_000_000).saturating_add(nanos),
    }
}

/// Whether the content (or the file type) differs. A directory's size
/// changes with its entries, which are reported on their own, so only a
/// regular file's size counts.
pub fn content_differs(a: &FileState, b: &FileState) -> bool {
    a.sha256 != b.sha256
        || (a.mode & S_IFMT) != (b.mode & S_IFMT)
        || ((a.mode & S_IFMT) == S_IFREG && a.size != b.size)
}

/// Whether permissions or ownership differ.
pub fn metadata_differs(a: &FileState, b: &FileState) -> bool {
    a.mode != b.mode || a.uid != b.uid || a.gid != b.gid
}
