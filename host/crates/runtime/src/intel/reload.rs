//! Reloading the threat-intel feeds of a running host when their files
//! change.
//!
//! Polling, not inotify: feeds are replaced by downloads and configuration
//! management, often by renaming a new file over the old one, which a watch
//! on the old inode would miss; a `stat` per file per second costs nothing.
//! A change is acted on once the files have stayed the same for one more
//! poll, so a feed being written is not loaded half-written. All files are
//! then loaded into a new [`ThreatIntel`], swapped in atomically for every
//! plugin; if any file cannot be read or is not a feed, the previous feeds
//! stay in force, loudly, until the files change again.
//!
//! The feed list and the interval are `[intel]` of the config
//! ([`IntelConfig`]); `vigil run` owns the running [`ReloaderHandle`] and
//! replaces it when a config reload changes either.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use super::{IntelError, ThreatIntel};
use crate::SharedIntel;
use crate::intel::{FeedConfig, IntelConfig};
use vigil_core::metrics::{IntelMetrics, PluginMetrics};

/// What identifies a version of a file: a replaced file has a new inode, a
/// rewritten one a new size or modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        modified: m.modified().ok(),
    })
}

/// What one poll did.
#[derive(Debug)]
pub enum Poll {
    /// Nothing changed.
    Unchanged,
    /// A file changed; waiting one more poll for it to settle.
    Settling,
    /// The feeds were replaced.
    Reloaded { entries: usize },
    /// The files changed but could not be loaded: the previous feeds stay.
    Failed(IntelError),
}

/// Watches the feed files and swaps the shared [`ThreatIntel`] when they change.
pub struct Reloader {
    feeds: Vec<FeedConfig>,
    shared: SharedIntel,
    metrics: Arc<IntelMetrics>,
    /// The stamps of the files in force (or of the last failed attempt).
    current: Vec<Option<Stamp>>,
    /// Stamps seen changed at the previous poll, waiting to settle.
    pending: Option<Vec<Option<Stamp>>>,
}

impl Reloader {
    /// A reloader for `feeds`, whose current content is already in `shared`.
    pub fn new(feeds: Vec<FeedConfig>, shared: SharedIntel, metrics: Arc<IntelMetrics>) -> Self {
        let current = feeds.iter().map(|f| stamp(&f.path)).collect();
        let entries = shared.read().unwrap_or_else(PoisonError::into_inner).len();
        metrics.entries.store(entries as u64, Ordering::Relaxed);
        Self {
            feeds,
            shared,
            metrics,
            current,
            pending: None,
        }
    }

    /// Looks at the files once; reloads when a change has settled.
    pub fn poll(&mut self) -> Poll {
        let now: Vec<Option<Stamp>> = self.feeds.iter().map(|f| stamp(&f.path)).collect();
        if now == self.current {
            self.pending = None;
            return Poll::Unchanged;
        }
        if self.pending.as_ref() != Some(&now) {
            self.pending = Some(now);
            return Poll::Settling;
        }
        self.pending = None;
        // Whatever the outcome, this version of the files has been tried:
        // a broken feed is reported once, not at every poll.
        self.current = now;
        let feeds = self
            .feeds
            .iter()
            .map(|f| (f.path.as_path(), f.category.as_str()));
        match ThreatIntel::load_feeds(feeds) {
            Ok(intel) => {
                let entries = intel.len();
                let skipped = intel.skipped_lines;
                let previous = {
                    let mut shared = self.shared.write().unwrap_or_else(PoisonError::into_inner);
                    std::mem::replace(&mut *shared, Arc::new(intel)).len()
                };
                IntelReloaded {
                    feeds: &self.feeds,
                    entries,
                    previous,
                    skipped,
                }
                .emit(&self.metrics);
                Poll::Reloaded { entries }
            }
            Err(error) => {
                IntelReloadFailed { error: &error }.emit(&self.metrics);
                Poll::Failed(error)
            }
        }
    }

    /// Polls every `interval` on a thread of its own until the returned
    /// handle is stopped or dropped.
    pub fn spawn(mut self, interval: Duration) -> std::io::Result<ReloaderHandle> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vigil-intel".into())
            .spawn(move || {
                // A message or a dropped handle both end the loop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    self.poll();
                }
            })?;
        Ok(ReloaderHandle {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// A running [`Reloader`]. Stopping it (or dropping it) waits for a poll in
/// progress to end, so that a stopped reloader never swaps feeds afterwards
/// (a config reload installs its own feeds right after).
#[derive(Debug)]
pub struct ReloaderHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReloaderHandle {
    /// Starts polling the feeds of `config` that are already in `shared`;
    /// `Ok(None)` when there is nothing to poll (no feed, or polling off).
    pub fn start(
        config: &IntelConfig,
        shared: &SharedIntel,
        metrics: &Arc<IntelMetrics>,
    ) -> std::io::Result<Option<Self>> {
        let Some(interval) = config.poll_interval() else {
            return Ok(None);
        };
        Reloader::new(config.feeds.clone(), shared.clone(), metrics.clone())
            .spawn(interval)
            .map(Some)
    }

    /// Stops polling; returns once the polling thread has ended.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the threat-intel reloader thread panicked");
        }
    }
}

impl Drop for ReloaderHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The feeds were reloaded after their files changed.
struct IntelReloaded<'a> {
    feeds: &'a [FeedConfig],
    entries: usize,
    previous: usize,
    skipped: u64,
}

impl IntelReloaded<'_> {
    fn emit(&self, m: &IntelMetrics) {
        PluginMetrics::add(&m.counters.reloads, 1);
        m.entries.store(self.entries as u64, Ordering::Relaxed);
        let files: Vec<String> = self
            .feeds
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        tracing::info!(
            files = ?files,
            entries = self.entries,
            previous_entries = self.previous,
            skipped_lines = self.skipped,
            "threat-intel feeds reloaded"
        );
    }
}

/// A changed feed could not be loaded; the previous feeds stay in force.
struct IntelReloadFailed<'a> {
    error: &'a IntelError,
}

impl IntelReloadFailed<'_> {
    fn emit(&self, m: &IntelMetrics) {
        PluginMetrics::add(&m.counters.reload_failures, 1);
        tracing::error!(
            error = %vigil_core::error::chain(self.error),
            entries_in_force = m.entries.load(Ordering::Relaxed),
            "threat-intel reload FAILED; the previous feeds stay in force until the files change again"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
