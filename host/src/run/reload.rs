//! Hot reload: what triggers it (SIGHUP, a change of the config file or of
//! the plugin directory) and the checks made before anything is swapped.
//! A candidate is the new config with its threat intel loaded and every
//! plugin loaded once with its new settings (state in memory, thrown away):
//! if any of that fails, the running set is kept and the reason logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::cli::RunArgs;
use crate::config::{IntelConfig, VigilConfig};
use vigil_runtime::intel::{IntelError, ThreatIntel};
use vigil_runtime::plugin_set;
use vigil_runtime::{Clock, LoadError, RunContext, Runtime};

/// Quiet time after a file change before reloading: an editor's save or a
/// `cp` of a plugin arrives as a burst of events.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Why a reload was refused (the running set is kept).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config file could not be read, parsed or validated.
    #[error("invalid configuration")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A threat-intel feed could not be read.
    #[error("threat-intel feed")]
    Intel(#[source] IntelError),
    /// Settings or a policy name a plugin that is not selected.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unknown(Vec<plugin_set::SelectionError>),
    /// A plugin did not load with its new settings.
    #[error("{} plugin(s) failed to load: {}", .0.len(), .0.iter().map(|e| vigil_core::error::chain(e)).collect::<Vec<_>>().join("; "))]
    Plugins(Vec<LoadError>),
    /// No plugin at all would run.
    #[error("no plugin would be loaded")]
    NoPlugin,
}

/// A checked new configuration, ready to swap in.
pub struct Candidate {
    pub config: VigilConfig,
    pub intel: ThreatIntel,
}

/// Loads every feed of `[intel]`.
pub fn load_intel(config: &IntelConfig) -> Result<ThreatIntel, IntelError> {
    let mut intel = ThreatIntel::empty();
    for feed in &config.feeds {
        let n = intel.load_file(&feed.path, &feed.category)?;
        tracing::info!(feed = %feed.path.display(), category = %feed.category, entries = n, "threat-intel feed loaded");
    }
    Ok(intel)
}

/// Reads and checks the new configuration against the running one. Keys
/// that only take effect at startup keep their running value (logged).
pub fn prepare(
    args: &RunArgs,
    current: &VigilConfig,
    runtime: &Runtime,
) -> Result<Candidate, ReloadError> {
    let mut config = super::load_config(args).map_err(|e| ReloadError::Config(e.into()))?;
    keep_startup_only(current, &mut config);
    let intel = load_intel(&config.intel).map_err(ReloadError::Intel)?;
    let ctx = RunContext {
        clock: Clock::Wall,
        intel: Arc::new(RwLock::new(Arc::new(ThreatIntel::empty()))),
        state_dir: None,
    };
    let selection = config.plugins.selection();
    let unknown = plugin_set::unknown_names(&selection);
    if !unknown.is_empty() {
        return Err(ReloadError::Unknown(unknown));
    }
    let (runners, errors) = plugin_set::load(runtime, &selection, &ctx);
    if !errors.is_empty() {
        return Err(ReloadError::Plugins(errors));
    }
    if runners.is_empty() {
        return Err(ReloadError::NoPlugin);
    }
    Ok(Candidate { config, intel })
}

/// Startup-only keys: the running value wins, with a warning.
fn keep_startup_only(current: &VigilConfig, new: &mut VigilConfig) {
    macro_rules! keep {
        ($($field:ident).+, $name:literal) => {
            if new.$($field).+ != current.$($field).+ {
                tracing::warn!(key = $name, "reload: this key takes effect at the next restart; the running value is kept");
                new.$($field).+ = current.$($field).+.clone();
            }
        };
    }
    keep!(node, "node");
    keep!(data_dir, "data_dir");
    keep!(log, "log");
    keep!(admin, "admin");
    keep!(plugins.cache, "plugins.cache");
    keep!(plugins.cache_dir, "plugins.cache_dir");
}

/// A plugin or a plugin's signature (`x.wasm.minisig`): a signature
/// written after its plugin, or replaced, is a change to reload too.
fn is_plugin_file(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "wasm" || x == "minisig")
}

