//! [`PluginInfoBuilder`]: what a plugin says about itself.

use crate::types::{EventKind, PluginInfo, SettingInfo};

impl PluginInfo {
    /// Starts the description of a plugin. Pass
    /// `env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")` to keep them in
    /// step with the crate.
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> PluginInfoBuilder {
        PluginInfoBuilder {
            info: PluginInfo {
                name: name.into(),
                version: version.into(),
                description: String::new(),
                subscribes: Vec::new(),
                settings: Vec::new(),
            },
        }
    }
}

/// Builds a [`PluginInfo`]; start with [`PluginInfo::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PluginInfoBuilder {
    info: PluginInfo,
}

impl PluginInfoBuilder {
    /// What the plugin detects, in a sentence or two.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.info.description = description.into();
        self
    }

    /// Subscribes to an event kind; the plugin receives no other kinds.
    pub fn subscribe(mut self, kind: EventKind) -> Self {
        if !self.info.subscribes.contains(&kind) {
            self.info.subscribes.push(kind);
        }
        self
    }

    /// Documents one setting: its key, its type in words, its default as JSON
    /// text, and what it does.
    pub fn setting(
        mut self,
        name: impl Into<String>,
        kind: impl Into<String>,
        default_value: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.info.settings.push(SettingInfo {
            name: name.into(),
            kind: kind.into(),
            default_value: default_value.into(),
            description: description.into(),
        });
        self
    }

    /// The description.
    #[must_use]
    pub fn build(self) -> PluginInfo {
        self.info
    }
}
