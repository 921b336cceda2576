//! `vigil fleet` consuming its stream (`cargo bench -p vigil --bench fleet`,
//! or `cargo xtask bench fleet`); BENCHMARKS.md records the numbers.
//!
//! A real `nats-server` with JetStream on loopback (Debian's binary, as the
//! tests use), the stream an operator provisions, and a backlog published
//! before the fleet starts (not timed): node findings in the `vigil` format
//! and heartbeats of `NODES` nodes (schema `vigil.heartbeat/v1`, the body a
//! node sends, with seven plugins and their digests). Then the release
//! binary `target/release/vigil fleet`, pinned to one core with `taskset -c 0`
//! when `taskset` exists, drains it through its durable consumer. The bench
//! polls the consumer's state and reports, from the first message delivered
//! to the last one acked: messages per second (wall) and the fleet process's
//! user+system CPU time over the same span (`/proc/PID/stat`).
//!
//! Three runs: findings alone, heartbeats alone (every node `ROUNDS` times:
//! a picture of `NODES` nodes, checked after every batch), and both
//! interleaved. The targets of issue 13: ≥ 20k findings/s and ≥ 5,000
//! nodes' heartbeats at a 10 s interval (500 heartbeats/s) on one core.
//!
//! Environment: `FINDINGS` (default 100000), `NODES` (5000), `ROUNDS` (4).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and benchmarks fail loudly on broken fixtures"
)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn temp(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let p = std::env::temp_dir().join(format!("vigil-bench-{name}-{}_{nanos}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server(store: &Path, port: u16) -> Killed {
    let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nats-server (scripts/test-deps.sh installs it)");
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nats-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Killed(child)
}

/// A node's finding as `vigil run` publishes it (format `vigil`).
fn finding(i: usize, nodes: usize) -> Vec<u8> {
    let node = format!("node-{:05}", i % nodes);
    serde_json::to_vec(&serde_json::json!({
        "schema": "vigil.finding/v1",
        "id": format!("{:016x}{:016x}", i, i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        "time": "2026-12-02T23:30:00.000000Z",
        "node": node,
        "plugin": "container-escape",
        "plugin_version": "0.4.0",
        "rule_id": "container-escape/privileged",
        "title": "Privileged container",
        "severity": "high",
        "summary": format!("pod default/nginx-{i} runs a privileged container (nginx)"),
        "techniques": ["T1611"],
        "entities": [
            {"kind": "pod", "id": format!("default/nginx-{i}"), "verified": true},
            {"kind": "image", "id": "docker.io/library/nginx:1.27"}
        ],
        "evidence": {
            "container": "nginx",
            "privileged": "true",
            "user": "system:serviceaccount:kube-system:replicaset-controller",
            "verb": "create"
        },
        "event_ids": [format!("audit-{i}")]
    }))
    .unwrap()
}

/// A heartbeat as `vigil run` publishes it.
fn heartbeat(node: &str, seq: usize) -> Vec<u8> {
    let plugins: Vec<_> = [
        "container-churn",
        "container-escape",
        "incident",
        "k8s-evasion",
        "monitoring-tamper",
        "runtime-tamper",
        "suspicious-egress",
    ]
    .iter()
    .map(|name| {
        serde_json::json!({
            "name": name,
            "version": "0.4.0",
            "digest": format!("{:064x}", name.len() * 7919),
        })
    })
    .collect();
    serde_json::to_vec(&serde_json::json!({
        "schema": "vigil.heartbeat/v1",
        "node": node,
        "version": "0.4.0",
        "boot": 1_764_700_000_000u64,
        "seq": seq,
        "time": "2026-12-02T23:30:00.000000Z",
        "interval_ms": 10_000,
        "plugins": plugins,
        "sources": {"docker": true, "network": true, "file-integrity": true, "k8s-audit-webhook": false, "ebpf": true},
        "counters": {"spool_depth": 0, "spool_errors": 0, "plugins": 7, "sources": 4, "reloads_failed": 0, "heartbeats_failed": 0}
    }))
    .unwrap()
}

/// Publishes the backlog (JetStream acks awaited in windows of 1,000).
async fn publish(js: &jetstream::Context, messages: Vec<(String, Vec<u8>)>) {
    for chunk in messages.chunks(1_000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (subject, body) in chunk {
            acks.push(
                js.publish(subject.clone(), body.clone().into())
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
}

/// user+system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `)`.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

struct Run {
    messages: usize,
    wall: Duration,
    cpu: f64,
}

/// One run: a fresh server and stream, the backlog, then the fleet.
fn run(name: &str, messages: Vec<(String, Vec<u8>)>) -> Run {
    let dir = temp(name);
    let port = free_port();
    let _server = nats_server(&dir.join("js"), port);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let total = messages.len();
    let js = rt.block_on(async {
        let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
            .await
            .unwrap();
        let js = jetstream::new(client);
        js.create_stream(jetstream::stream::Config {
            name: "VIGIL".into(),
            subjects: vec!["vigil.findings".into(), "vigil.heartbeat.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        publish(&js, messages).await;
        js
    });
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[dedup]
window_secs = 0
[[outputs.file]]
path = "{}"
[fleet]
url = "nats://127.0.0.1:{port}"
timeout_ms = 2000
lease_ttl_ms = 30000
state_file = "{}"
"#,
            dir.join("fleet-findings.jsonl").display(),
            dir.join("fleet-state.json").display()
        ),
    )
    .unwrap();
    let vigil = root().join("target/release/vigil");
    assert!(
        vigil.exists(),
        "{} missing: cargo xtask bench builds it",
        vigil.display()
    );
    let mut cmd = if Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(&vigil);
        c
    } else {
        Command::new(&vigil)
    };
    let child = cmd
        .arg("fleet")
        .arg("--config")
        .arg(&config)
        .args(["--node", "bench-fleet", "--log", "warn"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _fleet = Killed(child);
    let (started, cpu0, ended, cpu1) = rt.block_on(async {
        let stream = js.get_stream("VIGIL").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut started = None;
        loop {
            assert!(
                Instant::now() < deadline,
                "{name}: the fleet did not drain the stream"
            );
            if let Ok(mut c) = stream
                .get_consumer::<jetstream::consumer::pull::Config>("vigil-fleet")
                .await
            {
                let info = c.info().await.unwrap();
                if started.is_none() && info.delivered.stream_sequence > 0 {
                    started = Some((Instant::now(), cpu_seconds(pid)));
                }
                if info.ack_floor.stream_sequence >= total as u64 {
                    let (t0, c0) = started.unwrap();
                    return (t0, c0, Instant::now(), cpu_seconds(pid));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        messages: total,
        wall: ended - started,
        cpu: cpu1 - cpu0,
    }
}

fn report(name: &str, r: &Run) {
    let wall = r.wall.as_secs_f64();
    println!(
        "{name:<40} {:>8} messages  {:>7.2} s wall  {:>9.0}/s  CPU {:>6.2} s  {:>9.0} per CPU-second",
        r.messages,
        wall,
        r.messages as f64 / wall,
        r.cpu,
        r.messages as f64 / r.cpu.max(0.001),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter selects runs by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let findings = env_or("FINDINGS", 100_000);
    let nodes = env_or("NODES", 5_000);
    let rounds = env_or("ROUNDS", 4);
    let hb = |node: usize, seq: usize| {
        let name = format!("node-{node:05}");
        (format!("vigil.heartbeat.{name}"), heartbeat(&name, seq))
    };
    println!("vigil fleet draining a JetStream backlog ({nodes} nodes)");
    if wanted("fleet-findings") {
        let msgs = (0..findings)
            .map(|i| ("vigil.findings".to_owned(), finding(i, nodes)))
            .collect();
        report("fleet-findings", &run("fleet-findings", msgs));
    }
    if wanted("fleet-heartbeats") {
        let msgs = (0..rounds)
            .flat_map(|r| (0..nodes).map(move |n| (n, r)))
            .map(|(n, r)| hb(n, r))
            .collect();
        report("fleet-heartbeats", &run("fleet-heartbeats", msgs));
    }
    if wanted("fleet-mixed") {
        // Every node's heartbeat once per `findings / rounds` findings.
        let per_round = (findings / rounds.max(1)).max(1);
        let mut msgs = Vec::with_capacity(findings + nodes * rounds);
        for i in 0..findings {
            if i % per_round == 0 {
                msgs.extend((0..nodes).map(|n| hb(n, i / per_round)));
            }
            msgs.push(("vigil.findings".to_owned(), finding(i, nodes)));
        }
        report(
            "fleet-mixed (findings + heartbeats)",
            &run("fleet-mixed", msgs),
        );
    }
}
