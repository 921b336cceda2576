//! `[plugins]`: which detector plugins run, their limits, and each plugin's
//! settings, written as TOML tables and handed to the plugin's `configure`
//! as the equivalent JSON object.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Problem, Problems, Validate, join};
use vigil_runtime::plugin_set::{
    DEFAULT_MAX_FILE_BYTES, FileNames, PluginPolicy, PluginSelection, SelectionError,
};
use vigil_runtime::signature::{SignaturePolicy, TrustedKey};
use vigil_runtime::{EngineSettings, LoadError, PluginLimits, RunContext, Runtime};

/// `[plugins]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Load the detector plugins embedded in the binary (`--no-builtin`
    /// turns them off).
    pub builtin: bool,
    /// Also load every `*.wasm` component of this directory (sorted by
    /// name). `vigil run` watches it: adding, replacing or removing a plugin
    /// reloads the plugin set.
    pub dir: Option<PathBuf>,
    /// Keep compiled plugins in an on-disk cache so that a restart or a
    /// reload does not recompile them.
    pub cache: bool,
    /// The compile cache directory; `<data_dir>/cache` when absent. Must be
    /// owned by Vigil's user and writable by no one else (whoever writes it
    /// runs native code in Vigil).
    pub cache_dir: Option<PathBuf>,
    /// The largest plugin file read, in bytes (a larger one is refused
    /// without being read whole). The default fits a componentize-py
    /// plugin (about 17.5 MiB) with ample margin.
    pub max_file_bytes: u64,
    /// Limits of every plugin (`[plugins.limits]`).
    pub limits: PluginLimits,
    /// Settings per plugin (`[plugins.settings.<name>]`, the plugin's name
    /// for built-ins, the file stem for a plugin of `dir`): each table is
    /// passed to the plugin's `configure` as a JSON object. A plugin without
    /// a table gets `{}`. A table for a name no plugin has is an error.
    pub settings: BTreeMap<String, toml::Table>,
    /// What each plugin is granted (`[plugins.policy.<name>]`, named like
    /// `settings`): `kinds` it may receive, whether its findings may
    /// trigger a `response` (default: yes for built-ins, no for files), and
    /// a `sha256` pin of its file. A policy for a name no plugin has is an
    /// error.
    pub policy: BTreeMap<String, PluginPolicy>,
    /// Minisign public keys trusted to sign plugin files (`vigil plugin
    /// sign`, `minisign -S`): each the base64 `RW…` key or the absolute path
    /// of a minisign `.pub` file. With keys set, a plugin file that has a
    /// signature `FILE.wasm.minisig` loads only if it verifies with one of
    /// them; a plugin file without one still loads unless
    /// `require_signature`. Built-in plugins need no signature.
    pub trusted_keys: Vec<String>,
    /// Refuse every plugin file without a valid signature by one of
    /// `trusted_keys` (the other plugins still load).
    pub require_signature: bool,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            builtin: true,
            dir: None,
            cache: true,
            cache_dir: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            limits: PluginLimits::default(),
            settings: BTreeMap::new(),
            policy: BTreeMap::new(),
            trusted_keys: Vec::new(),
            require_signature: false,
        }
    }
}

impl PluginsConfig {
    /// A plugin's settings as the JSON text its `configure` gets.
    pub fn settings_json(table: &toml::Table) -> Result<String, String> {
        if let Some(at) = find_datetime(&toml::Value::Table(table.clone()), "") {
            return Err(format!(
                "{at}: dates and times have no JSON equivalent; quote them"
            ));
        }
        serde_json::to_string(table).map_err(|e| e.to_string())
    }

    /// What to load.
    pub fn selection(&self) -> PluginSelection {
        let settings: HashMap<String, String> = self
            .settings
            .iter()
            .filter_map(|(name, t)| Some((name.clone(), Self::settings_json(t).ok()?)))
            .collect();
        PluginSelection {
            builtin: self.builtin,
            dir: self.dir.clone(),
            files: Vec::new(),
            settings,
            policies: self
                .policy
                .iter()
                .map(|(name, p)| (name.clone(), p.clone()))
                .collect(),
            limits: self.limits.clone(),
            max_file_bytes: self.max_file_bytes,
            file_names: FileNames::Stem,
            signatures: self.signature_policy(),
            builtin_only: None,
        }
    }

    /// The signatures demanded of plugin files. A key that does not load
    /// here was refused by `validate` already (a file changed since is
    /// logged): it is left out, which only ever refuses more.
    pub fn signature_policy(&self) -> SignaturePolicy {
        let trusted_keys = self
            .trusted_keys
            .iter()
            .filter_map(|spec| {
                TrustedKey::parse(spec)
                    .inspect_err(|e| tracing::error!(error = %vigil_core::error::chain(e), "plugins.trusted_keys: key left out"))
                    .ok()
            })
            .collect();
        SignaturePolicy {
            trusted_keys,
            require: self.require_signature,
        }
    }

