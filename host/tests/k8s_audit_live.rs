//! The Kubernetes audit sources through the real binary: `vigil run` with
//! `--audit-webhook-listen` gets an `EventList` built from recorded audit
//! events the way the API server sends it (bearer token, HTTP/1.1 POST),
//! and the container-escape findings must come out on stdout; refusals get
//! their status codes. `--audit-log` follows a file across a rotation and
//! every event must arrive exactly once. Over TLS, the same batch is
//! accepted and a cleartext request is not.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::{append, audit_line, falco_event, tls};
use vigil_test_support::net::http_request;
use vigil_test_support::output::read_jsonl;
use vigil_test_support::{Signal, TempDir, VigilProcess};

/// How long an event may take to show up on a busy CI box.
const DEADLINE: Duration = Duration::from_secs(20);

/// How long Vigil may take to start (compiling the built-in plugins).
const STARTUP: Duration = Duration::from_secs(120);

const TOKEN: &str = "s3cret-audit-token";

/// A running `vigil run` writing its events to `DIR/events.jsonl`.
struct Vigil {
    process: VigilProcess,
    events: PathBuf,
}

impl Vigil {
    /// Started, once its log has `ready`.
    fn start(dir: &Path, extra: &[&str], ready: &str) -> Self {
        let events = dir.join("events.jsonl");
        let process = VigilProcess::spawn(
            vigil()
                .arg("run")
                .arg("--data-dir")
                .arg(dir.join("data"))
                .args([
                    "--no-cache",
                    "--no-docker",
                    "--no-network",
                    "--no-file-integrity",
                    "--node",
                    "k8s-live-test",
                ])
                .args(extra)
                .arg("--emit-events")
                .arg(&events),
        );
        process.wait_for_stderr(ready, STARTUP);
        Self { process, events }
    }

    fn logs(&self) -> String {
        self.process.stderr_text()
    }

    /// The address from "k8s-audit-webhook: on (listening on ADDR)".
    fn webhook_addr(&self) -> SocketAddr {
        let logs = self.logs();
        let at = logs.find("listening on ").unwrap() + "listening on ".len();
        let end = logs[at..].find(')').unwrap();
        logs[at..at + end].parse().unwrap()
    }

    fn k8s_events(&self) -> Vec<Value> {
        read_jsonl(&self.events)
            .into_iter()
            .filter(|e| e["source"] == "k8s-audit")
            .collect()
    }

    /// Waits for `n` events, then a quiet second (so a duplicate would be seen).
    fn wait_events(&self, n: usize) -> Vec<Value> {
        self.process.wait_for_showing(
            &format!("{n} events"),
            DEADLINE,
            || (self.k8s_events().len() >= n).then_some(()),
            || format!("events: {:#?}", self.k8s_events()),
        );
        std::thread::sleep(Duration::from_millis(1_000));
        self.k8s_events()
    }

    fn wait_finding(&self, rule: &str) -> Value {
        self.process.wait_for_rule(rule, DEADLINE)
    }

    /// Stops it as an operator would (SIGINT) and waits for the exit.
    fn stop(self) {
        self.process.stop_with(Signal::Int, DEADLINE);
    }
}

/// One HTTP/1.1 request to `/audit`; returns (status, body).
fn http(addr: SocketAddr, method: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    http_request(addr, method, "/audit", headers, body, DEADLINE)
}

fn post(addr: SocketAddr, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("Content-Length", body.len().to_string()),
    ];
    if let Some(t) = token {
        headers.push(("Authorization", format!("Bearer {t}")));
    }
    http(addr, "POST", &headers, body)
}

#[test]
fn webhook_batch_becomes_findings_and_refusals_get_their_status() {
    let dir = TempDir::new("k8s-webhook-live");
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let vigil = Vigil::start(
        &dir,
        &[
            "--audit-webhook-listen",
            "127.0.0.1:0",
            "--audit-webhook-token-file",
            token_file.to_str().unwrap(),
            "--audit-webhook-max-body-bytes",
            "100000",
        ],
        "k8s-audit-webhook: on (listening on",
    );
    let addr = vigil.webhook_addr();
    let list = serde_json::json!({
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": [
            falco_event("create_nginx_pod_privileged.json"),
            falco_event("create_nginx_pod_hostnetwork.json"),
            falco_event("exec_pod.json"),
        ],
    });
    let body = serde_json::to_vec(&list).unwrap();

    // Refusals first: none of them may produce events.
    let (status, _) = post(addr, None, &body);
    assert_eq!(status, 401);
    let (status, _) = post(addr, Some("wrong-token"), &body);
    assert_eq!(status, 401);
    let (status, _) = http(
        addr,
        "POST",
        &[
            ("Authorization", format!("Bearer {TOKEN}")),
            ("Content-Length", "200000".to_owned()),
        ],
        b"",
    );
    assert_eq!(status, 413);
    let (status, reason) = post(addr, Some(TOKEN), b"{\"kind\":\"EventList\",\"items\":[");
    assert_eq!(status, 400);
    assert!(reason.contains("EventList"), "{reason}");
    let (status, _) = http(
        addr,
        "GET",
        &[("Authorization", format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(status, 405);

    let (status, reply) = post(addr, Some(TOKEN), &body);
    assert_eq!(status, 200, "{reply}");
    vigil.wait_finding("container-escape/privileged");
    vigil.wait_finding("container-escape/host-network");
    let events = vigil.wait_events(3);
    assert_eq!(events.len(), 3, "each audit item once: {events:#?}");
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| id.starts_with("k8s-audit:")), "{ids:?}");
    assert!(events.iter().all(|e| e["node"] == "k8s-live-test"));
    let logs = vigil.logs();
    assert!(logs.contains("status=401"), "{logs}");
    assert!(logs.contains("status=400"), "{logs}");
}

