//! Threat-intel feeds reloaded by a running `vigil run`, end to end: the real
//! binary, the real procfs network source (the host's own sockets, loopback
//! only) and the built-in suspicious-egress plugin. A connection to an
//! address that is not listed gives nothing; once the feed file is replaced
//! to list it, a new connection is a `threat-intel` finding naming the
//! entry; a broken feed is refused loudly and the previous one stays, each
//! counted in `/metrics`. The feeds and the poll interval are also `[intel]`
//! of a config file: a config reload that names another feed file restarts
//! polling on it, and the old file is no longer polled.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::replace;
use vigil_test_support::{TempDir, VigilProcess};

/// The loopback address the "C2" listens on (all of 127/8 is loopback).
const C2: &str = "127.0.0.77";

/// How long a log line, a finding or a reload may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// `vigil run` configured by flags only.
fn start(dir: &Path, feed: &Path, settings: &Path) -> VigilProcess {
    let mut args: Vec<OsString> = ["--data-dir".into(), dir.join("data").into()].into();
    args.extend(
        [
            "--no-cache",
            "--no-docker",
            "--no-file-integrity",
            "--no-k8s-watch",
            "--network-include-host",
            "--network-interval-ms",
            "100",
            "--intel-poll-ms",
            "100",
            // Every connection is counted: no dedup summaries.
            "--dedup-window-secs",
            "0",
            "--admin-listen",
            "127.0.0.1:0",
            "--intel",
        ]
        .map(OsString::from),
    );
    args.push(feed.into());
    args.push("--plugin-settings".into());
    args.push(format!("suspicious-egress={}", settings.display()).into());
    spawn(&args)
}

fn spawn(args: &[OsString]) -> VigilProcess {
    VigilProcess::spawn(vigil().arg("run").args(args))
}

fn assert_metrics(vigil: &VigilProcess, want: &[&str]) {
    let metrics = vigil.metrics();
    let have: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("vigil_intel") || l.starts_with("vigil_reloads"))
        .collect();
    for w in want {
        assert!(
            have.iter().any(|l| l == w),
            "no {w:?} in /metrics: {have:#?}\nlog:\n{}",
            vigil.stderr_text()
        );
    }
}

/// Whether `f` is a threat-intel finding about a connection to `to`.
fn intel_to(f: &Value, to: SocketAddr) -> bool {
    f["rule_id"] == "suspicious-egress/threat-intel"
        && f["evidence"]["remote-address"].as_str() == Some(&to.ip().to_string())
        && f["evidence"]["remote-port"].as_str() == Some(&to.port().to_string())
}

/// The threat-intel findings about connections to `to`.
fn intel_findings(vigil: &VigilProcess, to: SocketAddr) -> Vec<Value> {
    vigil
        .findings()
        .into_iter()
        .filter(|f| intel_to(f, to))
        .collect()
}

fn wait_findings(vigil: &VigilProcess, to: SocketAddr, n: usize) -> Vec<Value> {
    let found = vigil.wait_for_findings(
        &format!("{n} threat-intel findings for {to}"),
        DEADLINE,
        |all| all.iter().filter(|f| intel_to(f, to)).count() >= n,
    );
    found.into_iter().filter(|f| intel_to(f, to)).collect()
}

/// Opens a connection and keeps it open for a few polls of the source.
fn connect(to: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(to).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    stream
}

