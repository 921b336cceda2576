//! Private files and directories: the data directory and everything Vigil
//! writes in it are readable by Vigil's user only.
//!
//! The data directory holds findings waiting for delivery (the spool),
//! plugin state, quarantine records and evidence, the audit log's read
//! position, and the compile cache (native code Vigil runs). Any other user
//! who can read it learns what Vigil saw; one who can write it can forge
//! state, silence findings or run code as Vigil. So at start the directory
//! is created `0700`, or, when it exists, checked to be Vigil's user's and
//! tightened to `0700` with every file in it `0600`; and every file Vigil
//! creates later is created `0600` by one of the helpers here, never by the
//! umask. "Vigil's user" is the effective uid (root when run as root).

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a private directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a private file.
pub const FILE_MODE: u32 = 0o600;

/// Why a path could not be made private.
#[derive(Debug, thiserror::Error)]
pub enum FsPermError {
    /// The directory or file could not be created.
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Its owner and mode could not be read.
    #[error("cannot inspect {path}")]
    Inspect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A directory was expected.
    #[error("{path} is not a directory")]
    NotDirectory { path: PathBuf },
    /// A regular file was expected (not a symlink, FIFO, device …).
    #[error("{path} is not a regular file")]
    NotRegularFile { path: PathBuf },
    /// Another user owns it: Vigil neither takes it over nor trusts it.
    #[error(
        "{path} is owned by uid {owner}, not by Vigil's user (uid {uid}); chown it to uid {uid} or choose another directory"
    )]
    NotOurs { path: PathBuf, owner: u32, uid: u32 },
    /// chmod failed.
    #[error("cannot restrict {path} to mode {mode:o}")]
    Restrict {
        path: PathBuf,
        mode: u32,
        #[source]
        source: std::io::Error,
    },
}

/// A path whose mode was tightened, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tightened {
    pub path: PathBuf,
    /// Permission bits before.
    pub was: u32,
    /// Permission bits now.
    pub now: u32,
}

/// What [`private_tree`] did.
#[derive(Debug, Default)]
pub struct PrivateTree {
    /// The directory did not exist and was created.
    pub created: bool,
    /// Entries whose mode was tightened (the directory itself included).
    pub tightened: Vec<Tightened>,
    /// Entries beneath it owned by another user, left as they are (the
    /// caller warns: Vigil did not put them there).
    pub foreign: Vec<(PathBuf, u32)>,
    /// Entries that could not be inspected or tightened (the caller warns).
    pub failed: Vec<FsPermError>,
}

/// Vigil's effective uid: the owner of `/proc/self` (avoids `unsafe`
/// `geteuid`); 0 when `/proc` is not mounted.
pub fn effective_uid() -> u32 {
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// Makes `dir` a private directory: creates it (and missing parents)
/// `0700`, or checks an existing one is a directory owned by Vigil's user
/// and tightens it to `0700`. Refuses a directory of another user.
pub fn private_dir(dir: &Path) -> Result<Option<Tightened>, FsPermError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|source| FsPermError::Create {
                path: dir.to_owned(),
                source,
            })?;
    }
    let meta = fs::metadata(dir).map_err(|source| FsPermError::Inspect {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(FsPermError::NotDirectory {
            path: dir.to_owned(),
        });
    }
    ours(dir, &meta)?;
    restrict(dir, &meta, DIR_MODE)
}

