//! Operability through the real binary: `vigil config check`, `vigil run
//! --config` with flags over the file, the admin endpoint (`/metrics`,
//! `/healthz`, `/readyz`), and hot reload (file change, SIGHUP, a refused
//! invalid config) while events keep flowing from an audit log: every event
//! is handled exactly once, and a plugin-settings change toggles a finding.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A temporary directory removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("vigil-{name}-{}_{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.env_remove("VIGIL_LOG").env_remove("RUST_LOG");
    c
}

// ---------------------------------------------------------------- config check

#[test]
fn config_check_lists_every_problem_or_summarises() {
    let dir = Temp::new("config-check");
    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        "data_dir = \"relative\"\n[sources.docker]\nsocket = \"x.sock\"\n[plugins.limits]\ndeadline_ms = 0\n",
    )
    .unwrap();
    let out = vigil()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("3 problem(s)"), "{stdout}");
    for want in [
        "data_dir: must be an absolute path",
        "sources.docker.socket: must be an absolute path",
        "plugins.limits.deadline_ms: must be at least 1",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in {stdout}");
    }

    // A TOML error has its line and column.
    std::fs::write(&bad, "[log]\nlevel = \"info\"\nformat = yaml\n").unwrap();
    let out = vigil()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("line 3, column 10"), "{stdout}");

    // The plugin checks its own settings; its problems carry their paths.
    std::fs::write(
        &bad,
        "[plugins.settings.container-escape]\nhost_cgroupns = \"sometimes\"\n",
    )
    .unwrap();
    let out = vigil()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("plugins.settings.container-escape.host_cgroupns: "),
        "{stdout}"
    );

    let example = root().join("config/vigil.example.toml");
    let out = vigil()
        .args(["config", "check"])
        .arg(&example)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("vigil.example.toml: valid"), "{stdout}");
    let mut builtins: Vec<&str> = vigil_runtime::builtin::names().collect();
    builtins.sort_unstable();
    assert!(
        stdout.contains(&format!("plugins: {}", builtins.join(", "))),
        "{stdout}"
    );

    let out = vigil()
        .args(["config", "check"])
        .arg(dir.0.join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration file"));
}

#[test]
fn run_refuses_an_invalid_config_before_starting() {
    let dir = Temp::new("config-run-bad");
    let cfg = dir.0.join("vigil.toml");
    std::fs::write(
        &cfg,
        "[admin]\nlisten = \"nowhere\"\n[sources.network]\ninterval_ms = 1\n",
    )
    .unwrap();
    let out = vigil()
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("admin.listen"), "{stderr}");
    assert!(stderr.contains("sources.network.interval_ms"), "{stderr}");
}

// ---------------------------------------------------------------- a running host

