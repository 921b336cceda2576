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
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::{append, audit_line, falco_event, hostile_plugin, root};
use vigil_test_support::net::free_port;
use vigil_test_support::{TempDir, VigilProcess};

/// Heartbeat interval of the nodes, and the lease TTL of the fleet.
const INTERVAL_MS: u64 = 500;
const MISSED: u64 = 4;
const TTL_MS: u64 = 3_000;

fn nats_server_binary() -> PathBuf {
    let find = || {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return p;
    }
    let ok = Command::new("bash")
        .arg(root().join("scripts/test-deps.sh"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "scripts/test-deps.sh failed");
    find().expect("nats-server not installed by scripts/test-deps.sh")
}

struct Server(Child);

impl Server {
    fn start(store: &Path, port: u16) -> Self {
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The stream an operator would provision: findings and heartbeats.
fn create_stream(port: u16) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
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
[sources.docker]
enabled = false
[sources.network]
enabled = false
[sources.file_integrity]
enabled = false
[sources.k8s_watch]
mode = "off"
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
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"{QUIET}
[heartbeat]
enabled = true
interval_ms = {INTERVAL_MS}
[[outputs.nats]]
url = "nats://127.0.0.1:{port}"
subject = "vigil.findings"
stream = "VIGIL"
timeout_ms = 1000
retry = {{ initial_ms = 100, max_ms = 300 }}
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
    let mut server = Some(Server::start(&store, port));
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
    let n1_new = nodes[0].findings() - made["n1"];
    server = Some(Server::start(&store, port));
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
