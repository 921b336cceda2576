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

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The loopback address the "C2" listens on (all of 127/8 is loopback).
const C2: &str = "127.0.0.77";

struct Vigil {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        }
    });
    lines
}

impl Vigil {
    /// `vigil run` configured by flags only.
    fn start(dir: &Path, feed: &Path, settings: &Path) -> Self {
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
        Self::spawn(&args)
    }

    fn spawn(args: &[OsString]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .env_remove("VIGIL_LOG")
            .env_remove("RUST_LOG")
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vigil");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    fn wait_log(&mut self, needle: &str, occurrences: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log().matches(needle).count() >= occurrences {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("vigil exited ({status}); stderr:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("vigil did not log {needle:?}; stderr:\n{}", self.log());
    }

    /// The admin endpoint's address, from the startup log.
    fn admin(&self) -> SocketAddr {
        let log = self.log();
        let line = log
            .lines()
            .find(|l| l.contains("admin endpoint: listening"))
            .unwrap_or_else(|| panic!("no admin address in {log}"));
        let at = line.find("address=").unwrap() + "address=".len();
        line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The `/metrics` lines that start with `vigil_intel` or `vigil_reloads`.
    fn metrics(&self) -> Vec<String> {
        let mut s = TcpStream::connect_timeout(&self.admin(), Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw.lines()
            .filter(|l| l.starts_with("vigil_intel") || l.starts_with("vigil_reloads"))
            .map(str::to_owned)
            .collect()
    }

    fn assert_metrics(&self, want: &[&str]) {
        let have = self.metrics();
        for w in want {
            assert!(
                have.iter().any(|l| l == w),
                "no {w:?} in /metrics: {have:#?}\nlog:\n{}",
                self.log()
            );
        }
    }

    /// The threat-intel findings about connections to `to`.
    fn intel_findings(&self, to: SocketAddr) -> Vec<serde_json::Value> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("stdout is JSON lines"))
            .filter(|f| {
                f["rule_id"] == "suspicious-egress/threat-intel"
                    && f["evidence"]["remote-address"].as_str() == Some(&to.ip().to_string())
                    && f["evidence"]["remote-port"].as_str() == Some(&to.port().to_string())
            })
            .collect()
    }

    fn wait_findings(&self, to: SocketAddr, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let found = self.intel_findings(to);
            if found.len() >= n {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no {n} threat-intel findings for {to}; stdout:\n{}\nstderr:\n{}",
            self.stdout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .join("\n"),
            self.log()
        );
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces the feed the way a downloader does: a new file renamed over it.
fn replace(feed: &Path, text: &str) {
    let next = feed.with_extension("new");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, feed).unwrap();
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
    let dir: PathBuf =
        std::env::temp_dir().join(format!("vigil-intel-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
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

    let mut vigil = Vigil::start(&dir, &feed, &settings);
    vigil.wait_log("vigil running", 1);

    // Not listed: nothing.
    let _before = connect(to);
    std::thread::sleep(Duration::from_millis(300));
    assert!(vigil.intel_findings(to).is_empty(), "{}", vigil.log());

    // Listed by the replaced feed: the next connection is reported.
    replace(&feed, &format!("# updated\n192.0.2.1\n{C2}/32\n"));
    vigil.wait_log("threat-intel feeds reloaded", 1);
    let _after = connect(to);
    let found = vigil.wait_findings(to, 1);
    let f = &found[0];
    assert_eq!(f["plugin"], "suspicious-egress");
    assert_eq!(f["severity"], "high");
    assert_eq!(f["evidence"]["feed"], "c2.txt");
    assert_eq!(f["evidence"]["feed-entry"], format!("{C2}/32"));
    assert_eq!(f["evidence"]["direction"], "outbound");

    // A broken feed is refused loudly; the previous one stays in force.
    replace(&feed, "<html>502 Bad Gateway</html>\n");
    vigil.wait_log("threat-intel reload FAILED", 1);
    let _broken = connect(to);
    let found = vigil.wait_findings(to, 2);
    assert_eq!(found[1]["evidence"]["feed-entry"], format!("{C2}/32"));
    assert!(
        vigil.log().contains("has no address or CIDR entry"),
        "{}",
        vigil.log()
    );
    vigil.assert_metrics(&[
        "vigil_intel_reloads_total 1",
        "vigil_intel_reload_failures_total 1",
        "vigil_intel_entries 2",
    ]);

    drop(vigil);
    let _ = std::fs::remove_dir_all(&dir);
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

/// Replaces the config file atomically (the reload must not read half of it).
fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_config_reload_naming_another_feed_moves_the_polling_to_it() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("vigil-intel-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let old_feed = dir.join("old.txt");
    std::fs::write(&old_feed, "192.0.2.1\n").unwrap();
    let new_feed = dir.join("new.txt");
    std::fs::write(&new_feed, format!("192.0.2.2\n{C2}/32\n")).unwrap();
    let cfg = dir.join("vigil.toml");
    write_config(&cfg, &config(&dir, &old_feed));

    let listener = TcpListener::bind((C2, 0)).unwrap();
    let to = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });

    let mut vigil = Vigil::spawn(&["--config".into(), cfg.clone().into()]);
    vigil.wait_log("vigil running", 1);
    vigil.assert_metrics(&["vigil_intel_entries 1"]);

    // The config now names the other feed: reloaded with the config, then
    // polled in place of the old one.
    write_config(&cfg, &config(&dir, &new_feed));
    vigil.wait_log("feed polling restarted on the new feeds", 1);
    vigil.wait_log("configuration reloaded", 1);
    vigil.assert_metrics(&["vigil_reloads_ok_total 1", "vigil_intel_entries 2"]);
    let _listed = connect(to);
    let found = vigil.wait_findings(to, 1);
    assert_eq!(found[0]["evidence"]["feed"], "new.txt");
    assert_eq!(found[0]["evidence"]["feed-entry"], format!("{C2}/32"));

    // The new file is polled ...
    replace(&new_feed, &format!("192.0.2.2\n192.0.2.3\n{C2}/32\n"));
    vigil.wait_log("threat-intel feeds reloaded", 1);
    vigil.assert_metrics(&["vigil_intel_reloads_total 1", "vigil_intel_entries 3"]);
    // ... the old one no longer is.
    replace(&old_feed, "<html>502 Bad Gateway</html>\n");
    std::thread::sleep(Duration::from_millis(600));
    vigil.assert_metrics(&[
        "vigil_intel_reloads_total 1",
        "vigil_intel_reload_failures_total 0",
        "vigil_intel_entries 3",
    ]);

    drop(vigil);
    let _ = std::fs::remove_dir_all(&dir);
}
