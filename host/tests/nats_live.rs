//! The NATS JetStream output against a real `nats-server` (Debian's
//! package, installed by `scripts/test-deps.sh`), started here on a
//! loopback port with JetStream enabled and its store in a temporary
//! directory. The stream is created through the JetStream API by a raw
//! protocol client of the test's own (independent of the client library
//! under test), findings go through the whole delivery pipeline (spool,
//! acks), and the stream's message count and contents are checked. The
//! server is then stopped and started again (same store): findings queued
//! meanwhile are delivered, and a finding published twice is stored once
//! (`Nats-Msg-Id`).
//!
//! Credentials: a server with TLS (the test certificate of
//! `tests/data/k8s-audit-tls`) and a user takes findings over `nats://`
//! (upgraded) and `tls://`; the same credentials are refused to a plaintext
//! server unless `allow_plaintext_credentials` is set (through the pipeline
//! and through the real `vigil run`), and a recording fake server shows
//! that the refused password (or token) never leaves Vigil.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;
#[path = "nats_live/hostile.rs"]
mod hostile;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::vigil;
use serde_json::{Value, json};
use tokio_rustls::rustls;
use vigil_core::finding_record::FindingRecord;
use vigil_core::metrics::Registry;
use vigil_core::model::{Entity, EntityKind, Finding, Severity};
use vigil_delivery::outputs::nats::{Nats, NatsConfig};
use vigil_delivery::outputs::{DeliveryError, Output};
use vigil_delivery::{Delivery, DeliveryConfig};
use vigil_runtime::workers::PluginFinding;
use vigil_test_support::fixtures::{QUIET_SOURCES, append, audit_line, falco_event};
use vigil_test_support::nats::NatsServer;
use vigil_test_support::{TempDir, VigilProcess, wait_until};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/k8s-audit-tls")
        .join(name)
}

/// The user every server with credentials accepts.
const USER: &str = "vigil";
/// Its password: long and odd enough to be found in a byte dump.
const PASSWORD: &str = "pw-9f3c1e7a-never-in-clear";

/// A server on a free port asking for `USER`/`PASSWORD`, with TLS when
/// `tls`.
fn start_secured(store: &Path, tls: bool) -> NatsServer {
    let (cert, key) = (fixture("cert.pem"), fixture("key.pem"));
    let mut args = vec!["--user", USER, "--pass", PASSWORD];
    if tls {
        args.extend([
            "--tls",
            "--tlscert",
            cert.to_str().unwrap(),
            "--tlskey",
            key.to_str().unwrap(),
        ]);
    }
    NatsServer::start_with(store, 0, args)
}

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// A minimal client for the test's own requests (JetStream API) and a
/// core subscription on the findings subject, over TCP or TLS.
struct Client {
    io: BufReader<Box<dyn Io>>,
}

/// One protocol line read byte by byte, so nothing after it is consumed
/// before a TLS upgrade.
fn raw_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        s.read_exact(&mut b).unwrap();
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap().trim_end().to_owned()
}

impl Client {
    fn connect(port: u16) -> Self {
        Self::open(port, false, false)
    }

    /// [`Client::open`], after which the `VIGIL` stream exists.
    fn with_stream(port: u16, auth: bool, tls: bool) -> Self {
        let mut c = Self::open(port, auth, tls);
        c.create_stream();
        c
    }

    /// With `USER`/`PASSWORD` when `auth`; TLS (trusting the test CA) when `tls`.
    fn open(port: u16, auth: bool, tls: bool) -> Self {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let info = raw_line(&mut s);
        assert!(info.starts_with("INFO "), "{info}");
        let io: Box<dyn Io> = if tls {
            let config =
                vigil_delivery::outputs::webhook::tls_client_config(Some(&fixture("ca.pem")))
                    .unwrap();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
            Box::new(rustls::StreamOwned::new(conn, s))
        } else {
            Box::new(s)
        };
        let mut c = Self {
            io: BufReader::new(io),
        };
        let mut connect = json!({"verbose": false, "headers": true, "tls_required": tls});
        if auth {
            connect["user"] = json!(USER);
            connect["pass"] = json!(PASSWORD);
        }
        c.write(format!("CONNECT {connect}\r\nSUB _INBOX.test.* 1\r\nPING\r\n").as_bytes());
        loop {
            let l = c.line();
            assert!(!l.starts_with("-ERR"), "{l}");
            if l == "PONG" {
                break;
            }
        }
        c
    }

