//! suspicious-egress through `vigil run`, the real Docker daemon and the
//! procfs network source: a host-network container (the seed's evasive
//! container) connecting to an address on a threat-intel feed is one
//! `suspicious-egress/threat-intel` finding about that container, naming the
//! feed entry. Loopback only: the "C2" is a listener of this test on
//! 127.0.0.79. Uses the local image built by `scripts/test-image.sh`; every
//! container has the label `vigil-test=1` and is removed at the end.
//!
//! Without a daemon the test is skipped with a message, unless
//! `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[path = "common/docker.rs"]
mod docker_util;

use docker_util::{Containers, IMAGE, LABEL, docker, docker_ready, unique};

struct Vigil {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    data_dir: PathBuf,
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
    fn start(feed: &std::path::Path) -> Self {
        let data_dir = std::env::temp_dir().join(format!("vigil-egress-live-{}", unique()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .env_remove("VIGIL_LOG")
            .env_remove("RUST_LOG")
            .arg("run")
            .arg("--data-dir")
            .arg(&data_dir)
            .args([
                "--no-cache",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--network-interval-ms",
                "200",
            ])
            .arg("--intel")
            .arg(feed)
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
            data_dir,
        }
    }

    fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    fn wait_log(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("vigil exited ({status}); stderr:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("vigil did not log {needle:?}; stderr:\n{}", self.log());
    }

    /// Waits for the threat-intel finding about container `name`.
    fn threat_intel(&self, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let found = self
                .stdout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON lines"))
                .find(|f| {
                    f["rule_id"] == "suspicious-egress/threat-intel"
                        && f["evidence"]["container"].as_str() == Some(name)
                });
            if let Some(f) = found {
                return f;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no threat-intel finding for {name}; stdout:\n{}\nstderr:\n{}",
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
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

#[test]
fn a_container_reaching_a_listed_address_is_reported() {
    if !docker_ready() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.79:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn);
        }
    });
    let feed = std::env::temp_dir().join(format!("vigil-egress-live-{}.txt", unique()));
    std::fs::write(&feed, "# test C2\n127.0.0.79/32\n").unwrap();

    let mut vigil = Vigil::start(&feed);
    vigil.wait_log("network: on (procfs, every 200 ms)");

    let name = format!("egress_c2_{}", unique());
    let _guard = Containers(vec![name.clone()]);
    // `sleep | nc`: nc's stdin stays open, so the connection does too.
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        LABEL,
        "--network",
        "host",
        IMAGE,
        "sh",
        "-c",
        &format!("sleep 30 | nc 127.0.0.79 {port}"),
    ]);

    let f = vigil.threat_intel(&name);
    assert_eq!(f["plugin"], "suspicious-egress");
    assert_eq!(f["severity"], "high");
    assert_eq!(
        f["evidence"]["feed"],
        feed.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(f["evidence"]["feed-entry"], "127.0.0.79/32");
    assert_eq!(f["evidence"]["host-network"], "true");
    assert_eq!(f["evidence"]["remote-port"], port.to_string());
    assert_eq!(f["evidence"]["image"], IMAGE);
    assert_eq!(f["entities"][0]["id"], id);
    let _ = std::fs::remove_file(&feed);
}
