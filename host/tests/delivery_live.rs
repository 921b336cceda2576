//! No loss, through the real `vigil run` binary: findings come from audit
//! log lines (the Falco fixtures, each with its own audit id) and go to a
//! file output and to a webhook served by a real HTTP/1.1 server on
//! loopback in this test.
//!
//! - The receiver is stopped for a while (connections refused), then
//!   started again: every finding of the file output arrives at the webhook.
//! - Vigil is killed with SIGKILL while a slow receiver is taking findings;
//!   started again (on an empty audit log, so only the spool can supply
//!   them), it delivers the rest.
//!
//! Delivery is at least once: a finding sent just before the kill may
//! arrive twice; the receiver dedups on the finding `id`, as the tests do.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::{append, falco_event};
use vigil_test_support::output::read_jsonl;
use vigil_test_support::{TempDir, VigilProcess};

const DEADLINE: Duration = Duration::from_secs(60);

/// How long Vigil may take to start (compiling the built-in plugins) or to
/// log what the test waits for.
const STARTUP: Duration = Duration::from_secs(120);

/// A webhook receiver: HTTP/1.1 with keep-alive, answers 200 after `delay`.
/// Stopping it closes the listener and every open connection.
struct Receiver {
    port: u16,
    stop: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicU64>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, delay: Duration, got: Arc<Mutex<Vec<Value>>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (s, g, r) = (stop.clone(), got.clone(), requests.clone());
        let accept = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, g, r) = (s.clone(), g.clone(), r.clone());
                        std::thread::spawn(move || serve(conn, delay, &s, &g, &r));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener is dropped here: connections are refused.
        });
        Self {
            port,
            stop,
            got,
            requests,
            accept: Some(accept),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            t.join().unwrap();
        }
    }

    fn ids(&self) -> BTreeMap<String, usize> {
        ids_of(&self.got.lock().unwrap())
    }
}

fn ids_of(findings: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in findings {
        *m.entry(f["id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    m
}

fn serve(
    conn: TcpStream,
    delay: Duration,
    stop: &AtomicBool,
    got: &Mutex<Vec<Value>>,
    requests: &AtomicU64,
) {
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        // Request line and headers.
        let mut head = Vec::new();
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line == "\r\n" {
                        break;
                    }
                    head.push(line);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if !line.is_empty() {
                        head.push(line);
                    }
                }
                Err(_) => return,
            }
        }
        let len: usize = head
            .iter()
            .find_map(|h| {
                h.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0; len];
        let mut read = 0;
        while read < len {
            match reader.read(&mut body[read..]) {
                Ok(0) => return,
                Ok(n) => read += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        std::thread::sleep(delay);
        if stop.load(Ordering::SeqCst) {
            // Stopped while handling: no answer, as if the server had died.
            return;
        }
        let v: Value = serde_json::from_slice(&body).unwrap();
        requests.fetch_add(1, Ordering::SeqCst);
        {
            let mut g = got.lock().unwrap();
            match v {
                Value::Array(items) => g.extend(items),
                one => g.push(one),
            }
        }
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
        if conn.write_all(ok).is_err() {
            return;
        }
    }
}

/// `n` audit log lines, each a privileged or host-network pod creation with
/// its own audit id and pod name (so each gives its own findings).
fn audit_lines(prefix: &str, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let fixture = if i % 2 == 0 {
            "create_nginx_pod_privileged.json"
        } else {
            "create_nginx_pod_hostnetwork.json"
        };
        let mut e = falco_event(fixture);
        let name = format!("{prefix}-{i}");
        e["auditID"] = Value::String(format!("{prefix}-audit-{i}"));
        e["objectRef"]["name"] = Value::String(name.clone());
        for body in ["requestObject", "responseObject"] {
            if e[body].is_object() {
                e[body]["metadata"]["name"] = Value::String(name.clone());
            }
        }
        out.push_str(&serde_json::to_string(&e).unwrap());
        out.push('\n');
    }
    out
}

/// `vigil run` with the delivery config `config` (and the audit log
/// source on `audit_log`), once it is running.
fn start(dir: &Path, config: &Path, audit_log: Option<&Path>) -> VigilProcess {
    let mut cmd = vigil();
    cmd.arg("run")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args([
            "--no-cache",
            "--no-docker",
            "--no-network",
            "--no-file-integrity",
            "--no-k8s-watch",
            "--no-admin",
            "--no-watch",
            "--node",
            "delivery-test",
        ])
        .arg("--config")
        .arg(config);
    if let Some(log) = audit_log {
        cmd.arg("--audit-log").arg(log);
    }
    let v = VigilProcess::spawn(&mut cmd);
    v.wait_for_stderr("vigil running", STARTUP);
    if audit_log.is_some() {
        v.wait_for_stderr("k8s-audit-log: following file", STARTUP);
    }
    v
}

fn file_ids(p: &Path) -> BTreeMap<String, usize> {
    ids_of(&read_jsonl(p))
}

fn write_config(dir: &Path, port: u16) -> (PathBuf, PathBuf) {
    let findings = dir.join("findings.jsonl");
    let config = dir.join("delivery.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[outputs.stdout]
enabled = false

[[outputs.file]]
path = "{}"

[[outputs.webhook]]
name = "receiver"
url = "http://127.0.0.1:{port}/findings"
headers = {{ "X-Test" = "delivery" }}
retry = {{ initial_ms = 100, max_ms = 800 }}

[dedup]
window_secs = 0

[spool]
shutdown_grace_ms = 200
"#,
            findings.display()
        ),
    )
    .unwrap();
    (config, findings)
}

