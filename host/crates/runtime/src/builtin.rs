//! The detector plugins embedded in the `vigil` binary (built from
//! `plugins/` by `host/crates/runtime/build.rs`).

use std::sync::Arc;

use crate::{Identity, PluginLimits, PluginOrigin, PluginSpec};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// Names of the built-in plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    generated::BUILTIN.iter().map(|(n, _)| *n)
}

/// The component bytes of a built-in plugin.
pub fn bytes(name: &str) -> Option<&'static [u8]> {
    generated::BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
}

/// Load specs for every built-in plugin, with default settings and limits.
pub fn specs() -> Vec<PluginSpec> {
    generated::BUILTIN
        .iter()
        .map(|(name, bytes)| PluginSpec {
            origin: PluginOrigin::Builtin(name),
            identity: Identity::Named((*name).to_owned()),
            bytes: Arc::from(*bytes),
            settings: "{}".into(),
            limits: PluginLimits::default(),
            policy: Default::default(),
        })
        .collect()
}
