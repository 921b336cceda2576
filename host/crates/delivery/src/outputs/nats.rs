//! NATS JetStream publish through `async-nats`, the NATS organisation's
//! client (JetStream and rustls with `ring` only). Each finding is a
//! JetStream publish; the batch is acknowledged to the spool only when
//! JetStream has answered every publish of it with an ack
//! (`{"stream":…,"seq":…}`), i.e. once the messages are stored.
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
//!
//! Nothing the server sends reaches the client library unchecked: the
//! library dials the output's frame [`guard`], which dials the server,
//! does the TLS, and passes the server's bytes on one bounded operation at
//! a time (control lines of at most [`CONTROL_LINE_MAX`] bytes, `INFO` of
//! at most [`INFO_LINE_MAX`], payloads of at most `max_read_payload_bytes`,
//! each operation whole within half of `timeout_ms` once started). A server over a
//! cap is cut off, the delivery fails with the guard's reason and is
//! retried, and the violation is counted
//! (`vigil_output_protocol_violations_total`).
//!
//! Credentials never travel in clear text unless the operator says so
//! (`allow_plaintext_credentials`): with a user or a token configured the
//! guard requires TLS, so against a plaintext server the TLS handshake
//! fails right after the server's `INFO`, before the client ever sees the
//! server and writes `CONNECT` (which carries the credentials).
//!
//! The client is built by the output thread inside the shared runtime (like
//! the webhook's connection) and bounded so a dead server can neither hang
//! a delivery nor pile up findings in memory: every connect and every batch
//! has `timeout_ms`, the command queue holds a few batches, at most
//! `2 × batch_max` acks wait at once, and the library reconnects on its own
//! (to the guard, which dials the server again) only [`MAX_RECONNECTS`]
//! times in a row (a blip). Past that, and after any other transient
//! failure, the client and its guard are dropped and the pipeline's retry
//! with backoff builds new ones, which also re-read the credential files.

mod config;
pub mod guard;
#[cfg(test)]
mod tests;

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{ContextBuilder, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{ConnectOptions, Subject};

use super::{DeliveryError, Output};
pub use config::{MAX_READ_PAYLOAD_RANGE, NatsConfig};
use config::{Url, parse_url};
use guard::frames::Limits;
use guard::{Guard, GuardConfig};
pub use guard::{GuardCounter, GuardEvent};
use vigil_core::finding_record::FindingRecord;
use vigil_core::metrics::{OutputMetrics, PluginMetrics};

/// Reconnects the library tries by itself after losing the server, before
/// the output drops the client and leaves the rest to the pipeline's backoff.
/// Also bounds the background task of a dropped client (it exits at the
/// next failed attempt or once reconnected and idle).
const MAX_RECONNECTS: usize = 3;

/// Commands (publishes, pings) the client queues for its connection besides
/// the batches in flight.
const COMMAND_SLACK: usize = 64;

/// Longest control line the server may send, other than `INFO` (`MSG`
/// lines carry a subject and a reply subject, `-ERR` a short text).
pub const CONTROL_LINE_MAX: usize = 4 * 1024;

/// Longest `INFO` line (the server's JSON description, with its cluster's
/// `connect_urls`).
pub const INFO_LINE_MAX: usize = 64 * 1024;

/// A JetStream context and the frame guard its connection runs through;
/// the guard (and with it the connection) ends when this is dropped.
pub struct Connection {
    js: jetstream::Context,
    guard: Guard,
}

impl Deref for Connection {
    type Target = jetstream::Context;

    fn deref(&self) -> &jetstream::Context {
        &self.js
    }
}

impl Connection {
    /// Why the guard last cut the connection, once.
    pub fn guard_error(&self) -> Option<String> {
        self.guard.take_error()
    }

    /// The last `-ERR` the server sent on this connection (escaped), once:
    /// why a publish got no ack when the server refused it (permissions).
    pub fn server_error(&self) -> Option<String> {
        self.guard.take_server_error()
    }
}

/// A [`GuardCounter`] that counts into an output's metrics.
pub fn output_counter(metrics: Arc<OutputMetrics>) -> GuardCounter {
    Arc::new(move |event| match event {
        GuardEvent::Violation => PluginMetrics::add(&metrics.counters.protocol_violations, 1),
        GuardEvent::Refused => PluginMetrics::add(&metrics.counters.guard_refused, 1),
    })
}

/// A NATS JetStream output.
pub struct Nats {
    cfg: NatsConfig,
    url: Url,
    subject: Subject,
    timeout: Duration,
    rt: tokio::runtime::Handle,
    /// The connected client, dropped after a transient failure.
    js: Option<Connection>,
    /// Where the guard counts (no-op until the pipeline attaches metrics).
    counter: GuardCounter,
}

fn secret(path: Option<&PathBuf>) -> Result<Option<String>, DeliveryError> {
    path.map(|p| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .map_err(|e| DeliveryError::transient(format!("cannot read {}: {e}", p.display())))
    })
    .transpose()
}