/// Both tests watch the host's own loopback sockets through `vigil run`, so
/// each would see the other's connections: they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn a_feed_changed_while_running_is_used_for_new_connections() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = TempDir::new("intel-live");
    let feed = dir.join("c2.txt");
    std::fs::write(&feed, "# nothing of ours yet\n192.0.2.1\n").unwrap();
    let settings = dir.join("egress.json");
    std::fs::write(&settings, r#"{"include_host": true, "realert_secs": 0}"#).unwrap();

    let listener = TcpListener::bind((C2, 0)).unwrap();
    let to = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        // Hold every accepted connection until the test ends.
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });

    let vigil = start(&dir, &feed, &settings);
    vigil.wait_for_stderr("vigil running", DEADLINE);

    // Not listed: nothing.
    let _before = connect(to);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        intel_findings(&vigil, to).is_empty(),
        "{}",
        vigil.stderr_text()
    );

    // Listed by the replaced feed: the next connection is reported.
    replace(&feed, &format!("# updated\n192.0.2.1\n{C2}/32\n"));
    vigil.wait_for_stderr("threat-intel feeds reloaded", DEADLINE);
    let _after = connect(to);
    let found = wait_findings(&vigil, to, 1);
    let f = &found[0];
    assert_eq!(f["plugin"], "suspicious-egress");
    assert_eq!(f["severity"], "high");
    assert_eq!(f["evidence"]["feed"], "c2.txt");
    assert_eq!(f["evidence"]["feed-entry"], format!("{C2}/32"));
    assert_eq!(f["evidence"]["direction"], "outbound");

    // A broken feed is refused loudly; the previous one stays in force.
    replace(&feed, "<html>502 Bad Gateway</html>\n");
    vigil.wait_for_stderr("threat-intel reload FAILED", DEADLINE);
    let _broken = connect(to);
    let found = wait_findings(&vigil, to, 2);
    assert_eq!(found[1]["evidence"]["feed-entry"], format!("{C2}/32"));
    let log = vigil.stderr_text();
    assert!(log.contains("has no address or CIDR entry"), "{log}");
    assert_metrics(
        &vigil,
        &[
            "vigil_intel_reloads_total 1",
            "vigil_intel_reload_failures_total 1",
            "vigil_intel_entries 2",
        ],
    );
}

/// A config file for `vigil run --config`: the feed `feed`, polled every
/// 100 ms, the host's own sockets, suspicious-egress reporting every match.
fn config(dir: &Path, feed: &Path) -> String {
    format!(
        r#"data_dir = "{data}"
[admin]
listen = "127.0.0.1:0"
[sources.docker]
enabled = false
[sources.file_integrity]
enabled = false
[sources.k8s_watch]
mode = "off"
[sources.network]
interval_ms = 100
include_host = true
[plugins]
cache = false
[plugins.settings.suspicious-egress]
include_host = true
realert_secs = 0
[dedup]
window_secs = 0
[intel]
poll_interval_ms = 100
[[intel.feeds]]
path = "{feed}"
category = "c2"
"#,
        data = dir.join("data").display(),
        feed = feed.display(),
    )
}

#[test]
fn a_config_reload_naming_another_feed_moves_the_polling_to_it() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = TempDir::new("intel-config");
    let old_feed = dir.join("old.txt");
    std::fs::write(&old_feed, "192.0.2.1\n").unwrap();
    let new_feed = dir.join("new.txt");
    std::fs::write(&new_feed, format!("192.0.2.2\n{C2}/32\n")).unwrap();
    let cfg = dir.join("vigil.toml");
    replace(&cfg, &config(&dir, &old_feed));

    let listener = TcpListener::bind((C2, 0)).unwrap();
    let to = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });

    let vigil = spawn(&["--config".into(), cfg.clone().into()]);
    vigil.wait_for_stderr("vigil running", DEADLINE);
    assert_metrics(&vigil, &["vigil_intel_entries 1"]);

    // The config now names the other feed: reloaded with the config, then
    // polled in place of the old one.
    replace(&cfg, &config(&dir, &new_feed));
    vigil.wait_for_stderr("feed polling restarted on the new feeds", DEADLINE);
    vigil.wait_for_stderr("configuration reloaded", DEADLINE);
    assert_metrics(
        &vigil,
        &["vigil_reloads_ok_total 1", "vigil_intel_entries 2"],
    );
    let _listed = connect(to);
    let found = wait_findings(&vigil, to, 1);
    assert_eq!(found[0]["evidence"]["feed"], "new.txt");
    assert_eq!(found[0]["evidence"]["feed-entry"], format!("{C2}/32"));

    // The new file is polled ...
    replace(&new_feed, &format!("192.0.2.2\n192.0.2.3\n{C2}/32\n"));
    vigil.wait_for_stderr("threat-intel feeds reloaded", DEADLINE);
    assert_metrics(
        &vigil,
        &["vigil_intel_reloads_total 1", "vigil_intel_entries 3"],
    );
    // ... the old one no longer is.
    replace(&old_feed, "<html>502 Bad Gateway</html>\n");
    std::thread::sleep(Duration::from_millis(600));
    assert_metrics(
        &vigil,
        &[
            "vigil_intel_reloads_total 1",
            "vigil_intel_reload_failures_total 0",
            "vigil_intel_entries 3",
        ],
    );
}
