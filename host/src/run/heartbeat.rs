//! The heartbeat of `vigil run` (`[heartbeat]`): every `interval_ms` a
//! compact JSON object (schema `vigil.heartbeat/v1`: node, version, the
//! plugins with their SHA-256 digests, the sources on and off, a few
//! counters) is published to JetStream on `PREFIX.<node>` through the
//! connection settings of the first `[[outputs.nats]]`.
//!
//! Heartbeats are not spooled: a heartbeat is a statement about *now*, and
//! the fleet reads a gap as a silent node, which is what it was. A failed
//! one is counted (`vigil_heartbeats_failed_total`), logged, and the client
//! rebuilt for the next. `Nats-Msg-Id` is `node/boot/seq`, so a publish
//! retried by the library is stored once.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use serde::Serialize;
use tokio::sync::watch;

use crate::config::HeartbeatConfig;
use vigil_core::metrics::{PluginMetrics, Registry};
use vigil_delivery::outputs::OutputConfig;
use vigil_delivery::outputs::nats::{
    Connection, GuardCounter, NatsConfig, connect, output_counter,
};

/// The schema name of every heartbeat.
pub const SCHEMA: &str = "vigil.heartbeat/v1";

/// A plugin as the heartbeat names it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PluginDigest {
    pub name: String,
    pub version: String,
    /// SHA-256 of the plugin's file (or embedded bytes), lowercase hex.
    pub digest: String,
}

/// What the main loop keeps current for the heartbeat (plugins and sources
/// change on reload).
#[derive(Debug, Default, Clone)]
pub struct Status {
    pub plugins: Vec<PluginDigest>,
    /// Every source key with whether it runs.
    pub sources: Vec<(String, bool)>,
}

/// Shared between the main loop (writer) and the heartbeat task.
pub type SharedStatus = Arc<Mutex<Status>>;

#[derive(Serialize)]
struct Heartbeat<'a> {
    schema: &'static str,
    node: &'a str,
    version: &'static str,
    /// Distinguishes two runs of the same node (the message ids).
    boot: u64,
    seq: u64,
    time: String,
    interval_ms: u64,
    plugins: &'a [PluginDigest],
    sources: serde_json::Map<String, serde_json::Value>,
    counters: serde_json::Value,
}

/// Publishes heartbeats until `stop` turns true.
pub async fn run(
    cfg: HeartbeatConfig,
    nats: NatsConfig,
    node: Arc<str>,
    status: SharedStatus,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    let subject = format!("{}.{}", cfg.subject_prefix, subject_token(&node));
    let boot = vigil_core::time::wall_now();
    let mut link = Link {
        // Same server, same settings, same counters as the findings output.
        counter: output_counter(registry.delivery.output(&nats.spec().name)),
        nats,
        js: None,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(cfg.interval_ms));
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        seq += 1;
        let payload = {
            let s = status.lock().unwrap_or_else(PoisonError::into_inner);
            encode(&cfg, &node, boot, seq, &s, &registry)
        };
        let r = publish(&mut link, &subject, &node, boot, seq, payload).await;
        match r {
            Ok(()) => PluginMetrics::add(&registry.host.heartbeats_sent, 1),
            Err(mut e) => {
                // The client only saw its connection close, or no ack come;
                // the guard knows why (a cut connection, or the server's -ERR:
                // a subject this node's user may not publish to).
                if let Some(conn) = link.js.take() {
                    if let Some(why) = conn.guard_error() {
                        e = format!("{e}: {why}");
                    }
                    if let Some(said) = conn.server_error() {
                        e = format!("{e} (the server said: {said})");
                    }
                }
                PluginMetrics::add(&registry.host.heartbeats_failed, 1);
                tracing::warn!(subject = %subject, error = %e, "heartbeat not stored; the next one follows");
            }
        }
    }
}

/// The NATS connection of the heartbeat, built when missing.
struct Link {
    nats: NatsConfig,
    counter: GuardCounter,
    js: Option<Connection>,
}

async fn publish(
    link: &mut Link,
    subject: &str,
    node: &str,
    boot: u64,
    seq: u64,
    payload: Vec<u8>,
) -> Result<(), String> {
    if link.js.is_none() {
        let conn = connect(&link.nats, link.counter.clone()).await;
        link.js = Some(conn.map_err(|e| e.to_string())?);
    }
    let Some(ctx) = link.js.as_ref() else {
        return Err("no connection".into());
    };
    let msg = PublishMessage::build()
        .payload(payload.into())
        .message_id(format!("{node}/{boot}/{seq}"));
    let timeout = Duration::from_millis(link.nats.timeout_ms);
    let ack = ctx
        .send_publish(subject.to_owned(), msg)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(timeout, ack)
        .await
        .map_err(|_| format!("no JetStream ack within {} ms", timeout.as_millis()))?
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn encode(
    cfg: &HeartbeatConfig,
    node: &str,
    boot: u64,
    seq: u64,
    status: &Status,
    registry: &Registry,
) -> Vec<u8> {
    let sources = status
        .sources
        .iter()
        .map(|(k, on)| (k.clone(), serde_json::Value::Bool(*on)))
        .collect();
    let d = &registry.delivery;
    let h = &registry.host;
    let counters = serde_json::json!({
        "spool_depth": d.spool_depth.load(Ordering::Relaxed),
        "spool_errors": d.spool_errors.load(Ordering::Relaxed),
        "plugins": registry.gauges.plugins.load(Ordering::Relaxed),
        "sources": registry.gauges.sources.load(Ordering::Relaxed),
        "reloads_failed": h.reloads_failed.load(Ordering::Relaxed),
        "heartbeats_failed": h.heartbeats_failed.load(Ordering::Relaxed),
        // Since boot; `vigil fleet` sums the deltas over nodes (fleet/churn-spike).
        "containers_created": h.containers_created.load(Ordering::Relaxed),
        "containers_started": h.containers_started.load(Ordering::Relaxed),
    });
    let hb = Heartbeat {
        schema: SCHEMA,
        node,
        version: env!("CARGO_PKG_VERSION"),
        boot,
        seq,
        time: vigil_core::time::format_rfc3339(vigil_core::time::wall_now()),
        interval_ms: cfg.interval_ms,
        plugins: &status.plugins,
        sources,
        counters,
    };
    // A struct of strings, numbers and maps: encoding cannot fail.
    serde_json::to_vec(&hb).unwrap_or_default()
}

/// A node name as one subject token: `.`, `*`, `>` and whitespace would
/// change the subject's meaning, so they become `_`.
pub fn subject_token(node: &str) -> String {
    node.chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_become_one_subject_token() {
        assert_eq!(subject_token("node-1"), "node-1");
        assert_eq!(subject_token("ip-10.0.0.1 *>"), "ip-10_0_0_1___");
    }

    #[test]
    fn a_heartbeat_names_plugins_digests_and_sources() {
        let status = Status {
            plugins: vec![PluginDigest {
                name: "container-escape".into(),
                version: "0.1.0".into(),
                digest: "ab".repeat(32),
            }],
            sources: vec![("docker".into(), false), ("network".into(), true)],
        };
        let bytes = encode(
            &HeartbeatConfig::default(),
            "n1",
            7,
            3,
            &status,
            &Registry::default(),
        );
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["node"], "n1");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["interval_ms"], 10_000);
        assert_eq!(v["plugins"][0]["digest"], "ab".repeat(32));
        assert_eq!(v["sources"]["docker"], false);
        assert_eq!(v["sources"]["network"], true);
        assert_eq!(v["counters"]["spool_depth"], 0);
    }
}
