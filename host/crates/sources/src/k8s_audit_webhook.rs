//! The `k8s-audit-webhook` source: the Kubernetes API server's audit
//! webhook backend (`--audit-webhook-config-file`).
//!
//! The API server POSTs batches of audit events (an `audit.k8s.io/v1`
//! `EventList`, JSON) to any path. Each batch is normalised by
//! [`vigil_normalize::k8s_audit`] and answered 200 only once its events
//! are in the pipeline's queue, so that a failure (403/5xx, connection
//! loss) makes the API server retry the batch rather than lose it. A
//! malformed body gets 400 with the reason (the API server does not retry
//! it: the same bytes would fail again).
//!
//! Plain HTTP or TLS (rustls, `ring` provider) when a certificate and key
//! are given. A bearer token is required everywhere, loopback included,
//! and TLS off loopback, each unless the operator waives it explicitly
//! (`allow_unauthenticated`, `allow_plaintext`: warned at every start).
//! Each request must arrive whole within `request_timeout_secs` of its
//! first byte (`deadline`), and at most `max_connections` are served at
//! once, so slow clients cannot take the endpoint away from the API server.

mod config;
mod deadline;
mod handler;
mod internal_events;
mod tls;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use config::{
    Auth, DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT_SECS, Transport, Waiver, WebhookConfig,
    WebhookSettings,
};

use crate::{Off, Source, SourceContext, SourceTask, Starter};
use deadline::{RequestClock, Stamped};
use handler::Shared;
use internal_events::{AuditWebhookConnectionFailed, AuditWebhookRequestTimedOut};
use vigil_core::validate::Problems;

/// The name of this source's metrics (its events say `source: "k8s-audit"`,
/// like replayed audit logs, so detectors need not care how they came).
pub const METRICS_NAME: &str = "k8s-audit-webhook";

