//! Which plugins a host runs: the built-in ones and those of a plugin
//! directory, each loaded on its own so one bad plugin never stops the rest.
//!
//! A plugin's name comes from the operator, never from the plugin: a
//! built-in's name, or its file's name without `.wasm`. Names are checked
//! for uniqueness here, before any plugin is instantiated; `describe()`
//! must then give exactly that name ([`crate::Runtime::load`]), and only
//! then is the plugin's state opened and its settings applied. Files are
//! read through [`file::read`] (regular files only, size-capped, owner and
//! mode checked as root) and checked against the digest its
//! [`PluginPolicy`] may pin.

pub mod file;
pub mod policy;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::builtin;
use crate::{
    Identity, LoadError, PluginLimits, PluginOrigin, PluginRunner, PluginSpec, RunContext, Runtime,
};
pub use file::{DEFAULT_MAX_FILE_BYTES, PluginFileError};
pub use policy::PluginPolicy;

/// How the name of a plugin file is decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FileNames {
    /// The file's name without `.wasm` is the plugin's name (`vigil run`,
    /// `vigil replay`, `vigil config check`).
    #[default]
    Stem,
    /// Whatever the plugin says: only for the author tools on one file,
    /// whose state is never persisted ([`Identity::Described`]).
    Described,
}

/// What to load.
#[derive(Debug, Clone)]
pub struct PluginSelection {
    /// Load the built-in plugins.
    pub builtin: bool,
    /// Also load every `*.wasm` of this directory (sorted by name).
    pub dir: Option<PathBuf>,
    /// Extra plugin files.
    pub files: Vec<PathBuf>,
    /// Settings JSON per plugin name (built-in) or file stem.
    pub settings: HashMap<String, String>,
    /// What the operator grants each plugin, by name.
    pub policies: HashMap<String, PluginPolicy>,
    /// Limits applied to every plugin.
    pub limits: PluginLimits,
    /// The largest plugin file read, in bytes.
    pub max_file_bytes: u64,
    /// How plugin files are named.
    pub file_names: FileNames,
    /// Signatures demanded of plugin files (built-ins need none).
    pub signatures: crate::signature::SignaturePolicy,
    /// With `builtin`: only these built-ins (`vigil fleet`'s rules), when set.
    pub builtin_only: Option<Vec<String>>,
}

impl Default for PluginSelection {
    fn default() -> Self {
        Self {
            builtin: false,
            dir: None,
            files: Vec::new(),
            settings: HashMap::new(),
            policies: HashMap::new(),
            limits: PluginLimits::default(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            file_names: FileNames::Stem,
            signatures: Default::default(),
            builtin_only: None,
        }
    }
}

/// Why the selection refused a plugin (or an entry of the config) before
/// it ran.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    /// The plugin file failed its checks or could not be read.
    #[error(transparent)]
    File(#[from] PluginFileError),
    /// The file's signature is missing (when required) or does not verify.
    #[error(transparent)]
    Signature(#[from] crate::signature::SignatureError),
    /// The file's name cannot be a plugin's name.
    #[error(
        "plugin file {path} refused: its name {stem:?} (the file name without `.wasm`) is not a valid plugin name: 1-64 characters of a-z, 0-9, '-' or '_'"
    )]
    FileName { path: PathBuf, stem: String },
    /// Another selected plugin already has this name.
    #[error("plugin {origin} refused: the name {name:?} is already taken by {taken_by}")]
    Duplicate {
        origin: String,
        name: String,
        taken_by: String,
    },
    /// The file's digest is not the one its policy pins.
    #[error(
        "plugin {origin} refused: its SHA-256 is {actual}, but plugins.policy.{name}.sha256 pins {expected}"
    )]
    Digest {
        origin: String,
        name: String,
        expected: String,
        actual: String,
    },
    /// Settings or a policy for a name no selected plugin has (a typo
    /// would otherwise drop the operator's settings without a word).
    #[error("plugins.{table}.{name}: no plugin named {name:?} is selected (plugins: {known})")]
    Unknown {
        /// `settings` or `policy`.
        table: &'static str,
        name: String,
        /// The selected plugins' names, comma-separated.
        known: String,
    },
}

