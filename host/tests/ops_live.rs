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

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::{QUIET_SOURCES, append, audit_line, falco_event, replace, root};
use vigil_test_support::net::http_get;
use vigil_test_support::{Signal, TempDir, VigilProcess};

const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- config check

/// `vigil config check FILE`.
fn config_check(file: &Path) -> Output {
    vigil()
        .args(["config", "check"])
        .arg(file)
        .output()
        .unwrap()
}

/// `vigil config check FILE`, which must find problems (status 1): its
/// report.
fn config_problems(file: &Path) -> String {
    let out = config_check(file);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    stdout
}

#[test]
fn config_check_lists_every_problem_or_summarises() {
    let dir = TempDir::new("config-check");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "data_dir = \"relative\"\n[sources.docker]\nsocket = \"x.sock\"\n[plugins.limits]\ndeadline_ms = 0\n",
    )
    .unwrap();
    let stdout = config_problems(&bad);
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
    let stdout = config_problems(&bad);
    assert!(stdout.contains("line 3, column 10"), "{stdout}");

    // The plugin checks its own settings; its problems carry their paths.
    std::fs::write(
        &bad,
        "[plugins.settings.container-escape]\nhost_cgroupns = \"sometimes\"\n",
    )
    .unwrap();
    let stdout = config_problems(&bad);
    assert!(
        stdout.contains("plugins.settings.container-escape.host_cgroupns: "),
        "{stdout}"
    );

    let example = root().join("config/vigil.example.toml");
    let out = config_check(&example);
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

    let out = config_check(&dir.join("missing.toml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration file"));
}

#[test]
fn run_refuses_an_invalid_config_before_starting() {
    let dir = TempDir::new("config-run-bad");
    let cfg = dir.join("vigil.toml");
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

/// `vigil run --config CONFIG EXTRA…`, once it says it is running.
fn start(config: &Path, extra: &[&str]) -> VigilProcess {
    let v = VigilProcess::spawn(vigil().arg("run").arg("--config").arg(config).args(extra));
    v.wait_for_stderr("vigil running", DEADLINE);
    v
}

/// Waits for a finding of `rule` about the audit event `audit_id`.
fn wait_finding(v: &VigilProcess, rule: &str, audit_id: &str) {
    v.wait_for_finding(&format!("{rule} for {audit_id}"), DEADLINE, |f| {
        about(f, rule, audit_id)
    });
}

fn about(f: &Value, rule: &str, audit_id: &str) -> bool {
    f["rule_id"] == rule
        && f["event_ids"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|i| i.as_str() == Some(&event_id(audit_id))))
}

/// The recorded Falco events these tests write: one rule each.
const PRIVILEGED: &str = "create_nginx_pod_privileged.json";
const HOST_NETWORK: &str = "create_nginx_pod_hostnetwork.json";

/// Appends the recorded Falco event `fixture` to `log` as audit event
/// `audit_id`.
fn write_event(log: &Path, fixture: &str, audit_id: &str) {
    append(log, &audit_line(&falco_event(fixture), audit_id));
}

/// Writes a host-network pod (a rule never turned off here) as `marker`
/// and waits for its finding: every line written before it has been read.
fn write_marker(v: &VigilProcess, log: &Path, marker: &str) {
    write_event(log, HOST_NETWORK, marker);
    wait_finding(v, "container-escape/host-network", marker);
}

fn event_id(audit_id: &str) -> String {
    format!("k8s-audit:{audit_id}:ResponseComplete")
}

