//! Vigil: a WebAssembly-pluggable detection host for container-based
//! evasion. The binary is `vigil`; this library holds everything it is made
//! of, so integration tests and benchmarks drive the same code.

pub mod admin;
pub mod builtin;
pub mod cli;
pub mod collectors;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod dispatch;
pub mod finding_record;
pub mod intel;
pub mod internal_events;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod outputs;
pub mod plugin_set;
pub mod replay;
pub mod response;
pub mod run;
pub mod runtime;
pub mod state;
pub mod workers;

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "vigil:detector@0.1.1";

/// The instance name of the WIT `types` interface.
pub const WIT_TYPES_INTERFACE: &str = "vigil:detector/types@0.1.1";
