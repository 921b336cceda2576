//! HTTP webhook: each batch is one `POST` (HTTP/1.1, keep-alive) of one
//! JSON object (`batch_max = 1`, the default, what falcosidekick and most
//! receivers expect) or of a JSON array of up to `batch_max` findings.
//! HTTPS through rustls (`ring`), trusting the system's roots plus
//! `ca_file`; custom headers and a bearer token read from a file.
//!
//! Acknowledgement is a 2xx answer. 400, 413, 415 and 422 mean the receiver
//! will never take this body: a batch is then split into single findings,
//! and a single finding refused that way is dropped for this output (logged,
//! counted in `vigil_output_rejected_total`). Everything else (connection
//! refused, timeouts, 401/403, 404, 408, 429, 5xx …) is retried with
//! exponential backoff, for as long as the finding stays in the spool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use super::{DeliveryError, Format, Output, OutputConfig, OutputSpec, Retry, validate_batch};
use vigil_core::finding_record::FindingRecord;
use vigil_core::model::Severity;
use vigil_core::validate::{Problems, Validate, join};

/// `[[outputs.webhook]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Name in metrics and the spool (default: `webhook:URL`).
    #[serde(default)]
    pub name: Option<String>,
    /// `http://` or `https://` URL.
    pub url: String,
    #[serde(default = "min_info")]
    pub min_severity: Severity,
    /// `vigil` (default), `ocsf` or `falco` (for falcosidekick).
    #[serde(default)]
    pub format: Format,
    /// Also send findings of plugins in monitor mode (default: no).
    #[serde(default)]
    pub monitor: bool,
    /// Findings per POST: 1 sends a JSON object, more a JSON array.
    #[serde(default = "one")]
    pub batch_max: usize,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// File holding a token sent as `Authorization: Bearer TOKEN` (re-read at each new connection).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// PEM CA certificates trusted besides the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Connect plus request deadline, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub retry: Retry,
}

fn min_info() -> Severity {
    Severity::Info
}

fn one() -> usize {
    1
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl WebhookConfig {
    /// A config with every default, posting to `url`.
    pub fn to(url: &str) -> Self {
        Self {
            name: None,
            url: url.to_owned(),
            min_severity: Severity::Info,
            format: Format::Vigil,
            monitor: false,
            batch_max: 1,
            headers: BTreeMap::new(),
            bearer_token_file: None,
            ca_file: None,
            timeout_ms: default_timeout_ms(),
            retry: Retry::default(),
        }
    }
}

/// Where to connect.
#[derive(Debug, Clone)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// `Host` header value.
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("must start with http:// or https://".into()),
    };
    let authority = uri.authority().ok_or("has no host")?;
    if authority.as_str().contains('@') {
        return Err("must not hold credentials; use bearer_token_file or headers".into());
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err("has no host".into());
    }
    Ok(Target {
        tls,
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        authority: authority.as_str().to_owned(),
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
    })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl OutputConfig for WebhookConfig {
    fn spec(&self) -> OutputSpec {
        OutputSpec {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| format!("webhook:{}", self.url)),
            min_severity: self.min_severity,
            monitor: self.monitor,
            batch_max: self.batch_max,
            retry_initial: Duration::from_millis(self.retry.initial_ms),
            retry_max: Duration::from_millis(self.retry.max_ms),
        }
    }

    fn build(&self, rt: &tokio::runtime::Handle) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(Webhook::new(self, rt.clone())?))
    }
}

