//! The harness of Vigil's integration tests (`host/tests/`): one way to run
//! the `vigil` binary and wait on what it says, instead of a copy per test
//! file.
//!
//! - [`VigilProcess`]: a running `vigil run` (or any subcommand) whose stdout
//!   and stderr are read on background threads; wait for a log line, a
//!   finding or any condition with a timeout, and get a panic message with
//!   everything the process said when the wait fails or the process dies
//!   first; graceful stop (SIGTERM, then wait) and SIGKILL when dropped.
//! - [`TempDir`], [`unique`], [`net::free_port`]: scratch space and ports.
//! - [`docker`]: the daemon check, the local test image, labelled
//!   containers removed at the end; images built here (the project's own,
//!   `FROM scratch` ones of a host binary), networks and volumes.
//! - [`fixtures`]: the recorded Falco audit events, the TLS test
//!   certificate, kubeconfigs for loopback API servers, the hostile plugins
//!   built from `tests/plugins/`.
//! - [`k8s_api`]: a fake Kubernetes API server on loopback (list, watch,
//!   pods, NetworkPolicies), recording every request.
//! - [`nats`]: a real `nats-server` (JetStream) on loopback.
//! - [`output`]: findings on stdout and JSON-lines files (`--emit-events`).
//! - `corpus` (feature `corpus`): every container-escape rule's events, and
//!   their copy into the plugin SDK's types.
//!
//! Where the binary is comes from the test: `CARGO_BIN_EXE_vigil` exists only
//! when Cargo compiles the `vigil` package's own integration tests, so
//! `host/tests/common/mod.rs` passes it to [`vigil_command`]:
//!
//! ```no_run
//! use std::time::Duration;
//! use vigil_test_support::{TempDir, VigilProcess, vigil_command};
//!
//! let data = TempDir::new("example");
//! let vigil = VigilProcess::spawn(
//!     vigil_command("target/release/vigil")
//!         .arg("run")
//!         .arg("--data-dir")
//!         .arg(data.path()),
//! );
//! vigil.wait_for_stderr("vigil running", Duration::from_secs(30));
//! let finding = vigil.wait_for_rule("container-escape/host-network", Duration::from_secs(20));
//! assert_eq!(finding["plugin"], "container-escape");
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "corpus")]
pub mod corpus;
pub mod docker;
pub mod fixtures;
pub mod fuzz;
pub mod k8s_api;
pub mod nats;
pub mod net;
pub mod output;
mod process;
mod temp;
#[cfg(feature = "corpus")]
pub mod to_sdk;
mod wait;

pub use process::{STOP_TIMEOUT, Signal, VigilProcess, vigil_command, without_kubernetes};
pub use temp::{TempDir, unique};
pub use wait::{POLL, wait_for, wait_until};
