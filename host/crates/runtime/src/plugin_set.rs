//! Which plugins a host runs: the built-in ones and those of a plugin
//! directory, each loaded on its own so one bad plugin never stops the rest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::builtin;
use crate::{LoadError, PluginLimits, PluginOrigin, PluginRunner, PluginSpec, RunContext, Runtime};

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct PluginSelection {
    /// Load the built-in plugins.
    pub builtin: bool,
    /// Also load every `*.wasm` of this directory (sorted by name).
    pub dir: Option<PathBuf>,
    /// Extra plugin files.
    pub files: Vec<PathBuf>,
    /// Settings JSON per plugin name (built-in) or file stem.
    pub settings: HashMap<String, String>,
    /// Limits applied to every plugin.
    pub limits: PluginLimits,
    /// Signatures demanded of plugin files (built-ins need none).
    pub signatures: crate::signature::SignaturePolicy,
}

/// The specs to load, plus the problems found listing them.
pub fn specs(sel: &PluginSelection) -> (Vec<PluginSpec>, Vec<LoadError>) {
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    if sel.builtin {
        for mut s in builtin::specs() {
            if let PluginOrigin::Builtin(name) = s.origin
                && let Some(settings) = sel.settings.get(name)
            {
                s.settings = settings.clone();
            }
            s.limits = sel.limits.clone();
            specs.push(s);
        }
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
    for path in files {
        match std::fs::read(&path) {
            Ok(bytes) => {
                // The bytes checked are the bytes compiled: no second read.
                if let Err(e) = crate::signature::check(&path, &bytes, &sel.signatures) {
                    errors.push(e.into());
                    continue;
                }
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                specs.push(PluginSpec {
                    settings: sel
                        .settings
                        .get(&stem)
                        .cloned()
                        .unwrap_or_else(|| "{}".into()),
                    origin: PluginOrigin::File(path),
                    bytes: Arc::from(bytes),
                    limits: sel.limits.clone(),
                });
            }
            Err(source) => errors.push(LoadError::Read { path, source }),
        }
    }
    (specs, errors)
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
            Ok(r) if runners.iter().any(|o| o.name() == r.name()) => {
                errors.push(LoadError::Describe {
                    plugin: origin.to_string(),
                    reason: format!("a plugin named {:?} is already loaded", r.name()),
                });
            }
            Ok(r) => {
                let p = r.plugin();
                tracing::info!(plugin = r.name(), version = %p.info.version, origin = %p.origin, cached = matches!(p.compile.source, crate::CompileSource::Cache), compile_ms = p.compile.duration.as_millis() as u64, "plugin loaded");
                runners.push(r);
            }
            Err(e) => errors.push(e),
        }
    }
    for e in &errors {
        tracing::error!(error = %e, "plugin not loaded");
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
