//! Delivery benchmarks (`cargo bench -p vigil --bench delivery`, or
//! `cargo xtask bench delivery`); BENCHMARKS.md records the numbers.
//!
//! 1. Throughput of the delivery pipeline (intake, SQLite spool in WAL
//!    mode, output thread, acks) with distinct findings pushed as fast as
//!    possible, to the file output and to a webhook served on loopback by
//!    this bench (HTTP/1.1 keep-alive, answers 200 at once).
//! 2. Event-to-output latency through the real `vigil run` binary
//!    (`target/release/vigil`, built by `cargo xtask bench`): one audit event
//!    at a time POSTed to its audit webhook source, the resulting finding
//!    received by the webhook output; p50/p99 of receive time minus send
//!    time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and benchmarks fail loudly on broken fixtures"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use vigil_core::metrics::Registry;
use vigil_core::model::{Entity, EntityKind, Finding, KeyValue, Severity};
use vigil_delivery::outputs::OutputsConfig;
use vigil_delivery::outputs::file::FileConfig;
use vigil_delivery::outputs::webhook::WebhookConfig;
use vigil_delivery::{Delivery, DeliveryConfig, Sync as SpoolSync};
use vigil_runtime::workers::PluginFinding;

fn temp(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let p = std::env::temp_dir().join(format!("vigil-bench-{name}-{}_{nanos}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A loopback webhook receiver; calls `on_body` with each request body.
fn receiver(on_body: impl Fn(&[u8]) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let on_body = Arc::new(on_body);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let on_body = on_body.clone();
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    on_body(&body);
                    if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn finding(i: usize) -> PluginFinding {
    PluginFinding {
        plugin: "container-escape".into(),
        plugin_version: "0.1.0".into(),
        finding: Finding {
            rule_id: "container-escape/privileged".into(),
            title: "Privileged container".into(),
            severity: Severity::Critical,
            summary: format!(
                "Pod default/web-{i} runs privileged: it has every capability and sees every host device"
            ),
            techniques: vec!["T1611".into(), "T1610".into()],
            entities: vec![
                Entity {
                    kind: EntityKind::Pod,
                    id: format!("default/web-{i}"),
                    name: String::new(),
                },
                Entity {
                    kind: EntityKind::Image,
                    id: "nginx:1.27".into(),
                    name: String::new(),
                },
            ],
            evidence: vec![
                KeyValue {
                    key: "container".into(),
                    value: "web".into(),
                },
                KeyValue {
                    key: "privileged".into(),
                    value: "true".into(),
                },
            ],
            event_ids: vec![format!("k8s-audit:bench-{i}:ResponseComplete")],
        },
        verdicts: Vec::new(),
        depth: 0,
    }
}

/// Findings/s through the pipeline to `outputs` (which must hold one output).
fn pipeline(outputs: OutputsConfig, sync: SpoolSync, n: usize) -> f64 {
    let dir = temp("pipeline");
    let mut cfg = DeliveryConfig {
        outputs,
        ..DeliveryConfig::default()
    };
    cfg.dedup.window_secs = 0;
    cfg.spool.sync = sync;
    cfg.spool.max_findings = 10 * n as u64;
    let name = cfg.outputs().specs()[0].name.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = Arc::new(Registry::default());
    let (tx, rx) = channel();
    let delivery =
        Delivery::start(&cfg, &dir, "bench", rx, registry.clone(), rt.handle(), None).unwrap();
    let findings: Vec<PluginFinding> = (0..n).map(finding).collect();
    let out = registry.delivery.output(&name);
    let started = Instant::now();
    for f in findings {
        tx.send(f).unwrap();
    }
    while out.counters.delivered.load(Ordering::Relaxed) < n as u64 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(tx);
    delivery.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn recorded(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/k8s-audit/falco-0.34.1")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Event-to-output latency through `vigil run`; `None` without the binary.
fn end_to_end(n: usize) -> Option<(Duration, Duration, Duration)> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/vigil");
    if !bin.exists() {
        println!(
            "(no {}: `cargo build --release -p vigil` first for the end-to-end latency)\n",
            bin.display()
        );
        return None;
    }
    let dir = temp("e2e");
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let a = arrivals.clone();
    let port = receiver(move |body| {
        let now = Instant::now();
        let f: Value = serde_json::from_slice(body).unwrap();
        for id in f["event_ids"].as_array().unwrap() {
            a.lock()
                .unwrap()
                .entry(id.as_str().unwrap().to_owned())
                .or_insert(now);
        }
    });
    let config = dir.join("delivery.toml");
    std::fs::write(
        &config,
        format!(
            "[outputs.stdout]\nenabled = false\n[[outputs.file]]\npath = \"{}\"\n[[outputs.webhook]]\nurl = \"http://127.0.0.1:{port}/\"\n[dedup]\nwindow_secs = 0\n",
            dir.join("findings.jsonl").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(&bin)
        .args([
            "run",
            "--no-docker",
            "--no-network",
            "--no-file-integrity",
            "--no-k8s-watch",
        ])
        .args(["--audit-webhook-listen", "127.0.0.1:0", "--node", "bench"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&config)
        .env_remove("VIGIL_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "vigil exited");
        if let Some(at) = line.find("listening on ") {
            let rest = &line[at + "listening on ".len()..];
            break rest[..rest.find(')').unwrap()].parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in err.lines() {});
    let template = recorded("create_nginx_pod_privileged.json");
    let mut sent: Vec<(String, Instant)> = Vec::new();
    for i in 0..n {
        let mut e = template.clone();
        let audit_id = format!("lat-{i}");
        e["auditID"] = Value::String(audit_id.clone());
        e["objectRef"]["name"] = Value::String(format!("web-{i}"));
        let body = serde_json::to_vec(&serde_json::json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [e]})).unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.set_nodelay(true);
        let head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let t = Instant::now();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        assert!(
            resp.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&resp)
        );
        sent.push((format!("k8s-audit:{audit_id}:ResponseComplete"), t));
        // A steady trickle, not a burst: latency, not throughput.
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let arrivals = arrivals.lock().unwrap();
    let mut lat: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, t)| arrivals.get(id).map(|a| a.duration_since(*t)))
        .collect();
    assert_eq!(lat.len(), n, "every event's finding must arrive");
    lat.sort();
    let _ = std::fs::remove_dir_all(&dir);
    Some((
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        *lat.last().unwrap(),
    ))
}

fn main() {
    let n = 20_000;
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r = received.clone();
    let port = receiver(move |_| {
        r.fetch_add(1, Ordering::Relaxed);
    });
    let dir = temp("file-out");
    let file = |batch: usize| {
        let mut f = FileConfig::at(dir.join("findings.jsonl"));
        f.batch_max = batch;
        f.max_bytes = 64 << 20;
        OutputsConfig {
            file: vec![f],
            ..OutputsConfig::none()
        }
    };
    let webhook = |batch: usize| {
        let mut w = WebhookConfig::to(&format!("http://127.0.0.1:{port}/"));
        w.batch_max = batch;
        OutputsConfig {
            webhook: vec![w],
            ..OutputsConfig::none()
        }
    };
    println!("## Delivery throughput ({n} distinct findings, spool on, dedup off)\n");
    println!("| output | spool sync | findings/s |");
    println!("|---|---|---|");
    for (label, outputs, sync) in [
        ("file (batch 256)", file(256), SpoolSync::Normal),
        ("file (batch 256)", file(256), SpoolSync::Full),
        (
            "webhook on loopback (batch 1: one POST per finding)",
            webhook(1),
            SpoolSync::Normal,
        ),
        (
            "webhook on loopback (batch 64: JSON arrays)",
            webhook(64),
            SpoolSync::Normal,
        ),
        ("webhook on loopback (batch 1)", webhook(1), SpoolSync::Full),
    ] {
        let rate = pipeline(outputs, sync, n);
        println!("| {label} | {sync:?} | {rate:.0} |");
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    let events = 300;
    if let Some((p50, p99, max)) = end_to_end(events) {
        println!("## Event-to-output latency through `vigil run` ({events} audit events, 50/s)\n");
        println!("| p50 | p99 | max |");
        println!("|---|---|---|");
        println!(
            "| {:.1} ms | {:.1} ms | {:.1} ms |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
}
