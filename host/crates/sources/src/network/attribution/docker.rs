//! Docker's `<data root>/containers/<id>/config.v2.json`, written by the
//! daemon for every container it knows.

use std::collections::HashMap;

use serde::Deserialize;
use vigil_core::model::ContainerRef;

use super::Identity;

/// The part of `config.v2.json` read here.
#[derive(Deserialize)]
struct ConfigV2 {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config", default)]
    config: ConfigV2Inner,
}

#[derive(Deserialize, Default)]
struct ConfigV2Inner {
    #[serde(rename = "Image", default)]
    image: String,
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
    /// Whether the container was created with a terminal (`docker run -t`).
    #[serde(rename = "Tty", default)]
    tty: Option<bool>,
}

/// Container `id` as its `config.v2.json` describes it.
pub fn identity(id: &str, bytes: &[u8]) -> Result<Identity, serde_json::Error> {
    let config: ConfigV2 = serde_json::from_slice(bytes)?;
    let labels = config.config.labels.unwrap_or_default();
    Ok(Identity {
        container: ContainerRef {
            id: id.to_owned(),
            name: config.name.trim_start_matches('/').to_owned(),
            image: config.config.image,
            pod: super::pod(&labels),
        },
        tty: config.config.tty,
    })
}
