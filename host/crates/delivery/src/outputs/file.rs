//! JSON lines appended to a file, rotated by size: when the next batch
//! would take the file over `max_bytes`, `PATH` becomes `PATH.1` (`PATH.1`
//! becomes `PATH.2` …, the oldest beyond `keep` is deleted) and a new
//! `PATH` is started. A batch is acknowledged once written and flushed to
//! the kernel (and `fsync`ed with `fsync = true`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DeliveryError, Format, Output, OutputConfig, OutputSpec, validate_batch};
use vigil_core::finding_record::FindingRecord;
use vigil_core::model::Severity;
use vigil_core::validate::{Problems, Validate, join};

/// `[[outputs.file]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Name in metrics and the spool (default: `file:PATH`).
    #[serde(default)]
    pub name: Option<String>,
    /// The file; created (mode 0600) when missing, its directory must exist.
    pub path: PathBuf,
    #[serde(default = "min_info")]
    pub min_severity: Severity,
    #[serde(default)]
    pub format: Format,
    /// Also write findings of plugins in monitor mode (default: yes).
    #[serde(default = "yes")]
    pub monitor: bool,
    /// Rotate when the file would grow past this size (default 100 MiB; 0: never rotate).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`PATH.1` … `PATH.N`, default 5).
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// `fsync` after every batch (default: no; a flush to the kernel survives a crash of Vigil, not of the machine).
    #[serde(default)]
    pub fsync: bool,
    /// Findings written per batch.
    #[serde(default = "default_batch")]
    pub batch_max: usize,
}

fn min_info() -> Severity {
    Severity::Info
}

fn yes() -> bool {
    true
}

fn default_max_bytes() -> u64 {
    100 << 20
}

fn default_keep() -> u32 {
    5
}

fn default_batch() -> usize {
    256
}

impl FileConfig {
    /// A config with every default, writing to `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            name: None,
            path: path.into(),
            min_severity: Severity::Info,
            format: Format::Vigil,
            monitor: true,
            max_bytes: default_max_bytes(),
            keep: default_keep(),
            fsync: false,
            batch_max: default_batch(),
        }
    }
}

impl OutputConfig for FileConfig {
    fn spec(&self) -> OutputSpec {
        OutputSpec {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| format!("file:{}", self.path.display())),
            min_severity: self.min_severity,
            monitor: self.monitor,
            batch_max: self.batch_max,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
        }
    }

    fn build(&self, _rt: &tokio::runtime::Handle) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(FileOutput::open(self)?))
    }
}

impl Validate for FileConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if !self.path.is_absolute() {
            problems.push(join(path, "path"), "must be an absolute path");
        } else {
            match self.path.parent() {
                Some(dir) if dir.is_dir() => {}
                _ => problems.push(
                    join(path, "path"),
                    format!("the directory of {} does not exist", self.path.display()),
                ),
            }
        }
        if self.max_bytes > 0 && self.max_bytes < 4096 {
            problems.push(
                join(path, "max_bytes"),
                "must be at least 4096 (or 0: never rotate)",
            );
        }
        if self.keep > 1000 {
            problems.push(join(path, "keep"), "must be at most 1000");
        }
        validate_batch(self.batch_max, path, problems);
    }
}

/// The open file.
pub struct FileOutput {
    path: PathBuf,
    format: Format,
    max_bytes: u64,
    keep: u32,
    fsync: bool,
    file: Option<File>,
    size: u64,
}

impl FileOutput {
    /// Opens (creates) the file for appending.
    pub fn open(cfg: &FileConfig) -> anyhow::Result<Self> {
        let mut out = Self {
            path: cfg.path.clone(),
            format: cfg.format,
            max_bytes: cfg.max_bytes,
            keep: cfg.keep,
            fsync: cfg.fsync,
            file: None,
            size: 0,
        };
        out.reopen().map_err(|e| {
            anyhow::anyhow!("cannot open the findings file {}: {e}", cfg.path.display())
        })?;
        Ok(out)
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        // 0600, and an existing file of ours tightened (findings name
        // containers, pods and users).
        let file = vigil_core::fsperm::append_private(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// `PATH.{keep-1}` → `PATH.{keep}` … `PATH` → `PATH.1`, then a new `PATH`.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            remove_if_exists(&self.path)?;
        } else {
            remove_if_exists(&self.rotated(self.keep))?;
            for n in (1..self.keep).rev() {
                rename_if_exists(&self.rotated(n), &self.rotated(n + 1))?;
            }
            rename_if_exists(&self.path, &self.rotated(1))?;
        }
        tracing::info!(path = %self.path.display(), keep = self.keep, "findings file rotated");
        self.reopen()
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            self.reopen()?;
        }
        if self.max_bytes > 0 && self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("file not open"));
        };
        let result = file
            .write_all(buf)
            .and_then(|()| if self.fsync { file.sync_data() } else { Ok(()) });
        match result {
            Ok(()) => {
                self.size += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A partial line may have been written: reopen (and so
                // re-read the size) next time; the batch is written again
                // in full, so a reader skips a truncated line.
                self.file = None;
                Err(e)
            }
        }
    }
}

fn remove_if_exists(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl Output for FileOutput {
    fn deliver(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError> {
        let mut buf = Vec::with_capacity(batch.len() * 1024);
        for rec in batch {
            buf.extend_from_slice(&self.format.line(rec));
        }
        self.write(&buf).map_err(|e| {
            DeliveryError::transient(format!("cannot write to {}: {e}", self.path.display()))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use vigil_core::model::{Entity, EntityKind, Finding};

    fn rec(i: usize) -> FindingRecord {
        FindingRecord::new(
            Finding {
                rule_id: "p/r".into(),
                title: "t".into(),
                severity: Severity::High,
                summary: "x".repeat(100),
                techniques: vec![],
                entities: vec![Entity {
                    kind: EntityKind::Container,
                    id: format!("c{i}"),
                    name: String::new(),
                }],
                evidence: vec![],
                event_ids: vec![format!("e{i}")],
            },
            "p",
            "1",
            "n",
            0,
        )
    }

    #[test]
    fn rotates_by_size_and_keeps_n() {
        let dir = std::env::temp_dir().join(format!("vigil-file-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("findings.jsonl");
        let mut cfg = FileConfig::at(&path);
        cfg.max_bytes = 4096;
        cfg.keep = 2;
        let mut out = FileOutput::open(&cfg).unwrap();
        let line = Format::Vigil.line(&rec(0)).len() as u64;
        let per_file = 4096 / line;
        let n = (per_file * 5) as usize;
        for i in 0..n {
            out.deliver(&[rec(i)]).unwrap();
        }
        let read = |p: &Path| -> Vec<FindingRecord> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let current = read(&path);
        let one = read(&out.rotated(1));
        let two = read(&out.rotated(2));
        assert!(!out.rotated(3).exists());
        for f in [&path, &out.rotated(1), &out.rotated(2)] {
            assert!(std::fs::metadata(f).unwrap().len() <= 4096);
        }
        assert_eq!(one.len() as u64, per_file);
        assert_eq!(two.len() as u64, per_file);
        // The newest findings, in order, across the files.
        let all: Vec<String> = two
            .iter()
            .chain(&one)
            .chain(&current)
            .map(|r| r.entities[0].id.clone())
            .collect();
        let expected: Vec<String> = (n - all.len()..n).map(|i| format!("c{i}")).collect();
        assert_eq!(all, expected);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
