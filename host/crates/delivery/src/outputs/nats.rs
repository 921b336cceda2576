//! NATS JetStream publish: a small client of the NATS text protocol (no
//! client library: `CONNECT`, `SUB`, `HPUB`, `MSG`/`HMSG`, `PING`/`PONG`),
//! over TCP or TLS (rustls). Each finding is published with a reply inbox;
//! JetStream answers on it with a publish ack (`{"stream":…,"seq":…}`) once
//! the message is stored, and the batch is acknowledged to the spool only
//! when every finding of it has its ack.
//!
//! Every message carries `Nats-Msg-Id: <finding id>`, so a finding
//! published again after a lost ack (timeout, reconnect, restart of Vigil)
//! is dropped by JetStream's duplicate window (2 minutes by default): within
//! that window delivery to a stream is exactly once; beyond it, at least
//! once (consumers dedup on the id).
//!
//! The stream itself is not created by Vigil: an operator provisions it
//! (e.g. `nats stream add VIGIL --subjects vigil.findings`). A publish with
//! no stream bound to the subject gets "no responders" and is retried.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{DeliveryError, Format, Output, OutputConfig, OutputSpec, Retry, validate_batch};
use vigil_core::finding_record::FindingRecord;
use vigil_core::model::Severity;
use vigil_core::validate::{Problems, Validate, join};

/// `[[outputs.nats]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Name in metrics and the spool (default: `nats:SUBJECT`).
    #[serde(default)]
    pub name: Option<String>,
    /// `nats://HOST:PORT` (TLS when the server requires it) or `tls://HOST:PORT` (TLS always).
    pub url: String,
    /// Subject the findings are published on (bound to a JetStream stream).
    pub subject: String,
    #[serde(default = "min_info")]
    pub min_severity: Severity,
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
    /// File holding the password of `user`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// File holding an authentication token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificates trusted besides the system's roots (TLS).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Connect and ack deadline, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
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
            ca_file: None,
            timeout_ms: default_timeout_ms(),
            retry: Retry::default(),
        }
    }
}

/// `(tls always, host, port)` of a `nats://` or `tls://` URL.
fn parse_url(url: &str) -> Result<(bool, String, u16), String> {
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
    Ok((tls, host.to_owned(), port))
}

fn valid_subject(s: &str) -> bool {
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
        Ok(Box::new(Nats::new(self, rt.clone())?))
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
        validate_batch(self.batch_max, path, problems);
        self.retry.validate(&join(path, "retry"), problems);
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open connection.
struct Conn {
    io: BufReader<Box<dyn Stream>>,
    inbox: String,
    max_payload: usize,
}

/// A NATS JetStream output.
pub struct Nats {
    cfg: NatsConfig,
    tls_always: bool,
    host: String,
    port: u16,
    rt: tokio::runtime::Handle,
    conn: Option<Conn>,
    next: u64,
}

fn secret(path: &Option<PathBuf>) -> Result<Option<String>, DeliveryError> {
    path.as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .map_err(|e| DeliveryError::transient(format!("cannot read {}: {e}", p.display())))
        })
        .transpose()
}

/// A unique inbox prefix for this connection.
fn inbox() -> String {
    let mut h = Sha256::new();
    h.update(vigil_core::time::wall_now().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let d = h.finalize();
    let id: String = d[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("_INBOX.vigil{id}")
}

async fn read_line(io: &mut BufReader<Box<dyn Stream>>) -> Result<String, DeliveryError> {
    let mut line = String::new();
    let n = io
        .read_line(&mut line)
        .await
        .map_err(|e| DeliveryError::transient(format!("NATS read: {e}")))?;
    if n == 0 {
        return Err(DeliveryError::transient(
            "NATS server closed the connection",
        ));
    }
    Ok(line.trim_end().to_owned())
}

/// Reads the first protocol line (`INFO {...}`) byte by byte from the raw
/// socket, before a TLS upgrade.
async fn read_info(tcp: &mut TcpStream) -> Result<Value, DeliveryError> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if line.len() > 64 * 1024 {
            return Err(DeliveryError::transient("NATS INFO line too long"));
        }
        tcp.read_exact(&mut b)
            .await
            .map_err(|e| DeliveryError::transient(format!("NATS read INFO: {e}")))?;
        line.push(b[0]);
    }
    let text = String::from_utf8_lossy(&line);
    let json = text
        .trim()
        .strip_prefix("INFO ")
        .ok_or_else(|| DeliveryError::transient(format!("not a NATS server: {text:?}")))?;
    serde_json::from_str(json).map_err(|e| DeliveryError::transient(format!("bad NATS INFO: {e}")))
}

