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

/// Default deadline of a whole request: the API server sends a batch of a
/// few MiB at most in well under a second on a cluster network.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 10;

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
    /// Required, on loopback too: without it any local user or
    /// host-network pod that reaches the port can inject audit events, and
    /// with them forged pod findings and quarantines.
    pub token_file: Option<PathBuf>,
    /// Accept requests without a bearer token (default: no). Only when no
    /// `token_file` is set; logged as a warning at every start and shown by
    /// `vigil config check`.
    pub allow_unauthenticated: bool,
    /// Serve plain HTTP on a non-loopback address (default: no). Left false,
    /// `tls_cert` and `tls_key` are required there: the token and the audit
    /// events would otherwise cross the network in clear text. Warned like
    /// `allow_unauthenticated`. Loopback needs no TLS.
    pub allow_plaintext: bool,
    /// Largest accepted request body, in bytes; a larger one gets 413
    /// before it is read in full (a client must not make Vigil buffer
    /// without bound).
    pub max_body_bytes: u64,
    /// Connections served at once; further ones wait in the kernel's
    /// backlog. The API server uses one or a few.
    pub max_connections: usize,
    /// Seconds a client may take to send its request headers (slow-loris
    /// protection); also how long an idle keep-alive connection is kept.
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a whole request, headers and
    /// body, from its first byte. A client still sending at the deadline
    /// gets 408 and its connection is closed (counted in
    /// `vigil_source_timeouts_total`, logged), so slow clients cannot hold
    /// the `max_connections` slots.
    pub request_timeout_secs: u64,
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
            allow_unauthenticated: false,
            allow_plaintext: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: 64,
            header_timeout_secs: 10,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No authentication: `allow_unauthenticated = true`, no token file.
    Unauthenticated,
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
    /// Time allowed for request headers (positive, at most `request_timeout`).
    pub header_timeout: Duration,
    /// Time allowed for a whole request from its first byte (positive).
    pub request_timeout: Duration,
    /// The waivers in effect (`allow_unauthenticated`, `allow_plaintext`),
    /// each with why it matters: warned at every start.
    pub waivers: Vec<Waiver>,
}

/// A protection the operator turned off on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiver {
    /// `allow_unauthenticated = true` and no token.
    Unauthenticated,
    /// `allow_plaintext = true` on a non-loopback address without TLS.
    Plaintext,
}

impl Waiver {
    /// The config key that waives it.
    pub fn key(self) -> &'static str {
        match self {
            Self::Unauthenticated => "allow_unauthenticated",
            Self::Plaintext => "allow_plaintext",
        }
    }

    /// What an operator must know about it.
    pub fn risk(self) -> &'static str {
        match self {
            Self::Unauthenticated => {
                "requests are accepted without a bearer token: any client that reaches the port can inject audit events (forged pod findings, quarantines)"
            }
            Self::Plaintext => {
                "plain HTTP on a non-loopback address: audit events (and the token, if any) cross the network in clear text"
            }
        }
    }
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
                Auth::Unauthenticated
            }
            Some(p) => Auth::BearerTokenFile(p.clone()),
            None => {
                if !self.allow_unauthenticated {
                    bad(
                        "token_file",
                        "required (on loopback too): without a bearer token any local user or pod that reaches the port can inject audit events; set allow_unauthenticated = true to accept unauthenticated requests anyway".into(),
                    );
                }
                Auth::Unauthenticated
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
        if self.request_timeout_secs == 0 {
            bad("request_timeout_secs", "must be positive".into());
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
        let off_loopback = listen.is_some_and(|a| !a.ip().is_loopback());
        if off_loopback
            && transport == Transport::Plain
            && self.tls_cert.is_none()
            && self.tls_key.is_none()
            && !self.allow_plaintext
        {
            bad(
                "tls_cert",
                "required (with tls_key) when listening on a non-loopback address: audit events and the token would cross the network in clear text; set allow_plaintext = true to serve plain HTTP anyway".into(),
            );
        }
        let mut waivers = Vec::new();
        if auth == Auth::Unauthenticated {
            waivers.push(Waiver::Unauthenticated);
        }
        if off_loopback && transport == Transport::Plain {
            waivers.push(Waiver::Plaintext);
        }
        match listen {
            Some(listen) if problems.len() == before => Some(WebhookSettings {
                listen,
                auth,
                transport,
                max_body_bytes: self.max_body_bytes,
                max_connections: self.max_connections,
                header_timeout: Duration::from_secs(
                    self.header_timeout_secs.min(self.request_timeout_secs),
                ),
                request_timeout: Duration::from_secs(self.request_timeout_secs),
                waivers,
            }),
            _ => None,
        }
    }
}