/// A plugin the selection names, before anything of it is read.
struct Candidate {
    origin: PluginOrigin,
    /// Its settings and policy key: the built-in's name or the file stem.
    name: String,
}

/// The plugins a selection names, in load order (built-ins, then files
/// sorted by name), and the problems found listing them.
fn candidates(sel: &PluginSelection) -> (Vec<Candidate>, Vec<LoadError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    if sel.builtin {
        let wanted = |n: &&str| {
            sel.builtin_only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == n))
        };
        out.extend(builtin::names().filter(wanted).map(|n| Candidate {
            origin: PluginOrigin::Builtin(n),
            name: n.to_owned(),
        }));
    }
    let mut files = sel.files.clone();
    if let Some(dir) = &sel.dir {
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                let mut found: Vec<PathBuf> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                    .collect();
                found.sort();
                files.extend(found);
            }
            Err(source) => errors.push(LoadError::Read {
                path: dir.clone(),
                source,
            }),
        }
    }
    out.extend(files.into_iter().map(|path| {
        Candidate {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            origin: PluginOrigin::File(path),
        }
    }));
    (out, errors)
}

/// The names a selection's plugins would have (built-in names and file
/// stems), without reading any plugin.
pub fn names(sel: &PluginSelection) -> Vec<String> {
    candidates(sel).0.into_iter().map(|c| c.name).collect()
}

/// Settings and policies whose name no selected plugin has.
pub fn unknown_names(sel: &PluginSelection) -> Vec<SelectionError> {
    unknown_in(sel, &names(sel))
}

fn unknown_in(sel: &PluginSelection, known: &[String]) -> Vec<SelectionError> {
    let list = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    let mut out = Vec::new();
    let tables: [(&'static str, Vec<&String>); 2] = [
        ("settings", sel.settings.keys().collect()),
        ("policy", sel.policies.keys().collect()),
    ];
    for (table, mut keys) in tables {
        keys.sort();
        for name in keys.into_iter().filter(|n| !known.contains(n)) {
            out.push(SelectionError::Unknown {
                table,
                name: name.clone(),
                known: list.clone(),
            });
        }
    }
    out
}

/// The specs to load, plus the problems found listing them: unknown
/// settings or policy names, duplicate or invalid names, files that fail
/// their checks, digests that differ from their pin. Nothing here runs a
/// plugin.
pub fn specs(sel: &PluginSelection) -> (Vec<PluginSpec>, Vec<LoadError>) {
    let (candidates, mut errors) = candidates(sel);
    let known: Vec<String> = candidates.iter().map(|c| c.name.clone()).collect();
    errors.extend(unknown_in(sel, &known).into_iter().map(LoadError::from));
    let mut taken: HashMap<&str, &PluginOrigin> = HashMap::new();
    let mut specs = Vec::new();
    for c in &candidates {
        match spec(sel, c, &mut taken) {
            Ok(s) => specs.push(s),
            Err(e) => errors.push(e.into()),
        }
    }
    (specs, errors)
}

fn spec<'a>(
    sel: &PluginSelection,
    c: &'a Candidate,
    taken: &mut HashMap<&'a str, &'a PluginOrigin>,
) -> Result<PluginSpec, SelectionError> {
    if let PluginOrigin::File(path) = &c.origin
        && sel.file_names == FileNames::Stem
        && !valid_name(&c.name)
    {
        return Err(SelectionError::FileName {
            path: path.clone(),
            stem: c.name.clone(),
        });
    }
    // Claimed before the file is read: a refused file still holds its
    // name, so no later file can take it.
    match taken.entry(&c.name) {
        Entry::Occupied(first) => {
            return Err(SelectionError::Duplicate {
                origin: c.origin.to_string(),
                name: c.name.clone(),
                taken_by: match first.get() {
                    PluginOrigin::Builtin(n) => format!("the built-in plugin {n}"),
                    PluginOrigin::File(p) => p.display().to_string(),
                },
            });
        }
        Entry::Vacant(slot) => {
            slot.insert(&c.origin);
        }
    }
    let bytes: Arc<[u8]> = match &c.origin {
        PluginOrigin::Builtin(n) => Arc::from(builtin::bytes(n).unwrap_or_default()),
        PluginOrigin::File(path) => {
            let bytes = read_plugin_file(path, sel.max_file_bytes)?;
            // The bytes checked are the bytes compiled: no second read.
            crate::signature::check(path, &bytes, &sel.signatures)?;
            Arc::from(bytes)
        }
    };
    let policy = sel.policies.get(&c.name).cloned().unwrap_or_default();
    let actual = crate::digest(&bytes);
    if !policy.pin_matches(&actual) {
        return Err(SelectionError::Digest {
            origin: c.origin.to_string(),
            name: c.name.clone(),
            expected: policy.sha256.clone().unwrap_or_default().to_lowercase(),
            actual,
        });
    }
    Ok(PluginSpec {
        identity: match (&c.origin, sel.file_names) {
            (PluginOrigin::File(_), FileNames::Described) => Identity::Described,
            _ => Identity::Named(c.name.clone()),
        },
        origin: c.origin.clone(),
        bytes,
        settings: sel
            .settings
            .get(&c.name)
            .cloned()
            .unwrap_or_else(|| "{}".into()),
        limits: sel.limits.clone(),
        policy,
    })
}

