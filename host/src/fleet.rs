//! `vigil fleet`: the fleet as a whole. Every `vigil run` publishes its
//! findings (`[[outputs.nats]]`) and heartbeats (`[heartbeat]`) to one
//! JetStream stream; `vigil fleet` reads it through a durable pull consumer
//! (JetStream keeps its position: a restarted fleet, or a standby taking
//! over, resumes where the last ack left it), builds the fleet's
//! [`picture`], and reports fleet findings (`fleet/node-silent`,
//! `fleet/plugin-digest-differs`, `fleet/remote-on-nodes`, and
//! `fleet/churn-spike`: container churn summed over the nodes against a
//! fleet baseline, [`churn`]) through the same delivery pipeline as `vigil
//! run` (spool, dedup, outputs).
//!
//! Only the holder of the [`lease`] consumes; others stand by and try to
//! take it every third of its TTL. A message is acked after its fleet
//! findings were claimed and handed to the delivery pipeline; an instance
//! killed before the ack leaves the message to be redelivered, and the
//! claim (a key-value `create` of the finding's deterministic id) keeps it
//! from being reported twice. A message redelivered to the instance that
//! took it (its ack lost while NATS was away) is acked without being
//! taken again, so the picture counts it and the rules get it once. On
//! taking the lease, the last heartbeat of
//! every node is read back from the stream (last per subject), so that a
//! node that fell silent while no instance was active is still seen, and
//! the churn baseline the last active instance stored is restored.
//!
//! Bad input is counted and skipped, never fatal: a message over
//! `fleet.max_message_bytes` (`vigil_fleet_oversized_total`), one that
//! does not parse (`vigil_fleet_malformed_total`), a heartbeat whose body
//! names another node than its subject (`vigil_fleet_spoofed_total`: NATS
//! permissions tie a node's credentials to its own heartbeat subject, so
//! the subject is what the server vouched for, the body is not). Findings
//! share one subject, so their `node` cannot be checked that way. Findings
//! must be in the `vigil` format.
//!
//! Fleet rules as Wasm plugins ([`rules`]): plugins that receive findings
//! (`correlate`) are handed every node's findings as the fleet reads them,
//! plugins that export `fleet` (WIT 0.1.3) every heartbeat that passed the
//! subject check (the last one of each node again when this instance takes
//! over), and what they report is a fleet finding like the built-in rules'
//! (claimed once, same delivery).

pub mod churn;
mod lease;
pub mod picture;
mod rules;

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
use vigil_delivery::outputs::nats::{GuardCounter, GuardEvent};
use vigil_runtime::workers::PluginFinding;

/// The plugin name fleet findings carry.
pub const PLUGIN: &str = "fleet";

/// Messages fetched at once (below the client's subscription capacity).
const BATCH: usize = 32;

/// Longest wait of one fetch: the loop also renews the lease and runs the
/// time-driven rules.
const FETCH_WAIT: Duration = Duration::from_millis(500);

