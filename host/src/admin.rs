//! The admin HTTP endpoint of `vigil run`: `/metrics` (Prometheus text
//! from the [`Registry`]), `/healthz` (the process answers), `/readyz`
//! (plugins loaded and sources started: 200, else 503) and
//! `/timeline?entity=ENTITY` (the entity's recent events and findings as
//! JSON; see [`timeline`]). HTTP/1.1, GET and HEAD only, no request body
//! read; loopback by default (`[admin]`).

mod timeline;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use vigil_core::metrics::{self, Registry};
use vigil_core::timeline::Timeline;

/// What the endpoint serves.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub registry: Arc<Registry>,
    /// `None` when `[timeline]` is off: `/timeline` answers 404 saying so.
    pub timeline: Option<Arc<Timeline>>,
}

/// Connections served at once: scrapers and probes use one or two.
const MAX_CONNECTIONS: usize = 16;

/// Time a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be bound (taken, or not this host's).
    #[error("cannot listen on {addr} for the admin endpoint")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` and serves until `shutdown` turns true. Returns the bound
/// address (the port chosen when 0 was asked). Binding happens here so that
/// a taken port fails `vigil run` at startup.
pub fn start(
    addr: SocketAddr,
    state: AdminState,
    shutdown: watch::Receiver<bool>,
) -> Result<SocketAddr, AdminError> {
    let bind = |source| AdminError::Bind { addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
    std_listener.set_nonblocking(true).map_err(bind)?;
    let listener = TcpListener::from_std(std_listener).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    tokio::spawn(accept_loop(listener, Arc::new(state), shutdown));
    Ok(local)
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = stopped(&mut shutdown) => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let stream = tokio::select! {
            () = stopped(&mut shutdown) => return,
            a = listener.accept() => match a {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, &req)) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "admin endpoint: connection ended with an error");
            }
        });
    }
}

/// Resolves when shutdown is requested; the watch guard (not `Send`) is
/// dropped here.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The response to one request.
pub fn respond(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
    }
    let registry = &state.registry;
    match req.uri().path() {
        "/timeline" => timeline::respond(state.timeline.as_deref(), req.uri().query()),
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(registry.render())));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            r
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let g = &registry.gauges;
            let (plugins, sources) = (
                g.plugins.load(Ordering::Relaxed),
                g.sources.load(Ordering::Relaxed),
            );
            if g.ready.load(Ordering::Relaxed) {
                text(
                    StatusCode::OK,
                    &format!("ready: {plugins} plugins, {sources} sources\n"),
                )
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: plugins or sources still starting\n",
                )
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz or /timeline?entity=ENTITY\n",
        ),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