/// [`private_dir`] on the data directory, then every entry beneath it:
/// directories `0700`, regular files `0600`. Symlinks are not followed and
/// entries of other users are left alone (both reported); a failure on one
/// entry is reported and the walk goes on.
pub fn private_tree(dir: &Path) -> Result<PrivateTree, FsPermError> {
    let mut out = PrivateTree {
        created: !dir.exists(),
        ..PrivateTree::default()
    };
    out.tightened.extend(private_dir(dir)?);
    let uid = effective_uid();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        let list = match fs::read_dir(&d) {
            Ok(l) => l,
            Err(source) => {
                out.failed.push(FsPermError::Inspect { path: d, source });
                continue;
            }
        };
        for entry in list {
            let path = match entry {
                Ok(e) => e.path(),
                Err(source) => {
                    out.failed.push(FsPermError::Inspect {
                        path: d.clone(),
                        source,
                    });
                    continue;
                }
            };
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(source) => {
                    out.failed.push(FsPermError::Inspect { path, source });
                    continue;
                }
            };
            let mode = if meta.is_dir() {
                DIR_MODE
            } else if meta.is_file() {
                FILE_MODE
            } else {
                // Symlinks (whose target may be anywhere), sockets, FIFOs:
                // nothing Vigil creates; not followed.
                continue;
            };
            if meta.uid() != uid {
                out.foreign.push((path, meta.uid()));
                continue;
            }
            match restrict(&path, &meta, mode) {
                Ok(t) => out.tightened.extend(t),
                Err(e) => out.failed.push(e),
            }
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(out)
}

/// Makes `path` an existing private file: created empty `0600` when
/// missing, otherwise checked to be a regular file owned by Vigil's user
/// and tightened to `0600`. For files another library opens by name
/// (SQLite): creating them first fixes their mode.
pub fn private_file(path: &Path) -> Result<Option<Tightened>, FsPermError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(FsPermError::Create {
                path: path.to_owned(),
                source,
            });
        }
    }
    tighten_existing(path)
}

/// A SQLite database and its companions (`-wal`, `-shm`, `-journal`):
/// the database as [`private_file`], and those of its companions that
/// exist tightened. SQLite creates new companions with the database
/// file's mode, so they are `0600` too.
pub fn private_sqlite(path: &Path) -> Result<Vec<Tightened>, FsPermError> {
    let mut out = Vec::new();
    out.extend(private_file(path)?);
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let companion = PathBuf::from(name);
        if fs::symlink_metadata(&companion).is_ok() {
            out.extend(tighten_existing(&companion)?);
        }
    }
    Ok(out)
}

/// Opens `path` for writing, created `0600` or truncated; an existing file
/// (e.g. a temporary file left by a crash) is set to `0600` too. For files
/// written whole and renamed into place.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    if f.metadata()?.permissions().mode() & 0o777 != FILE_MODE {
        f.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(f)
}

/// Opens `path` for appending, created `0600`; an existing file of Vigil's
/// user is set to `0600`.
pub fn append_private(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)?;
    let meta = f.metadata()?;
    if meta.uid() == effective_uid() && meta.permissions().mode() & 0o777 != FILE_MODE {
        f.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(f)
}

fn tighten_existing(path: &Path) -> Result<Option<Tightened>, FsPermError> {
    let meta = fs::symlink_metadata(path).map_err(|source| FsPermError::Inspect {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(FsPermError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    ours(path, &meta)?;
    restrict(path, &meta, FILE_MODE)
}

fn ours(path: &Path, meta: &fs::Metadata) -> Result<(), FsPermError> {
    let uid = effective_uid();
    if meta.uid() == uid {
        Ok(())
    } else {
        Err(FsPermError::NotOurs {
            path: path.to_owned(),
            owner: meta.uid(),
            uid,
        })
    }
}

/// Sets `mode` when the permission bits differ (setuid/setgid/sticky bits
/// included: none belongs on Vigil's files).
fn restrict(path: &Path, meta: &fs::Metadata, mode: u32) -> Result<Option<Tightened>, FsPermError> {
    let was = meta.permissions().mode() & 0o7777;
    if was == mode {
        return Ok(None);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| {
        FsPermError::Restrict {
            path: path.to_owned(),
            mode,
            source,
        }
    })?;
    Ok(Some(Tightened {
        path: path.to_owned(),
        was,
        now: mode,
    }))
}
