//! inotify, through the `notify` crate: one non-recursive watch per anchor
//! directory (see [`PathSpec::anchors`]), or on its nearest existing
//! ancestor while it does not exist yet, so that a file appearing later
//! under a directory created later is still seen.
//!
//! inotify only says *where* to look: every event path is mapped back to
//! the specs it may concern, and the monitor decides by comparing states.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::internal_events::FileIntegrityWatchFailed;
use super::spec::PathSpec;

/// What the watcher thread hands over.
pub type Notification = notify::Result<notify::Event>;

/// The live watches.
pub struct Watches {
    watcher: RecommendedWatcher,
    /// Watched directory → its (device, inode) when the watch was placed:
    /// a directory removed and re-created under the same name needs a new
    /// watch, which a path alone would not reveal.
    watched: HashMap<PathBuf, (u64, u64)>,
}

impl Watches {
    /// Sets up inotify; events arrive on the returned receiver.
    pub fn new() -> notify::Result<(Self, mpsc::Receiver<Notification>)> {
        let (tx, rx) = mpsc::channel();
        let watcher = notify::recommended_watcher(tx)?;
        Ok((
            Self {
                watcher,
                watched: HashMap::new(),
            },
            rx,
        ))
    }

    /// Places the watches the specs need now and drops those no longer
    /// needed. Called after every batch of changes: a created directory
    /// moves a watch down towards its spec.
    pub fn arm(&mut self, specs: &[PathSpec]) {
        let mut wanted = BTreeSet::new();
        for spec in specs {
            for anchor in spec.anchors() {
                if let Some(dir) = nearest_dir(&anchor) {
                    wanted.insert(dir);
                }
            }
        }
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(dir, id)| !wanted.contains(*dir) || dir_id(dir) != Some(**id))
            .map(|(dir, _)| dir.clone())
            .collect();
        for dir in stale {
            // Fails when the kernel already dropped the watch (directory gone): nothing to undo.
            let _ = self.watcher.unwatch(&dir);
            self.watched.remove(&dir);
        }
        for dir in wanted {
            if self.watched.contains_key(&dir) {
                continue;
            }
            let Some(id) = dir_id(&dir) else { continue };
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir, id);
                }
                Err(error) => FileIntegrityWatchFailed {
                    dir: &dir,
                    error: &error,
                }
                .emit(),
            }
        }
    }

    /// How many directories are watched.
    pub fn len(&self) -> usize {
        self.watched.len()
    }
}

/// `path` if it is a directory, else its nearest ancestor that is.
pub(super) fn nearest_dir(path: &Path) -> Option<PathBuf> {
    path.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf)
}

pub(super) fn dir_id(dir: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir)
        .ok()
        .filter(std::fs::Metadata::is_dir)
        .map(|m| (m.dev(), m.ino()))
}

/// What a notification asks for: the paths to look at, or everything.
pub enum Wake {
    /// Look at these paths.
    Paths(Vec<PathBuf>),
    /// Events were lost: rehash everything.
    Everything,
    /// Nothing to do (a read-only access).
    Nothing,
}

/// Interprets one notification.
pub fn wake(n: Notification) -> Wake {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    match n {
        // The watcher reports errors (e.g. a read error on the inotify fd)
        // rather than dying: treat as lost events.
        Err(_) => Wake::Everything,
        Ok(ev) if ev.need_rescan() => Wake::Everything,
        // Opening, reading and executing a binary are not changes; they are
        // frequent for runc and the shims, so they are dropped here before
        // anything is hashed. A close after writing is kept.
        Ok(ev) if matches!(ev.kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write)) => {
            Wake::Nothing
        }
        Ok(ev) => Wake::Paths(ev.paths),
    }
}