    /// The compile cache directory, if the cache is on.
    pub fn cache_dir(&self, data_dir: &Path) -> Option<PathBuf> {
        self.cache.then(|| {
            self.cache_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("cache"))
        })
    }
}

/// The dotted path of the first date or time in a value.
fn find_datetime(v: &toml::Value, at: &str) -> Option<String> {
    match v {
        toml::Value::Datetime(_) => Some(at.to_owned()),
        toml::Value::Table(t) => t.iter().find_map(|(k, v)| find_datetime(v, &join(at, k))),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_datetime(v, &format!("{at}[{i}]"))),
        _ => None,
    }
}

impl Validate for PluginsConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        for p in self.limits.validate(&join(path, "limits")) {
            // `PluginLimits::validate` says `path.field: message`.
            match p.split_once(": ") {
                Some((at, message)) => problems.push(at, message),
                None => problems.push(join(path, "limits"), p),
            }
        }
        if let Some(dir) = &self.dir {
            if !dir.is_absolute() {
                problems.push(join(path, "dir"), "must be an absolute path");
            } else if !dir.is_dir() {
                problems.push(
                    join(path, "dir"),
                    format!("{} is not a directory", dir.display()),
                );
            }
        }
        if let Some(dir) = &self.cache_dir
            && !dir.is_absolute()
        {
            problems.push(join(path, "cache_dir"), "must be an absolute path");
        }
        if self.max_file_bytes == 0 {
            problems.push(join(path, "max_file_bytes"), "must be at least 1");
        }
        for (name, table) in &self.settings {
            if let Err(e) = Self::settings_json(table) {
                problems.push(join(path, &format!("settings.{name}")), e);
            }
        }
        for (name, policy) in &self.policy {
            for (field, message) in policy.problems() {
                problems.push(join(path, &format!("policy.{name}.{field}")), message);
            }
        }
        for (i, spec) in self.trusted_keys.iter().enumerate() {
            let at = format!("{}[{i}]", join(path, "trusted_keys"));
            let spec = spec.trim();
            if !spec.starts_with("RW") && !Path::new(spec).is_absolute() {
                problems.push(
                    at,
                    "must be a minisign public key (RW…) or the absolute path of a minisign .pub file",
                );
            } else if let Err(e) = TrustedKey::parse(spec) {
                problems.push(at, vigil_core::error::chain(&e));
            }
        }
        if self.require_signature && self.trusted_keys.is_empty() {
            problems.push(
                join(path, "require_signature"),
                "needs at least one key in plugins.trusted_keys",
            );
        }
    }
}

/// Loads every selected plugin with its settings (state in memory, nothing
/// persisted) and returns the problems: settings a plugin's `configure`
/// refused (each at `plugins.settings.<name>.<path>`), plugins that do not
/// load, and settings for a plugin that is not loaded.
pub fn check_plugins(config: &PluginsConfig) -> Result<Vec<String>, Vec<Problem>> {
    let mut problems = Problems::default();
    let runtime = match Runtime::new(&EngineSettings::default(), None) {
        Ok(r) => r,
        Err(e) => {
            problems.push("plugins", e.to_string());
            return Err(problems.list().to_vec());
        }
    };
    let ctx = RunContext {
        clock: vigil_runtime::Clock::Wall,
        intel: std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(
            vigil_runtime::intel::ThreatIntel::empty(),
        ))),
        state_dir: None,
    };
    let sel = config.selection();
    let (specs, errors) = vigil_runtime::plugin_set::specs(&sel);
    for e in errors {
        match &e {
            LoadError::Selection(SelectionError::Unknown { table, name, known }) => problems.push(
                format!("plugins.{table}.{name}"),
                format!("no such plugin (plugins: {known})"),
            ),
            LoadError::Selection(SelectionError::Digest { name, .. }) => problems.push(
                format!("plugins.policy.{name}.sha256"),
                vigil_core::error::chain(&e),
            ),
            _ => problems.push("plugins.dir", vigil_core::error::chain(&e)),
        }
    }
    let mut loaded = Vec::new();
    for spec in specs {
        let key = settings_key(&spec.origin);
        match runtime.load(spec, &ctx) {
            Ok(r) => loaded.push(r.name().to_owned()),
            Err(LoadError::Settings { error, .. }) => {
                let at = format!("plugins.settings.{key}");
                for p in error.problems {
                    let at = if p.path.is_empty() {
                        at.clone()
                    } else {
                        join(&at, &p.path)
                    };
                    problems.push(at, p.message);
                }
            }
            Err(e) => problems.push(format!("plugins.{key}"), vigil_core::error::chain(&e)),
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems.list().to_vec())
    }
}

/// The `[plugins.settings.<key>]` a plugin reads: its built-in name or file stem.
fn settings_key(origin: &vigil_runtime::PluginOrigin) -> String {
    match origin {
        vigil_runtime::PluginOrigin::Builtin(n) => (*n).to_owned(),
        vigil_runtime::PluginOrigin::File(p) => p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}
