#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

// The generated glue names this crate by its own name (`vigil_plugin_sdk::…`)
// so that the `export!` macro expands correctly inside plugin crates; this line
// makes that path resolve inside the SDK too.
extern crate self as vigil_plugin_sdk;

// Public only so that `export_detector!` can reach it from plugin crates.
#[doc(hidden)]
pub mod arena;
#[doc(hidden)]
pub mod bindings;
mod detector;
mod finding;
pub mod host;
mod info;
mod mem;
pub mod packed;
pub mod settings;
mod subscription;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod types;
pub mod util;
pub mod view;

pub use detector::Detector;
pub use finding::FindingBuilder;
pub use info::PluginInfoBuilder;
pub use types::*;

/// Everything a plugin usually needs, for `use vigil_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::export_detector;
    pub use crate::types::*;
    pub use crate::view::{EventBodyView, EventView, views_of};
    pub use crate::{Detector, FindingBuilder, PluginInfoBuilder};
}

/// Implementation details of [`export_detector!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::detector::Singleton;
    pub use wit_bindgen;
}
