//! Threat-intel feeds reloaded by a running `vigil run`, end to end: the real
//! binary, the real procfs network source (the host's own sockets, loopback
//! only) and the built-in suspicious-egress plugin. A connection to an
//! address that is not listed gives nothing; once the feed file is replaced
//! to list it, a new connection is a `threat-intel` finding naming the
//! entry; a broken feed is refused loudly and the previous one stays.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::io::{BufRead, BufReader};
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
    fn start(dir: &Path, feed: &Path, settings: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .env_remove("VIGIL_LOG")
            .env_remove("RUST_LOG")
            .arg("run")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--no-cache",
                "--no-docker",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--network-include-host",
                "--network-interval-ms",
                "100",
                "--intel-poll-ms",
                "100",
            ])
            .arg("--intel")
            .arg(feed)
            .arg("--plugin-settings")
            .arg(format!("suspicious-egress={}", settings.display()))
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

#[test]
fn a_feed_changed_while_running_is_used_for_new_connections() {
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

    drop(vigil);
    let _ = std::fs::remove_dir_all(&dir);
}
