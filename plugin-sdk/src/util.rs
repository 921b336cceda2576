//! Helpers that several detectors need and that have nothing to do with the
//! host interface: rule ids and the `disabled_rules` setting, list settings,
//! image references and allowlist patterns, file path patterns, a bounded
//! map, and RFC 3339 text for evidence.
//!
//! They live here, once, so that every built-in plugin (and any plugin
//! written with this SDK) reads the same settings the same way: an operator
//! who learns how `allowlist.images` or a path pattern works in one plugin
//! knows it for all of them.

pub mod cache;
pub mod image;
pub mod lists;
pub mod paths;
pub mod rules;
pub mod timefmt;
