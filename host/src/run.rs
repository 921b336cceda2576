//! `vigil run`: the host on this machine's live sources.

use std::process::ExitCode;

use crate::cli::RunArgs;

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("vigil run: not wired yet")
}
