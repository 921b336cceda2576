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
//! Credentials never travel in clear text unless the operator says so
//! (`allow_plaintext_credentials`): with a user or a token configured the
//! client requires TLS, so against a plaintext server the TLS handshake
//! fails right after the server's `INFO`, before `CONNECT` (which carries
//! the credentials) is written.
//!
//! The client is built by the output thread inside the shared runtime (like
//! the webhook's connection) and bounded so a dead server can neither hang
//! a delivery nor pile up findings in memory: every connect and every batch
//! has `timeout_ms`, the command queue holds a few batches, at most
//! `2 × batch_max` acks wait at once, and the library reconnects on its own
//! only [`MAX_RECONNECTS`] times in a row (a blip). Past that, and after any
//! other transient failure, the client is dropped and the pipeline's retry
//! with backoff builds a new one, which also re-reads the credential files.
//! Protocol reads rely on the library: it parses one operation at a time
//! out of a growable buffer and has no byte cap of its own; what the server
//! sends is bounded by the server's `max_payload` (our only subscription is
//! the request inbox, which carries acks of a few hundred bytes), and the
//! handshake (`INFO` read, TLS, `CONNECT`) by `timeout_ms`.

mod config;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{ContextBuilder, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{ConnectOptions, Subject};

use super::{DeliveryError, Output};
pub use config::NatsConfig;
use config::{Url, parse_url};
use vigil_core::finding_record::FindingRecord;

/// Reconnects the library tries by itself after losing the server, before
/// the output drops the client and leaves the rest to the pipeline's backoff.
/// Also bounds the background task of a dropped client (it exits at the
/// next failed attempt or once reconnected and idle).
const MAX_RECONNECTS: usize = 3;

/// Commands (publishes, pings) the client queues for its connection besides
/// the batches in flight.
const COMMAND_SLACK: usize = 64;

/// A NATS JetStream output.
pub struct Nats {
    cfg: NatsConfig,
    url: Url,
    subject: Subject,
    timeout: Duration,
    rt: tokio::runtime::Handle,
    /// The connected client, dropped after a transient failure.
    js: Option<jetstream::Context>,
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
        })
    }

    /// The client options: TLS, credentials read now, and the bounds.
    fn options(&self) -> Result<ConnectOptions, DeliveryError> {
        let tls_required = self.url.tls || self.cfg.tls_for_credentials();
        let mut opts = ConnectOptions::new()
            .name("vigil")
            .require_tls(tls_required)
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout))
            .client_capacity(self.cfg.batch_max * 2 + COMMAND_SLACK)
            .subscription_capacity(COMMAND_SLACK)
            .max_reconnects(MAX_RECONNECTS)
            // Credentials go to the configured server only, never to one a
            // server's INFO advertises.
            .ignore_discovered_servers();
        // A `nats://` server may still ask for TLS in its INFO, so the
        // settings are given whenever they can be built; without any trusted
        // root they matter only when TLS is required here.
        match super::webhook::tls_client_config(self.cfg.ca_file.as_deref()) {
            Ok(tls) => opts = opts.tls_client_config(tls),
            Err(e) if tls_required => return Err(DeliveryError::transient(e.to_string())),
            Err(_) => {}
        }
        if let Some(token) = secret(self.cfg.token_file.as_ref())? {
            opts = opts.token(token);
        }
        if let (Some(user), Some(pass)) = (&self.cfg.user, secret(self.cfg.password_file.as_ref())?)
        {
            opts = opts.user_and_password(user.clone(), pass);
        }
        Ok(opts)
    }

    async fn connect(&self) -> Result<jetstream::Context, DeliveryError> {
        let server = self.url.server();
        let why_tls = if !self.url.tls && self.cfg.tls_for_credentials() {
            " (TLS required: credentials are configured and allow_plaintext_credentials is false)"
        } else {
            ""
        };
        let client = tokio::time::timeout(self.timeout, self.options()?.connect(server.as_str()))
            .await
            .map_err(|_| {
                DeliveryError::transient(format!(
                    "cannot connect to NATS {server}{why_tls}: no answer within {} ms",
                    self.timeout.as_millis()
                ))
            })?
            .map_err(|e| {
                DeliveryError::transient(format!("cannot connect to NATS {server}{why_tls}: {e}"))
            })?;
        Ok(ContextBuilder::new()
            .timeout(self.timeout)
            // Acks of a batch abandoned on a permanent refusal still hold
            // their slot until they arrive or time out: room for two batches.
            .max_ack_inflight(self.cfg.batch_max * 2)
            .ack_timeout(self.timeout)
            .build(client))
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

/// A JetStream context on the server and with the credentials, TLS rules
/// and bounds of `cfg`, for the other users of a NATS connection (the
/// heartbeat of `vigil run`, `vigil fleet`), so that they connect exactly
/// as the findings output does.
pub async fn connect(cfg: &NatsConfig) -> Result<jetstream::Context, DeliveryError> {
    let nats = Nats::new(cfg, tokio::runtime::Handle::current())
        .map_err(|e| DeliveryError::permanent(e.to_string()))?;
    nats.connect().await
}

impl Output for Nats {
    fn deliver(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError> {
        let rt = self.rt.clone();
        rt.block_on(async {
            // A client that lost its server while idle (and may have given
            // up reconnecting) is replaced now rather than failing a batch.
            let js = match self.js.take() {
                Some(js) if js.client().connection_state() == State::Connected => js,
                _ => self.connect().await?,
            };
            let r = match tokio::time::timeout(self.timeout, self.publish(&js, batch)).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::transient(format!(
                    "no JetStream ack within {} ms",
                    self.timeout.as_millis()
                ))),
            };
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
