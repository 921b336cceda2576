//! `vigil fleet`: the fleet as a whole. Every `vigil run` publishes its
//! findings (`[[outputs.nats]]`) and heartbeats (`[heartbeat]`) to one
//! JetStream stream; `vigil fleet` reads it through a durable pull consumer
//! (JetStream keeps its position: a restarted fleet, or a standby taking
//! over, resumes where the last ack left it), builds the fleet's
//! [`picture`], and reports fleet findings (`fleet/node-silent`,
//! `fleet/plugin-digest-differs`, `fleet/remote-on-nodes`) through the same
//! delivery pipeline as `vigil run` (spool, dedup, outputs).
//!
//! Only the holder of the [`lease`] consumes; others stand by and try to
//! take it every third of its TTL. A message is acked after its fleet
//! findings were claimed and handed to the delivery pipeline; an instance
//! killed before the ack leaves the message to be redelivered, and the
//! claim (a key-value `create` of the finding's deterministic id) keeps it
//! from being reported twice. On taking the lease, the last heartbeat of
//! every node is read back from the stream (last per subject), so that a
//! node that fell silent while no instance was active is still seen.
//!
//! Bad input is counted and skipped, never fatal: a message over
//! `fleet.max_message_bytes` (`vigil_fleet_oversized_total`), one that
//! does not parse (`vigil_fleet_malformed_total`). Findings must be in the
//! `vigil` format. Fleet rules as Wasm plugins are not here yet (they need
//! findings and heartbeats as plugin events).

mod lease;
pub mod picture;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, Message};
use futures_util::StreamExt;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::FleetArgs;
use crate::config::{FleetConfig, VigilConfig};
use lease::Lease;
use picture::{Heartbeat, Picture, Rules};
use vigil_core::finding_record::FindingRecord;
use vigil_core::metrics::{PluginMetrics, Registry};
use vigil_core::model::Finding;
use vigil_delivery::Delivery;
use vigil_runtime::workers::PluginFinding;

/// The plugin name fleet findings carry.
pub const PLUGIN: &str = "fleet";

/// Messages fetched at once (below the client's subscription capacity).
const BATCH: usize = 32;

/// Longest wait of one fetch: the loop also renews the lease and runs the
/// time-driven rules.
const FETCH_WAIT: Duration = Duration::from_millis(500);

/// The configuration: the file, then the flags, then validation.
pub fn load_config(args: &FleetArgs) -> anyhow::Result<VigilConfig> {
    let mut config = match &args.config {
        Some(path) => crate::config::load_file(path)?,
        None => VigilConfig::default(),
    };
    if let Some(node) = &args.node {
        config.node = Some(node.clone());
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    config.check()?;
    Ok(config)
}

/// Runs until SIGINT or SIGTERM.
pub fn run(config: VigilConfig) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(config))
}

/// Everything the loop owns.
struct Fleet {
    cfg: FleetConfig,
    rules: Rules,
    picture: Picture,
    registry: Arc<Registry>,
    findings: std_mpsc::Sender<PluginFinding>,
    me: String,
}

