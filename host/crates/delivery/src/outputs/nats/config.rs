//! `[[outputs.nats]]`: the settings of a NATS JetStream output and their
//! checks (URL, literal subject, credentials, files, bounds). Which
//! settings make TLS mandatory is decided here too, so `vigil config
//! check` and the connecting output agree.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outputs::{Format, Output, OutputConfig, OutputSpec, Retry, validate_batch};
use vigil_core::model::Severity;
use vigil_core::validate::{Problems, Validate, join};

/// `[[outputs.nats]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Name in metrics and the spool (default: `nats:SUBJECT`).
    #[serde(default)]
    pub name: Option<String>,
    /// `nats://HOST:PORT` (TLS when the server requires it, or when credentials
    /// are set) or `tls://HOST:PORT` (TLS always).
    pub url: String,
    /// Subject the findings are published on (bound to a JetStream stream).
    pub subject: String,
    /// Lowest severity published.
    #[serde(default = "min_info")]
    pub min_severity: Severity,
    /// `vigil` (default), `ocsf` or `falco`.
    #[serde(default)]
    pub format: Format,
    /// Also publish findings of plugins in monitor mode (default: no).
    #[serde(default)]
    pub monitor: bool,
    /// Findings published before waiting for their acks.
    #[serde(default = "default_batch")]
    pub batch_max: usize,
    /// Expected stream name (`Nats-Expected-Stream`): JetStream refuses a publish that would land elsewhere.
    #[serde(default)]
    pub stream: Option<String>,
    /// User name (with `password_file`).
    #[serde(default)]
    pub user: Option<String>,
    /// File holding the password of `user` (re-read at each new connection).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// File holding an authentication token (re-read at each new connection).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Send `user`/`password_file` or `token_file` credentials over a connection
    /// without TLS (default: no). Left false, credentials make TLS mandatory:
    /// against a server that does not serve TLS the handshake fails before the
    /// credentials are written, and the delivery fails with an error naming TLS.
    /// `vigil config check` cannot tell in advance (a `nats://` server may
    /// serve TLS), so a plaintext server shows at the first delivery.
    #[serde(default)]
    pub allow_plaintext_credentials: bool,
    /// PEM CA certificates trusted besides the system's roots (TLS).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Connect deadline and batch deadline (publishes plus acks), in
    /// milliseconds. Half of it is the time a server has to send an
    /// operation whole once it has started it (a stalled one closes the
    /// connection).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest message payload (headers included) the server may send to
    /// Vigil, in bytes (1024 to 67108864; default 65536). The output only
    /// receives JetStream acks of a few hundred bytes; a `MSG` declaring
    /// more closes the connection and counts a protocol violation.
    #[serde(default = "default_max_read_payload")]
    pub max_read_payload_bytes: usize,
    /// Retry schedule after a failed delivery.
    #[serde(default)]
    pub retry: Retry,
}

fn min_info() -> Severity {
    Severity::Info
}

fn default_batch() -> usize {
    64
}

fn default_timeout_ms() -> u64 {
    5_000
}

fn default_max_read_payload() -> usize {
    64 * 1024
}

/// Bounds of `max_read_payload_bytes`: room for an ack or a JetStream
/// API answer at least, and no more than the NATS protocol's largest
/// `max_payload` (64 MiB).
pub const MAX_READ_PAYLOAD_RANGE: std::ops::RangeInclusive<usize> = 1024..=64 * 1024 * 1024;

impl NatsConfig {
    /// A config with every default.
    pub fn to(url: &str, subject: &str) -> Self {
        Self {
            name: None,
            url: url.to_owned(),
            subject: subject.to_owned(),
            min_severity: Severity::Info,
            format: Format::Vigil,
            monitor: false,
            batch_max: default_batch(),
            stream: None,
            user: None,
            password_file: None,
            token_file: None,
            allow_plaintext_credentials: false,
            ca_file: None,
            timeout_ms: default_timeout_ms(),
            max_read_payload_bytes: default_max_read_payload(),
            retry: Retry::default(),
        }
    }

    pub(super) fn has_credentials(&self) -> bool {
        self.user.is_some() || self.password_file.is_some() || self.token_file.is_some()
    }

    /// Whether TLS is demanded because of the credentials rather than the URL.
    pub(super) fn tls_for_credentials(&self) -> bool {
        self.has_credentials() && !self.allow_plaintext_credentials
    }
}

/// A server address checked by [`parse_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Url {
    /// `tls://`: TLS whatever the server offers.
    pub(super) tls: bool,
    pub(super) host: String,
    pub(super) port: u16,
}

impl Url {
    /// The address in the form the client library parses.
    pub(super) fn server(&self) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A `nats://` or `tls://` URL without credentials or path.
pub(super) fn parse_url(url: &str) -> Result<Url, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("nats://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("tls://") {
        (true, r)
    } else {
        return Err("must start with nats:// or tls://".into());
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') || rest.contains('/') {
        return Err(
            "must be nats://HOST[:PORT] (credentials go in user/password_file or token_file)"
                .into(),
        );
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') || h.starts_with('[') => {
            (h, p.parse().map_err(|_| format!("bad port {p:?}"))?)
        }
        _ => (rest, 4222),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("has no host".into());
    }
    Ok(Url {
        tls,
        host: host.to_owned(),
        port,
    })
}

pub(super) fn valid_subject(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(['*', '>', ' ', '\t', '\r', '\n'])
        && s.split('.').all(|t| !t.is_empty())
}

impl OutputConfig for NatsConfig {
    fn spec(&self) -> OutputSpec {
        OutputSpec {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| format!("nats:{}", self.subject)),
            min_severity: self.min_severity,
            monitor: self.monitor,
            batch_max: self.batch_max,
            retry_initial: Duration::from_millis(self.retry.initial_ms),
            retry_max: Duration::from_millis(self.retry.max_ms),
        }
    }

    fn build(&self, rt: &tokio::runtime::Handle) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(super::Nats::new(self, rt.clone())?))
    }
}

impl Validate for NatsConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if let Err(e) = parse_url(&self.url) {
            problems.push(join(path, "url"), e);
        }
        if !valid_subject(&self.subject) {
            problems.push(
                join(path, "subject"),
                "must be a literal subject (dot-separated tokens, no wildcards or spaces)",
            );
        }
        if self.user.is_some() != self.password_file.is_some() {
            problems.push(join(path, "user"), "user and password_file go together");
        }
        if self.token_file.is_some() && self.user.is_some() {
            problems.push(
                join(path, "token_file"),
                "use either a token or a user and password",
            );
        }
        for (key, file) in [
            ("password_file", &self.password_file),
            ("token_file", &self.token_file),
            ("ca_file", &self.ca_file),
        ] {
            if let Some(f) = file
                && !f.is_file()
            {
                problems.push(
                    join(path, key),
                    format!("{} is not a readable file", f.display()),
                );
            }
        }
        if !(100..=600_000).contains(&self.timeout_ms) {
            problems.push(join(path, "timeout_ms"), "must be between 100 and 600000");
        }
        if !MAX_READ_PAYLOAD_RANGE.contains(&self.max_read_payload_bytes) {
            problems.push(
                join(path, "max_read_payload_bytes"),
                "must be between 1024 and 67108864",
            );
        }
        validate_batch(self.batch_max, path, problems);
        self.retry.validate(&join(path, "retry"), problems);
    }
}