/// Config text: only the audit log source, the admin endpoint on a free
/// port, container-escape's `disabled_rules` as given.
fn config(dir: &Path, log: &Path, disabled: &[&str], poll_ms: u64) -> String {
    format!(
        r#"data_dir = "{data}"
node = "ops-live-test"
[admin]
listen = "127.0.0.1:0"
{QUIET_SOURCES}
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

#[test]
fn admin_endpoint_serves_metrics_and_probes() {
    let dir = TempDir::new("admin");
    let log = dir.join("audit.log");
    let cfg = dir.join("vigil.toml");
    // The file says 9464; the flag wins (and picks a free port).
    // Read from the start: the line is appended right after `vigil
    // running`, possibly before the tailer's first look at the file, which
    // would otherwise start at the end.
    replace(
        &cfg,
        &config(&dir, &log, &[], 20)
            .replace("127.0.0.1:0", "127.0.0.1:9464")
            .replace(
                "poll_interval_ms = 20",
                "poll_interval_ms = 20\nfrom_beginning = true",
            ),
    );
    // The log exists (empty) before the tailer starts, so the tailer's
    // "start at the end" is offset 0 and the line appended below is read.
    std::fs::write(&log, "").unwrap();
    let v = start(&cfg, &["--admin-listen", "127.0.0.1:0"]);
    let addr = v.admin_addr();
    assert_ne!(addr.port(), 9464);
    write_event(&log, PRIVILEGED, "m1");
    wait_finding(&v, "container-escape/privileged", "m1");

    assert_eq!(http_get(addr, "/healthz"), (200, "ok\n".into()));
    let (status, body) = http_get(addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    let builtins = vigil_runtime::builtin::names().count();
    assert!(
        body.starts_with(&format!("ready: {builtins} plugins, 1 sources")),
        "{body}"
    );
    assert_eq!(http_get(addr, "/nope").0, 404);

    v.wait_for_metric(
        "vigil_source_normalised_total{source=\"k8s-audit-log\"} 1",
        DEADLINE,
    );
    let (status, metrics) = http_get(addr, "/metrics");
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
    let dir = TempDir::new("admin-off");
    let log = dir.join("audit.log");
    let cfg = dir.join("vigil.toml");
    replace(&cfg, &config(&dir, &log, &[], 20));
    let v = start(&cfg, &["--no-admin"]);
    assert!(
        !v.stderr_text().contains("admin endpoint: listening"),
        "{}",
        v.stderr_text()
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
        let event = falco_event(HOST_NETWORK);
        let mut ids = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let id = format!("flow-{}", ids.len());
            append(&log, &audit_line(&event, &id));
            ids.push(id);
            written.store(ids.len(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(3));
        }
        ids
    })
}

#[test]
fn reload_swaps_plugins_and_sources_without_losing_or_repeating_events() {
    let dir = TempDir::new("reload");
    let log = dir.join("audit.log");
    let cfg = dir.join("vigil.toml");
    replace(&cfg, &config(&dir, &log, &[], 20));
    // The source starts at the end of an existing file: the file exists and
    // the source follows it before the first line is written, or a line
    // written before its first look (a loaded machine) would be skipped.
    std::fs::write(&log, "").unwrap();
    let v = start(&cfg, &[]);
    v.wait_for_stderr("k8s-audit-log: following file", DEADLINE);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = flow(log.clone(), stop.clone(), written.clone());

    // Before: the privileged rule reports.
    write_event(&log, PRIVILEGED, "p-before");
    wait_finding(&v, "container-escape/privileged", "p-before");

    // 1. The file changes: the rule is turned off, and the audit log source
    //    is restarted (its poll interval changed) while events keep coming.
    replace(&cfg, &config(&dir, &log, &["privileged"], 25));
    v.wait_for_metric("vigil_reloads_ok_total 1", DEADLINE);
    v.wait_for_metric("vigil_source_restarts_total 1", DEADLINE);
    write_event(&log, PRIVILEGED, "p-off");
    write_marker(&v, &log, "marker-1");

    // 2. An invalid file is refused; the running set is kept.
    replace(
        &cfg,
        "[plugins.settings.container-escape]\nhost_cgroupns = \"sometimes\"\n",
    );
    v.wait_for_metric("vigil_reloads_failed_total 1", DEADLINE);
    v.wait_for_stderr("RELOAD REFUSED", DEADLINE);
    write_event(&log, PRIVILEGED, "p-still-off");
    write_marker(&v, &log, "marker-2");

    // 3. SIGHUP with the rule back on.
    std::fs::write(&cfg, config(&dir, &log, &[], 25)).unwrap();
    v.signal(Signal::Hup);
    v.wait_for_metric("vigil_reloads_ok_total 2", DEADLINE);
    write_event(&log, PRIVILEGED, "p-on");
    wait_finding(&v, "container-escape/privileged", "p-on");

    stop.store(true, Ordering::Relaxed);
    let ids = writer.join().unwrap();
    write_marker(&v, &log, "marker-end");
    assert!(ids.len() > 20, "too few events flowed: {}", ids.len());

    let findings = v.findings();
    let mut per_event: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &findings {
        // An incident's event ids are the ids of the findings it groups, and
        // each update (a new revision, same incident id) lists them all again:
        // what must not repeat there is a revision.
        if f["rule_id"] == "incident/correlated" {
            let key = (
                format!("incident {}", f["evidence"]["incident-id"]),
                format!("revision {}", f["evidence"]["revision"]),
            );
            *per_event.entry(key).or_default() += 1;
            continue;
        }
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
    let logs = v.stderr_text();
    assert!(logs.contains("configuration reloaded"), "{logs}");
    assert!(
        logs.contains("resuming where the previous source stopped"),
        "{logs}"
    );
}