/// What was on disk at the last (re)load: a file event that changes
/// neither the config text nor the plugin files is not a reload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint {
    config: Option<Vec<u8>>,
    plugins: Vec<(PathBuf, u64, Option<SystemTime>)>,
    /// The trusted key files' contents: a key replaced or removed (revoked)
    /// re-checks every signed plugin.
    keys: Vec<(PathBuf, Option<Vec<u8>>)>,
}

/// The trusted keys given as `.pub` files (the others are inline keys).
pub fn key_files(trusted_keys: &[String]) -> Vec<PathBuf> {
    trusted_keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.starts_with("RW"))
        .map(PathBuf::from)
        .collect()
}

impl Fingerprint {
    pub fn take(config: Option<&Path>, plugin_dir: Option<&Path>, key_files: &[PathBuf]) -> Self {
        let keys = key_files
            .iter()
            // A key file is small (checked when it is parsed); a huge or
            // unreadable one just reads as changed.
            .map(|p| (p.clone(), std::fs::read(p).ok()))
            .collect();
        let config = config.and_then(|p| std::fs::read(p).ok());
        let mut plugins: Vec<_> = plugin_dir
            .and_then(|d| std::fs::read_dir(d).ok())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| is_plugin_file(&e.path()))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((e.path(), m.len(), m.modified().ok()))
            })
            .collect();
        plugins.sort();
        Self {
            config,
            plugins,
            keys,
        }
    }
}

/// Watches the config file's directory, the plugin directory and the
/// directories of the trusted key files; each relevant change sends `()`
/// (coalesced) on the channel.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
}

impl FileWatch {
    /// Starts watching. `None` when neither path is given.
    pub fn start(
        config: Option<&Path>,
        plugin_dir: Option<&Path>,
        key_files: &[PathBuf],
        tx: mpsc::Sender<()>,
    ) -> notify::Result<Option<Self>> {
        if config.is_none() && plugin_dir.is_none() && key_files.is_empty() {
            return Ok(None);
        }
        let keys: Vec<PathBuf> = key_files.to_vec();
        let key_dirs: Vec<PathBuf> = {
            let mut dirs: Vec<PathBuf> = keys
                .iter()
                .filter_map(|k| k.parent().map(Path::to_owned))
                .collect();
            dirs.sort();
            dirs.dedup();
            dirs
        };
        let watched_key_dirs = key_dirs.clone();
        let config_name = config.and_then(|p| p.file_name()).map(|n| n.to_owned());
        let config_dir = config.map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        });
        let plugin_dir_owned = plugin_dir.map(Path::to_owned);
        let cdir = config_dir.clone();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let Ok(event) = res else {
                    // Overflow or a watch error: reload to be safe.
                    let _ = tx.try_send(());
                    return;
                };
                if matches!(event.kind, notify::EventKind::Access(_)) {
                    return;
                }
                let relevant = event.paths.iter().any(|p| {
                    let name = p.file_name();
                    let in_config_dir = cdir.as_deref().is_some_and(|d| p.parent() == Some(d));
                    // A Kubernetes ConfigMap volume swaps a `..data` symlink.
                    let config_hit = in_config_dir
                        && (name == config_name.as_deref()
                            || name.is_some_and(|n| n.to_string_lossy().starts_with("..data")));
                    let plugin_hit = plugin_dir_owned
                        .as_deref()
                        .is_some_and(|d| p.parent() == Some(d))
                        && is_plugin_file(p);
                    // A key file, or a Secret volume's `..data` swap in
                    // its directory.
                    let key_hit = keys.iter().any(|k| k == p)
                        || (name.is_some_and(|n| n.to_string_lossy().starts_with("..data"))
                            && watched_key_dirs.iter().any(|d| p.parent() == Some(d)));
                    config_hit || plugin_hit || key_hit
                });
                if relevant {
                    // Full: a reload is already pending, which will see this change too.
                    let _ = tx.try_send(());
                }
            })?;
        if let Some(d) = &config_dir {
            watcher.watch(d, RecursiveMode::NonRecursive)?;
        }
        if let Some(d) = plugin_dir {
            watcher.watch(d, RecursiveMode::NonRecursive)?;
        }
        for d in &key_dirs {
            if config_dir.as_ref() != Some(d) && plugin_dir != Some(d.as_path()) {
                watcher.watch(d, RecursiveMode::NonRecursive)?;
            }
        }
        Ok(Some(Self { _watcher: watcher }))
    }
}
