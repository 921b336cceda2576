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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How long an event may take to show up on a busy CI box.
const DEADLINE: Duration = Duration::from_secs(20);

const TOKEN: &str = "s3cret-audit-token";

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", std::process::id())
}

/// A temporary directory removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vigil-{name}-{}", unique()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn recorded(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/k8s-audit/falco-0.34.1")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A running `vigil run`, killed when dropped; stdout and stderr are kept.
struct Vigil {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    events: PathBuf,
}

fn keep_lines(r: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            keep.lock().unwrap().push(line);
        }
    });
    lines
}

impl Vigil {
    fn start(dir: &Path, extra: &[&str], ready: &str) -> Self {
        let events = dir.join("events.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .env_remove("VIGIL_LOG")
            .env_remove("RUST_LOG")
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
            .arg(&events)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vigil");
        let stdout = keep_lines(child.stdout.take().unwrap());
        let stderr = keep_lines(child.stderr.take().unwrap());
        let v = Self {
            child,
            stdout,
            stderr,
            events,
        };
        v.wait_log(ready);
        v
    }

    fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn wait_log(&self, needle: &str) {
        let start = Instant::now();
        while !self.logs().contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no `{needle}` in the logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The address from "k8s-audit-webhook: on (listening on ADDR)".
    fn webhook_addr(&self) -> SocketAddr {
        let logs = self.logs();
        let at = logs.find("listening on ").unwrap() + "listening on ".len();
        let end = logs[at..].find(')').unwrap();
        logs[at..at + end].parse().unwrap()
    }

    fn k8s_events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["source"] == "k8s-audit")
            .collect()
    }

    /// Waits for `n` events, then a quiet second (so a duplicate would be seen).
    fn wait_events(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        while self.k8s_events().len() < n {
            assert!(
                start.elapsed() < DEADLINE,
                "expected {n} events, got {}\nlogs:\n{}",
                self.k8s_events().len(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(1_000));
        self.k8s_events()
    }

    fn wait_finding(&self, rule: &str) -> Value {
        let start = Instant::now();
        loop {
            let found = self.stdout.lock().unwrap().iter().find_map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .filter(|f| f["rule_id"] == rule)
            });
            if let Some(f) = found {
                return f;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no {rule} finding; stdout:\n{}\nlogs:\n{}",
                self.stdout.lock().unwrap().join("\n"),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Vigil {
    /// Stops it as an operator would (SIGINT) and waits for the exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < DEADLINE,
                "vigil did not stop on SIGINT; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request written by hand; returns (status, body).
fn http(addr: SocketAddr, method: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut head = format!("{method} /audit HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {resp:?}"));
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
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
    let dir = Temp::new("k8s-webhook-live");
    let token_file = dir.0.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let vigil = Vigil::start(
        &dir.0,
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
            recorded("create_nginx_pod_privileged.json"),
            recorded("create_nginx_pod_hostnetwork.json"),
            recorded("exec_pod.json"),
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
    let mut e = recorded(name);
    e["auditID"] = Value::String(audit_id.to_owned());
    format!("{}\n", serde_json::to_string(&e).unwrap())
}

fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

#[test]
fn audit_log_follows_rotation_and_delivers_each_event_once() {
    let dir = Temp::new("k8s-log-live");
    let log = dir.0.join("audit.log");
    // Already there at startup: not reported (reading starts at the end).
    append(&log, &line("exec_pod.json", "before-start"));
    let vigil = Vigil::start(
        &dir.0,
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
    std::fs::rename(&log, dir.0.join("audit-1.log")).unwrap();
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
    let dir = Temp::new("k8s-log-resume");
    let log = dir.0.join("audit.log");
    append(&log, &line("exec_pod.json", "before-first-start"));
    let args = ["--audit-log", log.to_str().unwrap()];
    let vigil = Vigil::start(&dir.0, &args, "k8s-audit-log: following file");
    append(&log, &line("exec_pod.json", "one"));
    append(&log, &line("create_nginx_pod_privileged.json", "two"));
    assert_eq!(audit_ids(&vigil.wait_events(2)), ["one", "two"]);
    vigil.stop();
    let saved = dir.0.join("data/k8s-audit-log.position");
    assert!(saved.exists(), "no position saved at {}", saved.display());

    // While stopped: lines in the file, then a rotation and a new file.
    append(&log, &line("exec_pod.json", "three"));
    std::fs::rename(&log, dir.0.join("audit-2026-11-26T12-00-00.000.log")).unwrap();
    append(&log, &line("create_nginx_pod_hostnetwork.json", "four"));
    append(&log, &line("exec_pod.json", "five"));

    let vigil = Vigil::start(
        &dir.0,
        &args,
        "k8s-audit-log: resuming at the saved position",
    );
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
    let vigil = Vigil::start(
        &dir.0,
        &args,
        "k8s-audit-log: resuming at the saved position",
    );
    append(&log, &line("exec_pod.json", "six"));
    assert_eq!(audit_ids(&vigil.wait_events(1)), ["six"]);
}

fn tls_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/k8s-audit-tls")
        .join(name)
}

/// A POST over TLS trusting only the fixture certificate; returns the status.
fn post_tls(addr: SocketAddr, body: &[u8]) -> u16 {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls_fixture("ca.pem")).unwrap() {
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
    let dir = Temp::new("k8s-webhook-tls");
    let token_file = dir.0.join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let cert = tls_fixture("cert.pem");
    let key = tls_fixture("key.pem");
    let vigil = Vigil::start(
        &dir.0,
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
        "items": [recorded("create_nginx_pod_privileged.json")],
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
