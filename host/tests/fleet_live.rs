//! The fleet on the real engine, loopback: a `nats-server` with JetStream
//! (Debian's package, `scripts/test-deps.sh`), three `vigil run` nodes
//! (`--node n1..n3`) publishing findings and heartbeats, and two
//! `vigil fleet` instances sharing one durable consumer and one lease.
//!
//! One scenario, in order, because each step builds on the fleet's state:
//! every node's findings are seen once; the node whose plugin file differs
//! is reported (`fleet/plugin-digest-differs`); the active fleet is killed
//! and the standby takes over within the lease TTL; a node killed is
//! reported `fleet/node-silent` within its heartbeat timeout; NATS is
//! restarted and findings made meanwhile arrive; a fleet restarted resumes
//! from the durable position (old findings not read again); and no fleet
//! finding is ever reported twice, over both instances.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::{
    QUIET_SOURCES, append, audit_line, falco_event, hostile_plugin,
};
use vigil_test_support::nats::NatsServer;
use vigil_test_support::net::free_port;
use vigil_test_support::{TempDir, VigilProcess};

/// Heartbeat interval of the nodes, and the lease TTL of the fleet.
const INTERVAL_MS: u64 = 500;
const MISSED: u64 = 4;
const TTL_MS: u64 = 3_000;

/// A user name and its password.
type Auth<'a> = Option<(&'a str, &'a str)>;