impl Nats {
    /// Checks the URL; connects on first delivery.
    pub fn new(cfg: &NatsConfig, rt: tokio::runtime::Handle) -> anyhow::Result<Self> {
        let url = parse_url(&cfg.url).map_err(|e| anyhow::anyhow!("nats url {}: {e}", cfg.url))?;
        Ok(Self {
            cfg: cfg.clone(),
            url,
            subject: Subject::from(cfg.subject.as_str()),
            timeout: Duration::from_millis(cfg.timeout_ms),
            rt,
            js: None,
            counter: Arc::new(|_| {}),
        })
    }

    /// The frame guard's settings: the configured server, TLS, the caps.
    fn guard_config(&self) -> Result<GuardConfig, DeliveryError> {
        let tls_required = self.url.tls || self.cfg.tls_for_credentials();
        let tls = super::webhook::tls_client_config(self.cfg.ca_file.as_deref())
            .map(Arc::new)
            .map_err(|e| e.to_string());
        // Known now to be needed: fail before dialling anything.
        if let (true, Err(e)) = (tls_required, &tls) {
            return Err(DeliveryError::transient(e.clone()));
        }
        Ok(GuardConfig {
            host: self.url.host.clone(),
            port: self.url.port,
            tls_required,
            tls,
            limits: Limits {
                line: CONTROL_LINE_MAX,
                info_line: INFO_LINE_MAX,
                payload: self.cfg.max_read_payload_bytes,
                // Shorter than the batch deadline, so that a server stalling
                // inside an ack is named as the cause before the batch times out.
                op_deadline: self.timeout / 2,
            },
            connect_timeout: self.timeout,
            counter: self.counter.clone(),
        })
    }

