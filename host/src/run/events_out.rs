//! `vigil run --emit-events FILE`: a tap on the pipeline's input that writes
//! every normalised event and every process event as a Vigil JSON line (the
//! format `vigil replay --format vigil` reads), for operators debugging a
//! source, for replaying what a node saw, and for tests.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use vigil_core::model::{Event, ProcessEvent, ProcessRecord};

/// Why the events file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EventsOutError {
    /// The file could not be created.
    #[error("cannot create the events file {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The open events file.
pub struct EventsOut {
    path: PathBuf,
    out: BufWriter<File>,
    failed: bool,
}

impl EventsOut {
    /// Creates (truncates) the file, `0600`.
    pub fn create(path: &Path) -> Result<Self, EventsOutError> {
        // Events name containers, pods and addresses: private like the
        // data directory, wherever the file is.
        let file =
            vigil_core::fsperm::create_private(path).map_err(|source| EventsOutError::Create {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            out: BufWriter::new(file),
            failed: false,
        })
    }

    /// Appends a batch, one line per event, and flushes (so a reader sees it now).
    pub fn write(&mut self, batch: &[Event]) {
        self.write_all(batch.iter());
    }

    /// Appends a batch of process events, one line each (a `body` of kind
    /// `process`: [`ProcessRecord`]), and flushes.
    pub fn write_processes(&mut self, batch: &[ProcessEvent]) {
        self.write_all(batch.iter().map(ProcessRecord));
    }

    fn write_all<T: Serialize>(&mut self, records: impl Iterator<Item = T>) {
        let mut result = Ok(());
        for r in records {
            result = serde_json::to_writer(&mut self.out, &r)
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"));
            if result.is_err() {
                break;
            }
        }
        let result = result.and_then(|()| self.out.flush());
        match result {
            Ok(()) => self.failed = false,
            // Logged once per run of failures: the events still go to the plugins.
            Err(e) if !self.failed => {
                self.failed = true;
                tracing::error!(path = %self.path.display(), error = %e, "cannot write to the events file; events are missing from it");
            }
            Err(_) => {}
        }
    }
}
