//! The frame guard: a relay between the client library and the NATS
//! server that bounds what the server can make Vigil read. `async-nats`
//! has no cap of its own (it waits for a control line's `\r\n` forever and
//! buffers whatever payload size a `MSG` declares), so it never talks to
//! the server directly: it dials the guard's loopback listener, and the
//! guard dials the server, does the TLS itself, and passes the server's
//! bytes on one whole, checked operation at a time ([`frames`]). An
//! operation over the caps, malformed or stalled closes the connection; the
//! error names the server, the operation and the size, is kept for the
//! delivery error ([`Guard::take_error`]) and counted
//! ([`GuardEvent::Violation`]). The client's bytes go to the server as
//! they are.
//!
//! TLS is the guard's: after the server's `INFO` it upgrades when the URL
//! is `tls://`, when credentials are configured (unless
//! `allow_plaintext_credentials`), or when the server requires it, and
//! shows the client that `INFO` without its TLS fields. A connection that
//! needed TLS and did not get it never reaches the relay, so `CONNECT`
//! (which carries the credentials) is never written to it.
//!
//! The listener takes only connections made by this process ([`peer`]):
//! another local user could otherwise reach the server through Vigil's
//! relay. Others are closed at once and counted ([`GuardEvent::Refused`]).

pub(crate) mod frames;
pub(crate) mod peer;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use frames::{Frame, FrameReader, Limits, ReadError, Violation};

/// What the guard counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardEvent {
    /// The server broke the protocol or a cap; its connection was closed.
    Violation,
    /// A local connection to the guard's listener that was not Vigil's own
    /// client, closed at once.
    Refused,
}

/// Where a guard counts its [`GuardEvent`]s (an output's counters, the
/// fleet's).
pub type GuardCounter = Arc<dyn Fn(GuardEvent) + Send + Sync>;

/// The INFO fields about TLS: the guard does the TLS, the client must not.
const TLS_FIELDS: [&str; 4] = ["tls_required", "tls_available", "tls_verify", "tls_first"];

/// What a guard needs to reach the server.
pub(crate) struct GuardConfig {
    /// Host and port as configured; the host is also the TLS server name.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// TLS whatever the server offers (`tls://`, or credentials without
    /// `allow_plaintext_credentials`).
    pub(crate) tls_required: bool,
    /// The TLS settings, or why they could not be built.
    pub(crate) tls: Result<Arc<rustls::ClientConfig>, String>,
    pub(crate) limits: Limits,
    /// Connect, `INFO` and TLS handshake deadline.
    pub(crate) connect_timeout: Duration,
    pub(crate) counter: GuardCounter,
}

