//! `[admin]`: the admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
//! Loopback by default: the metrics name containers and plugins, which is
//! reconnaissance for whoever else can reach the port.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{Problems, Validate, join};

/// Default address of the admin endpoint (9464: the Prometheus exporter port
/// conventionally used by OpenTelemetry collectors and agents).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Serve the admin endpoint (`--no-admin` turns it off).
    pub enabled: bool,
    /// IP:port to listen on (`--admin-listen`). Off loopback, anyone who can
    /// reach it reads the metrics: bind to a pod IP only behind a
    /// NetworkPolicy.
    pub listen: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_ADMIN_LISTEN.into(),
        }
    }
}

impl AdminConfig {
    /// The address, when valid.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

impl Validate for AdminConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.enabled && self.addr().is_none() {
            problems.push(
                join(path, "listen"),
                format!("{:?} is not an IP:port address", self.listen),
            );
        }
    }
}