/// A running `vigil run`, killed when dropped; stdout and stderr are kept.
struct Vigil {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
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
    fn start(config: &Path, extra: &[&str]) -> Self {
        let mut child = vigil()
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(extra)
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
        };
        v.wait_log("vigil running");
        v
    }

    fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn wait_log(&self, needle: &str) {
        let start = Instant::now();
        while !self.logs().contains(needle) {
            assert!(
                start.elapsed() < DEADLINE,
                "no {needle:?} in the log:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The admin endpoint's bound address, from the startup log.
    fn admin(&self) -> SocketAddr {
        let logs = self.logs();
        let line = logs
            .lines()
            .find(|l| l.contains("admin endpoint: listening"))
            .unwrap_or_else(|| panic!("no admin address in {logs}"));
        let at = line.find("address=").unwrap() + "address=".len();
        line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn findings(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits for a finding of `rule` about the audit event `audit_id`.
    fn wait_finding(&self, rule: &str, audit_id: &str) {
        let start = Instant::now();
        while !self.findings().iter().any(|f| about(f, rule, audit_id)) {
            assert!(
                start.elapsed() < DEADLINE,
                "no {rule} finding for {audit_id}; log:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `/metrics` has `line`.
    fn wait_metric(&self, line: &str) {
        let start = Instant::now();
        loop {
            let (_, body) = get(self.admin(), "/metrics");
            if body.lines().any(|l| l == line) {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no {line:?} in /metrics:\n{body}\nlog:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn about(f: &Value, rule: &str, audit_id: &str) -> bool {
    f["rule_id"] == rule
        && f["event_ids"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|i| i.as_str() == Some(&event_id(audit_id))))
}

fn event_id(audit_id: &str) -> String {
    format!("k8s-audit:{audit_id}:ResponseComplete")
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn recorded(name: &str) -> Value {
    let p = root().join("tests/data/k8s-audit/falco-0.34.1").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A recorded event as one audit log line with its own audit id.
fn line(event: &Value, audit_id: &str) -> String {
    let mut e = event.clone();
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

/// Config text: only the audit log source, the admin endpoint on a free
/// port, container-escape's `disabled_rules` as given.
fn config(dir: &Path, log: &Path, disabled: &[&str], poll_ms: u64) -> String {
    format!(
        r#"data_dir = "{data}"
node = "ops-live-test"
[admin]
listen = "127.0.0.1:0"
[sources.docker]
enabled = false
[sources.network]
enabled = false
[sources.file_integrity]
enabled = false
[sources.k8s_watch]
mode = "off"
[sources.k8s_audit_log]
enabled = true
path = "{log}"
poll_interval_ms = {poll_ms}
[plugins]
cache = false
[plugins.settings.container-escape]
disabled_rules = {disabled:?}
# Every event's finding is counted: no dedup summaries.
[dedup]
window_secs = 0
"#,
        data = dir.join("data").display(),
        log = log.display(),
    )
}

/// Writes the config by rename, as editors and ConfigMap volumes do.
fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn admin_endpoint_serves_metrics_and_probes() {
    let dir = Temp::new("admin");
    let log = dir.0.join("audit.log");
    let cfg = dir.0.join("vigil.toml");
    // The file says 9464; the flag wins (and picks a free port).
    // Read from the start: the line is appended right after `vigil
    // running`, possibly before the tailer's first look at the file, which
    // would otherwise start at the end.
    write_config(
        &cfg,
        &config(&dir.0, &log, &[], 20)
            .replace("127.0.0.1:0", "127.0.0.1:9464")
            .replace(
                "poll_interval_ms = 20",
                "poll_interval_ms = 20\nfrom_beginning = true",
            ),
    );
    // The log exists (empty) before the tailer starts, so the tailer's
    // "start at the end" is offset 0 and the line appended below is read.
    std::fs::write(&log, "").unwrap();
    let v = Vigil::start(&cfg, &["--admin-listen", "127.0.0.1:0"]);
    let addr = v.admin();
    assert_ne!(addr.port(), 9464);
    append(
        &log,
        &line(&recorded("create_nginx_pod_privileged.json"), "m1"),
    );
    v.wait_finding("container-escape/privileged", "m1");

    assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
    let (status, body) = get(addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    let builtins = vigil_runtime::builtin::names().count();
    assert!(
        body.starts_with(&format!("ready: {builtins} plugins, 1 sources")),
        "{body}"
    );
    assert_eq!(get(addr, "/nope").0, 404);

    v.wait_metric("vigil_source_normalised_total{source=\"k8s-audit-log\"} 1");
    let (status, metrics) = get(addr, "/metrics");
    assert_eq!(status, 200);
    let running = format!("vigil_plugins_running {builtins}");
    for want in [
        "vigil_ready 1",
        running.as_str(),
        "vigil_sources_running 1",
        "vigil_reloads_ok_total 0",
        "vigil_intel_reloads_total 0",
        "vigil_intel_reload_failures_total 0",
        "vigil_intel_entries 0",
        "vigil_plugin_events_total{plugin=\"container-escape\"} 1",
        "vigil_plugin_findings_total{plugin=\"container-escape\"} 1",
        "vigil_plugin_faults_deadline_total{plugin=\"container-escape\"} 0",
        "vigil_plugin_queue_overflow_total{plugin=\"container-escape\"} 0",
        "vigil_source_dropped_total{source=\"k8s-audit-log\"} 0",
        "vigil_findings_total{plugin=\"container-escape\",rule=\"container-escape/privileged\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == want),
            "no {want:?} in\n{metrics}"
        );
    }
    // The latency histogram counts every call (batches and ticks).
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    let calls = value("vigil_plugin_call_seconds_count{plugin=\"container-escape\"}");
    assert!(calls >= 1);
    assert_eq!(
        value("vigil_plugin_call_seconds_bucket{plugin=\"container-escape\",le=\"+Inf\"}"),
        calls
    );
}

#[test]
fn admin_endpoint_can_be_turned_off() {
    let dir = Temp::new("admin-off");
    let log = dir.0.join("audit.log");
    let cfg = dir.0.join("vigil.toml");
    write_config(&cfg, &config(&dir.0, &log, &[], 20));
    let v = Vigil::start(&cfg, &["--no-admin"]);
    assert!(
        !v.logs().contains("admin endpoint: listening"),
        "{}",
        v.logs()
    );
}

/// Appends a host-network pod every few milliseconds until stopped; returns
/// the audit ids written.
fn flow(
    log: PathBuf,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let event = recorded("create_nginx_pod_hostnetwork.json");
        let mut ids = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let id = format!("flow-{}", ids.len());
            append(&log, &line(&event, &id));
            ids.push(id);
            written.store(ids.len(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(3));
        }
        ids
    })
}

#[test]
fn reload_swaps_plugins_and_sources_without_losing_or_repeating_events() {
    let dir = Temp::new("reload");
    let log = dir.0.join("audit.log");
    let cfg = dir.0.join("vigil.toml");
    write_config(&cfg, &config(&dir.0, &log, &[], 20));
    let v = Vigil::start(&cfg, &[]);
    let privileged = recorded("create_nginx_pod_privileged.json");

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = flow(log.clone(), stop.clone(), written.clone());

    // Before: the privileged rule reports.
    append(&log, &line(&privileged, "p-before"));
    v.wait_finding("container-escape/privileged", "p-before");

    // 1. The file changes: the rule is turned off, and the audit log source
    //    is restarted (its poll interval changed) while events keep coming.
    write_config(&cfg, &config(&dir.0, &log, &["privileged"], 25));
    v.wait_metric("vigil_reloads_ok_total 1");
    v.wait_metric("vigil_source_restarts_total 1");
    append(&log, &line(&privileged, "p-off"));
    append(
        &log,
        &line(&recorded("create_nginx_pod_hostnetwork.json"), "marker-1"),
    );
    v.wait_finding("container-escape/host-network", "marker-1");

    // 2. An invalid file is refused; the running set is kept.
    write_config(
        &cfg,
        "[plugins.settings.container-escape]\nhost_cgroupns = \"sometimes\"\n",
    );
    v.wait_metric("vigil_reloads_failed_total 1");
    v.wait_log("RELOAD REFUSED");
    append(&log, &line(&privileged, "p-still-off"));
    append(
        &log,
        &line(&recorded("create_nginx_pod_hostnetwork.json"), "marker-2"),
    );
    v.wait_finding("container-escape/host-network", "marker-2");

    // 3. SIGHUP with the rule back on.
    std::fs::write(&cfg, config(&dir.0, &log, &[], 25)).unwrap();
    v.signal("HUP");
    v.wait_metric("vigil_reloads_ok_total 2");
    append(&log, &line(&privileged, "p-on"));
    v.wait_finding("container-escape/privileged", "p-on");

    stop.store(true, Ordering::Relaxed);
    let ids = writer.join().unwrap();
    append(
        &log,
        &line(&recorded("create_nginx_pod_hostnetwork.json"), "marker-end"),
    );
    v.wait_finding("container-escape/host-network", "marker-end");
    assert!(ids.len() > 20, "too few events flowed: {}", ids.len());

    let findings = v.findings();
    let mut per_event: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &findings {
        for id in f["event_ids"].as_array().unwrap() {
            let key = (
                f["rule_id"].as_str().unwrap().to_owned(),
                id.as_str().unwrap().to_owned(),
            );
            *per_event.entry(key).or_default() += 1;
        }
    }
    let twice: Vec<_> = per_event.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "reported more than once: {twice:?}");
    let lost: Vec<&String> = ids
        .iter()
        .filter(|id| {
            !per_event.contains_key(&("container-escape/host-network".into(), event_id(id)))
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} events lost across reloads: {lost:?}",
        lost.len(),
        ids.len()
    );
    for off in ["p-off", "p-still-off"] {
        assert!(
            !findings
                .iter()
                .any(|f| about(f, "container-escape/privileged", off)),
            "{off}: the privileged rule was turned off"
        );
    }
    let logs = v.logs();
    assert!(logs.contains("configuration reloaded"), "{logs}");
    assert!(
        logs.contains("resuming where the previous source stopped"),
        "{logs}"
    );
}
