//! `/metrics` of the real binary is clean under `promtool check metrics`
//! (Debian's `prometheus` package, installed by `scripts/test-deps.sh`): a
//! `vigil run` handles recorded audit events, so per-plugin, per-source and
//! per-output series and both latency histograms have values, and the
//! scrape must make promtool print nothing and exit 0. A missing promtool
//! fails the test: skipping would let the exposition rot unnoticed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// A temporary directory removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("vigil-metrics-promtool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `vigil run`, killed when dropped; its stderr kept for failure messages.
struct Vigil {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Vigil {
    fn start(args: &[&str]) -> Self {
        let mut child = common::vigil()
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vigil");
        let stderr = Arc::new(Mutex::new(String::new()));
        let keep = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = keep.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self { child, stderr }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free right now (the OS picks it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET on loopback: the body of a 200, else `None`.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200 ").then(|| body.to_owned())
}

/// A recorded audit event as one log line with its own audit id.
fn audit_line(name: &str, audit_id: &str) -> String {
    let text = std::fs::read_to_string(vigil_test_support::fixtures::falco(name)).unwrap();
    let mut e: serde_json::Value = serde_json::from_str(&text).unwrap();
    e["auditID"] = serde_json::Value::String(audit_id.to_owned());
    format!("{}\n", serde_json::to_string(&e).unwrap())
}

/// Runs `promtool check metrics` on `text`: (success, everything it printed).
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run promtool ({e}): install Debian's `prometheus` package \
             (`bash scripts/test-deps.sh` does); this test never skips"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

/// Waits until the scrape has every line of `want`; returns that scrape.
fn wait_metrics(v: &Vigil, addr: SocketAddr, want: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let body = get(addr, "/metrics");
        if let Some(b) = &body
            && want.iter().all(|w| b.lines().any(|l| l.starts_with(w)))
        {
            return b.clone();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "/metrics never had all of {want:?}:\n{}\nlog:\n{}",
            body.unwrap_or_else(|| "(no answer)".into()),
            v.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_feed(dir: &Path) -> PathBuf {
    let feed = dir.join("feed.txt");
    std::fs::write(&feed, "# test feed\n203.0.113.7\n198.51.100.0/24\n").unwrap();
    feed
}

#[test]
fn live_metrics_pass_promtool_check_metrics() {
    // Fail early and clearly when promtool is missing, before starting Vigil.
    let (ok, printed) = promtool_check("");
    assert!(
        ok,
        "promtool check metrics on empty input failed:\n{printed}"
    );

    let dir = Temp::new();
    let log = dir.0.join("audit.log");
    let mut lines = String::new();
    for (i, name) in [
        "create_nginx_pod_privileged.json",
        "create_nginx_pod_hostnetwork.json",
        "create_nginx_pod_unprivileged.json",
        "create_configmap.json",
    ]
    .iter()
    .enumerate()
    {
        lines.push_str(&audit_line(name, &format!("promtool-{i}")));
    }
    std::fs::write(&log, lines).unwrap();
    let feed = write_feed(&dir.0);
    let data = dir.0.join("data");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen = addr.to_string();
    let v = Vigil::start(&[
        "--no-docker",
        "--no-network",
        "--no-file-integrity",
        "--no-k8s-watch",
        "--no-cache",
        "--data-dir",
        data.to_str().unwrap(),
        "--admin-listen",
        &listen,
        "--audit-log",
        log.to_str().unwrap(),
        "--audit-log-from-beginning",
        "--intel",
        feed.to_str().unwrap(),
    ]);

    let metrics = wait_metrics(
        &v,
        addr,
        &[
            "vigil_ready 1",
            "vigil_source_normalised_total{source=\"k8s-audit-log\"} 4",
            "vigil_findings_total{plugin=\"container-escape\",rule=\"container-escape/privileged\"} 1",
            "vigil_plugin_call_seconds_count{plugin=\"container-escape\"}",
            "vigil_output_latency_seconds_count{",
            "vigil_intel_entries 2",
        ],
    );
    for family in [
        "# TYPE vigil_plugin_events_total counter",
        "# TYPE vigil_plugin_call_seconds histogram",
        "# TYPE vigil_output_latency_seconds histogram",
        "# TYPE vigil_ready gauge",
    ] {
        assert!(
            metrics.lines().any(|l| l == family),
            "no {family:?} in\n{metrics}"
        );
    }

    let (ok, printed) = promtool_check(&metrics);
    assert!(
        ok && printed.is_empty(),
        "promtool check metrics {} on the live /metrics:\n{printed}\n--- scrape ---\n{metrics}",
        if ok { "printed problems" } else { "failed" },
    );
}
