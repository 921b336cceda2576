//! Vigil: a WebAssembly-pluggable detection host for container-based
//! evasion. The binary is `vigil`; this crate is its top: the command line,
//! the commands, the configuration aggregate and its flag overrides, the
//! admin endpoint and `vigil run`'s wiring of sources, plugins, delivery
//! and response. Everything below lives in the `vigil-*` crates of
//! `host/crates/` (see the README's *Architecture*).

pub mod admin;
pub mod cli;
pub mod commands;
pub mod config;
pub mod fleet;
pub mod replay;
pub mod run;
pub mod timeline;

pub use vigil_core::{WIT_PACKAGE, WIT_TYPES_INTERFACE};