#[test]
fn webhook_down_for_a_while_then_every_finding_arrives() {
    let dir = TempDir::new("delivery-outage");
    let got = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(0, Duration::ZERO, got.clone());
    let port = receiver.port;
    let (config, findings) = write_config(&dir, port);
    let log = dir.join("audit.log");
    append(&log, "");
    let vigil = start(&dir, &config, Some(&log));

    append(&log, &audit_lines("before", 4));
    vigil.wait_until("the first findings at the receiver", DEADLINE, || {
        let f = file_ids(&findings);
        !f.is_empty() && receiver.ids().len() == f.len() && f.len() >= 4
    });

    receiver.stop();
    append(&log, &audit_lines("during", 10));
    let before_restart = file_ids(&findings).len();
    vigil.wait_until("the outage findings in the file", DEADLINE, || {
        file_ids(&findings).len() >= before_restart + 10
    });
    vigil.wait_for_stderr(
        "delivery failed; findings stay in the spool and are retried",
        STARTUP,
    );
    // Several retries against the closed port.
    std::thread::sleep(Duration::from_millis(1_500));
    let failures = vigil
        .stderr_text()
        .matches("delivery failed; findings stay in the spool")
        .count();
    assert!(failures >= 2, "{}", vigil.stderr_text());

    let receiver = Receiver::start(port, Duration::ZERO, got.clone());
    let expected: BTreeSet<String> = file_ids(&findings).into_keys().collect();
    vigil.wait_until("every finding at the receiver", DEADLINE, || {
        receiver.ids().keys().cloned().collect::<BTreeSet<_>>() == expected
    });
    vigil.wait_for_stderr("output delivering again", STARTUP);
    let dups: usize = receiver.ids().values().map(|n| n - 1).sum();
    eprintln!(
        "{} findings, {} requests, {dups} duplicates",
        expected.len(),
        receiver.requests.load(Ordering::SeqCst)
    );
    // Nothing lost or doubled in the file (its writes never failed).
    assert!(file_ids(&findings).values().all(|n| *n == 1));
    vigil.stop();
    receiver.stop();
}

#[test]
fn kill_9_during_delivery_then_restart_delivers_the_rest() {
    let dir = TempDir::new("delivery-kill9");
    let got = Arc::new(Mutex::new(Vec::new()));
    // Slow receiver: 150 ms per finding, so delivery is under way when Vigil is killed.
    let receiver = Receiver::start(0, Duration::from_millis(150), got.clone());
    let (config, findings) = write_config(&dir, receiver.port);
    let log = dir.join("audit.log");
    append(&log, "");
    let vigil = start(&dir, &config, Some(&log));
    append(&log, &audit_lines("burst", 30));
    vigil.wait_until(
        "all findings spooled (file written) and some delivered",
        DEADLINE,
        || file_ids(&findings).len() >= 30 && receiver.ids().len() >= 3,
    );
    let expected: BTreeSet<String> = file_ids(&findings).into_keys().collect();
    let delivered_before = receiver.ids().len();
    assert!(
        delivered_before < expected.len(),
        "the kill must come during delivery ({delivered_before} of {})",
        expected.len()
    );
    vigil.kill();

    // Started again on a new, empty audit log: only the spool can supply the rest.
    let empty = dir.join("empty-audit.log");
    append(&empty, "");
    let vigil = start(&dir, &config, Some(&empty));
    vigil.wait_for_stderr("undelivered findings from a previous run", STARTUP);
    vigil.wait_until(
        "every finding at the receiver after the restart",
        DEADLINE,
        || receiver.ids().keys().cloned().collect::<BTreeSet<_>>() == expected,
    );
    let ids = receiver.ids();
    let dups: usize = ids.values().map(|n| n - 1).sum();
    eprintln!(
        "{} findings; {delivered_before} before the kill; {dups} delivered twice (at least once)",
        expected.len()
    );
    assert!(dups <= 1, "at most the one in flight at the kill: {ids:?}");
    vigil.stop();
    receiver.stop();
}
