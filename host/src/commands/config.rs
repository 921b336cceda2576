//! `vigil config check FILE`: every problem of a config file with its path
//! (exit 1), or a summary of what `vigil run --config FILE` would run
//! (exit 0). Plugins are loaded with their settings, so each plugin's own
//! `configure` checks run too (state in memory: nothing is written).

use std::io::Write;
use std::process::ExitCode;

use crate::cli::ConfigCheckArgs;
use crate::config::{self, Problem, VigilConfig};

/// Runs the check; problems go to stdout, one per line.
pub fn check(args: ConfigCheckArgs) -> anyhow::Result<ExitCode> {
    let mut problems: Vec<Problem> = Vec::new();
    let config = match config::load_file(&args.file) {
        Ok(mut c) => {
            let data_dir = c.data_dir.clone();
            c.sources.resolve(&data_dir);
            if let Err(e) = c.check() {
                problems.extend(e.0);
            }
            Some(c)
        }
        Err(e @ config::ConfigFileError::Read { .. }) => return Err(e.into()),
        Err(e) => {
            problems.extend(e.problems().unwrap_or_default().iter().cloned());
            None
        }
    };
    let mut plugins = Vec::new();
    if let Some(c) = &config
        && !args.no_plugins
        && problems.is_empty()
    {
        match config::check_plugins(&c.plugins) {
            Ok(names) => plugins = names,
            Err(p) => problems.extend(p),
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if !problems.is_empty() {
        writeln!(
            out,
            "{}: {} problem(s)",
            args.file.display(),
            problems.len()
        )?;
        for p in &problems {
            writeln!(out, "  {p}")?;
        }
        return Ok(ExitCode::from(1));
    }
    if let Some(c) = &config {
        summary(&mut out, &args, c, &plugins)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(
    out: &mut impl Write,
    args: &ConfigCheckArgs,
    c: &VigilConfig,
    plugins: &[String],
) -> std::io::Result<()> {
    writeln!(out, "{}: valid", args.file.display())?;
    writeln!(out, "  node: {}", c.node_name())?;
    writeln!(out, "  data_dir: {}", c.data_dir.display())?;
    writeln!(
        out,
        "  admin: {}",
        if c.admin.enabled {
            c.admin.listen.as_str()
        } else {
            "off"
        }
    )?;
    let sources: Vec<String> = c
        .sources
        .states()
        .iter()
        .map(|(key, state)| format!("{key} {state}"))
        .collect();
    writeln!(out, "  sources: {}", sources.join(", "))?;
    // Protections turned off on purpose: valid, but never silent.
    for w in c.sources.warnings() {
        writeln!(out, "  warning: {w}")?;
    }
    if args.no_plugins {
        writeln!(out, "  plugins: not checked (--no-plugins)")?;
    } else {
        writeln!(out, "  plugins: {}", plugins.join(", "))?;
    }
    let signatures = c.plugins.signature_policy();
    if signatures.is_active() {
        let ids: Vec<String> = signatures
            .trusted_keys
            .iter()
            .map(|k| k.id().to_string())
            .collect();
        writeln!(
            out,
            "  plugin signatures: {} (trusted key IDs: {})",
            if signatures.require {
                "required"
            } else {
                "checked when present"
            },
            ids.join(", ")
        )?;
    }
    writeln!(out, "  intel feeds: {}", c.intel.feeds.len())?;
    let rules: Vec<&str> = c.response.rules.iter().map(|r| r.rule.as_str()).collect();
    if rules.is_empty() {
        writeln!(out, "  response: {}", c.response.mode.as_str())
    } else {
        writeln!(
            out,
            "  response: {} (rules: {})",
            c.response.mode.as_str(),
            rules.join(", ")
        )
    }
}