/// A recorded event as one audit log line with its own audit id.
fn line(name: &str, audit_id: &str) -> String {
    audit_line(&falco_event(name), audit_id)
}

#[test]
fn audit_log_follows_rotation_and_delivers_each_event_once() {
    let dir = TempDir::new("k8s-log-live");
    let log = dir.join("audit.log");
    // Already there at startup: not reported (reading starts at the end).
    append(&log, &line("exec_pod.json", "before-start"));
    let vigil = Vigil::start(
        &dir,
        &["--audit-log", log.to_str().unwrap()],
        "k8s-audit-log: following file",
    );
    assert!(
        vigil.logs().contains("k8s-audit-log: on ("),
        "{}",
        vigil.logs()
    );

    append(&log, &line("create_nginx_pod_privileged.json", "one"));
    // A line in two writes: nothing until its newline.
    let two = line("exec_pod.json", "two");
    let (a, b) = two.split_at(two.len() / 2);
    append(&log, a);
    vigil.wait_events(1);
    append(&log, b);
    append(&log, "this is not json\n");
    vigil.wait_events(2);
    vigil.wait_finding("container-escape/privileged");

    // Rotation as the API server does it: rename, then a new file.
    append(&log, &line("exec_pod.json", "three"));
    std::fs::rename(&log, dir.join("audit-1.log")).unwrap();
    append(&log, &line("create_nginx_pod_hostnetwork.json", "four"));
    append(&log, &line("exec_pod.json", "five"));
    let events = vigil.wait_events(5);
    vigil.wait_finding("container-escape/host-network");

    let mut ids: Vec<String> = events
        .iter()
        .map(|e| {
            e["body"]["audit_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let arrived = ids.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "duplicates in {arrived:?}");
    assert_eq!(arrived, ["one", "two", "three", "four", "five"]);
    let logs = vigil.logs();
    assert!(logs.contains("k8s-audit-log: line rejected"), "{logs}");
    assert!(logs.contains("this is not json"), "{logs}");
    assert!(logs.contains("k8s-audit-log: file rotated"), "{logs}");
}

fn audit_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["body"]["audit_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// The read position survives a restart: lines appended while Vigil is
/// stopped — and a rotation meanwhile — are reported at the next start,
/// and nothing reported before the stop is reported again.
#[test]
fn audit_log_resumes_after_restart_without_repeats() {
    let dir = TempDir::new("k8s-log-resume");
    let log = dir.join("audit.log");
    append(&log, &line("exec_pod.json", "before-first-start"));
    let args = ["--audit-log", log.to_str().unwrap()];
    let vigil = Vigil::start(&dir, &args, "k8s-audit-log: following file");
    append(&log, &line("exec_pod.json", "one"));
    append(&log, &line("create_nginx_pod_privileged.json", "two"));
    assert_eq!(audit_ids(&vigil.wait_events(2)), ["one", "two"]);
    vigil.stop();
    let saved = dir.join("data/k8s-audit-log.position");
    assert!(saved.exists(), "no position saved at {}", saved.display());

    // While stopped: lines in the file, then a rotation and a new file.
    append(&log, &line("exec_pod.json", "three"));
    std::fs::rename(&log, dir.join("audit-2026-11-26T12-00-00.000.log")).unwrap();
    append(&log, &line("create_nginx_pod_hostnetwork.json", "four"));
    append(&log, &line("exec_pod.json", "five"));

    let vigil = Vigil::start(&dir, &args, "k8s-audit-log: resuming at the saved position");
    let events = vigil.wait_events(3);
    assert_eq!(
        audit_ids(&events),
        ["three", "four", "five"],
        "{}",
        vigil.logs()
    );
    vigil.wait_finding("container-escape/host-network");
    assert!(
        vigil.logs().contains("k8s-audit-log: file rotated"),
        "{}",
        vigil.logs()
    );

    // And once more, with nothing written meanwhile: nothing at all.
    vigil.stop();
    let vigil = Vigil::start(&dir, &args, "k8s-audit-log: resuming at the saved position");
    append(&log, &line("exec_pod.json", "six"));
    assert_eq!(audit_ids(&vigil.wait_events(1)), ["six"]);
}

/// A POST over TLS trusting only the fixture certificate; returns the status.
fn post_tls(addr: SocketAddr, body: &[u8]) -> u16 {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(body).unwrap();
    let mut resp = Vec::new();
    // The server may close without close_notify after `Connection: close`.
    let _ = tls.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {resp:?}"))
}

#[test]
fn webhook_over_tls_accepts_the_batch_and_refuses_cleartext() {
    let dir = TempDir::new("k8s-webhook-tls");
    let token_file = dir.join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let cert = tls("cert.pem");
    let key = tls("key.pem");
    let vigil = Vigil::start(
        &dir,
        &[
            "--audit-webhook-listen",
            "127.0.0.1:0",
            "--audit-webhook-token-file",
            token_file.to_str().unwrap(),
            "--audit-webhook-tls-cert",
            cert.to_str().unwrap(),
            "--audit-webhook-tls-key",
            key.to_str().unwrap(),
        ],
        "k8s-audit-webhook: on (listening on",
    );
    let addr = vigil.webhook_addr();
    let list = serde_json::json!({
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "items": [falco_event("create_nginx_pod_privileged.json")],
    });
    let body = serde_json::to_vec(&list).unwrap();

    // Cleartext to the TLS port: no HTTP answer at all.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    assert!(!resp.starts_with(b"HTTP/1.1 200"), "{resp:?}");

    assert_eq!(post_tls(addr, &body), 200);
    vigil.wait_finding("container-escape/privileged");
    assert_eq!(vigil.wait_events(1).len(), 1);
}
