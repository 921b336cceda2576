//! The `vigil` binary: parses the command line, sets up logging, runs the
//! command. Errors end here, printed with their causes.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use vigil::cli::{Cli, Command, LogFormat};

/// jemalloc rather than glibc's allocator: a replay allocates and frees
/// millions of short strings across threads, where glibc's free lists
/// fragment (BENCHMARKS.md, the replay section's "Session 11" measurements).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `vigil run` reads its config first: `[log]` decides how to log.
    let (level, format, run) = match cli.command {
        Command::Run(args) => match vigil::run::load_config(&args) {
            Ok(config) => (
                config.log.level.clone(),
                config.log.format,
                Some((args, config)),
            ),
            Err(e) => {
                eprintln!("vigil: {e:#}");
                return ExitCode::from(1);
            }
        },
        Command::Fleet(args) => match vigil::fleet::load_config(&args) {
            Ok(config) => {
                init_logs(
                    &cli.log,
                    &config.log.level,
                    cli.log_format.unwrap_or(config.log.format),
                );
                purge_at_rest();
                return finish(vigil::fleet::run(config));
            }
            Err(e) => {
                eprintln!("vigil: {e:#}");
                return ExitCode::from(1);
            }
        },
        other => {
            init_logs(&cli.log, "warn", cli.log_format.unwrap_or_default());
            return finish(vigil::commands::dispatch(other));
        }
    };
    init_logs(&cli.log, &level, cli.log_format.unwrap_or(format));
    match run {
        Some((args, config)) => {
            purge_at_rest();
            finish(vigil::run::run(args, config))
        }
        None => ExitCode::SUCCESS,
    }
}

/// Has jemalloc return freed memory to the system from a background thread
/// (one), on its usual 10 s decay, for the commands that run for long.
/// Without it, jemalloc purges only when the process allocates again: the
/// ~10 MiB that compiling the plugins frees at start-up would stay resident
/// in an agent at rest (BENCHMARKS.md, "`vigil run` idle"). Not for `replay`
/// and the other short commands, which allocate all the time anyway.
fn purge_at_rest() {
    let enabled = tikv_jemalloc_ctl::max_background_threads::write(1)
        .and_then(|()| tikv_jemalloc_ctl::background_thread::write(true));
    if let Err(e) = enabled {
        tracing::warn!(
            "the allocator cannot purge in the background ({e}): memory freed at start-up stays resident until the next allocations"
        );
    }
}

fn init_logs(flag: &Option<String>, default: &str, format: LogFormat) {
    let filter = flag
        .clone()
        .or_else(|| std::env::var("VIGIL_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::from(1)
        }
    }
}
