//! The evidence bundle of a quarantine: `DATA_DIR/quarantine/<id>/`,
//! mode 0700, files 0600, each written atomically (temporary file, then
//! rename) so a crash never leaves half a file.
//!
//! Docker: `inspect.json` (taken before any action), `logs.txt` (the last
//! lines of stdout/stderr, timestamped), `changes.json` (`docker diff`),
//! `top.json` (processes, taken after the pause so they are frozen),
//! `findings.jsonl`. Kubernetes: `pod.json`, `findings.jsonl`. Both:
//! `timeline.json` (the target's recent events and findings from the host's
//! timeline, rewritten at each pass),
//! `record.json` (the quarantine record with every action, rewritten as it
//! changes) and `manifest.json` (size and SHA-256 of every evidence file).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::store::Quarantine;
use vigil_core::finding_record::FindingRecord;

/// Files that are not evidence (they change after collection).
const NOT_EVIDENCE: [&str; 2] = ["manifest.json", "record.json"];

/// An evidence directory.
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    /// Creates (or reopens) the directory.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a file was already collected (a resumed quarantine keeps the
    /// first copy: `inspect.json` must show the state before isolation).
    pub fn has(&self, name: &str) -> bool {
        self.dir.join(name).is_file()
    }

    /// Writes a file atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = vigil_core::fsperm::create_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, self.dir.join(name))
    }

    /// Writes a value as pretty JSON.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.write(name, &bytes)
    }

    /// Adds a finding to `findings.jsonl` unless it is there already.
    pub fn add_finding(&self, f: &FindingRecord) -> std::io::Result<bool> {
        let path = self.dir.join("findings.jsonl");
        let mut text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let present = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["id"] == f.id.as_str());
        if present {
            return Ok(false);
        }
        text.push_str(&serde_json::to_string(f).map_err(std::io::Error::other)?);
        text.push('\n');
        self.write("findings.jsonl", text.as_bytes())?;
        Ok(true)
    }

    /// Writes `record.json`.
    pub fn write_record(&self, q: &Quarantine) -> std::io::Result<()> {
        self.write_json("record.json", q)
    }

    /// Writes `manifest.json`: size and SHA-256 of every evidence file.
    pub fn write_manifest(&self) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Entry {
            bytes: u64,
            sha256: String,
        }
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || NOT_EVIDENCE.contains(&name.as_str()) {
                continue;
            }
            let bytes = std::fs::read(entry.path())?;
            let digest = vigil_core::text::hex(&Sha256::digest(&bytes));
            files.insert(
                name,
                Entry {
                    bytes: bytes.len() as u64,
                    sha256: digest,
                },
            );
        }
        self.write_json("manifest.json", &files)
    }
}