async fn run_async(config: VigilConfig) -> anyhow::Result<ExitCode> {
    let node = config.node_name();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let registry = Arc::new(Registry::default());
    // `[admin]` as for `vigil run`: /metrics shows the fleet counters.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if config.admin.enabled
        && let Some(addr) = config.admin.addr()
    {
        match crate::admin::start(addr, registry.clone(), stop_rx) {
            Ok(bound) => tracing::info!(address = %bound, "admin endpoint: listening"),
            Err(e) => {
                tracing::error!(error = %vigil_core::error::chain(&e), "admin endpoint: off")
            }
        }
    }
    let (ftx, frx) = std_mpsc::channel::<PluginFinding>();
    let delivery = Delivery::start(
        &config.delivery(),
        &config.data_dir,
        &node,
        frx,
        registry.clone(),
        &tokio::runtime::Handle::current(),
        None,
    )?;
    let cfg = config.fleet.clone();
    let me = format!(
        "{node}/{}/{}",
        std::process::id(),
        vigil_core::time::wall_now()
    );
    let mut fleet = Fleet {
        rules: Rules {
            missed_heartbeats: cfg.missed_heartbeats,
            remote_min_nodes: cfg.remote_min_nodes,
        },
        cfg,
        picture: Picture::default(),
        registry,
        findings: ftx,
        me,
    };
    tracing::info!(instance = %fleet.me, stream = %fleet.cfg.stream, "vigil fleet starting");
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut lease = None;
        let stop = tokio::select! {
            r = fleet.session(&mut lease) => {
                if let Err(e) = r {
                    tracing::warn!(error = %format!("{e:#}"), "fleet: NATS session ended; reconnecting");
                }
                false
            }
            _ = tokio::signal::ctrl_c() => true,
            _ = sigterm.recv() => true,
        };
        if stop {
            // A clean stop hands the lease over at once.
            if let Some(mut l) = lease {
                l.release().await;
            }
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    tracing::info!("vigil fleet shutting down");
    let _ = stop_tx.send(true);
    drop(fleet);
    tokio::task::block_in_place(|| delivery.shutdown());
    Ok(ExitCode::SUCCESS)
}

impl Fleet {
    /// One connection's life: lease, consumer, messages. Returns on any
    /// NATS failure; the caller reconnects.
    async fn session(&mut self, slot: &mut Option<Lease>) -> anyhow::Result<()> {
        let js = vigil_delivery::outputs::nats::connect(&self.cfg.connection()).await?;
        let ttl = Duration::from_millis(self.cfg.lease_ttl_ms);
        let lease =
            slot.insert(Lease::open(&js, &self.cfg.lease_bucket, ttl, self.me.clone()).await?);
        let stream = js
            .get_stream(&self.cfg.stream)
            .await
            .with_context(|| format!("stream {}", self.cfg.stream))?;
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .get_or_create_consumer(
                &self.cfg.durable,
                pull::Config {
                    durable_name: Some(self.cfg.durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    // A message of a killed instance goes to the standby
                    // about when the standby has taken the lease.
                    ack_wait: ttl,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("durable consumer {}", self.cfg.durable))?;
        let mut watching_since = vigil_core::time::wall_now() / 1_000_000;
        let renew_every = ttl / 3;
        let mut next_renew = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_renew {
                let was = lease.held();
                let held = lease.tick().await?;
                next_renew = tokio::time::Instant::now() + renew_every;
                if held && !was {
                    PluginMetrics::add(&self.registry.host.fleet_takeovers, 1);
                    tracing::info!(instance = %self.me, "fleet: lease taken, this instance is active");
                    self.replay_heartbeats(&stream).await?;
                    watching_since = vigil_core::time::wall_now() / 1_000_000;
                } else if was && !held {
                    tracing::warn!(instance = %self.me, "fleet: lease lost, standing by");
                }
            }
            if !lease.held() {
                self.write_state(false);
                tokio::time::sleep_until(next_renew).await;
                continue;
            }
            let mut batch = consumer
                .fetch()
                .max_messages(BATCH)
                .expires(FETCH_WAIT)
                .messages()
                .await
                .context("fetch")?;
            while let Some(msg) = batch.next().await {
                let msg = msg.map_err(|e| anyhow::anyhow!("fetch: {e}"))?;
                let found = self.take(&msg);
                self.report(lease, found).await?;
                msg.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            }
            let now = vigil_core::time::wall_now() / 1_000_000;
            let found = self.picture.check(now, watching_since, self.rules);
            self.report(lease, found).await?;
            self.write_state(true);
        }
    }

    /// Reads every node's last heartbeat back from the stream (an ordered,
    /// ephemeral consumer, last message per subject): the picture of an
    /// instance that just became active.
    async fn replay_heartbeats(
        &mut self,
        stream: &jetstream::stream::Stream,
    ) -> anyhow::Result<()> {
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: format!("{}.>", self.cfg.heartbeat_subject_prefix),
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .context("heartbeat replay consumer")?;
        let mut messages = consumer.messages().await.context("heartbeat replay")?;
        let mut read = 0u64;
        while let Ok(Some(msg)) = tokio::time::timeout(FETCH_WAIT, messages.next()).await {
            let msg = msg.map_err(|e| anyhow::anyhow!("heartbeat replay: {e}"))?;
            self.take(&msg);
            read += 1;
            if msg.info().is_ok_and(|i| i.pending == 0) {
                break;
            }
        }
        tracing::info!(heartbeats = read, "fleet: last heartbeats read back");
        Ok(())
    }

    /// Puts one message into the picture; returns the fleet findings it completes.
    fn take(&mut self, msg: &Message) -> Vec<Finding> {
        let m = &self.registry.host;
        PluginMetrics::add(&m.fleet_messages, 1);
        let subject = msg.subject.as_str();
        if msg.payload.len() > self.cfg.max_message_bytes {
            PluginMetrics::add(&m.fleet_oversized, 1);
            tracing::warn!(
                subject,
                bytes = msg.payload.len(),
                "fleet: message over max_message_bytes skipped"
            );
            return Vec::new();
        }
        let (at_ms, seq) = msg.info().map_or((0, 0), |i| {
            let ms = i.published.unix_timestamp_nanos() / 1_000_000;
            (u64::try_from(ms).unwrap_or(0), i.stream_sequence)
        });
        let hb_prefix = format!("{}.", self.cfg.heartbeat_subject_prefix);
        let parsed = if subject == self.cfg.findings_subject {
            serde_json::from_slice::<FindingRecord>(&msg.payload)
                .map(|rec| self.picture.finding(&rec, self.rules))
        } else if subject.starts_with(&hb_prefix) {
            serde_json::from_slice::<Heartbeat>(&msg.payload).map(|hb| {
                self.picture.heartbeat(hb, at_ms, seq);
                Vec::new()
            })
        } else {
            // Another subject of the stream: not the fleet's business.
            return Vec::new();
        };
        parsed.unwrap_or_else(|e| {
            PluginMetrics::add(&m.fleet_malformed, 1);
            tracing::warn!(subject, error = %e, "fleet: malformed message skipped");
            Vec::new()
        })
    }

    /// Claims each fleet finding and hands the first claim to delivery.
    async fn report(&self, lease: &Lease, found: Vec<Finding>) -> anyhow::Result<()> {
        for f in found {
            let id = FindingRecord::new(f.clone(), PLUGIN, "", "", 0).id;
            if !lease.claim(&id).await? {
                tracing::debug!(id, rule = %f.rule_id, "fleet finding already reported");
                continue;
            }
            PluginMetrics::add(&self.registry.host.fleet_findings, 1);
            tracing::info!(id, rule = %f.rule_id, summary = %f.summary, "fleet finding");
            let sent = self.findings.send(PluginFinding {
                plugin: PLUGIN.into(),
                plugin_version: env!("CARGO_PKG_VERSION").into(),
                finding: f,
                verdicts: Vec::new(),
                // Made from the fleet's picture, not from findings handed on.
                depth: 0,
            });
            if sent.is_err() {
                anyhow::bail!("the delivery pipeline has stopped");
            }
        }
        Ok(())
    }

    /// Writes the picture to `fleet.state_file`, when set (replaced
    /// atomically: a reader never sees half a file).
    fn write_state(&self, active: bool) {
        let Some(path) = &self.cfg.state_file else {
            return;
        };
        let v = serde_json::json!({
            "instance": self.me,
            "active": active,
            "picture": if active { serde_json::to_value(&self.picture).unwrap_or_default() } else { serde_json::Value::Null },
        });
        if let Err(e) = write_atomic(path, &v.to_string()) {
            tracing::warn!(path = %path.display(), error = %e, "fleet: cannot write the state file");
        }
    }
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}