/// Reads one plugin file: the one place a plugin's bytes come from disk.
pub fn read_plugin_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, SelectionError> {
    Ok(file::read(path, max_bytes)?)
}

/// The rule of `describe().name`, applied to a file's name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Loads every selected plugin. Failures are returned (and logged), never fatal.
pub fn load(
    runtime: &Runtime,
    sel: &PluginSelection,
    ctx: &RunContext,
) -> (Vec<PluginRunner>, Vec<LoadError>) {
    let (specs, mut errors) = specs(sel);
    let mut runners: Vec<PluginRunner> = Vec::new();
    for spec in specs {
        let origin = spec.origin.clone();
        match runtime.load(spec, ctx) {
            // Names are unique by now, except where the plugin names itself
            // (the author tools, state in memory).
            Ok(r) if runners.iter().any(|o| o.name() == r.name()) => {
                errors.push(LoadError::Describe {
                    plugin: origin.to_string(),
                    reason: format!("a plugin named {:?} is already loaded", r.name()),
                });
            }
            Ok(r) => {
                let p = r.plugin();
                let kinds: Vec<&str> = p.kinds.iter().map(|k| policy::kind_name(*k)).collect();
                // Path prefixes are the plugin's text: escaped and bounded.
                let subscriptions = r.subscription().describe().join(" | ");
                let subscriptions = vigil_core::text::escape_control(&subscriptions, 2048);
                tracing::info!(plugin = r.name(), version = %p.info.version, origin = %vigil_core::text::escape_control(&p.origin.to_string(), 1024), kinds = ?kinds, subscriptions = %subscriptions, response = p.may_respond, cached = matches!(p.compile.source, crate::CompileSource::Cache), compile_ms = p.compile.duration.as_millis() as u64, "plugin loaded");
                runners.push(r);
            }
            Err(e) => errors.push(e),
        }
    }
    for e in &errors {
        // A file name is text too: escaped like a plugin's, so a name with a
        // newline cannot forge a log line. The bound is above what a
        // settings refusal can say (16 problems of 1 KiB, then a count).
        tracing::error!(error = %vigil_core::text::escape_control(&vigil_core::error::chain(e), 24 << 10), "plugin not loaded");
    }
    (runners, errors)
}

/// The default directory for the compile cache: `$XDG_CACHE_HOME/vigil`,
/// else `~/.cache/vigil`.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .map(|d| d.join("vigil").join("plugins"))
}

#[cfg(test)]
mod tests;
