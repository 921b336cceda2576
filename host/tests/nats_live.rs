//! The NATS JetStream output against a real `nats-server` (Debian's
//! package, installed by `scripts/test-deps.sh`), started here on a
//! loopback port with JetStream enabled and its store in a temporary
//! directory. The stream is created through the JetStream API, findings go
//! through the whole delivery pipeline (spool, acks), and the stream's
//! message count and contents are checked. The server is then stopped and
//! started again (same store): findings queued meanwhile are delivered,
//! and a finding published twice is stored once (`Nats-Msg-Id`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_core::metrics::Registry;
use vigil_core::model::{Entity, EntityKind, Finding, Severity};
use vigil_delivery::outputs::Output;
use vigil_delivery::outputs::nats::{Nats, NatsConfig};
use vigil_delivery::{Delivery, DeliveryConfig};
use vigil_runtime::workers::PluginFinding;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::root;
use vigil_test_support::net::free_port;

fn nats_server_binary() -> PathBuf {
    let find = || {
        [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return p;
    }
    let script = root().join("scripts/test-deps.sh");
    let ok = Command::new("bash").arg(script).status().unwrap().success();
    assert!(ok, "scripts/test-deps.sh failed");
    find().expect("nats-server not installed by scripts/test-deps.sh")
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(store: &Path, port: u16) -> Self {
        let port = if port == 0 { free_port() } else { port };
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
        Self { child, port }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal client for the test's own requests (JetStream API) and a
/// core subscription on the findings subject.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Self {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let info = c.line();
        assert!(info.starts_with("INFO "), "{info}");
        c.w.write_all(
            b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB _INBOX.test.* 1\r\nPING\r\n",
        )
        .unwrap();
        while c.line() != "PONG" {}
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end().to_owned()
    }

    /// Next message (subject, payload), answering PINGs.
    fn msg(&mut self) -> (String, Vec<u8>) {
        loop {
            let l = self.line();
            let parts: Vec<&str> = l.split_ascii_whitespace().collect();
            match parts.first().copied() {
                Some("PING") => self.w.write_all(b"PONG\r\n").unwrap(),
                Some("MSG") => {
                    let n: usize = parts.last().unwrap().parse().unwrap();
                    let mut b = vec![0; n + 2];
                    self.r.read_exact(&mut b).unwrap();
                    b.truncate(n);
                    return (parts[1].to_owned(), b);
                }
                Some("HMSG") => {
                    let h: usize = parts[parts.len() - 2].parse().unwrap();
                    let n: usize = parts.last().unwrap().parse().unwrap();
                    let mut b = vec![0; n + 2];
                    self.r.read_exact(&mut b).unwrap();
                    return (parts[1].to_owned(), b[h..n].to_vec());
                }
                _ => {}
            }
        }
    }

    fn request(&mut self, subject: &str, body: &Value) -> Value {
        let body = body.to_string();
        self.w
            .write_all(
                format!("PUB {subject} _INBOX.test.1 {}\r\n{body}\r\n", body.len()).as_bytes(),
            )
            .unwrap();
        loop {
            let (s, b) = self.msg();
            if s == "_INBOX.test.1" {
                return serde_json::from_slice(&b).unwrap();
            }
        }
    }

    fn stream_messages(&mut self) -> u64 {
        let info = self.request("$JS.API.STREAM.INFO.VIGIL", &json!({}));
        info["state"]["messages"]
            .as_u64()
            .unwrap_or_else(|| panic!("{info}"))
    }
}

fn finding(i: usize) -> PluginFinding {
    PluginFinding {
        plugin: "p".into(),
        plugin_version: "1".into(),
        finding: Finding {
            rule_id: "p/r".into(),
            title: "t".into(),
            severity: Severity::High,
            summary: format!("finding {i}"),
            techniques: vec!["T1611".into()],
            entities: vec![Entity {
                kind: EntityKind::Container,
                id: format!("c{i}"),
                name: String::new(),
            }],
            evidence: vec![],
            event_ids: vec![format!("e{i}")],
        },
    }
}

#[test]
fn findings_are_stored_in_the_stream_across_a_server_restart() {
    let dir = TempDir::new("nats");
    let store = dir.join("js");
    let server = Server::start(&store, 0);
    let port = server.port;
    let mut client = Client::connect(port);
    let created = client.request(
        "$JS.API.STREAM.CREATE.VIGIL",
        &json!({"name": "VIGIL", "subjects": ["vigil.findings"], "storage": "file", "duplicate_window": 120_000_000_000u64}),
    );
    assert!(created.get("error").is_none(), "{created}");
    client.w.write_all(b"SUB vigil.findings 2\r\n").unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cfg: DeliveryConfig = toml::from_str(&format!(
        r#"
        [dedup]
        window_secs = 0
        [spool]
        shutdown_grace_ms = 1000
        [outputs.stdout]
        enabled = false
        [[outputs.nats]]
        url = "nats://127.0.0.1:{port}"
        subject = "vigil.findings"
        stream = "VIGIL"
        batch_max = 8
        timeout_ms = 2000
        retry = {{ initial_ms = 100, max_ms = 500 }}
        "#
    ))
    .unwrap();
    let mut problems = vigil::config::Problems::default();
    vigil::config::Validate::validate(&cfg, "", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let (tx, rx) = channel();
    let registry = Arc::new(Registry::default());
    let delivery = Delivery::start(
        &cfg,
        &dir,
        "node-1",
        rx,
        registry.clone(),
        rt.handle(),
        None,
    )
    .unwrap();

    for i in 0..20 {
        tx.send(finding(i)).unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let (subject, body) = client.msg();
        if subject == "vigil.findings" {
            let f: Value = serde_json::from_slice(&body).unwrap();
            seen.push(f["summary"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..20).map(|i| format!("finding {i}")).collect();
    assert_eq!(seen, expected, "in order");
    assert_eq!(client.stream_messages(), 20);

    // The server goes away; findings wait in the spool.
    server.stop();
    for i in 20..30 {
        tx.send(finding(i)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1_000));
    let m = registry.render();
    assert!(
        m.contains("vigil_output_failed_total{output=\"nats:vigil.findings\"}"),
        "{m}"
    );
    let server = Server::start(&store, port);
    let start = Instant::now();
    let mut client = Client::connect(port);
    while client.stream_messages() < 30 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            registry.render()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(tx);
    delivery.shutdown();
    assert_eq!(client.stream_messages(), 30);
    let m = registry.render();
    assert!(
        m.contains("vigil_output_delivered_total{output=\"nats:vigil.findings\"} 30"),
        "{m}"
    );
    assert!(m.contains("vigil_spool_depth 0"), "{m}");

    // A finding published again (a lost ack, a restart) is stored once.
    let mut out = Nats::new(
        &NatsConfig::to(&format!("nats://127.0.0.1:{port}"), "vigil.findings"),
        rt.handle().clone(),
    )
    .unwrap();
    let again =
        vigil_core::finding_record::FindingRecord::new(finding(3).finding, "p", "1", "node-1", 0);
    out.deliver(std::slice::from_ref(&again)).unwrap();
    assert_eq!(
        client.stream_messages(),
        30,
        "finding 3 is already in the stream"
    );
    let new =
        vigil_core::finding_record::FindingRecord::new(finding(99).finding, "p", "1", "node-1", 0);
    out.deliver(std::slice::from_ref(&new)).unwrap();
    out.deliver(std::slice::from_ref(&new)).unwrap();
    assert_eq!(
        client.stream_messages(),
        31,
        "one new message for two publishes of one id"
    );
    server.stop();
}

#[test]
fn a_subject_without_a_stream_is_retried_not_lost() {
    let dir = TempDir::new("nats-nostream");
    let server = Server::start(&dir.join("js"), 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut cfg = NatsConfig::to(
        &format!("nats://127.0.0.1:{}", server.port),
        "nobody.listens",
    );
    cfg.timeout_ms = 1000;
    let mut out = Nats::new(&cfg, rt.handle().clone()).unwrap();
    let rec = vigil_core::finding_record::FindingRecord::new(finding(0).finding, "p", "1", "n", 0);
    let err = out.deliver(&[rec]).unwrap_err();
    assert!(!err.permanent, "{err}");
    assert!(err.message.contains("no responders"), "{err}");
}
