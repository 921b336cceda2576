//! The deadline of a whole request (headers and body): when did the client
//! start sending the request being served?
//!
//! hyper bounds the headers (`header_read_timeout`, which also closes idle
//! keep-alive connections), but not the body: a client that sends its
//! headers and then trickles the body a byte at a time would hold its
//! connection slot for as long as it likes (64 such clients, and the
//! webhook serves nobody). The connection's reads are therefore stamped:
//! the first bytes read after the previous request was answered start the
//! clock of the next one, and the handler reads the body only until that
//! start plus `request_timeout`.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The start of the request being read on one connection.
#[derive(Debug)]
pub struct RequestClock {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Whether the next bytes read begin a new request.
    armed: bool,
    /// When the current request's first bytes were read.
    started: Option<Instant>,
}

impl RequestClock {
    /// A clock for a new connection: its first bytes start the first request.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                armed: true,
                started: None,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_read(&self) {
        let mut s = self.state();
        if s.armed && s.started.is_none() {
            s.started = Some(Instant::now());
        }
    }

    /// Whether a request has begun (bytes read) and is not yet answered:
    /// tells a slow client from an idle keep-alive connection.
    pub fn in_request(&self) -> bool {
        self.state().started.is_some()
    }

    /// For the handler, once the headers are parsed: when this request
    /// started. Reads no longer move it until [`RequestClock::answered`].
    pub fn request_started(&self) -> Instant {
        let mut s = self.state();
        s.armed = false;
        *s.started.get_or_insert_with(Instant::now)
    }

    /// The request is answered: the next bytes read start the next one.
    pub fn answered(&self) {
        let mut s = self.state();
        s.armed = true;
        s.started = None;
    }
}

/// A connection whose reads start its [`RequestClock`].
pub struct Stamped<S> {
    inner: S,
    clock: Arc<RequestClock>,
}

impl<S> Stamped<S> {
    pub fn new(inner: S, clock: Arc<RequestClock>) -> Self {
        Self { inner, clock }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stamped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.on_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stamped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
