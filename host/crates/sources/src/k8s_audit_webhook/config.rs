//! The audit webhook's configuration: raw (serde, every field documented)
//! and validated into [`WebhookSettings`], reporting every problem at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_core::validate::{Problems, join};

/// Default cap of a request body: the API server batches up to
/// `--audit-webhook-batch-max-size` (400 by default) events, each of which
/// can carry a full request and response object.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The `k8s-audit-webhook` source as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Run this source (off by default: it needs `listen`).
    pub enabled: bool,
    /// Address to listen on, e.g. `127.0.0.1:8444`. The API server's
    /// `--audit-webhook-config-file` kubeconfig points its `server` at it.
    pub listen: String,
    /// File holding the bearer token the API server must present
    /// (`Authorization: Bearer <token>`; the kubeconfig's `user.token`).
    /// Without it any client that reaches the port can inject audit events,
    /// so it is required unless the address is a loopback one.
    pub token_file: Option<PathBuf>,
    /// Largest accepted request body, in bytes; a larger one gets 413
    /// before it is read in full (a client must not make Vigil buffer
    /// without bound).
    pub max_body_bytes: u64,
    /// Connections served at once; further ones wait in the kernel's
    /// backlog. The API server uses one or a few.
    pub max_connections: usize,
    /// Seconds a client may take to send its request headers (slow-loris
    /// protection).
    pub header_timeout_secs: u64,
    /// PEM certificate chain served over TLS (with `tls_key`); the API
    /// server's webhook kubeconfig must trust its issuer
    /// (`certificate-authority`). Without both, plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: String::new(),
            token_file: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: 64,
            header_timeout_secs: 10,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No authentication (loopback addresses only).
    None,
    /// A bearer token read from this file when the source starts.
    BearerTokenFile(PathBuf),
}

/// How connections are carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP/1.1.
    Plain,
    /// HTTP/1.1 over TLS with this certificate chain and key (PEM files,
    /// read when the source starts).
    Tls { cert: PathBuf, key: PathBuf },
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// How requests are authenticated.
    pub auth: Auth,
    /// Plain HTTP or TLS.
    pub transport: Transport,
    /// Body cap in bytes (positive).
    pub max_body_bytes: u64,
    /// Connections served at once (positive).
    pub max_connections: usize,
    /// Time allowed for request headers (positive).
    pub header_timeout: Duration,
}

impl WebhookConfig {
    /// Checks every field (problems at `at.FIELD`) and resolves the configuration.
    pub fn check(&self, at: &str, problems: &mut Problems) -> Option<WebhookSettings> {
        let before = problems.len();
        let mut bad = |field: &str, reason: String| problems.push(join(at, field), reason);
        let listen = match self.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                bad(
                    "listen",
                    format!("{:?} is not an IP:port address", self.listen),
                );
                None
            }
        };
        let auth = match &self.token_file {
            Some(p) if p.as_os_str().is_empty() => {
                bad("token_file", "must not be empty".into());
                Auth::None
            }
            Some(p) => Auth::BearerTokenFile(p.clone()),
            None => {
                if listen.is_some_and(|a| !a.ip().is_loopback()) {
                    bad(
                        "token_file",
                        "required when listening on a non-loopback address".into(),
                    );
                }
                Auth::None
            }
        };
        if self.max_body_bytes == 0 {
            bad("max_body_bytes", "must be positive".into());
        }
        if self.max_connections == 0 {
            bad("max_connections", "must be positive".into());
        }
        if self.header_timeout_secs == 0 {
            bad("header_timeout_secs", "must be positive".into());
        }
        // Both or neither: one alone is a typo that must not fall back to
        // a cleartext listener.
        let transport = match (&self.tls_cert, &self.tls_key) {
            (None, None) => Transport::Plain,
            (Some(cert), Some(key)) => Transport::Tls {
                cert: cert.clone(),
                key: key.clone(),
            },
            (Some(_), None) => {
                bad("tls_key", "required with tls_cert".into());
                Transport::Plain
            }
            (None, Some(_)) => {
                bad("tls_cert", "required with tls_key".into());
                Transport::Plain
            }
        };
        match listen {
            Some(listen) if problems.len() == before => Some(WebhookSettings {
                listen,
                auth,
                transport,
                max_body_bytes: self.max_body_bytes,
                max_connections: self.max_connections,
                header_timeout: Duration::from_secs(self.header_timeout_secs),
            }),
            _ => None,
        }
    }
}
