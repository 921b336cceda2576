//! Command-line flags over the file: each `vigil run` flag sets the key it
//! names, after the file is parsed and before it is validated, so a bad
//! flag is reported like a bad key. Relative paths given on the command
//! line are made absolute against the working directory.

use std::path::{Path, PathBuf};

use super::{FeedConfig, VigilConfig};
use crate::cli::RunArgs;
use vigil_sources::k8s_watch::Mode;

/// Why a flag could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// `--plugin-settings` is not `NAME=FILE`.
    #[error("--plugin-settings {0:?}: expected NAME=FILE")]
    SettingsSyntax(String),
    /// The settings file could not be read.
    #[error("--plugin-settings {name}: cannot read {path}")]
    SettingsRead {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The settings file is not a JSON object expressible in TOML.
    #[error("--plugin-settings {name}: {path} must hold a JSON object without nulls: {reason}")]
    SettingsJson {
        name: String,
        path: PathBuf,
        reason: String,
    },
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Applies every flag of `args` that was given.
pub fn apply(config: &mut VigilConfig, args: &RunArgs) -> Result<(), OverrideError> {
    if let Some(node) = &args.node {
        config.node = Some(node.clone());
    }
    if let Some(secs) = args.dedup_window_secs {
        config.dedup.window_secs = secs;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = absolute(dir);
    }
    if let Some(listen) = &args.admin_listen {
        config.admin.listen = listen.clone();
        config.admin.enabled = true;
    }
    if args.no_admin {
        config.admin.enabled = false;
    }
    plugins(config, &args.plugins)?;
    intel(config, args);
    sources(config, args);
    response(config, args);
    Ok(())
}

fn response(config: &mut VigilConfig, args: &RunArgs) {
    let r = &mut config.response;
    if let Some(mode) = args.response {
        r.mode = mode;
    }
    for rule in &args.response_rule {
        r.rules.push(vigil_response::policy::ResponseRule {
            rule: rule.clone(),
            min_severity: None,
            mode: None,
        });
    }
    // Checked by clap against the severity names.
    if let Some(sev) = &args.response_min_severity
        && let Ok(sev) = serde_json::from_value(serde_json::Value::String(sev.clone()))
    {
        r.min_severity = sev;
    }
    r.docker.exempt.extend(args.response_exempt.iter().cloned());
    r.docker
        .include
        .extend(args.response_include.iter().cloned());
    // One daemon: the flag names the socket of both the source and the responder.
    if let Some(socket) = &args.docker_socket {
        r.docker.socket = absolute(socket);
    }
}

fn plugins(config: &mut VigilConfig, args: &crate::cli::PluginArgs) -> Result<(), OverrideError> {
    let p = &mut config.plugins;
    if let Some(dir) = &args.plugin_dir {
        p.dir = Some(absolute(dir));
    }
    if args.no_builtin {
        p.builtin = false;
    }
    for entry in &args.plugin_settings {
        let Some((name, file)) = entry.split_once('=') else {
            return Err(OverrideError::SettingsSyntax(entry.clone()));
        };
        let path = PathBuf::from(file);
        let text =
            std::fs::read_to_string(&path).map_err(|source| OverrideError::SettingsRead {
                name: name.to_owned(),
                path: path.clone(),
                source,
            })?;
        let bad = |reason: String| OverrideError::SettingsJson {
            name: name.to_owned(),
            path: path.clone(),
            reason,
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let table: toml::Table = serde::Deserialize::deserialize(json)
            .map_err(|e: serde_json::Error| bad(e.to_string()))?;
        p.settings.insert(name.to_owned(), table);
    }
    let l = &mut p.limits;
    if let Some(ms) = args.plugin_deadline_ms {
        l.deadline_ms = ms;
    }
    if let Some(ms) = args.plugin_backoff_ms {
        l.backoff_initial_ms = ms;
    }
    if let Some(n) = args.plugin_max_findings {
        l.max_findings_per_batch = n;
    }
    if let Some(n) = args.plugin_max_finding_bytes {
        l.max_finding_bytes = n;
    }
    if let Some(n) = args.plugin_max_faults {
        l.max_consecutive_faults = n;
    }
    if let Some(mib) = args.plugin_memory_mib {
        l.memory_bytes = mib << 20;
    }
    if let Some(n) = args.plugin_max_finding_depth {
        l.max_finding_depth = n;
    }
    if let Some(n) = args.plugin_max_file_bytes {
        p.max_file_bytes = n;
    }
    for key in &args.trusted_keys {
        // A key file named on the command line is relative to the working
        // directory; a base64 key is kept as written.
        let spec = if key.trim().starts_with("RW") {
            key.clone()
        } else {
            absolute(Path::new(key)).display().to_string()
        };
        p.trusted_keys.push(spec);
    }
    if args.require_signature {
        p.require_signature = true;
    }
    if let Some(dir) = &args.cache_dir {
        p.cache_dir = Some(absolute(dir));
    }
    if args.no_cache {
        p.cache = false;
    }
    for f in &args.intel {
        config.intel.feeds.push(FeedConfig {
            path: absolute(f),
            category: "intel".into(),
        });
    }
    Ok(())
}

fn intel(config: &mut VigilConfig, args: &RunArgs) {
    if let Some(ms) = args.intel_poll_ms {
        config.intel.poll_interval_ms = ms;
    }
}

fn sources(config: &mut VigilConfig, args: &RunArgs) {
    let s = &mut config.sources;
    if let Some(socket) = &args.docker_socket {
        s.docker.socket = absolute(socket);
    }
    if args.no_docker {
        s.docker.enabled = false;
    }
    if args.no_network {
        s.network.enabled = false;
    }
    if args.no_conntrack {
        s.network.conntrack = false;
    }
    if let Some(ms) = args.network_interval_ms {
        s.network.interval_ms = ms;
    }
    if args.network_include_host {
        s.network.include_host = true;
    }
    if args.ebpf {
        s.ebpf.enabled = true;
    }
    if args.no_ebpf {
        s.ebpf.enabled = false;
    }
    if args.no_file_integrity {
        s.file_integrity.enabled = false;
    }
    if let Some(root) = &args.fim_root {
        s.file_integrity.root = absolute(root);
    }
    s.file_integrity.paths.extend(args.fim_path.iter().cloned());
    if let Some(secs) = args.fim_rehash_secs {
        s.file_integrity.rehash_interval_secs = secs;
    }
    let w = &mut s.k8s_audit_webhook;
    if let Some(listen) = &args.audit_webhook_listen {
        w.enabled = true;
        w.listen = listen.clone();
    }
    if let Some(f) = &args.audit_webhook_token_file {
        w.token_file = Some(absolute(f));
    }
    if let Some(n) = args.audit_webhook_max_body_bytes {
        w.max_body_bytes = n;
    }
    if let Some(f) = &args.audit_webhook_tls_cert {
        w.tls_cert = Some(absolute(f));
    }
    if let Some(f) = &args.audit_webhook_tls_key {
        w.tls_key = Some(absolute(f));
    }
    if let Some(path) = &args.audit_log {
        s.k8s_audit_log.enabled = true;
        s.k8s_audit_log.path = absolute(path);
    }
    if args.audit_log_from_beginning {
        s.k8s_audit_log.from_beginning = true;
    }
    if args.no_k8s_watch {
        s.k8s_watch.mode = Mode::Off;
    } else if args.k8s_watch {
        s.k8s_watch.mode = Mode::On;
    }
    if let Some(ns) = &args.k8s_namespace {
        s.k8s_watch.namespace = Some(ns.clone()).filter(|n| !n.is_empty());
    }
}
