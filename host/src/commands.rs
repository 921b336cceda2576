//! The `vigil` subcommands, from parsed arguments to an exit status.

pub mod config;
pub mod plugin;
pub mod plugin_new;
pub mod plugin_sign;
pub mod quarantine;
pub mod timeline;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{
    Command, ConfigCommand, PluginArgs, PluginCommand, QuarantineCommand, ReplayArgs, hostname,
};
use crate::replay::{ReplayOptions, replay};
use vigil_runtime::PluginLimits;
use vigil_runtime::plugin_set::{PluginSelection, default_cache_dir};
use vigil_runtime::signature::{SignaturePolicy, TrustedKey};

/// Runs a parsed command.
pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Replay(args) => replay_cmd(args),
        Command::Plugin(PluginCommand::Test(args)) => plugin::test(args),
        Command::Plugin(PluginCommand::Inspect(args)) => plugin::inspect(args),
        Command::Plugin(PluginCommand::Sign(args)) => plugin_sign::sign(&args),
        Command::Plugin(PluginCommand::Verify(args)) => plugin_sign::verify(&args),
        Command::Plugin(PluginCommand::Keygen(args)) => plugin_sign::keygen(&args),
        Command::Run(args) => {
            let config = crate::run::load_config(&args)?;
            crate::run::run(args, config)
        }
        Command::Fleet(args) => {
            let config = crate::fleet::load_config(&args)?;
            crate::fleet::run(config)
        }
        Command::Config(ConfigCommand::Check(args)) => config::check(args),
        Command::Quarantine(QuarantineCommand::List(args)) => quarantine::list(args),
        Command::Quarantine(QuarantineCommand::Release(args)) => quarantine::release(args),
        Command::Plugin(PluginCommand::New(args)) => plugin_new::new(&args),
        Command::Timeline(args) => timeline::timeline(&args),
    }
}

/// Turns plugin arguments into a validated selection.
pub fn selection(args: &PluginArgs) -> anyhow::Result<(PluginSelection, Option<PathBuf>)> {
    let mut settings = HashMap::new();
    for entry in &args.plugin_settings {
        let Some((name, file)) = entry.split_once('=') else {
            bail!("--plugin-settings {entry:?}: expected NAME=FILE")
        };
        settings.insert(name.to_owned(), read_settings(&PathBuf::from(file))?);
    }
    let mut limits = PluginLimits::default();
    if let Some(ms) = args.plugin_deadline_ms {
        limits.deadline_ms = ms;
    }
    if let Some(ms) = args.plugin_backoff_ms {
        limits.backoff_initial_ms = ms;
    }
    if let Some(n) = args.plugin_max_findings {
        limits.max_findings_per_batch = n;
    }
    if let Some(n) = args.plugin_max_finding_bytes {
        limits.max_finding_bytes = n;
    }
    if let Some(n) = args.plugin_max_faults {
        limits.max_consecutive_faults = n;
    }
    if let Some(mib) = args.plugin_memory_mib {
        limits.memory_bytes = mib << 20;
    }
    if let Some(n) = args.plugin_max_finding_depth {
        limits.max_finding_depth = n;
    }
    let problems = limits.validate("plugin limits");
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    let mut signatures = SignaturePolicy {
        trusted_keys: Vec::new(),
        require: args.require_signature,
    };
    for spec in &args.trusted_keys {
        let key = TrustedKey::parse(spec)
            .with_context(|| format!("--trusted-key {spec:?}: not a minisign public key"))?;
        signatures.trusted_keys.push(key);
    }
    if signatures.require && signatures.trusted_keys.is_empty() {
        bail!("--require-signature needs at least one --trusted-key");
    }
    let cache = if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(default_cache_dir)
    };
    Ok((
        PluginSelection {
            builtin: !args.no_builtin,
            dir: args.plugin_dir.clone(),
            settings,
            limits,
            max_file_bytes: args
                .plugin_max_file_bytes
                .unwrap_or(vigil_runtime::plugin_set::DEFAULT_MAX_FILE_BYTES),
            signatures,
            ..Default::default()
        },
        cache,
    ))
}

/// Reads a settings file and checks it holds a JSON object.
pub fn read_settings(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read settings {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("settings {} are not valid JSON", path.display()))?;
    if !value.is_object() {
        bail!("settings {} must be a JSON object", path.display());
    }
    Ok(text)
}

fn replay_cmd(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let (plugins, cache_dir) = selection(&args.plugins)?;
    let opts = ReplayOptions {
        paths: args.paths,
        format: args.format,
        plugins,
        node: args.node.unwrap_or_else(hostname),
        batch: args.batch,
        cache_dir,
        intel_files: args.plugins.intel.clone(),
        threads: args
            .threads
            .map_or_else(crate::replay::default_threads, std::num::NonZeroUsize::get),
    };
    // Not locked: the replay may run on a thread of its own, and the buffer
    // takes the lock once per 64 KiB anyway.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let stderr = std::io::stderr();
    let report = replay(&opts, &mut out, &mut |e| {
        let _ = writeln!(stderr.lock(), "vigil replay: {e}");
    })?;
    drop(out);
    if args.stats {
        eprintln!("{}", serde_json::to_string(&report)?);
    }
    Ok(ExitCode::from(report.exit_code()))
}