impl Nats {
    pub fn new(cfg: &NatsConfig, rt: tokio::runtime::Handle) -> anyhow::Result<Self> {
        let (tls_always, host, port) =
            parse_url(&cfg.url).map_err(|e| anyhow::anyhow!("nats url {}: {e}", cfg.url))?;
        Ok(Self {
            cfg: cfg.clone(),
            tls_always,
            host,
            port,
            rt,
            conn: None,
            next: 0,
        })
    }

    async fn connect(&self) -> Result<Conn, DeliveryError> {
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                DeliveryError::transient(format!(
                    "cannot connect to NATS {}:{}: {e}",
                    self.host, self.port
                ))
            })?;
        let _ = tcp.set_nodelay(true);
        let info = read_info(&mut tcp).await?;
        let tls = self.tls_always || info["tls_required"].as_bool().unwrap_or(false);
        let stream: Box<dyn Stream> = if tls {
            let connector = super::webhook::tls_connector(self.cfg.ca_file.as_deref())
                .map_err(|e| DeliveryError::transient(e.to_string()))?;
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| DeliveryError::transient(format!("bad TLS server name: {e}")))?;
            Box::new(
                connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| DeliveryError::transient(format!("NATS TLS: {e}")))?,
            )
        } else {
            Box::new(tcp)
        };
        let mut connect = serde_json::json!({
            "verbose": false,
            "pedantic": false,
            "tls_required": tls,
            "name": "vigil",
            "lang": "rust",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "headers": true,
            "no_responders": true,
        });
        if let Some(t) = secret(&self.cfg.token_file)? {
            connect["auth_token"] = Value::String(t);
        }
        if let (Some(u), Some(p)) = (&self.cfg.user, secret(&self.cfg.password_file)?) {
            connect["user"] = Value::String(u.clone());
            connect["pass"] = Value::String(p);
        }
        let inbox = inbox();
        let mut io = BufReader::new(stream);
        let hello = format!("CONNECT {connect}\r\nPING\r\nSUB {inbox}.* 1\r\n");
        let w = io.get_mut();
        w.write_all(hello.as_bytes())
            .await
            .and(w.flush().await)
            .map_err(|e| DeliveryError::transient(format!("NATS write: {e}")))?;
        loop {
            let line = read_line(&mut io).await?;
            if line == "PONG" {
                break;
            }
            if let Some(err) = line.strip_prefix("-ERR") {
                return Err(DeliveryError::transient(format!(
                    "NATS refused the connection:{err}"
                )));
            }
        }
        Ok(Conn {
            io,
            inbox,
            max_payload: info["max_payload"].as_u64().unwrap_or(1 << 20) as usize,
        })
    }

    /// Publishes the batch and waits for every ack.
    async fn publish(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect().await?,
        };
        let first = self.next;
        let mut out = Vec::with_capacity(batch.len() * 1200);
        for (i, rec) in batch.iter().enumerate() {
            let payload = serde_json::to_vec(&self.cfg.format.value(rec))
                .map_err(|e| DeliveryError::permanent(format!("cannot encode: {e}")))?;
            let mut headers = format!("NATS/1.0\r\nNats-Msg-Id: {}\r\n", rec.id);
            if let Some(s) = &self.cfg.stream {
                headers.push_str(&format!("Nats-Expected-Stream: {s}\r\n"));
            }
            headers.push_str("\r\n");
            let total = headers.len() + payload.len();
            if total > conn.max_payload {
                let max = conn.max_payload;
                self.conn = Some(conn);
                return Err(DeliveryError::permanent(format!(
                    "finding {} is {total} bytes, over the server's max_payload {max}",
                    rec.id
                )));
            }
            out.extend_from_slice(
                format!(
                    "HPUB {} {}.{} {} {total}\r\n",
                    self.cfg.subject,
                    conn.inbox,
                    first + i as u64,
                    headers.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(headers.as_bytes());
            out.extend_from_slice(&payload);
            out.extend_from_slice(b"\r\n");
        }
        self.next += batch.len() as u64;
        let w = conn.io.get_mut();
        w.write_all(&out)
            .await
            .and(w.flush().await)
            .map_err(|e| DeliveryError::transient(format!("NATS write: {e}")))?;
        let mut acked = vec![false; batch.len()];
        let mut left = batch.len();
        while left > 0 {
            let line = read_line(&mut conn.io).await?;
            let mut parts = line.split_ascii_whitespace();
            match parts.next() {
                Some("PING") => {
                    let w = conn.io.get_mut();
                    w.write_all(b"PONG\r\n")
                        .await
                        .and(w.flush().await)
                        .map_err(|e| DeliveryError::transient(format!("NATS write: {e}")))?;
                }
                Some("-ERR") => {
                    return Err(DeliveryError::transient(format!("NATS error: {line}")));
                }
                Some(op @ ("MSG" | "HMSG")) => {
                    let args: Vec<&str> = parts.collect();
                    let subject = args.first().copied().unwrap_or_default();
                    let (hdr_len, total): (usize, usize) = if op == "MSG" {
                        (0, args.last().and_then(|n| n.parse().ok()).unwrap_or(0))
                    } else {
                        let n = args.len();
                        (
                            args.get(n.wrapping_sub(2))
                                .and_then(|n| n.parse().ok())
                                .unwrap_or(0),
                            args.last().and_then(|n| n.parse().ok()).unwrap_or(0),
                        )
                    };
                    let mut body = vec![0u8; total + 2];
                    conn.io
                        .read_exact(&mut body)
                        .await
                        .map_err(|e| DeliveryError::transient(format!("NATS read: {e}")))?;
                    let Some(seq) = subject
                        .strip_prefix(conn.inbox.as_str())
                        .and_then(|s| s.strip_prefix('.'))
                        .and_then(|s| s.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    // Acks of an earlier, timed-out batch: ignored.
                    let Some(i) = seq
                        .checked_sub(first)
                        .map(|i| i as usize)
                        .filter(|i| *i < batch.len())
                    else {
                        continue;
                    };
                    let headers = String::from_utf8_lossy(&body[..hdr_len.min(total)]);
                    if headers.starts_with("NATS/1.0 503") {
                        return Err(DeliveryError::transient(format!(
                            "no JetStream stream answers on {} (no responders)",
                            self.cfg.subject
                        )));
                    }
                    let ack: Value = serde_json::from_slice(&body[hdr_len.min(total)..total])
                        .unwrap_or(Value::Null);
                    if let Some(err) = ack.get("error") {
                        return Err(DeliveryError::transient(format!(
                            "JetStream refused finding {}: {err}",
                            batch[i].id
                        )));
                    }
                    if ack.get("stream").is_none() {
                        return Err(DeliveryError::transient(format!(
                            "unexpected JetStream answer: {ack}"
                        )));
                    }
                    if !acked[i] {
                        acked[i] = true;
                        left -= 1;
                    }
                }
                _ => {} // +OK, PONG, INFO updates
            }
        }
        self.conn = Some(conn);
        Ok(())
    }
}

impl Output for Nats {
    fn deliver(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError> {
        let rt = self.rt.clone();
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        rt.block_on(async {
            let r = match tokio::time::timeout(timeout, self.publish(batch)).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::transient(format!(
                    "no JetStream ack within {} ms",
                    timeout.as_millis()
                ))),
            };
            if r.as_ref().is_err_and(|e| !e.permanent) {
                // Start over on a fresh connection: late acks of this batch
                // must not be read as acks of the next one.
                self.conn = None;
            }
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_subjects() {
        assert_eq!(
            parse_url("nats://127.0.0.1:4333"),
            Ok((false, "127.0.0.1".into(), 4333))
        );
        assert_eq!(
            parse_url("tls://nats.example"),
            Ok((true, "nats.example".into(), 4222))
        );
        assert_eq!(
            parse_url("nats://[::1]:5000"),
            Ok((false, "::1".into(), 5000))
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("nats://u:p@x").is_err());
        assert!(valid_subject("vigil.findings"));
        assert!(!valid_subject("vigil.*"));
        assert!(!valid_subject("vigil..x"));
    }
}
