//! The host's side of the timeline ([`vigil_core::timeline`]): written to
//! `DATA_DIR/timeline.json` (periodically and at shutdown, `0600`, replaced
//! atomically) and read back at start and by `vigil timeline --data-dir`;
//! fed with findings as the delivery pipeline commits them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use vigil_core::finding_record::FindingRecord;
use vigil_core::time::wall_now;
use vigil_core::timeline::{SNAPSHOT_SCHEMA, Snapshot, Timeline};
use vigil_response::ResponderHandle;

/// The file in the data directory.
pub const FILE_NAME: &str = "timeline.json";

/// Largest timeline file read back (far above what the config's bounds can
/// write with summaries of [`vigil_core::timeline::SUMMARY_BYTES`]).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Why the timeline file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TimelineFileError {
    /// Writing the temporary file or renaming it failed.
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    /// The file is not a timeline snapshot.
    #[error("{path} is not a timeline file ({SNAPSHOT_SCHEMA})")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Where the timeline of the data directory `dir` is written.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Writes the timeline files of one data directory, one at a time.
#[derive(Debug)]
pub struct Persister {
    timeline: Arc<Timeline>,
    path: PathBuf,
    /// Held while writing: the periodic write and the one at shutdown share
    /// the temporary file.
    writing: Mutex<()>,
}

impl Persister {
    pub fn new(timeline: Arc<Timeline>, data_dir: &Path) -> Self {
        Self {
            timeline,
            path: path(data_dir),
            writing: Mutex::new(()),
        }
    }

    /// Writes the current timeline (blocking: call off the async threads).
    /// A failure is logged and counted; the next write retries.
    pub fn save(&self, metrics: &vigil_core::metrics::TimelineMetrics) {
        let _guard = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let snap = self.timeline.snapshot(wall_now());
        if let Err(e) = write(&self.path, &snap) {
            metrics
                .counters
                .persist_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %vigil_core::error::chain(&e), "timeline: not saved (vigil_timeline_persist_failures_total)");
        }
    }

    /// Drops what is past the age bound.
    pub fn sweep(&self) {
        self.timeline.sweep(wall_now());
    }

    /// Puts back what a previous run saved, within today's limits.
    pub fn restore(&self) {
        match read(&self.path) {
            Ok(None) => {}
            Ok(Some(snap)) => {
                let n = snap.entities.len();
                self.timeline.restore(snap, wall_now());
                tracing::info!(entities = n, path = %self.path.display(), "timeline: restored from the previous run");
            }
            Err(e) => {
                tracing::warn!(error = %vigil_core::error::chain(&e), "timeline: previous run's file not restored (it is replaced at the next save)");
            }
        }
    }
}

/// Writes `snap` to `path` atomically, `0600`.
pub fn write(path: &Path, snap: &Snapshot) -> Result<(), TimelineFileError> {
    let err = |source| TimelineFileError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_file_name(format!(".{FILE_NAME}.tmp"));
    let f = vigil_core::fsperm::create_private(&tmp).map_err(err)?;
    let mut w = std::io::BufWriter::new(f);
    serde_json::to_writer(&mut w, snap)
        .map_err(std::io::Error::other)
        .map_err(err)?;
    w.flush().map_err(err)?;
    w.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Reads the snapshot at `path`; `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Snapshot>, TimelineFileError> {
    let read_err = |source| TimelineFileError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(TimelineFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let snap: Snapshot =
        serde_json::from_slice(&bytes).map_err(|source| TimelineFileError::Parse {
            path: path.to_owned(),
            source,
        })?;
    if snap.schema != SNAPSHOT_SCHEMA {
        return Err(TimelineFileError::Parse {
            path: path.to_owned(),
            source: serde::de::Error::custom(format!("schema {:?}", snap.schema)),
        });
    }
    Ok(Some(snap))
}

/// The delivery pipeline's response stage with the timeline in front: every
/// committed finding (monitor-mode ones too) goes into the timeline before
/// the responder sees it, so the evidence bundle's timeline shows it.
pub struct RecordingResponder {
    pub timeline: Option<Arc<Timeline>>,
    pub responder: ResponderHandle,
}

impl vigil_delivery::Responder for RecordingResponder {
    fn record(&mut self, finding: &FindingRecord) {
        if let Some(t) = &self.timeline {
            t.record_finding(finding, wall_now());
        }
    }

    fn respond(&mut self, finding: &FindingRecord) {
        self.responder.submit(finding);
    }
}