    fn write(&mut self, b: &[u8]) {
        let w = self.io.get_mut();
        w.write_all(b).unwrap();
        w.flush().unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.io.read_line(&mut l).unwrap();
        l.trim_end().to_owned()
    }

    /// Next message (subject, payload), answering PINGs.
    fn msg(&mut self) -> (String, Vec<u8>) {
        loop {
            let l = self.line();
            let parts: Vec<&str> = l.split_ascii_whitespace().collect();
            match parts.first().copied() {
                Some("PING") => self.write(b"PONG\r\n"),
                Some("MSG") => {
                    let n: usize = parts.last().unwrap().parse().unwrap();
                    let mut b = vec![0; n + 2];
                    self.io.read_exact(&mut b).unwrap();
                    b.truncate(n);
                    return (parts[1].to_owned(), b);
                }
                Some("HMSG") => {
                    let h: usize = parts[parts.len() - 2].parse().unwrap();
                    let n: usize = parts.last().unwrap().parse().unwrap();
                    let mut b = vec![0; n + 2];
                    self.io.read_exact(&mut b).unwrap();
                    return (parts[1].to_owned(), b[h..n].to_vec());
                }
                _ => {}
            }
        }
    }

    fn request(&mut self, subject: &str, body: &Value) -> Value {
        let body = body.to_string();
        self.write(format!("PUB {subject} _INBOX.test.1 {}\r\n{body}\r\n", body.len()).as_bytes());
        loop {
            let (s, b) = self.msg();
            if s == "_INBOX.test.1" {
                return serde_json::from_slice(&b).unwrap();
            }
        }
    }

    /// The stream `VIGIL` on `vigil.findings`, with a 2-minute duplicate window.
    fn create_stream(&mut self) {
        let created = self.request(
            "$JS.API.STREAM.CREATE.VIGIL",
            &json!({"name": "VIGIL", "subjects": ["vigil.findings"], "storage": "file", "duplicate_window": 120_000_000_000u64}),
        );
        assert!(created.get("error").is_none(), "{created}");
    }

