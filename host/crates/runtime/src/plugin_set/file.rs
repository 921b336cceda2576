//! Reading a plugin file without trusting what sits at its path: whoever
//! can put a `*.wasm` entry in the plugin directory must not be able to
//! hang the host (a FIFO), make it allocate without end (a symlink to
//! `/dev/zero`), or, when Vigil runs as root, have it run code that an
//! unprivileged user can replace.
//!
//! The checks are made on the opened file (`fstat`), so a path swapped
//! between a check and the read changes nothing; the open itself never
//! blocks (`O_NONBLOCK`), and at most the cap plus one byte is read.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The default largest plugin file, in bytes: a componentize-py plugin
/// (about 17.5 MiB, the largest kind) with ample margin.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a plugin file was refused. Each names the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum PluginFileError {
    /// The file could not be opened or its status read.
    #[error("cannot open plugin file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a regular file (a FIFO, a device, a socket, a directory); a
    /// symlink is judged by what it points to.
    #[error("plugin file {path} refused: it is {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    /// Larger than `plugins.max_file_bytes`.
    #[error(
        "plugin file {path} refused: it is larger than plugins.max_file_bytes ({max} bytes){}",
        size.map(|s| format!(": {s} bytes")).unwrap_or_default()
    )]
    TooLarge {
        path: PathBuf,
        /// The size, when the file's status gave it.
        size: Option<u64>,
        max: u64,
    },
    /// Vigil runs as root and the file is owned by another user, who could
    /// replace the code root runs.
    #[error(
        "plugin file {path} refused: Vigil runs as root and the file is owned by uid {uid}, not root"
    )]
    NotRootOwned { path: PathBuf, uid: u32 },
    /// Vigil runs as root and the file is writable by group or others.
    #[error(
        "plugin file {path} refused: Vigil runs as root and the file is writable by group or others (mode {mode:o}); `chmod go-w` it"
    )]
    Writable { path: PathBuf, mode: u32 },
    /// Reading failed.
    #[error("cannot read plugin file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Opens and reads a plugin file: a regular file (after following
/// symlinks), at most `max_bytes` long, and, when Vigil runs as root, owned
/// by root and not writable by group or others.
pub fn read(path: &Path, max_bytes: u64) -> Result<Vec<u8>, PluginFileError> {
    // A first look by path, so that a device or a FIFO is not even opened
    // (opening some devices has effects); the verdict is the `fstat` below.
    if let Ok(meta) = std::fs::metadata(path) {
        check(path, &meta, max_bytes)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|source| PluginFileError::Open {
            path: path.to_owned(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| PluginFileError::Open {
        path: path.to_owned(),
        source,
    })?;
    check(path, &meta, max_bytes)?;
    read_capped(file, path, max_bytes, meta.len())
}

fn check(path: &Path, meta: &Metadata, max_bytes: u64) -> Result<(), PluginFileError> {
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(PluginFileError::NotRegular {
            path: path.to_owned(),
            kind,
        });
    }
    if meta.len() > max_bytes {
        return Err(PluginFileError::TooLarge {
            path: path.to_owned(),
            size: Some(meta.len()),
            max: max_bytes,
        });
    }
    if running_as_root() {
        if meta.uid() != 0 {
            return Err(PluginFileError::NotRootOwned {
                path: path.to_owned(),
                uid: meta.uid(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(PluginFileError::Writable {
                path: path.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

/// Reads at most `max_bytes + 1` bytes: a file that grew after its status
/// was read is still refused rather than read whole.
fn read_capped(
    file: File,
    path: &Path,
    max_bytes: u64,
    size_hint: u64,
) -> Result<Vec<u8>, PluginFileError> {
    let mut bytes = Vec::with_capacity(size_hint.min(max_bytes) as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| PluginFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(PluginFileError::TooLarge {
            path: path.to_owned(),
            size: None,
            max: max_bytes,
        });
    }
    Ok(bytes)
}

/// Whether the effective uid is 0 (from `/proc/self/status`: no `unsafe`
/// call needed). If it cannot be read, root is assumed: the checks then
/// apply, which is the safe side.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?;
            // Real, effective, saved, filesystem.
            line.split_whitespace().nth(2)?.parse::<u32>().ok()
        })
        .is_none_or(|euid| euid == 0)
}

#[cfg(test)]
mod tests;