/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The token file could not be read.
    #[error("cannot read the token file {path}")]
    ReadToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The token file holds no token.
    #[error("the token file {path} is empty")]
    EmptyToken { path: PathBuf },
    /// The TLS certificate file could not be read or is not PEM.
    #[error("cannot read the TLS certificate {path}")]
    ReadTlsCert {
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// The TLS certificate file holds no certificate.
    #[error("no certificate in {path}")]
    NoTlsCert { path: PathBuf },
    /// The TLS key file could not be read or holds no private key.
    #[error("cannot read the TLS private key {path}")]
    ReadTlsKey {
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// rustls refused the certificate and key (e.g. they do not match).
    #[error("cannot set up TLS")]
    Tls {
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A started webhook: where it listens (the bound port when 0 was asked)
/// and its task.
pub struct Started {
    /// The bound address.
    pub local_addr: SocketAddr,
    /// The accept loop; it ends on shutdown.
    pub task: JoinHandle<()>,
}

impl Source for WebhookConfig {
    const KEY: &'static str = "k8s_audit_webhook";
    const NAME: &'static str = "k8s-audit-webhook";
    type Settings = WebhookSettings;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn check(&self, at: &str, problems: &mut Problems) -> Option<WebhookSettings> {
        WebhookConfig::check(self, at, problems)
    }

    fn warnings(&self) -> Vec<String> {
        self.validated()
            .map(|s| {
                s.waivers
                    .iter()
                    .map(|w| format!("{} = true: {}", w.key(), w.risk()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn start(settings: WebhookSettings, starter: &Starter<'_>) -> Result<Vec<SourceTask>, Off> {
        // At every start, not once: the operator must keep seeing it.
        for w in &settings.waivers {
            tracing::warn!(
                source = METRICS_NAME,
                "k8s-audit-webhook: {} = true: {}",
                w.key(),
                w.risk()
            );
        }
        // Asked for but unusable: loud, an operator expects audit events.
        let s = start(settings, starter.context(METRICS_NAME))
            .map_err(|e| Off::Failed(vigil_core::error::chain(&e)))?;
        tracing::info!("k8s-audit-webhook: on (listening on {})", s.local_addr);
        Ok(vec![SourceTask::Task(s.task)])
    }
}

/// Reads the token, binds the address and starts serving on the runtime
/// (must be called inside it). Binding here, not in the task, makes a
/// taken port an error the caller reports at startup.
pub fn start(settings: WebhookSettings, ctx: SourceContext) -> Result<Started, WebhookError> {
    let token = match &settings.auth {
        Auth::Unauthenticated => None,
        Auth::BearerTokenFile(path) => Some(read_token(path)?),
    };
    let tls = match &settings.transport {
        Transport::Plain => None,
        Transport::Tls { cert, key } => Some(tls::acceptor(cert, key)?),
    };
    let bind = |source| WebhookError::Bind {
        addr: settings.listen,
        source,
    };
    let std_listener = std::net::TcpListener::bind(settings.listen).map_err(bind)?;
    std_listener.set_nonblocking(true).map_err(bind)?;
    let listener = TcpListener::from_std(std_listener).map_err(bind)?;
    let local_addr = listener.local_addr().map_err(bind)?;
    let shared = Arc::new(Shared {
        ctx,
        token,
        max_body_bytes: settings.max_body_bytes,
        request_timeout: settings.request_timeout,
    });
    let task = tokio::spawn(accept_loop(listener, settings, tls, shared));
    Ok(Started { local_addr, task })
}

fn read_token(path: &std::path::Path) -> Result<Box<[u8]>, WebhookError> {
    let text = std::fs::read_to_string(path).map_err(|source| WebhookError::ReadToken {
        path: path.to_owned(),
        source,
    })?;
    // Editors and `echo` add a trailing newline that is not part of the token.
    let token = text.trim();
    if token.is_empty() {
        return Err(WebhookError::EmptyToken {
            path: path.to_owned(),
        });
    }
    Ok(token.as_bytes().into())
}

async fn accept_loop(
    listener: TcpListener,
    settings: WebhookSettings,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let mut shutdown = shared.ctx.shutdown.clone();
    loop {
        // A slot first: at the cap, connections wait in the backlog
        // instead of each costing a task and buffers.
        let permit = tokio::select! {
            () = stopped(&mut shutdown) => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            () = stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    AuditWebhookConnectionFailed { peer: None, error: &e }.emit(&shared.ctx.metrics);
                    // E.g. EMFILE: do not spin on it.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let header_timeout = settings.header_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(tls) = tls else {
                return serve(stream, peer, header_timeout, shared).await;
            };
            // The handshake gets the same deadline as the headers: a client
            // that stalls it must not hold a connection slot.
            match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                Ok(Ok(stream)) => serve(stream, peer, header_timeout, shared).await,
                Ok(Err(e)) => AuditWebhookConnectionFailed {
                    peer: Some(peer),
                    error: &e,
                }
                .emit(&shared.ctx.metrics),
                Err(e) => AuditWebhookConnectionFailed {
                    peer: Some(peer),
                    error: &e,
                }
                .emit(&shared.ctx.metrics),
            }
        });
    }
}

/// Serves HTTP/1.1 requests on one connection until the client closes it,
/// a deadline passes or the host shuts down.
async fn serve<S>(stream: S, peer: SocketAddr, header_timeout: Duration, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut shutdown = shared.ctx.shutdown.clone();
    let clock = RequestClock::new();
    let service_shared = shared.clone();
    let service_clock = clock.clone();
    let service = service_fn(move |req| {
        handler::handle(service_shared.clone(), service_clock.clone(), peer, req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(Stamped::new(stream, clock.clone())), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped(&mut shutdown) => {
            // Finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    match result {
        Ok(()) => {}
        // hyper's header deadline also closes idle keep-alive connections:
        // only one that had started a request is a slow client.
        Err(e) if e.is_timeout() && clock.in_request() => AuditWebhookRequestTimedOut {
            peer,
            phase: "headers",
            after: header_timeout,
        }
        .emit(&shared.ctx.metrics),
        Err(e) => AuditWebhookConnectionFailed {
            peer: Some(peer),
            error: &e,
        }
        .emit(&shared.ctx.metrics),
    }
}

/// Resolves when shutdown is requested (or the host is gone). The watch
/// guard is dropped here, not held across the caller's awaits (it is not
/// `Send`).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
