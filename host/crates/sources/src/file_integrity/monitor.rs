//! The comparison engine: rescans specs, compares each selected path with
//! the baseline and says what changed. Synchronous and free of inotify, so
//! the whole decision "which event, if any" is unit-tested directly.
//!
//! Changes are returned, not applied: the caller sends the events first and
//! commits after, so a crash in between repeats an event at the next start
//! rather than losing it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::baseline::{Baseline, BaselineError, Update};
use super::scan::{self, ScanError};
use super::spec::PathSpec;
use vigil_core::model::{FileChange, FileEvent, FileState};

/// What a rescan found.
#[derive(Debug, Default)]
pub struct Diff {
    /// One event per path whose state differs from the baseline in a way
    /// worth reporting.
    pub events: Vec<FileEvent>,
    /// Every state to record, including silent ones (an mtime-only change).
    pub updates: Vec<Update>,
    /// Paths that could not be read; their baseline is left as it was.
    pub unreadable: Vec<ScanError>,
}

/// The event for a change of state, or `None` when nothing worth reporting
/// changed. Content (hash, size of a regular file, file type) wins over
/// metadata (mode, uid, gid); an mtime-only change (`touch`, or a rewrite
/// with the same bytes) is not reported: the content hash is what matters,
/// and mtime is trivially forged anyway.
pub fn classify(before: Option<&FileState>, after: Option<&FileState>) -> Option<FileChange> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(FileChange::Created),
        (Some(_), None) => Some(FileChange::Deleted),
        (Some(b), Some(a)) if scan::content_differs(b, a) => Some(FileChange::Modified),
        (Some(b), Some(a)) if scan::metadata_differs(b, a) => Some(FileChange::Metadata),
        (Some(_), Some(_)) => None,
    }
}

/// The watched specs and their baseline.
pub struct Monitor {
    specs: Vec<PathSpec>,
    baseline: Baseline,
}

impl Monitor {
    /// A monitor over `specs`.
    pub fn new(specs: Vec<PathSpec>, baseline: Baseline) -> Self {
        Self { specs, baseline }
    }

    /// The specs, in configuration order.
    pub fn specs(&self) -> &[PathSpec] {
        &self.specs
    }

    /// The baseline.
    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    /// Startup: specs the baseline has never seen are recorded silently
    /// (returned: how many paths), rows no current spec selects are
    /// dropped, and the specs recorded before are compared (the returned
    /// diff: changes made while Vigil was down; not yet committed).
    pub fn startup(&mut self) -> Result<(usize, Diff), BaselineError> {
        let (known, new): (Vec<usize>, Vec<usize>) = (0..self.specs.len())
            .partition(|i| self.baseline.specs().contains(&self.specs[*i].raw));
        let mut silent = Vec::new();
        let mut unreadable = Vec::new();
        for p in self.selected_paths(&new) {
            let key = key(&p);
            if self.baseline.get(&key).is_some() || known.iter().any(|i| self.specs[*i].selects(&p))
            {
                continue;
            }
            match scan::read_state(&p) {
                Ok(Some(state)) => silent.push(Update {
                    path: key,
                    state: Some(state),
                }),
                Ok(None) => {}
                Err(e) => unreadable.push(e),
            }
        }
        let recorded = silent.len();
        for stale in self
            .baseline
            .paths()
            .filter(|p| !self.specs.iter().any(|s| s.selects(Path::new(p))))
        {
            silent.push(Update {
                path: stale.to_owned(),
                state: None,
            });
        }
        let specs: BTreeSet<String> = self.specs.iter().map(|s| s.raw.clone()).collect();
        self.baseline.apply(&silent, Some(&specs))?;
        let mut diff = self.rescan(&known);
        diff.unreadable.extend(unreadable);
        Ok((recorded, diff))
    }

    /// Indices of the specs a change at any of `paths` may concern.
    pub fn affected(&self, paths: &[PathBuf]) -> Vec<usize> {
        (0..self.specs.len())
            .filter(|i| paths.iter().any(|p| self.specs[*i].affected_by(p)))
            .collect()
    }

    /// Every spec's index (a full rehash).
    pub fn all(&self) -> Vec<usize> {
        (0..self.specs.len()).collect()
    }

    /// Compares the paths selected by the given specs (those present now
    /// and those in the baseline) with the baseline.
    pub fn rescan(&self, specs: &[usize]) -> Diff {
        let mut diff = Diff::default();
        for p in self.selected_paths(specs) {
            let key = key(&p);
            let before = self.baseline.get(&key);
            let after = match scan::read_state(&p) {
                Ok(s) => s,
                Err(e) => {
                    diff.unreadable.push(e);
                    continue;
                }
            };
            if before == after.as_ref() {
                continue;
            }
            if let Some(change) = classify(before, after.as_ref()) {
                diff.events.push(FileEvent {
                    path: key.clone(),
                    change,
                    before: before.cloned(),
                    after: after.clone(),
                });
            }
            diff.updates.push(Update {
                path: key,
                state: after,
            });
        }
        diff
    }

    /// Records a diff's new states (after its events were sent).
    pub fn commit(&mut self, diff: &Diff) -> Result<(), BaselineError> {
        if diff.updates.is_empty() {
            return Ok(());
        }
        self.baseline.apply(&diff.updates, None)
    }

    /// Paths selected by the specs: present now, or recorded (so that a
    /// deletion is seen). Sorted and deduplicated (specs may overlap).
    fn selected_paths(&self, specs: &[usize]) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        for i in specs {
            let spec = &self.specs[*i];
            out.extend(spec.existing());
            out.extend(
                self.baseline
                    .paths()
                    .map(PathBuf::from)
                    .filter(|p| spec.selects(p)),
            );
        }
        out
    }
}

/// The baseline key and event path of a path. Non-UTF-8 names are kept
/// lossily: the watched paths are system files with ASCII names, and a
/// lossy name still reports the change.
fn key(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