    fn stream_messages(&mut self) -> u64 {
        let info = self.request("$JS.API.STREAM.INFO.VIGIL", &json!({}));
        info["state"]["messages"]
            .as_u64()
            .unwrap_or_else(|| panic!("{info}"))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Config text: no dedup, the spool's shutdown grace `grace_ms`, and one
/// NATS output to `vigil.findings` on the loopback `port` whose other keys
/// are `rest`, after `head` (sources, other outputs).
fn nats_config(head: &str, grace_ms: u64, port: u16, rest: &str) -> String {
    format!(
        "{head}\n[dedup]\nwindow_secs = 0\n[spool]\nshutdown_grace_ms = {grace_ms}\n\
         [[outputs.nats]]\nurl = \"nats://127.0.0.1:{port}\"\nsubject = \"vigil.findings\"\n{rest}\n"
    )
}

/// The delivery pipeline's config with [`nats_config`]'s NATS output only.
fn delivery_config(grace_ms: u64, port: u16, rest: &str) -> DeliveryConfig {
    toml::from_str(&nats_config(
        "[outputs.stdout]\nenabled = false",
        grace_ms,
        port,
        rest,
    ))
    .unwrap()
}

/// Writes `vigil run`'s config file `path`: no source but the command
/// line's, [`nats_config`]'s NATS output (a shutdown grace of 200 ms).
fn write_run_config(path: &Path, port: u16, rest: &str) {
    std::fs::write(path, nats_config(QUIET_SOURCES, 200, port, rest)).unwrap();
}

/// The delivery pipeline of node `node-1`, its spool in `dir`: where to
/// send findings, the pipeline (to shut down) and its metrics.
fn start_delivery(
    cfg: &DeliveryConfig,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> (Sender<PluginFinding>, Delivery, Arc<Registry>) {
    let (tx, rx) = channel();
    let registry = Arc::new(Registry::default());
    let delivery =
        Delivery::start(cfg, dir, "node-1", rx, registry.clone(), rt.handle(), None).unwrap();
    (tx, delivery, registry)
}

/// Waits until the pipeline's metrics satisfy `done`.
fn wait_for_metrics(registry: &Registry, timeout: Duration, done: impl Fn(&str) -> bool) {
    wait_until(
        "the delivery metrics",
        timeout,
        || done(&registry.render()),
        || registry.render(),
    );
}

/// `DIR/audit.log` holding a privileged pod as audit event `audit_id`: a
/// finding for `vigil run` to deliver.
fn audit_log_with_a_finding(dir: &Path, audit_id: &str) -> PathBuf {
    let log = dir.join("audit.log");
    append(
        &log,
        &audit_line(&falco_event("create_nginx_pod_privileged.json"), audit_id),
    );
    log
}

/// `vigil run --config CONFIG` with its spool in `data`, reading `log` from
/// its start, once it reports the log's finding.
fn run_reading(config: &Path, data: &Path, log: &Path) -> VigilProcess {
    let process = VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .args(["--no-cache", "--admin-listen", "127.0.0.1:0"])
            .arg("--audit-log")
            .arg(log)
            .arg("--audit-log-from-beginning"),
    );
    process.wait_for_rule("container-escape/privileged", Duration::from_secs(120));
    process
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
        verdicts: Vec::new(),
        depth: 0,
    }
}

#[test]
fn findings_are_stored_in_the_stream_across_a_server_restart() {
    let dir = TempDir::new("nats");
    let store = dir.join("js");
    let server = NatsServer::start(&store, 0);
    let port = server.port();
    let mut client = Client::with_stream(port, false, false);
    client.write(b"SUB vigil.findings 2\r\n");

    let rt = runtime();
    let cfg = delivery_config(
        1000,
        port,
        r#"
        stream = "VIGIL"
        batch_max = 8
        timeout_ms = 2000
        retry = { initial_ms = 100, max_ms = 500 }
        "#,
    );
    let mut problems = vigil::config::Problems::default();
    vigil::config::Validate::validate(&cfg, "", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let (tx, delivery, registry) = start_delivery(&cfg, &dir, &rt);

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
    let server = NatsServer::start(&store, port);
    let mut client = Client::connect(port);
    wait_until(
        "the 30 findings in the stream",
        Duration::from_secs(30),
        || client.stream_messages() >= 30,
        || registry.render(),
    );
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
    let again = FindingRecord::new(finding(3).finding, "p", "1", "node-1", 0);
    out.deliver(std::slice::from_ref(&again)).unwrap();
    assert_eq!(
        client.stream_messages(),
        30,
        "finding 3 is already in the stream"
    );
    let new = FindingRecord::new(finding(99).finding, "p", "1", "node-1", 0);
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
    let server = NatsServer::start(&dir.join("js"), 0);
    let rt = runtime();
    let mut cfg = NatsConfig::to(
        &format!("nats://127.0.0.1:{}", server.port()),
        "nobody.listens",
    );
    cfg.timeout_ms = 1000;
    let mut out = Nats::new(&cfg, rt.handle().clone()).unwrap();
    let rec = FindingRecord::new(finding(0).finding, "p", "1", "n", 0);
    let err = out.deliver(&[rec]).unwrap_err();
    assert!(!err.permanent, "{err}");
    assert!(err.message.contains("no responders"), "{err}");
}

/// A config for `url` with `USER` and a password file in `dir`.
fn with_password(url: &str, dir: &Path) -> NatsConfig {
    let file = dir.join("nats-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let mut cfg = NatsConfig::to(url, "vigil.findings");
    cfg.user = Some(USER.into());
    cfg.password_file = Some(file);
    cfg.stream = Some("VIGIL".into());
    cfg.timeout_ms = 2000;
    cfg
}

fn record(i: usize) -> FindingRecord {
    FindingRecord::new(finding(i).finding, "p", "1", "node-1", 0)
}

fn assert_names_tls(err: &DeliveryError) {
    assert!(!err.permanent, "{err}");
    assert!(
        err.message.contains("TLS required") && err.message.contains("allow_plaintext_credentials"),
        "{err}"
    );
}

#[test]
fn credentials_go_over_tls_to_a_server_serving_it() {
    let dir = TempDir::new("nats-tls");
    let server = start_secured(&dir.path().join("js"), true);
    let port = server.port();
    let mut client = Client::with_stream(port, true, true);
    let rt = runtime();

    // nats:// is upgraded (the server asks for TLS, and the credentials demand it).
    let mut cfg = with_password(&format!("nats://127.0.0.1:{port}"), dir.path());
    cfg.ca_file = Some(fixture("ca.pem"));
    let mut out = Nats::new(&cfg, rt.handle().clone()).unwrap();
    out.deliver(&[record(0), record(1)]).unwrap();
    assert_eq!(client.stream_messages(), 2);

    // tls:// as well.
    cfg.url = format!("tls://127.0.0.1:{port}");
    let mut out = Nats::new(&cfg, rt.handle().clone()).unwrap();
    out.deliver(&[record(2)]).unwrap();
    assert_eq!(client.stream_messages(), 3);

    // A server whose certificate is not trusted gets nothing.
    cfg.ca_file = None;
    let mut out = Nats::new(&cfg, rt.handle().clone()).unwrap();
    let err = out.deliver(&[record(3)]).unwrap_err();
    assert!(!err.permanent, "{err}");
    assert_eq!(client.stream_messages(), 3);
}

#[test]
fn credentials_are_refused_to_a_plaintext_server_unless_allowed() {
    let dir = TempDir::new("nats-plain-auth");
    let server = start_secured(&dir.path().join("js"), false);
    let port = server.port();
    let mut client = Client::with_stream(port, true, false);
    let rt = runtime();
    let url = format!("nats://127.0.0.1:{port}");

    let mut out = Nats::new(&with_password(&url, dir.path()), rt.handle().clone()).unwrap();
    let err = out.deliver(&[record(0)]).unwrap_err();
    assert_names_tls(&err);
    assert_eq!(client.stream_messages(), 0);

    // Through the pipeline: the failure is counted and the finding waits in the spool.
    let cfg = delivery_config(
        200,
        port,
        &format!(
            r#"
            user = "{USER}"
            password_file = "{}"
            timeout_ms = 1000
            retry = {{ initial_ms = 100, max_ms = 200 }}
            "#,
            dir.path().join("nats-password").display()
        ),
    );
    let (tx, delivery, registry) = start_delivery(&cfg, dir.path(), &rt);
    tx.send(finding(1)).unwrap();
    wait_for_metrics(&registry, Duration::from_secs(10), |m| {
        m.contains("vigil_output_failed_total{output=\"nats:vigil.findings\"}")
    });
    drop(tx);
    delivery.shutdown();
    assert_eq!(client.stream_messages(), 0);

    // Allowed explicitly, the same credentials are sent and the finding stored.
    let mut cfg = with_password(&url, dir.path());
    cfg.allow_plaintext_credentials = true;
    let mut out = Nats::new(&cfg, rt.handle().clone()).unwrap();
    out.deliver(&[record(0)]).unwrap();
    assert_eq!(client.stream_messages(), 1);
}

/// Through the binary: `vigil run` with a NATS output whose user and
/// password would go to a plaintext server does not deliver (the failure is
/// logged naming TLS and the key, counted, and the stream stays empty); the
/// same run with `allow_plaintext_credentials = true` delivers.
#[test]
fn vigil_run_keeps_credentials_from_a_plaintext_server_unless_allowed() {
    let dir = TempDir::new("nats-plain-binary");
    let server = start_secured(&dir.path().join("js"), false);
    let port = server.port();
    let mut client = Client::with_stream(port, true, false);
    let password = dir.path().join("nats-password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let log = audit_log_with_a_finding(dir.path(), "nats-1");
    let run = |allow: bool| {
        let config = dir.path().join(format!("vigil-{allow}.toml"));
        write_run_config(
            &config,
            port,
            &format!(
                r#"
                stream = "VIGIL"
                user = "{USER}"
                password_file = "{}"
                allow_plaintext_credentials = {allow}
                timeout_ms = 1000
                retry = {{ initial_ms = 100, max_ms = 200 }}
                "#,
                password.display()
            ),
        );
        run_reading(&config, &dir.path().join(format!("data-{allow}")), &log)
    };

    let refused = run(false);
    // The counter is bumped just before the line is logged: wait for the line.
    refused.wait_for_stderr(
        "delivery failed; findings stay in the spool",
        Duration::from_secs(20),
    );
    assert!(
        refused
            .metrics()
            .contains("vigil_output_failed_total{output=\"nats:vigil.findings\"}")
    );
    let log_text = refused.stderr_text();
    assert!(
        log_text.contains("TLS required") && log_text.contains("allow_plaintext_credentials"),
        "{log_text}"
    );
    assert_eq!(client.stream_messages(), 0);
    refused.stop();
    assert_eq!(client.stream_messages(), 0);

    let allowed = run(true);
    allowed.wait_until("the finding in the stream", Duration::from_secs(20), || {
        client.stream_messages() >= 1
    });
    allowed.stop();
}

/// A plaintext "server" that sends an `INFO` asking for credentials,
/// records every byte a client sends, and answers like `nats-server` (an
/// error, then close). Returns its port and the bytes of each connection.
fn recording_server() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let info = json!({"server_id": "FAKE", "version": "2.9.10", "proto": 1, "host": "127.0.0.1",
                "port": port, "headers": true, "auth_required": true, "max_payload": 1_048_576});
            if conn
                .write_all(format!("INFO {info}\r\n").as_bytes())
                .is_err()
            {
                continue;
            }
            conn.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(_) if got.is_empty() => {}
                    Err(_) => break,
                }
            }
            let answer: &[u8] = if got.starts_with(b"CONNECT") {
                b"-ERR 'Authorization Violation'\r\n"
            } else {
                b"-ERR 'Unknown Protocol Operation'\r\n"
            };
            // Recorded before the answer ends the client's attempt.
            record.lock().unwrap().push(got);
            let _ = conn.write_all(answer);
        }
    });
    (port, seen)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_refused_password_or_token_never_leaves_vigil() {
    let dir = TempDir::new("nats-recorder");
    let rt = runtime();
    let (port, seen) = recording_server();
    let url = format!("nats://127.0.0.1:{port}");
    let token_file = dir.path().join("nats-token");
    let token = "tok-5b2d90aa-never-in-clear";
    std::fs::write(&token_file, token).unwrap();
    let mut by_token = NatsConfig::to(&url, "vigil.findings");
    by_token.token_file = Some(token_file);
    by_token.timeout_ms = 1000;
    let mut by_password = with_password(&url, dir.path());
    by_password.timeout_ms = 1000;

    for (cfg, secret) in [(&by_password, PASSWORD), (&by_token, token)] {
        seen.lock().unwrap().clear();
        let mut out = Nats::new(cfg, rt.handle().clone()).unwrap();
        let err = out.deliver(&[record(0)]).unwrap_err();
        assert_names_tls(&err);
        let got = seen.lock().unwrap().clone();
        assert!(!got.is_empty(), "Vigil never connected: {err}");
        for bytes in &got {
            assert!(!contains(bytes, secret), "the secret was sent: {bytes:?}");
            assert!(!contains(bytes, "CONNECT"), "CONNECT was sent: {bytes:?}");
            // What it sent instead is a TLS ClientHello (a handshake record).
            assert_eq!(bytes.first(), Some(&0x16), "{bytes:?}");
        }

        // The recorder does see a secret that is sent: allowed explicitly,
        // the same config writes it in CONNECT.
        seen.lock().unwrap().clear();
        let mut allowed = cfg.clone();
        allowed.allow_plaintext_credentials = true;
        let mut out = Nats::new(&allowed, rt.handle().clone()).unwrap();
        assert!(out.deliver(&[record(0)]).is_err());
        let got = seen.lock().unwrap().clone();
        assert!(
            got.iter()
                .any(|b| contains(b, "CONNECT") && contains(b, secret)),
            "{got:?}"
        );
    }
}

