//! The one thing the harness (`vigil-test-support`) cannot know: where Cargo
//! built the `vigil` binary under test (`CARGO_BIN_EXE_vigil` exists only
//! in this package's integration tests).

use std::process::Command;

/// The `vigil` binary under test, with no `VIGIL_LOG`/`RUST_LOG` of the
/// shell; run it with `.output()`, or start it with `VigilProcess::spawn`.
pub fn vigil() -> Command {
    vigil_test_support::vigil_command(env!("CARGO_BIN_EXE_vigil"))
}
