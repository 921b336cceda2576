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

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", std::process::id())
}

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

fn recorded(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/k8s-audit/falco-0.34.1")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
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
        let mut e = recorded(fixture);
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

fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

struct Vigil {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Vigil {
    fn start(dir: &Path, config: &Path, audit_log: Option<&Path>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.env_remove("VIGIL_LOG")
            .env_remove("RUST_LOG")
            .arg("run")
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
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vigil");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let keep = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        let v = Self { child, stderr };
        v.wait_log("vigil running");
        if audit_log.is_some() {
            v.wait_log("k8s-audit-log: following file");
        }
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

    fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    fn stop(mut self) {
        // SIGTERM: graceful.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file_ids(p: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let v: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    ids_of(&v)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool, logs: impl Fn() -> String) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}; logs:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let dir = Temp::new("delivery-outage");
    let got = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(0, Duration::ZERO, got.clone());
    let port = receiver.port;
    let (config, findings) = write_config(&dir.0, port);
    let log = dir.0.join("audit.log");
    append(&log, "");
    let vigil = Vigil::start(&dir.0, &config, Some(&log));

    append(&log, &audit_lines("before", 4));
    wait_until(
        "the first findings at the receiver",
        || {
            let f = file_ids(&findings);
            !f.is_empty() && receiver.ids().len() == f.len() && f.len() >= 4
        },
        || vigil.logs(),
    );

    receiver.stop();
    append(&log, &audit_lines("during", 10));
    let before_restart = file_ids(&findings).len();
    wait_until(
        "the outage findings in the file",
        || file_ids(&findings).len() >= before_restart + 10,
        || vigil.logs(),
    );
    vigil.wait_log("delivery failed; findings stay in the spool and are retried");
    // Several retries against the closed port.
    std::thread::sleep(Duration::from_millis(1_500));
    let failures = vigil
        .logs()
        .matches("delivery failed; findings stay in the spool")
        .count();
    assert!(failures >= 2, "{}", vigil.logs());

    let receiver = Receiver::start(port, Duration::ZERO, got.clone());
    let expected: BTreeSet<String> = file_ids(&findings).into_keys().collect();
    wait_until(
        "every finding at the receiver",
        || receiver.ids().keys().cloned().collect::<BTreeSet<_>>() == expected,
        || vigil.logs(),
    );
    vigil.wait_log("output delivering again");
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
    let dir = Temp::new("delivery-kill9");
    let got = Arc::new(Mutex::new(Vec::new()));
    // Slow receiver: 150 ms per finding, so delivery is under way when Vigil is killed.
    let receiver = Receiver::start(0, Duration::from_millis(150), got.clone());
    let (config, findings) = write_config(&dir.0, receiver.port);
    let log = dir.0.join("audit.log");
    append(&log, "");
    let vigil = Vigil::start(&dir.0, &config, Some(&log));
    append(&log, &audit_lines("burst", 30));
    wait_until(
        "all findings spooled (file written) and some delivered",
        || file_ids(&findings).len() >= 30 && receiver.ids().len() >= 3,
        || vigil.logs(),
    );
    let expected: BTreeSet<String> = file_ids(&findings).into_keys().collect();
    let delivered_before = receiver.ids().len();
    assert!(
        delivered_before < expected.len(),
        "the kill must come during delivery ({delivered_before} of {})",
        expected.len()
    );
    vigil.kill9();

    // Started again on a new, empty audit log: only the spool can supply the rest.
    let empty = dir.0.join("empty-audit.log");
    append(&empty, "");
    let vigil = Vigil::start(&dir.0, &config, Some(&empty));
    vigil.wait_log("undelivered findings from a previous run");
    wait_until(
        "every finding at the receiver after the restart",
        || receiver.ids().keys().cloned().collect::<BTreeSet<_>>() == expected,
        || vigil.logs(),
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