impl GuardConfig {
    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a relayed connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GuardError {
    #[error("cannot reach NATS server {server}")]
    Connect {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NATS server {server} did not answer within {} ms", .timeout.as_millis())]
    ConnectTimeout { server: String, timeout: Duration },
    #[error("protocol violation by NATS server {server}, connection closed")]
    Violation {
        server: String,
        #[source]
        source: Violation,
    },
    #[error("connection to NATS server {server} lost")]
    Lost {
        server: String,
        #[source]
        source: ReadError,
    },
    #[error("TLS to NATS server {server} is required but cannot be set up: {why}")]
    TlsSetup { server: String, why: String },
    #[error("TLS handshake with NATS server {server} failed")]
    Tls {
        server: String,
        #[source]
        source: std::io::Error,
    },
}

/// A running guard; dropping it closes its listener and every connection
/// it relays.
pub(crate) struct Guard {
    addr: SocketAddr,
    last_error: Arc<Mutex<Option<String>>>,
    /// The last `-ERR` the server sent (a permissions violation on a
    /// publish is only that: the publish itself just never gets its ack).
    server_said: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Guard {
    /// Binds a loopback listener for the client of `cfg`'s server.
    pub(crate) async fn start(cfg: GuardConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        tracing::debug!(guard = %addr, server = %cfg.server(), "nats: frame guard listening");
        let last_error = Arc::new(Mutex::new(None));
        let server_said = Arc::new(Mutex::new(None));
        let task = tokio::spawn(serve(
            listener,
            Arc::new(cfg),
            last_error.clone(),
            server_said.clone(),
        ));
        Ok(Self {
            addr,
            last_error,
            server_said,
            task,
        })
    }

    /// The URL the client library dials.
    pub(crate) fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Why the last relayed connection failed, once.
    pub(crate) fn take_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The last `-ERR` line the server sent, escaped, once.
    pub(crate) fn take_server_error(&self) -> Option<String> {
        self.server_said
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

async fn serve(
    listener: TcpListener,
    cfg: Arc<GuardConfig>,
    last_error: Arc<Mutex<Option<String>>>,
    server_said: Arc<Mutex<Option<String>>>,
) {
    let mut relays = JoinSet::new();
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let (mut client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "nats: frame guard cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while relays.try_join_next().is_some() {}
        let ours = tokio::task::spawn_blocking(move || peer::is_ours(peer, local)).await;
        if !matches!(ours, Ok(Ok(true))) {
            (cfg.counter)(GuardEvent::Refused);
            let why = match ours {
                Ok(Ok(_)) => "not a socket of this process".to_owned(),
                Ok(Err(e)) => format!("cannot check its owner: {e}"),
                Err(e) => format!("cannot check its owner: {e}"),
            };
            tracing::warn!(guard = %local, peer = %peer, why = %why, "nats: connection to the frame guard refused");
            continue;
        }
        let cfg = cfg.clone();
        let last_error = last_error.clone();
        let server_said = server_said.clone();
        relays.spawn(async move {
            if let Err(e) = relay(&mut client, &cfg, &server_said).await {
                if matches!(e, GuardError::Violation { .. }) {
                    (cfg.counter)(GuardEvent::Violation);
                }
                let why = vigil_core::error::chain(&e);
                tracing::warn!(error = %why, "nats: connection closed by the frame guard");
                // Kept before the client's socket closes, so that the
                // failure the client reports can be explained by it.
                *last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
            }
            let _ = client.shutdown().await;
        });
    }
}

/// Reading and writing, whether TLS or not.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection: dial, `INFO`, TLS, then the relay until either side ends.
async fn relay(
    client: &mut TcpStream,
    cfg: &GuardConfig,
    server_said: &Mutex<Option<String>>,
) -> Result<(), GuardError> {
    let server = cfg.server();
    let deadline = Instant::now() + cfg.connect_timeout;
    let timed_out = || GuardError::ConnectTimeout {
        server: server.clone(),
        timeout: cfg.connect_timeout,
    };
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect((cfg.host.as_str(), cfg.port)))
        .await
        .map_err(|_| timed_out())?
        .map_err(|source| GuardError::Connect {
            server: server.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let violation = |source| GuardError::Violation {
        server: server.clone(),
        source,
    };
    let lost = |source| match source {
        ReadError::Violation(v) => violation(v),
        source => GuardError::Lost {
            server: server.clone(),
            source,
        },
    };
    let mut reader = FrameReader::new(tcp, Vec::new(), cfg.limits);
    let info = match reader.next(Some(deadline)).await.map_err(lost)? {
        Some(Frame::Info(info)) => info,
        Some(Frame::Raw(bytes)) => {
            return Err(violation(Violation::Malformed {
                op: frames::op_name(&bytes),
                why: "the first operation must be INFO",
            }));
        }
        None => {
            return Err(lost(ReadError::Truncated { op: "INFO".into() }));
        }
    };
    let (tcp, rest) = reader.into_parts();
    let tls = cfg.tls_required || info.get("tls_required") == Some(&Value::Bool(true));
    let upstream: Box<dyn Io> = if tls {
        if !rest.is_empty() {
            return Err(violation(Violation::Malformed {
                op: "INFO".into(),
                why: "bytes after INFO before the TLS handshake",
            }));
        }
        let config = cfg.tls.clone().map_err(|why| GuardError::TlsSetup {
            server: server.clone(),
            why,
        })?;
        let name = ServerName::try_from(cfg.host.clone()).map_err(|e| GuardError::TlsSetup {
            server: server.clone(),
            why: format!("bad server name: {e}"),
        })?;
        let tls = tokio::time::timeout_at(
            deadline,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|source| GuardError::Tls {
            server: server.clone(),
            source,
        })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (up_read, mut up_write) = tokio::io::split(upstream);
    let mut reader = FrameReader::new(up_read, rest, cfg.limits);
    let (mut client_read, mut client_write) = client.split();
    // A client that went away ends the relay without an error of the server's.
    if client_write.write_all(&info_line(info)).await.is_err() {
        return Ok(());
    }
    let down = async {
        loop {
            let bytes = match reader.next(None).await {
                Ok(Some(Frame::Info(info))) => info_line(info),
                Ok(Some(Frame::Raw(bytes))) => {
                    if bytes.starts_with(b"-ERR") {
                        // The server's own words, bounded and escaped: they
                        // end up in Vigil's log and error messages.
                        let text = String::from_utf8_lossy(&bytes);
                        let text = vigil_core::text::escape_control(text.trim_end(), 256);
                        *server_said.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(text.into_owned());
                    }
                    bytes
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(lost(e)),
            };
            if client_write.write_all(&bytes).await.is_err() {
                return Ok(());
            }
        }
    };
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
        let _ = up_write.shutdown().await;
    };
    tokio::select! {
        r = down => r,
        () = up => Ok(()),
    }
}

/// `INFO` for the client: as the server sent it, without the TLS fields.
fn info_line(mut info: Map<String, Value>) -> Vec<u8> {
    for f in TLS_FIELDS {
        info.remove(f);
    }
    let mut line = b"INFO ".to_vec();
    line.extend_from_slice(Value::Object(info).to_string().as_bytes());
    line.extend_from_slice(b"\r\n");
    line
}