/// How often the time-driven rules (node silence, digest majority, the
/// Wasm rules' `tick`) run while messages flow.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// How often `fleet.state_file` is rewritten (the whole picture as JSON:
/// megabytes for thousands of nodes).
const STATE_EVERY: Duration = Duration::from_secs(1);

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
    /// The Wasm fleet rules; `None` when none is configured.
    plugins: Option<rules::FleetRules>,
    /// This instance's node name: its own findings, should an output send
    /// them back to the stream, are not handed to the rules (no loop).
    node: String,
    /// The churn baseline as last stored or restored (written again only
    /// when it differs).
    churn_stored: Vec<u8>,
    /// Stream sequence of the last message this instance took from the
    /// consumer: one at or below it is a redelivery of a message already
    /// taken, whose ack was lost (NATS went away between the two).
    taken_seq: u64,
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
        match crate::admin::start(
            addr,
            crate::admin::AdminState {
                registry: registry.clone(),
                timeline: None,
            },
            stop_rx,
        ) {
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
    let plugins = rules::FleetRules::load(&config, &registry)?;
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
            churn: cfg.churn.rule(),
        },
        cfg,
        picture: Picture::default(),
        registry,
        findings: ftx,
        me,
        plugins,
        node: node.to_string(),
        churn_stored: Vec::new(),
        taken_seq: 0,
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
        let host = self.registry.host.clone();
        let counter: GuardCounter = Arc::new(move |event| match event {
            GuardEvent::Violation => PluginMetrics::add(&host.fleet_protocol_violations, 1),
            GuardEvent::Refused => PluginMetrics::add(&host.fleet_guard_refused, 1),
        });
        let js = vigil_delivery::outputs::nats::connect(&self.cfg.connection(), counter).await?;
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
        let mut next_check = tokio::time::Instant::now();
        let mut next_state = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_renew {
                let was = lease.held();
                let held = lease.tick().await?;
                next_renew = tokio::time::Instant::now() + renew_every;
                if held && !was {
                    PluginMetrics::add(&self.registry.host.fleet_takeovers, 1);
                    tracing::info!(instance = %self.me, "fleet: lease taken, this instance is active");
                    self.restore_churn(lease).await?;
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
                // The consumer delivers in stream order, so a sequence at or
                // below the last taken is that message again: counted in the
                // picture and handed to the rules once, acked again.
                let seq = msg.info().map_or(0, |i| i.stream_sequence);
                if seq != 0 && seq <= self.taken_seq {
                    tracing::info!(seq, "fleet: redelivered message already taken, acked again");
                } else {
                    let found = self.take(&msg);
                    self.report(lease, found).await?;
                    self.taken_seq = self.taken_seq.max(seq);
                }
                msg.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            }
            // The time-driven rules and the state file go over the whole
            // picture (every node): at most every CHECK_EVERY, not after
            // every batch, so a backlog drains at the speed of the messages.
            let tick = tokio::time::Instant::now();
            if tick >= next_check {
                next_check = tick + CHECK_EVERY;
                let now = vigil_core::time::wall_now() / 1_000_000;
                let mut found = native(self.picture.check(now, watching_since, self.rules));
                if let Some(p) = &mut self.plugins {
                    found.extend(tokio::task::block_in_place(|| p.tick()));
                }
                self.report(lease, found).await?;
            }
            if tick >= next_state {
                next_state = tick + STATE_EVERY;
                self.store_churn(lease).await?;
                self.write_state(true);
            }
        }
    }

    /// Continues from the churn baseline the last active instance stored
    /// (this one just became active). A stored baseline that cannot be
    /// used (other windows, malformed) is logged and learning starts over.
    async fn restore_churn(&mut self, lease: &Lease) -> anyhow::Result<()> {
        // The windows before now were nobody's here: the heartbeats read
        // back next must not fill them in as quiet.
        let now = vigil_core::time::wall_now() / 1_000_000;
        self.picture
            .churn_mut()
            .watching_since(now, self.rules.churn);
        let Some(bytes) = lease.load_churn().await? else {
            tracing::info!("fleet: no churn baseline stored yet");
            return Ok(());
        };
        match churn::ChurnSnapshot::decode(&bytes, self.rules.churn) {
            Ok(snap) => {
                tracing::info!(
                    learned_windows = snap.learned(),
                    "fleet: churn baseline restored"
                );
                self.picture.churn_mut().restore(snap);
                self.churn_stored = bytes;
            }
            Err(e) => tracing::warn!(
                error = %vigil_core::error::chain(&e),
                "fleet: stored churn baseline not used; learning again"
            ),
        }
        Ok(())
    }

    /// Stores the churn baseline when it changed since last stored.
    async fn store_churn(&mut self, lease: &Lease) -> anyhow::Result<()> {
        let Some(snap) = self.picture.churn().snapshot(self.rules.churn) else {
            return Ok(());
        };
        let bytes = snap.encode();
        if bytes != self.churn_stored {
            lease.save_churn(bytes.clone()).await?;
            self.churn_stored = bytes;
        }
        Ok(())
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

    /// Puts one message into the picture and hands a node's finding to the
    /// Wasm rules; returns the fleet findings it completes.
    fn take(&mut self, msg: &Message) -> Vec<FleetFinding> {
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
            serde_json::from_slice::<FindingRecord>(&msg.payload).map(|rec| {
                let mut found = native(self.picture.finding(&rec, self.rules));
                if let Some(p) = &mut self.plugins
                    && rec.node != self.node
                {
                    found.extend(tokio::task::block_in_place(|| p.hand(&rec, at_ms)));
                }
                found
            })
        } else if subject.starts_with(&hb_prefix) {
            serde_json::from_slice::<Heartbeat>(&msg.payload).map(|hb| {
                let token = &subject[hb_prefix.len()..];
                if !picture::subject_names(token, &hb.node) {
                    PluginMetrics::add(&m.fleet_spoofed, 1);
                    // Both names come from outside: escaped for the log.
                    tracing::warn!(
                        subject_node = %vigil_core::text::escape_control(token, 256),
                        body_node = %vigil_core::text::escape_control(&hb.node, 256),
                        "fleet: heartbeat naming another node than its subject skipped"
                    );
                    return Vec::new();
                }
                let mut found = Vec::new();
                if let Some(p) = &mut self.plugins
                    && p.takes_heartbeats()
                {
                    let event = rules::heartbeat_event(&hb, at_ms);
                    found.extend(tokio::task::block_in_place(|| p.hand_heartbeat(&event)));
                }
                found.extend(native(self.picture.heartbeat(hb, at_ms, seq, self.rules)));
                found
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
    async fn report(&self, lease: &Lease, found: Vec<FleetFinding>) -> anyhow::Result<()> {
        for f in found {
            // The id every output gives it (no record needed to know it).
            let id = vigil_core::finding_record::finding_id(&f.finding);
            if !lease.claim(&id).await? {
                tracing::debug!(id, rule = %f.finding.rule_id, "fleet finding already reported");
                continue;
            }
            PluginMetrics::add(&self.registry.host.fleet_findings, 1);
            // A rule plugin's text is escaped like any plugin's.
            let summary = vigil_core::text::escape_control(&f.finding.summary, 1024);
            tracing::info!(id, plugin = %f.plugin, rule = %f.finding.rule_id, summary = %summary, "fleet finding");
            let sent = self.findings.send(PluginFinding {
                plugin: f.plugin.into(),
                plugin_version: f.version.into(),
                finding: f.finding,
                verdicts: f.verdicts,
                depth: f.depth,
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

/// A fleet finding: of the native rules (plugin `fleet`) or of a Wasm rule.
pub struct FleetFinding {
    pub plugin: String,
    pub version: String,
    pub finding: Finding,
    pub verdicts: Vec<vigil_core::subjects::Verdict>,
    pub depth: u32,
}

/// The native rules' findings, under the plugin name `fleet`.
fn native(found: Vec<Finding>) -> Vec<FleetFinding> {
    found
        .into_iter()
        .map(|finding| FleetFinding {
            plugin: PLUGIN.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            finding,
            verdicts: Vec::new(),
            // Made from the fleet's picture, not from findings handed on.
            depth: 0,
        })
        .collect()
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}