#[test]
fn a_finding_over_max_payload_is_refused_alone() {
    let dir = TempDir::new("nats-max-payload");
    let server = NatsServer::start(&dir.path().join("js"), 0);
    let port = server.port();
    let mut client = Client::with_stream(port, false, false);
    let rt = runtime();
    let cfg = delivery_config(
        1000,
        port,
        r#"
        batch_max = 8
        timeout_ms = 2000
        retry = { initial_ms = 100, max_ms = 500 }
        "#,
    );
    let (tx, delivery, registry) = start_delivery(&cfg, dir.path(), &rt);
    // The server's default max_payload is 1 MiB.
    let mut huge = finding(1);
    huge.finding.summary = "x".repeat(1_100_000);
    tx.send(finding(0)).unwrap();
    tx.send(huge).unwrap();
    tx.send(finding(2)).unwrap();
    wait_for_metrics(&registry, Duration::from_secs(20), |m| {
        m.contains("vigil_output_rejected_total{output=\"nats:vigil.findings\"} 1")
            && m.contains("vigil_output_delivered_total{output=\"nats:vigil.findings\"} 2")
    });
    drop(tx);
    delivery.shutdown();
    assert_eq!(client.stream_messages(), 2);

    // Directly: the refusal is permanent and says why.
    let mut out = Nats::new(
        &NatsConfig::to(&format!("nats://127.0.0.1:{port}"), "vigil.findings"),
        rt.handle().clone(),
    )
    .unwrap();
    let mut rec = record(3);
    rec.summary = "x".repeat(1_100_000);
    let err = out.deliver(&[rec]).unwrap_err();
    assert!(err.permanent, "{err}");
    assert!(err.message.contains("max_payload"), "{err}");
    // The client stays usable.
    out.deliver(&[record(4)]).unwrap();
    assert_eq!(client.stream_messages(), 3);
}

#[test]
fn an_idle_output_delivers_at_once_after_a_server_restart() {
    let dir = TempDir::new("nats-idle");
    let store = dir.path().join("js");
    let server = NatsServer::start(&store, 0);
    let port = server.port();
    Client::with_stream(port, false, false);
    let rt = runtime();
    let mut cfg = NatsConfig::to(&format!("nats://127.0.0.1:{port}"), "vigil.findings");
    cfg.timeout_ms = 2000;
    let mut out = Nats::new(&cfg, rt.handle().clone()).unwrap();
    out.deliver(&[record(0)]).unwrap();

    // Down and up again while the output has nothing to send: its client
    // gives up reconnecting meanwhile, and the next batch takes a new one
    // instead of failing.
    server.stop();
    std::thread::sleep(Duration::from_millis(500));
    let server = NatsServer::start(&store, port);
    out.deliver(&[record(1)]).unwrap();
    assert_eq!(Client::connect(port).stream_messages(), 2);
    server.stop();
}