async fn jetstream(port: u16, auth: Auth<'_>) -> async_nats::jetstream::Context {
    let mut options = async_nats::ConnectOptions::new();
    if let Some((user, pass)) = auth {
        options = options.user_and_password(user.into(), pass.into());
    }
    let client = options
        .connect(format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    async_nats::jetstream::new(client)
}

/// The stream an operator would provision: findings and heartbeats.
fn create_stream(port: u16) {
    create_stream_as(port, None);
}

fn create_stream_as(port: u16, auth: Auth<'_>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let js = jetstream(port, auth).await;
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "VIGIL".into(),
            subjects: vec!["vigil.findings".into(), "vigil.heartbeat.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    });
}

const QUIET: &str = r#"
[dedup]
window_secs = 0
[spool]
shutdown_grace_ms = 200
"#;

struct Node {
    name: String,
    log: PathBuf,
    process: VigilProcess,
    events: usize,
}

impl Node {
    fn start(dir: &Path, port: u16, name: &str, plugins: &Path) -> Self {
        Self::start_with(dir, port, name, plugins, "")
    }

    /// [`Node::start`] with more `[[outputs.nats]]` keys (credentials).
    fn start_with(dir: &Path, port: u16, name: &str, plugins: &Path, nats: &str) -> Self {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"{QUIET_SOURCES}{QUIET}
[heartbeat]
enabled = true
interval_ms = {INTERVAL_MS}
[[outputs.nats]]
url = "nats://127.0.0.1:{port}"
subject = "vigil.findings"
stream = "VIGIL"
timeout_ms = 1000
retry = {{ initial_ms = 100, max_ms = 300 }}
{nats}
"#
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}-audit.log"));
        std::fs::write(&log, "").unwrap();
        let process = VigilProcess::spawn(
            vigil()
                .arg("run")
                .arg("--config")
                .arg(&config)
                .args(["--node", name])
                .arg("--data-dir")
                .arg(dir.join(format!("data-{name}")))
                .arg("--plugin-dir")
                .arg(plugins)
                .args(["--no-cache", "--admin-listen", "127.0.0.1:0"])
                .arg("--audit-log")
                .arg(&log)
                .arg("--audit-log-from-beginning"),
        );
        Self {
            name: name.into(),
            log,
            process,
            events: 0,
        }
    }

    /// One more privileged-pod audit event: findings on this node.
    fn event(&mut self) {
        self.events += 1;
        let id = format!("{}-{}", self.name, self.events);
        append(
            &self.log,
            &audit_line(&falco_event("create_nginx_pod_privileged.json"), &id),
        );
    }

    /// Findings this node has written (its stdout output).
    fn findings(&self) -> usize {
        self.process.findings().len()
    }
}

struct FleetProc {
    state: PathBuf,
    process: VigilProcess,
}

fn fleet(dir: &Path, port: u16, name: &str) -> FleetProc {
    fleet_with(dir, port, name, "")
}

/// [`fleet`] with more `[fleet]` keys (and tables after them).
fn fleet_with(dir: &Path, port: u16, name: &str, extra: &str) -> FleetProc {
    let config = dir.join(format!("{name}.toml"));
    let state = dir.join(format!("{name}.json"));
    std::fs::write(
        &config,
        format!(
            r#"
[dedup]
window_secs = 0
[spool]
shutdown_grace_ms = 200
[admin]
listen = "127.0.0.1:0"
[fleet]
url = "nats://127.0.0.1:{port}"
timeout_ms = 1000
lease_ttl_ms = {TTL_MS}
missed_heartbeats = {MISSED}
state_file = "{}"
{extra}
"#,
            state.display()
        ),
    )
    .unwrap();
    let process = VigilProcess::spawn(
        vigil()
            .arg("fleet")
            .arg("--config")
            .arg(&config)
            .args(["--node", name, "--log", "info"])
            .arg("--data-dir")
            .arg(dir.join(format!("data-{name}"))),
    );
    FleetProc { state, process }
}

impl FleetProc {
    fn state(&self) -> Value {
        std::fs::read_to_string(&self.state)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }

    fn active(&self) -> bool {
        self.process.exited().is_none() && self.state()["active"] == true
    }

    /// Findings of node `n` in this instance's picture.
    fn seen(&self, n: &str) -> u64 {
        self.state()["picture"]["nodes"][n]["findings"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// A copy of `plugin` under `name.wasm`, with a custom section appended
/// when `tamper`: same plugin, same behaviour, another SHA-256.
fn plugin_dir(dir: &Path, sub: &str, plugin: &Path, name: &str, tamper: bool) -> PathBuf {
    let d = dir.join(sub);
    std::fs::create_dir_all(&d).unwrap();
    let mut bytes = std::fs::read(plugin).unwrap();
    if tamper {
        // Section id 0 (custom), size, name "x", one payload byte.
        bytes.extend_from_slice(&[0, 3, 1, b'x', 0xAA]);
    }
    std::fs::File::create(d.join(format!("{name}.wasm")))
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    d
}

/// Waits until `counts` has not changed for 2 s (findings that follow
/// findings, such as an incident's, have arrived).
fn settle(what: &str, mut counts: impl FnMut() -> Vec<usize>) {
    let mut last = counts();
    let mut since = Instant::now();
    wait(&format!("{what} settled"), Duration::from_secs(30), || {
        let now = counts();
        if now != last {
            last = now;
            since = Instant::now();
        }
        since.elapsed() >= Duration::from_secs(2)
    });
}

fn wait(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn about(f: &Value) -> String {
    f["entities"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_fleet_sees_every_node_once_survives_takeover_node_loss_and_restarts() {
    let dir = TempDir::new("fleet-live");
    let port = free_port();
    let store = dir.path().join("js");
    let mut server = Some(NatsServer::start(&store, port));
    create_stream(port);

    let probe = hostile_plugin("trust-probe");
    let same = plugin_dir(dir.path(), "plugins", &probe, "trust-probe", false);
    let tampered = plugin_dir(dir.path(), "plugins-tampered", &probe, "trust-probe", true);

    let a = fleet(dir.path(), port, "fleet-a");
    wait("fleet-a active", Duration::from_secs(60), || a.active());
    let b = fleet(dir.path(), port, "fleet-b");
    let mut nodes: Vec<Node> = [("n1", &same), ("n2", &same), ("n3", &tampered)]
        .into_iter()
        .map(|(n, p)| Node::start(dir.path(), port, n, p))
        .collect();
    for n in &mut nodes {
        n.event();
    }
    for n in &nodes {
        n.process
            .wait_for_rule("container-escape/privileged", Duration::from_secs(120));
    }
    // Both plugins report the event: each node wrote its findings.
    wait("each node's findings", Duration::from_secs(30), || {
        nodes.iter().all(|n| n.findings() >= 2)
    });
    // The built-in `incident` may add one more on each node once it has
    // both findings: count once nothing more comes.
    settle("each node's findings", || {
        nodes.iter().map(Node::findings).collect()
    });
    let made: HashMap<String, usize> = nodes
        .iter()
        .map(|n| (n.name.clone(), n.findings()))
        .collect();

    // Every node's findings seen once by the active fleet, none by the standby.
    wait("the fleet's picture", Duration::from_secs(30), || {
        nodes
            .iter()
            .all(|n| a.seen(&n.name) as usize >= made[&n.name])
    });
    std::thread::sleep(Duration::from_secs(1));
    for n in &nodes {
        assert_eq!(a.seen(&n.name) as usize, made[&n.name], "node {}", n.name);
    }
    assert!(!b.active(), "{}", b.state());
    a.process
        .wait_for_metric("vigil_fleet_takeovers_total 1", Duration::from_secs(10));

    // The node with the other plugin file is reported.
    wait(
        "fleet/plugin-digest-differs",
        Duration::from_secs(20),
        || {
            a.process
                .findings()
                .iter()
                .any(|f| f["rule_id"] == "fleet/plugin-digest-differs" && about(f) == "n3")
        },
    );
    let picture = a.state()["picture"].clone();
    assert_eq!(
        picture["digest_differs"]["n3"][0], "trust-probe",
        "{picture}"
    );
    assert!(picture["digest_differs"].get("n1").is_none(), "{picture}");
    // The nodes' heartbeats carry the churn counter (no Docker here: 0).
    assert_eq!(picture["nodes"]["n1"]["containers_created"], 0, "{picture}");
    assert!(
        picture["nodes"]["n1"]["sources_off"]
            .as_array()
            .unwrap()
            .contains(&Value::from("docker")),
        "{picture}"
    );

    // The active fleet killed: the standby takes over within the lease TTL.
    let a_findings = a.process.findings();
    a.process.kill();
    let killed = Instant::now();
    wait(
        "fleet-b active",
        Duration::from_millis(TTL_MS + 4_000),
        || b.active(),
    );
    eprintln!("standby active after {:?}", killed.elapsed());

    // A node stopped: node-silent within its heartbeat timeout.
    let n2 = nodes.remove(1);
    n2.process.kill();
    let stopped = Instant::now();
    wait(
        "fleet/node-silent n2",
        Duration::from_millis(INTERVAL_MS * MISSED + 5_000),
        || {
            b.process
                .findings()
                .iter()
                .any(|f| f["rule_id"] == "fleet/node-silent" && about(f) == "n2")
        },
    );
    eprintln!("node-silent after {:?}", stopped.elapsed());

    // NATS restarted: a finding made while it is away arrives once.
    drop(server.take());
    let before = nodes[0].findings();
    nodes[0].event();
    wait(
        "n1's finding while NATS is away",
        Duration::from_secs(30),
        || nodes[0].findings() >= before + 2,
    );
    settle("n1's findings", || vec![nodes[0].findings()]);
    let n1_new = nodes[0].findings() - made["n1"];
    server = Some(NatsServer::start(&store, port));
    wait(
        "n1's findings after the restart",
        Duration::from_secs(60),
        || b.seen("n1") as usize >= n1_new,
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(b.seen("n1") as usize, n1_new, "{}", b.state());

    // The fleet restarted: resumes from the durable position (nothing of
    // before is read again; what comes after is).
    let b_findings = b.process.findings();
    b.process.kill();
    let c = fleet(dir.path(), port, "fleet-c");
    wait(
        "fleet-c active",
        Duration::from_millis(TTL_MS + 30_000),
        || c.active(),
    );
    let before = nodes[1].findings();
    nodes[1].event();
    wait("n3's new findings", Duration::from_secs(30), || {
        nodes[1].findings() >= before + 2
    });
    settle("n3's findings", || vec![nodes[1].findings()]);
    let n3_new = nodes[1].findings() - before;
    wait(
        "fleet-c sees n3's new findings",
        Duration::from_secs(30),
        || c.seen("n3") as usize >= n3_new,
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(c.seen("n3") as usize, n3_new, "{}", c.state());
    assert_eq!(c.seen("n1"), 0, "{}", c.state());

    // Nothing reported twice across the three instances.
    let mut all = a_findings;
    all.extend(b_findings);
    all.extend(c.process.findings());
    let mut ids: HashMap<String, usize> = HashMap::new();
    for f in &all {
        *ids.entry(f["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "reported twice: {twice:?}\n{all:#?}");
    assert!(
        all.iter()
            .filter(|f| f["rule_id"] == "fleet/plugin-digest-differs")
            .all(|f| about(f) == "n3"),
        "{all:#?}"
    );
    c.process.stop();
    for n in &nodes {
        n.process.stop();
    }
    drop(server);
}

/// A node's finding record as `[[outputs.nats]]` publishes it.
fn node_record(id: &str, node: &str, plugin: &str, rule: &str, image: &str) -> Value {
    serde_json::json!({
        "schema": "vigil.finding/v1", "id": id, "time": "2026-12-02T10:00:00.000000Z",
        "node": node, "plugin": plugin, "plugin_version": "1.0.0",
        "rule_id": rule, "title": rule, "severity": "high", "summary": "a finding",
        "techniques": [],
        "entities": [
            {"kind": "container", "id": format!("{node}c0ffee"), "name": "web", "verified": true},
            {"kind": "image", "id": image},
        ],
        "evidence": {}, "event_ids": [format!("{id}-event")],
    })
}

fn publish(port: u16, messages: &[Vec<u8>]) {
    publish_as(port, None, "vigil.findings", messages);
}

/// JetStream publishes of `messages` on `subject`, each acked.
fn publish_as(port: u16, auth: Auth<'_>, subject: &str, messages: &[Vec<u8>]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let js = jetstream(port, auth).await;
        for m in messages {
            js.publish(subject.to_owned(), m.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
}

/// Fleet rules as Wasm plugins: the built-in `incident`, named in
/// `fleet.rules` and grouping by image, is handed every node's findings and
/// reports one image that two plugins flagged on two nodes (each under every
/// node's own threshold) as a fleet finding. Bad messages on the subject (not
/// JSON, over `max_message_bytes`) are counted and skipped, never fatal, and
/// are not handed to the rules. A rule that cannot receive findings is
/// refused at start, naming it.
#[test]
fn wasm_fleet_rules_get_every_node_s_findings_and_bad_messages_are_skipped() {
    let dir = TempDir::new("fleet-rules");
    let port = free_port();
    let _server = NatsServer::start(&dir.path().join("js"), port);
    create_stream(port);

    // A detector is no fleet rule: refused at start with its name.
    let config = dir.path().join("blind.toml");
    std::fs::write(
        &config,
        format!("[fleet]\nurl = \"nats://127.0.0.1:{port}\"\nrules = [\"container-escape\"]\n"),
    )
    .unwrap();
    let out = vigil()
        .args(["fleet", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data-blind"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("must receive findings") && stderr.contains("container-escape"),
        "{stderr}"
    );

    let f = fleet_with(
        dir.path(),
        port,
        "fleet-rules",
        "max_message_bytes = 4096\nrules = [\"incident\"]\n[plugins.settings.incident]\ngroup_by = [\"image\"]\n",
    );
    wait("fleet active", Duration::from_secs(120), || f.active());
    f.process
        .wait_for_stderr("fleet: Wasm rules loaded", Duration::from_secs(10));
    let first = node_record(
        "f1",
        "n1",
        "container-escape",
        "container-escape/privileged",
        "evil/miner:1",
    );
    let second = node_record(
        "f2",
        "n2",
        "suspicious-egress",
        "suspicious-egress/threat-intel",
        "evil/miner:1",
    );
    publish(
        port,
        &[
            b"{not json".to_vec(),
            vec![b' '; 8192],
            first.to_string().into_bytes(),
            second.to_string().into_bytes(),
        ],
    );
    let incident = f
        .process
        .wait_for_finding("the fleet incident", Duration::from_secs(30), |x| {
            x["rule_id"] == "incident/correlated"
        });
    assert_eq!(incident["plugin"], "incident", "{incident}");
    assert_eq!(
        incident["evidence"]["plugins"], "container-escape,suspicious-egress",
        "{incident}"
    );
    assert_eq!(
        incident["evidence"]["grouped-by"], "image:evil/miner:1",
        "{incident}"
    );
    assert_eq!(incident["event_ids"], serde_json::json!(["f1", "f2"]));
    f.process.wait_for_metric(
        "vigil_plugin_findings_received_total{plugin=\"incident\"} 2",
        Duration::from_secs(10),
    );
    f.process
        .wait_for_metric("vigil_fleet_malformed_total 1", Duration::from_secs(10));
    f.process
        .wait_for_metric("vigil_fleet_oversized_total 1", Duration::from_secs(10));
    assert!(f.active(), "still running: {}", f.state());
    f.process.stop();
}

/// A counter's value in `/metrics` (0 when absent).
fn counter(process: &VigilProcess, name: &str) -> u64 {
    process
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The users of a fleet with one NATS user per node: a node may publish
/// findings and its own heartbeat subject only (and read the JetStream
/// acks on its inbox); the fleet consumes the stream and keeps its lease
/// (the permissions of `deploy/kubernetes/nats-configmap.yaml`); `admin`
/// provisions the stream.
fn per_node_users(nodes: &[&str]) -> String {
    let mut users = String::new();
    for n in nodes {
        users.push_str(&format!(
            r#"    {{ user: "{n}", password: "{n}-secret", permissions: {{
        publish: {{ allow: ["vigil.findings", "vigil.heartbeat.{n}"] }},
        subscribe: {{ allow: ["_INBOX.>"] }} }} }}
"#
        ));
    }
    format!(
        r#"authorization {{
  users = [
{users}    {{ user: "fleet", password: "fleet-secret", permissions: {{
        publish: {{ allow: ["$JS.API.>", "$KV.vigil_fleet.>", "$KV.vigil_fleet_reported.>", "$KV.vigil_fleet_churn.>", "$JS.ACK.>"] }},
        subscribe: {{ allow: ["_INBOX.>"] }} }} }}
    {{ user: "admin", password: "admin-secret" }}
  ]
}}
"#
    )
}

/// Credentials keys for `[[outputs.nats]]` or `[fleet]`: `user`'s password
/// in a file (plaintext is fine on loopback; TLS is `nats_live.rs`'s).
fn credentials(dir: &Path, user: &str) -> String {
    let file = dir.join(format!("{user}.password"));
    std::fs::write(&file, format!("{user}-secret\n")).unwrap();
    format!(
        "user = \"{user}\"\npassword_file = \"{}\"\nallow_plaintext_credentials = true\n",
        file.display()
    )
}

/// Per-node NATS users (issue 13): a node's credentials publish only its
/// own heartbeat subject, and the fleet trusts the subject, not the body.
/// A client without credentials, or with a wrong password, is not even
/// connected. n1 with its own credentials is seen; a node calling itself
/// n2 with n1's credentials is refused by NATS (its heartbeats never reach
/// the stream: the node counts them failed, the fleet never sees n2); a
/// heartbeat n1's user publishes on its own subject but naming n3 is
/// counted as spoofed and n3 never enters the picture.
#[test]
fn per_node_credentials_bind_a_heartbeat_to_its_node() {
    let dir = TempDir::new("fleet-creds");
    let port = free_port();
    let conf = dir.path().join("nats.conf");
    std::fs::write(&conf, per_node_users(&["n1", "n2", "n3"])).unwrap();
    let _server = NatsServer::start_with(
        &dir.path().join("js"),
        port,
        [OsStr::new("-c"), conf.as_os_str()],
    );
    create_stream_as(port, Some(("admin", "admin-secret")));

    let f = fleet_with(
        dir.path(),
        port,
        "fleet-creds",
        &credentials(dir.path(), "fleet"),
    );
    wait("fleet active", Duration::from_secs(120), || f.active());
    let plugins = dir.path().join("no-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let n1_creds = credentials(dir.path(), "n1");
    let n1 = Node::start_with(dir.path(), port, "n1", &plugins, &n1_creds);
    let impostor = Node::start_with(dir.path(), port, "n2", &plugins, &n1_creds);

    wait("the fleet sees n1", Duration::from_secs(120), || {
        f.state()["picture"]["nodes"]["n1"]["last_heartbeat_ms"]
            .as_u64()
            .is_some_and(|t| t > 0)
    });
    wait(
        "the impostor's heartbeats failing",
        Duration::from_secs(60),
        || counter(&impostor.process, "vigil_heartbeats_failed_total") >= 3,
    );
    impostor
        .process
        .wait_for_stderr("heartbeat not stored", Duration::from_secs(5));
    // The server's word, in the failure Vigil logs (not only "no ack").
    impostor.process.wait_for_stderr(
        "(the server said: -ERR 'Permissions Violation for Publish to \"vigil.heartbeat.n2\"'",
        Duration::from_secs(5),
    );
    assert_eq!(
        counter(&impostor.process, "vigil_heartbeats_sent_total"),
        0,
        "{}",
        impostor.process.stderr_text()
    );
    assert!(counter(&n1.process, "vigil_heartbeats_sent_total") >= 1);

    // No credentials, or a wrong password: not even connected.
    for auth in [None, Some(("n3", "guessed"))] {
        let refused = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let mut options = async_nats::ConnectOptions::new();
                if let Some((user, pass)) = auth {
                    options = options.user_and_password(user.into(), pass.into());
                }
                options
                    .connect(format!("nats://127.0.0.1:{port}"))
                    .await
                    .map(|_| ())
            });
        let e = refused.expect_err("connected without valid credentials");
        assert!(
            e.to_string().to_lowercase().contains("authorization"),
            "{e}"
        );
    }

    // n1's user on its own subject, speaking for n3.
    let spoofed = serde_json::json!({
        "schema": "vigil.heartbeat/v1", "node": "n3", "version": "0.1.0",
        "interval_ms": INTERVAL_MS, "plugins": [], "sources": {},
    });
    publish_as(
        port,
        Some(("n1", "n1-secret")),
        "vigil.heartbeat.n1",
        &[spoofed.to_string().into_bytes()],
    );
    f.process
        .wait_for_metric("vigil_fleet_spoofed_total 1", Duration::from_secs(10));
    f.process.wait_for_stderr(
        "fleet: heartbeat naming another node than its subject skipped",
        Duration::from_secs(5),
    );
    let log = f.process.stderr_text();
    assert!(
        log.lines()
            .any(|l| l.contains("skipped") && l.contains("n1") && l.contains("n3")),
        "{log}"
    );
    // Several heartbeat intervals more: still only n1.
    std::thread::sleep(Duration::from_millis(INTERVAL_MS * 4));
    let picture = f.state()["picture"].clone();
    let nodes: Vec<&String> = picture["nodes"].as_object().unwrap().keys().collect();
    assert_eq!(nodes, ["n1"], "{picture}");
    assert_eq!(counter(&f.process, "vigil_fleet_malformed_total"), 0);
    f.process.stop();
    n1.process.stop();
    impostor.process.stop();
}

/// Container churn summed over nodes (`fleet/churn-spike`): 20 nodes whose
/// heartbeats say each created 2 containers since the last one make one
/// fleet spike (no warmup here: a baseline of 0, `min_count` 30), reported
/// once with the nodes' shares as evidence.
#[test]
fn churn_summed_over_nodes_is_a_fleet_spike() {
    let dir = TempDir::new("fleet-churn");
    let port = free_port();
    let _server = NatsServer::start(&dir.path().join("js"), port);
    create_stream(port);
    let f = fleet_with(
        dir.path(),
        port,
        "fleet-churn",
        "[fleet.churn]\nwindow_secs = 3600\nwarmup_hours = 0\nmin_count = 30\n",
    );
    wait("fleet active", Duration::from_secs(120), || f.active());
    let heartbeat = |node: &str, seq: u64, created: u64| {
        serde_json::json!({
            "schema": "vigil.heartbeat/v1", "node": node, "version": "0.1.0",
            "boot": 7, "seq": seq, "interval_ms": 60_000, "plugins": [], "sources": {},
            "counters": {"containers_created": created, "containers_started": created},
        })
        .to_string()
        .into_bytes()
    };
    let nodes: Vec<String> = (0..20).map(|i| format!("node{i:02}")).collect();
    for (seq, created) in [(1, 0), (2, 2)] {
        for n in &nodes {
            publish_as(
                port,
                None,
                &format!("vigil.heartbeat.{n}"),
                &[heartbeat(n, seq, created)],
            );
        }
    }
    let spike = f
        .process
        .wait_for_finding("fleet/churn-spike", Duration::from_secs(30), |x| {
            x["rule_id"] == "fleet/churn-spike"
        });
    assert_eq!(spike["plugin"], "fleet", "{spike}");
    assert_eq!(spike["evidence"]["observed"], "30", "{spike}");
    assert!(
        spike["evidence"]["nodes"]
            .as_str()
            .unwrap()
            .starts_with("node00=2, node01=2"),
        "{spike}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let spikes = f
        .process
        .findings()
        .iter()
        .filter(|x| x["rule_id"] == "fleet/churn-spike")
        .count();
    assert_eq!(spikes, 1, "once per window");
    let start = Instant::now();
    while f.state()["picture"]["nodes"]["node19"]["containers_created"] != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the state file: {}\n{}",
            f.state(),
            f.process.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    f.process.stop();
}

/// A heartbeat as `vigil run` publishes it, for node `node`.
fn heartbeat(node: &str, seq: u64, docker: bool, created: u64) -> Vec<u8> {
    serde_json::json!({
        "schema": "vigil.heartbeat/v1", "node": node, "version": "0.1.0",
        "boot": 7, "seq": seq, "interval_ms": 60_000,
        "plugins": [{"name": "container-escape", "version": "0.1.0", "digest": "ab".repeat(32)}],
        "sources": {"docker": docker, "network": true},
        "counters": {"spool_depth": 0, "containers_created": created},
    })
    .to_string()
    .into_bytes()
}

/// Heartbeats as Wasm fleet rule events (WIT 0.1.3 `fleet`): a plugin of
/// `[plugins] dir` that exports only `fleet` (the `fleet-probe` fixture:
/// no event kind, no `correlate`) is loaded by `vigil fleet` and handed
/// every heartbeat that passed the subject check; the node it reports (its
/// docker source off) is a fleet finding under its name, delivered once
/// though that node's heartbeats keep coming. Bad messages on the heartbeat
/// subjects (not JSON, over `max_message_bytes`, speaking for another node)
/// are counted and skipped, never handed to the rule, and the heartbeats
/// after them are read as usual.
#[test]
fn wasm_fleet_rules_get_heartbeats_and_bad_heartbeats_are_skipped() {
    let dir = TempDir::new("fleet-heartbeat-rules");
    let port = free_port();
    let _server = NatsServer::start(&dir.path().join("js"), port);
    create_stream(port);
    let rules = plugin_dir(
        dir.path(),
        "rules",
        &hostile_plugin("fleet-probe"),
        "fleet-probe",
        false,
    );
    let f = fleet_with(
        dir.path(),
        port,
        "fleet-hb",
        &format!(
            "max_message_bytes = 4096\n[plugins]\ndir = \"{}\"\n",
            rules.display()
        ),
    );
    wait("fleet active", Duration::from_secs(120), || f.active());
    f.process
        .wait_for_stderr("fleet: Wasm rules loaded", Duration::from_secs(10));

    // Bad ones first, on a heartbeat subject: not JSON, oversized, and n1's
    // subject speaking for n3 (whose docker is off: a rule handed it would
    // report n3).
    publish_as(
        port,
        None,
        "vigil.heartbeat.n9",
        &[b"{not json".to_vec(), vec![b' '; 8192]],
    );
    publish_as(
        port,
        None,
        "vigil.heartbeat.n1",
        &[heartbeat("n3", 1, false, 0)],
    );
    publish_as(
        port,
        None,
        "vigil.heartbeat.n1",
        &[heartbeat("n1", 1, true, 0)],
    );
    publish_as(
        port,
        None,
        "vigil.heartbeat.n2",
        &[
            heartbeat("n2", 1, false, 0),
            heartbeat("n2", 2, false, 0),
            heartbeat("n2", 3, false, 0),
        ],
    );
    let found = f.process.wait_for_finding(
        "the heartbeat rule's finding",
        Duration::from_secs(30),
        |x| x["rule_id"] == "fleet-probe/source-off",
    );
    assert_eq!(found["plugin"], "fleet-probe", "{found}");
    assert_eq!(about(&found), "n2", "{found}");
    assert_eq!(found["evidence"]["source"], "docker", "{found}");
    // The counters reach the rule as numbers by name.
    assert_eq!(found["evidence"]["containers_created"], "0", "{found}");
    // Every heartbeat that passed the checks was handed to the rule: n1 and
    // n2's three; none of the bad ones.
    f.process.wait_for_metric(
        "vigil_plugin_events_total{plugin=\"fleet-probe\"} 4",
        Duration::from_secs(10),
    );
    f.process
        .wait_for_metric("vigil_fleet_malformed_total 1", Duration::from_secs(10));
    f.process
        .wait_for_metric("vigil_fleet_oversized_total 1", Duration::from_secs(10));
    f.process
        .wait_for_metric("vigil_fleet_spoofed_total 1", Duration::from_secs(10));
    // n2's later heartbeats, still with docker off: the same finding, once.
    std::thread::sleep(Duration::from_secs(2));
    let reported: Vec<Value> = f
        .process
        .findings()
        .into_iter()
        .filter(|x| x["plugin"] == "fleet-probe")
        .collect();
    assert_eq!(reported.len(), 1, "{reported:#?}");
    let picture = f.state()["picture"].clone();
    let nodes: Vec<&String> = picture["nodes"].as_object().unwrap().keys().collect();
    assert_eq!(nodes, ["n1", "n2"], "{picture}");
    assert_eq!(
        picture["nodes"]["n2"]["sources_off"],
        serde_json::json!(["docker"])
    );
    assert!(f.active(), "still running: {}", f.state());
    f.process.stop();
}

/// Heartbeats of `nodes` every 300 ms on one connection, each saying the
/// containers created so far are `created` (changed by the test), until
/// `stop`: nodes as `vigil run` keeps them.
fn heartbeats_running(
    port: u16,
    nodes: &'static [&'static str],
    created: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let js = jetstream(port, None).await;
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                for n in nodes {
                    let body = heartbeat(n, seq, true, created.load(Ordering::Relaxed));
                    // NATS away a moment: the next round tries again.
                    if let Ok(ack) = js
                        .publish(format!("vigil.heartbeat.{n}"), body.into())
                        .await
                    {
                        let _ = ack.await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    })
}

/// The churn summary of an instance's state file.
fn churn(f: &FleetProc) -> Value {
    f.state()["picture"]["churn"].clone()
}

/// The churn baseline outlives the instance that learned it: instance A
/// learns quiet windows and a burst (its spike reported), then stops; B
/// takes over and restores A's baseline from the key-value store (as many
/// windows learned as A had, not a fresh warm-up), and judges the next
/// burst against it: the spike B reports has a baseline that contains A's
/// burst (mean above 0, A's samples), which B alone never saw.
#[test]
fn the_churn_baseline_survives_a_takeover() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = TempDir::new("fleet-churn-takeover");
    let port = free_port();
    let _server = NatsServer::start(&dir.path().join("js"), port);
    create_stream(port);
    // Two-second windows; the overall baseline only (a bucket never has
    // 1000 samples), so an hour turning during the test changes nothing.
    let churn_cfg = "[fleet.churn]\nwindow_secs = 2\nwarmup_hours = 0\nmin_count = 15\nmin_bucket_samples = 1000\n";
    let a = fleet_with(dir.path(), port, "fleet-a", churn_cfg);
    wait("A active", Duration::from_secs(120), || a.active());
    let b = fleet_with(dir.path(), port, "fleet-b", churn_cfg);
    b.process
        .wait_for_stderr("vigil fleet starting", Duration::from_secs(60));

    let created = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = heartbeats_running(port, &["c1", "c2"], created.clone(), stop.clone());
    wait("A learning quiet windows", Duration::from_secs(60), || {
        churn(&a)["learned"].as_u64().is_some_and(|n| n >= 3)
    });
    // A burst of 20 on each node (each over min_count, whichever window
    // each lands in) against a quiet baseline: A's spike.
    created.store(20, Ordering::Relaxed);
    let first = a
        .process
        .wait_for_finding("A's churn spike", Duration::from_secs(30), |x| {
            x["rule_id"] == "fleet/churn-spike"
        });
    assert_eq!(first["evidence"]["baseline-mean"], "0.00", "{first}");
    // The burst's window learned (the mean rises above 0), then stored.
    wait("A learning the burst", Duration::from_secs(30), || {
        churn(&a)["mean"].as_f64().is_some_and(|m| m > 0.0)
    });
    std::thread::sleep(Duration::from_millis(1_500));
    let learned_by_a = churn(&a)["learned"].as_u64().unwrap();
    a.process.stop();

    wait("B active", Duration::from_secs(30), || b.active());
    b.process
        .wait_for_stderr("fleet: churn baseline restored", Duration::from_secs(10));
    let restored = churn(&b);
    assert!(
        restored["learned"].as_u64().unwrap() >= learned_by_a,
        "B restored {restored}, A had learned {learned_by_a} windows"
    );
    assert!(restored["mean"].as_f64().unwrap() > 0.0, "{restored}");
    // A burst of 600 after the takeover: judged against A's baseline.
    created.store(320, Ordering::Relaxed);
    let second = b
        .process
        .wait_for_finding("B's churn spike", Duration::from_secs(30), |x| {
            x["rule_id"] == "fleet/churn-spike"
        });
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    let mean: f64 = second["evidence"]["baseline-mean"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(mean > 0.0, "A's burst is in B's baseline: {second}");
    let samples: u64 = second["evidence"]["baseline-samples"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(samples >= learned_by_a, "{second}");
    assert_ne!(second["event_ids"], first["event_ids"], "another window");
    // A's spike is not reported again by B.
    let again = b
        .process
        .findings()
        .iter()
        .filter(|x| x["event_ids"] == first["event_ids"])
        .count();
    assert_eq!(again, 0);
    b.process.stop();
}