impl Validate for WebhookConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        match parse_url(&self.url) {
            Err(e) => problems.push(join(path, "url"), e),
            Ok(t) => {
                if !t.tls && self.bearer_token_file.is_some() && !is_loopback(&t.host) {
                    problems.push(
                        join(path, "bearer_token_file"),
                        "a bearer token would be sent in clear text to a non-loopback host; use https://",
                    );
                }
                if !t.tls && self.ca_file.is_some() {
                    problems.push(join(path, "ca_file"), "only used with https://");
                }
            }
        }
        for (k, v) in &self.headers {
            let p = join(path, &format!("headers.{k}"));
            if HeaderName::from_bytes(k.as_bytes()).is_err() {
                problems.push(p.clone(), "not a valid header name");
            }
            if HeaderValue::from_str(v).is_err() {
                problems.push(p.clone(), "not a valid header value");
            }
            if k.eq_ignore_ascii_case("authorization") && self.bearer_token_file.is_some() {
                problems.push(p, "conflicts with bearer_token_file");
            }
            if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("host") {
                problems.push(join(path, &format!("headers.{k}")), "is set by Vigil");
            }
        }
        for (key, file) in [
            ("bearer_token_file", &self.bearer_token_file),
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

/// A webhook output.
pub struct Webhook {
    target: Target,
    format: Format,
    headers: Vec<(HeaderName, HeaderValue)>,
    token_file: Option<PathBuf>,
    token: Option<HeaderValue>,
    tls: Option<TlsConnector>,
    timeout: Duration,
    rt: tokio::runtime::Handle,
    conn: Option<SendRequest<Full<Bytes>>>,
}

fn read_token(path: &Path) -> anyhow::Result<HeaderValue> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the token file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        anyhow::bail!("the token file {} is empty", path.display());
    }
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        anyhow::anyhow!(
            "the token in {} is not a valid header value",
            path.display()
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// A rustls client trusting the system's roots and the PEM certificates of `ca_file`.
pub fn tls_connector(ca_file: Option<&Path>) -> anyhow::Result<TlsConnector> {
    Ok(TlsConnector::from(Arc::new(tls_client_config(ca_file)?)))
}

/// The rustls client settings behind [`tls_connector`] (`ring` provider,
/// TLS 1.2 and 1.3): also what the NATS output hands to its client library.
pub fn tls_client_config(ca_file: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(f) = ca_file {
        for cert in CertificateDer::pem_file_iter(f)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?
        {
            let cert =
                cert.map_err(|e| anyhow::anyhow!("bad certificate in {}: {e}", f.display()))?;
            roots
                .add(cert)
                .map_err(|e| anyhow::anyhow!("certificate in {} refused: {e}", f.display()))?;
        }
    }
    if roots.is_empty() {
        anyhow::bail!("no trusted CA certificate (no system roots and no ca_file)");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

impl Webhook {
    /// Checks the settings and reads the token; connects on first delivery.
    pub fn new(cfg: &WebhookConfig, rt: tokio::runtime::Handle) -> anyhow::Result<Self> {
        let target =
            parse_url(&cfg.url).map_err(|e| anyhow::anyhow!("webhook url {}: {e}", cfg.url))?;
        let headers = cfg
            .headers
            .iter()
            .map(|(k, v)| {
                Ok((
                    HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| anyhow::anyhow!("bad header name {k:?}"))?,
                    HeaderValue::from_str(v)
                        .map_err(|_| anyhow::anyhow!("bad value of header {k}"))?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let token = cfg
            .bearer_token_file
            .as_deref()
            .map(read_token)
            .transpose()?;
        let tls = if target.tls {
            Some(tls_connector(cfg.ca_file.as_deref())?)
        } else {
            None
        };
        Ok(Self {
            target,
            format: cfg.format,
            headers,
            token_file: cfg.bearer_token_file.clone(),
            token,
            tls,
            timeout: Duration::from_millis(cfg.timeout_ms),
            rt,
            conn: None,
        })
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, DeliveryError> {
        let t = &self.target;
        let tcp = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| {
                DeliveryError::transient(format!("cannot connect to {}:{}: {e}", t.host, t.port))
            })?;
        let _ = tcp.set_nodelay(true);
        let handshake_err = |e: hyper::Error| {
            DeliveryError::transient(format!("HTTP handshake with {}: {e}", t.authority))
        };
        let sender = if let Some(tls) = &self.tls {
            let name = rustls::pki_types::ServerName::try_from(t.host.clone()).map_err(|e| {
                DeliveryError::transient(format!("bad TLS server name {}: {e}", t.host))
            })?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| DeliveryError::transient(format!("TLS with {}: {e}", t.authority)))?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(handshake_err)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(handshake_err)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender
        };
        // A rotated token takes effect at the next connection.
        if let Some(f) = &self.token_file {
            match read_token(f) {
                Ok(v) => self.token = Some(v),
                Err(e) => tracing::warn!(error = %e, "webhook: keeping the previous token"),
            }
        }
        Ok(sender)
    }

    async fn post(&mut self, body: Vec<u8>) -> Result<(), DeliveryError> {
        let mut sender = match self.conn.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        sender.ready().await.map_err(|e| {
            DeliveryError::transient(format!("connection to {} lost: {e}", self.target.authority))
        })?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.target.path.as_str())
            .header(hyper::header::HOST, self.target.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("vigil/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, t);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| DeliveryError::permanent(format!("cannot build the request: {e}")))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            DeliveryError::transient(format!("POST to {}: {e}", self.target.authority))
        })?;
        let status = resp.status();
        // Read the body so the connection can be reused; keep a bit for the log.
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        if body.is_ok() {
            self.conn = Some(sender);
        }
        if status.is_success() {
            return Ok(());
        }
        let text = body
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
            .unwrap_or_default();
        let message = format!("{} answered {status}: {text}", self.target.authority);
        if matches!(status.as_u16(), 400 | 413 | 415 | 422) {
            Err(DeliveryError::permanent(message))
        } else {
            Err(DeliveryError::transient(message))
        }
    }
}

impl Output for Webhook {
    fn deliver(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError> {
        let body = if batch.len() == 1 {
            serde_json::to_vec(&self.format.value(&batch[0]))
        } else {
            let values: Vec<serde_json::Value> =
                batch.iter().map(|r| self.format.value(r)).collect();
            serde_json::to_vec(&values)
        }
        .map_err(|e| DeliveryError::permanent(format!("cannot encode: {e}")))?;
        let rt = self.rt.clone();
        let timeout = self.timeout;
        rt.block_on(async {
            match tokio::time::timeout(timeout, self.post(body)).await {
                Ok(r) => r,
                Err(_) => {
                    self.conn = None;
                    Err(DeliveryError::transient(format!(
                        "no answer from {} within {} ms",
                        self.target.authority,
                        timeout.as_millis()
                    )))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("https://siem.example:8443/in?x=1").unwrap_or_else(|e| panic!("{e}"));
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("siem.example", 8443, "/in?x=1")
        );
        let t = parse_url("http://[::1]/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("https://user:pw@x/").is_err());
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut cfg = WebhookConfig::to("http://collector.example/");
        cfg.bearer_token_file = Some("/nonexistent/token".into());
        cfg.headers.insert("Bad Header".into(), "x".into());
        cfg.timeout_ms = 1;
        cfg.batch_max = 0;
        cfg.retry.max_ms = 1;
        let mut p = Problems::default();
        cfg.validate("outputs.webhook[0]", &mut p);
        let paths: Vec<&str> = p.list().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "outputs.webhook[0].bearer_token_file",
                "outputs.webhook[0].headers.Bad Header",
                "outputs.webhook[0].bearer_token_file",
                "outputs.webhook[0].timeout_ms",
                "outputs.webhook[0].batch_max",
                "outputs.webhook[0].retry.max_ms",
            ],
            "{p:?}"
        );
    }
}
