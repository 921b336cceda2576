//! The file-integrity source's configuration: raw (serde, every field
//! documented) and validated into [`FileIntegritySettings`], reporting every
//! problem at once.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_core::validate::{Problems, join};

use super::spec::{self, PathSpec};
use super::writers::WriterSettings;
use crate::network::attribution::ContainerRoots;

/// The `file-integrity` source as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileIntegrityConfig {
    /// Run this source.
    pub enabled: bool,
    /// Watch the built-in list of container-runtime binaries, configuration
    /// files, systemd units and Kubernetes static-pod and audit paths.
    pub defaults: bool,
    /// Directory prepended to every built-in path (`/` on a real host). Lets
    /// tests and chroot-style deployments (the host's root mounted into
    /// Vigil's container) watch `<root>/usr/bin/runc` and so on.
    pub root: PathBuf,
    /// Extra paths, used as written: `/a/file`, `/a/dir/` (the directory and
    /// the files directly inside it) or `/a/prefix*` (`*`/`?` in the last
    /// component only).
    pub paths: Vec<String>,
    /// Seconds between two full rehashes of every watched path. The rehash
    /// catches what inotify cannot see: changes through another mount
    /// namespace or a bind mount, a dropped watch, or a queue overflow.
    pub rehash_interval_secs: u64,
    /// Quiet time after the last inotify event on a path before it is
    /// compared, in milliseconds: a write, chmod and rename of one update
    /// arrive as a burst and must become one event.
    pub debounce_ms: u64,
    /// Longest a path keeps being debounced while events keep arriving, in
    /// milliseconds, so that a file written to continuously is still reported.
    pub max_delay_ms: u64,
    /// The SQLite file holding the baseline (`<data dir>/fim.sqlite` under `vigil run`).
    pub baseline: PathBuf,
    /// Name the process behind each write to a watched file (fanotify; needs
    /// `CAP_SYS_ADMIN`), with its container when it runs in one: a `write`
    /// process event for plugins that ask for writes (runtime-tamper's
    /// `container-write`). Without the privilege the writers are not named,
    /// with the reason logged; changes are reported as without it.
    pub name_writers: bool,
    /// Docker's data root, where the containers of writers are named
    /// (`<docker_root>/containers/<id>/config.v2.json`).
    pub docker_root: PathBuf,
    /// containerd's state directory, where writers' containers Docker does
    /// not know are named (the OCI bundle
    /// `<containerd_state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`).
    /// Empty: not looked at.
    pub containerd_state: PathBuf,
    /// CRI-O's storage run root, likewise
    /// (`<crio_runroot>/<driver>-containers/<id>/userdata/config.json`).
    /// Empty: not looked at.
    pub crio_runroot: PathBuf,
}

fn default_rehash_interval_secs() -> u64 {
    600
}
fn default_debounce_ms() -> u64 {
    150
}
fn default_max_delay_ms() -> u64 {
    2_000
}

impl Default for FileIntegrityConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            defaults: true,
            root: PathBuf::from("/"),
            paths: Vec::new(),
            rehash_interval_secs: default_rehash_interval_secs(),
            debounce_ms: default_debounce_ms(),
            max_delay_ms: default_max_delay_ms(),
            baseline: PathBuf::from("/var/lib/vigil/fim.sqlite"),
            name_writers: true,
            docker_root: PathBuf::from("/var/lib/docker"),
            containerd_state: PathBuf::from("/run/containerd"),
            crio_runroot: PathBuf::from("/run/containers/storage"),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIntegritySettings {
    /// Every watched path, deduplicated, never empty.
    pub specs: Vec<PathSpec>,
    /// Period of the full rehash.
    pub rehash_interval: Duration,
    /// Quiet time before a changed path is compared.
    pub debounce: Duration,
    /// Cap of the debounce (at least `debounce`).
    pub max_delay: Duration,
    /// The baseline's SQLite file.
    pub baseline: PathBuf,
    /// Where writers are named; `None`: they are not.
    pub writers: Option<WriterSettings>,
}

impl FileIntegrityConfig {
    /// Checks every field (problems at `at.FIELD`) and resolves the watch list.
    pub fn check(&self, at: &str, problems: &mut Problems) -> Option<FileIntegritySettings> {
        let before = problems.len();
        let mut bad = |field: &str, reason: &str| problems.push(join(at, field), reason);
        if !self.root.is_absolute() {
            bad("root", "must be an absolute path");
        }
        let mut specs: Vec<PathSpec> = Vec::new();
        let defaults = if self.defaults && self.root.is_absolute() {
            spec::defaults(&self.root)
        } else {
            Vec::new()
        };
        for (i, raw) in self.paths.iter().enumerate() {
            match PathSpec::parse(raw) {
                Ok(s) => specs.push(s),
                Err(reason) => bad(&format!("paths[{i}]"), &reason),
            }
        }
        for raw in &defaults {
            // The built-ins are well-formed; a root with odd characters is the only way to fail.
            match PathSpec::parse(raw) {
                Ok(s) => specs.push(s),
                Err(reason) => bad("root", &format!("{raw}: {reason}")),
            }
        }
        if self.rehash_interval_secs == 0 {
            bad("rehash_interval_secs", "must be positive");
        }
        if !(10..=60_000).contains(&self.debounce_ms) {
            bad("debounce_ms", "must be between 10 and 60000");
        }
        if self.max_delay_ms < self.debounce_ms {
            bad("max_delay_ms", "must be at least debounce_ms");
        }
        if self.baseline.as_os_str().is_empty() {
            bad("baseline", "must not be empty");
        }
        // Checked only when used: a wrong root cannot matter otherwise.
        let containers = self.name_writers.then(|| {
            ContainerRoots::check(
                &self.docker_root,
                &self.containerd_state,
                &self.crio_runroot,
                &mut bad,
            )
        });
        let mut seen = std::collections::HashSet::new();
        specs.retain(|s| seen.insert(s.raw.clone()));
        if specs.is_empty() {
            bad("paths", "nothing to watch (defaults off and no paths)");
        }
        if problems.len() > before {
            return None;
        }
        Some(FileIntegritySettings {
            specs,
            rehash_interval: Duration::from_secs(self.rehash_interval_secs),
            debounce: Duration::from_millis(self.debounce_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            baseline: self.baseline.clone(),
            writers: containers.map(|containers| WriterSettings {
                proc_root: PathBuf::from("/proc"),
                containers,
                // A burst of writes is one change for the monitor after at
                // most `max_delay`; one write event per writer for as long.
                coalesce: Duration::from_millis(self.max_delay_ms),
            }),
        })
    }
}