    /// The client options: credentials read now, and the bounds. TLS is
    /// the guard's: the client talks plaintext to it over loopback.
    fn options(&self) -> Result<ConnectOptions, DeliveryError> {
        let mut opts = ConnectOptions::new()
            .name("vigil")
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout))
            .client_capacity(self.cfg.batch_max * 2 + COMMAND_SLACK)
            .subscription_capacity(COMMAND_SLACK)
            .max_reconnects(MAX_RECONNECTS)
            // Credentials go to the configured server only (through the
            // guard), never to one a server's INFO advertises.
            .ignore_discovered_servers();
        if let Some(token) = secret(self.cfg.token_file.as_ref())? {
            opts = opts.token(token);
        }
        if let (Some(user), Some(pass)) = (&self.cfg.user, secret(self.cfg.password_file.as_ref())?)
        {
            opts = opts.user_and_password(user.clone(), pass);
        }
        Ok(opts)
    }

    async fn connect(&self) -> Result<Connection, DeliveryError> {
        let server = self.url.server();
        let why_tls = if !self.url.tls && self.cfg.tls_for_credentials() {
            " (TLS required: credentials are configured and allow_plaintext_credentials is false)"
        } else {
            ""
        };
        let guard = Guard::start(self.guard_config()?).await.map_err(|e| {
            DeliveryError::transient(format!(
                "cannot start the frame guard for NATS {server}: {e}"
            ))
        })?;
        let options = self.options()?;
        let client = tokio::time::timeout(self.timeout, options.connect(guard.url()))
            .await
            .map_err(|_| {
                let why = guard
                    .take_error()
                    .unwrap_or_else(|| format!("no answer within {} ms", self.timeout.as_millis()));
                DeliveryError::transient(format!("cannot connect to NATS {server}{why_tls}: {why}"))
            })?
            .map_err(|e| {
                let why = guard.take_error().unwrap_or_else(|| e.to_string());
                DeliveryError::transient(format!("cannot connect to NATS {server}{why_tls}: {why}"))
            })?;
        let js = ContextBuilder::new()
            .timeout(self.timeout)
            // Acks of a batch abandoned on a permanent refusal still hold
            // their slot until they arrive or time out: room for two batches.
            .max_ack_inflight(self.cfg.batch_max * 2)
            .ack_timeout(self.timeout)
            .build(client);
        Ok(Connection { js, guard })
    }

    /// Publishes the batch and waits for every ack.
    async fn publish(
        &self,
        js: &jetstream::Context,
        batch: &[FindingRecord],
    ) -> Result<(), DeliveryError> {
        let mut acks = Vec::with_capacity(batch.len());
        for rec in batch {
            let payload = serde_json::to_vec(&self.cfg.format.value(rec))
                .map_err(|e| DeliveryError::permanent(format!("cannot encode: {e}")))?;
            let mut msg = PublishMessage::build()
                .payload(payload.into())
                .message_id(&rec.id);
            if let Some(stream) = &self.cfg.stream {
                msg = msg.expected_stream(stream);
            }
            let ack = js
                .send_publish(self.subject.clone(), msg)
                .await
                .map_err(|e| self.refused(&e, rec))?;
            acks.push((rec, ack));
        }
        for (rec, ack) in acks {
            ack.await.map_err(|e| self.refused(&e, rec))?;
        }
        Ok(())
    }

    /// A failed publish as a delivery error: a finding too big for the
    /// server or the stream is refused for good; the rest is retried.
    fn refused(&self, e: &PublishError, rec: &FindingRecord) -> DeliveryError {
        let too_big = || {
            std::error::Error::source(e)
                .and_then(|s| s.downcast_ref::<jetstream::Error>())
                .is_some_and(|j| j.error_code() == ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM)
        };
        match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => DeliveryError::permanent(format!(
                "finding {} is over the server's max_payload: {e}",
                rec.id
            )),
            _ if too_big() => DeliveryError::permanent(format!(
                "finding {} is over the stream's maximum message size: {e}",
                rec.id
            )),
            PublishErrorKind::StreamNotFound => DeliveryError::transient(format!(
                "no JetStream stream answers on {} (no responders)",
                self.cfg.subject
            )),
            PublishErrorKind::TimedOut => DeliveryError::transient(format!(
                "no JetStream ack for finding {} within {} ms",
                rec.id,
                self.timeout.as_millis()
            )),
            _ => DeliveryError::transient(format!(
                "JetStream publish of finding {} failed: {e}",
                rec.id
            )),
        }
    }
}

/// A JetStream context on the server and with the credentials, TLS rules,
/// caps and bounds of `cfg`, for the other users of a NATS connection (the
/// heartbeat of `vigil run`, `vigil fleet`), so that they connect exactly
/// as the findings output does; the guard counts into `counter`.
pub async fn connect(cfg: &NatsConfig, counter: GuardCounter) -> Result<Connection, DeliveryError> {
    let mut nats = Nats::new(cfg, tokio::runtime::Handle::current())
        .map_err(|e| DeliveryError::permanent(e.to_string()))?;
    nats.counter = counter;
    nats.connect().await
}

impl Output for Nats {
    fn attach_metrics(&mut self, metrics: &Arc<OutputMetrics>) {
        self.counter = output_counter(metrics.clone());
    }

    fn deliver(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError> {
        let rt = self.rt.clone();
        rt.block_on(async {
            // A client that lost its server while idle (and may have given
            // up reconnecting) is replaced now rather than failing a batch.
            let js = match self.js.take() {
                Some(js) if js.client().connection_state() == State::Connected => js,
                _ => self.connect().await?,
            };
            let mut r = match tokio::time::timeout(self.timeout, self.publish(&js, batch)).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::transient(format!(
                    "no JetStream ack within {} ms",
                    self.timeout.as_millis()
                ))),
            };
            // The client only saw its connection close, or no ack come;
            // the guard knows why (a cut connection, or the server's -ERR).
            if let (Err(e), Some(why)) = (&mut r, js.guard_error()) {
                e.message = format!("{}: {why}", e.message);
            }
            if let (Err(e), Some(said)) = (&mut r, js.server_error()) {
                e.message = format!("{} (the server said: {said})", e.message);
            }
            // A transient failure starts over on a fresh client: a dead
            // server's client stops reconnecting after MAX_RECONNECTS, and a
            // new one re-reads rotated credentials.
            if !r.as_ref().is_err_and(|e| !e.permanent) {
                self.js = Some(js);
            }
            r
        })
    }
}
