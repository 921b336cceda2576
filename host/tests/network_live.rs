//! Live test of the `procfs` network source through the real binary and the
//! real Docker daemon of this machine, with the local image built by
//! `scripts/test-image.sh` (no registry). Every container it creates has
//! the label `vigil-test=1` and is removed at the end, pass or fail.
//!
//! Without a daemon the test is skipped with a message, unless
//! `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "common/docker.rs"]
mod docker_util;

use docker_util::{Containers, IMAGE, LABEL, docker, docker_ready, unique};

/// A running `vigil run` writing its events to a file; killed and cleaned
/// up when dropped.
struct Vigil {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    data_dir: PathBuf,
    events: PathBuf,
}

impl Vigil {
    fn start() -> Self {
        let data_dir = std::env::temp_dir().join(format!("vigil-network-live-{}", unique()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let events = data_dir.join("events.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .env_remove("VIGIL_LOG")
            .env_remove("RUST_LOG")
            .arg("run")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--no-cache", "--no-docker", "--network-interval-ms", "200"])
            .arg("--emit-events")
            .arg(&events)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vigil");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().expect("piped stderr");
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        Self {
            child,
            stderr,
            data_dir,
            events,
        }
    }

    fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .join("\n")
    }

    /// Waits until a stderr line contains `needle`.
    fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "vigil exited ({status}) before logging {needle:?}; stderr:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "vigil did not log {needle:?} within {timeout:?}; stderr:\n{}",
            self.log()
        );
    }

    /// Waits for a network event of container `id` matching `pred`.
    fn wait_event(
        &self,
        id: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&self.events).unwrap_or_default();
            let found = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|e| {
                    e["body"]["kind"] == "network"
                        && e["body"]["container"]["id"] == id
                        && pred(&e["body"])
                });
            if let Some(e) = found {
                return e;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        panic!(
            "no network event ({what}) for container {id} within {timeout:?}; events:\n{text}\nstderr:\n{}",
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

/// A host-network container connecting to a listener on the host's
/// loopback is reported as an outbound connection of that container; a
/// bridge container's listener is reported in its own namespace.
#[test]
fn container_sockets_are_attributed() {
    if !docker_ready() {
        return;
    }
    // The host side: accepts and holds the connections open.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn);
        }
    });

    let mut vigil = Vigil::start();
    vigil.wait_log(
        "network: on (procfs, every 200 ms)",
        Duration::from_secs(120),
    );

    let client = format!("vigil_net_client_{}", unique());
    let server = format!("vigil_net_server_{}", unique());
    let _cleanup = Containers(vec![client.clone(), server.clone()]);
    // `sleep | nc`: nc's stdin stays open, so the connection does too.
    let client_id = docker(&[
        "run",
        "-d",
        "--name",
        &client,
        "--label",
        LABEL,
        "--network",
        "host",
        IMAGE,
        "sh",
        "-c",
        &format!("sleep 30 | nc 127.0.0.1 {port}"),
    ]);
    let server_id = docker(&[
        "run", "-d", "--name", &server, "--label", LABEL, IMAGE, "nc", "-l", "-p", "8080",
    ]);

    let out = vigil.wait_event(&client_id, "outbound", Duration::from_secs(10), |b| {
        b["remote_port"] == port
    });
    let body = &out["body"];
    assert_eq!(out["source"], "procfs");
    assert_eq!(body["protocol"], "tcp");
    assert_eq!(body["direction"], "outbound");
    assert_eq!(body["remote_address"], "127.0.0.1");
    assert_eq!(body["host_network"], true);
    assert_eq!(body["container"]["name"], client);
    assert_eq!(body["container"]["image"], IMAGE);

    let listen = vigil.wait_event(&server_id, "listen", Duration::from_secs(10), |b| {
        b["local_port"] == 8080
    });
    assert_eq!(listen["body"]["direction"], "listen");
    assert_eq!(listen["body"]["state"], "LISTEN");
    assert_eq!(listen["body"]["host_network"], false);

    // Reported once: the held connection is not repeated by later polls.
    std::thread::sleep(Duration::from_millis(600));
    let text = std::fs::read_to_string(&vigil.events).unwrap();
    let repeats = text
        .lines()
        .filter(|l| l.contains(&client_id) && l.contains(&format!("\"remote_port\":{port}")))
        .count();
    assert_eq!(repeats, 1, "events:\n{text}");
}
