//! container-churn through `vigil run` and the real Docker daemon of this
//! machine: `docker run --rm` of a container that lives a moment is one
//! `container-churn/short-lived` finding, its lifetime measured from its
//! creation; one on the host's network is raised to medium; the baseline
//! is persisted in the plugin's state. Uses the local image built
//! by `scripts/test-image.sh`; every container has the label `vigil-test=1`
//! and is removed by `--rm` (or at the end, pass or fail).
//!
//! Without a daemon the test is skipped with a message, unless
//! `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::io::{BufRead, BufReader};
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
    fn start() -> Self {
        let data_dir = std::env::temp_dir().join(format!("vigil-churn-live-{}", unique()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .env_remove("VIGIL_LOG")
            .env_remove("RUST_LOG")
            .arg("run")
            .arg("--data-dir")
            .arg(&data_dir)
            .args([
                "--no-cache",
                "--no-network",
                "--no-file-integrity",
                "--no-k8s-watch",
            ])
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

    /// Waits for the short-lived finding about container `name`.
    fn short_lived(&self, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let found = self
                .stdout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON lines"))
                .find(|f| {
                    f["rule_id"] == "container-churn/short-lived"
                        && f["evidence"]["container"].as_str() == Some(name)
                });
            if let Some(f) = found {
                return f;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no short-lived finding for {name}; stdout:\n{}\nstderr:\n{}",
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
fn run_and_remove_containers_are_short_lived() {
    if !docker_ready() {
        return;
    }
    let mut vigil = Vigil::start();
    vigil.wait_log("vigil running");
    vigil.wait_log("docker: on");
    // The events stream is subscribed shortly after the source starts.
    std::thread::sleep(Duration::from_millis(500));

    let plain = format!("churn_rm_{}", unique());
    let host_net = format!("churn_rm_hostnet_{}", unique());
    let _guard = Containers(vec![plain.clone(), host_net.clone()]);
    docker(&[
        "run", "--rm", "--name", &plain, "--label", LABEL, IMAGE, "true",
    ]);
    docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--name",
        &host_net,
        "--label",
        LABEL,
        IMAGE,
        "true",
    ]);

    let f = vigil.short_lived(&plain);
    assert_eq!(f["plugin"], "container-churn");
    assert_eq!(f["severity"], "low");
    assert_eq!(f["evidence"]["lifetime-from"], "create");
    assert_eq!(f["evidence"]["image"], IMAGE);
    assert_eq!(f["evidence"]["exit-code"], "0");
    let lifetime: u64 = f["evidence"]["lifetime-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(lifetime < 60_000, "{f}");

    let f = vigil.short_lived(&host_net);
    assert_eq!(f["severity"], "medium");
    assert_eq!(f["evidence"]["risky"], "host-network");

    // The baseline is in the plugin's persisted state by the next tick.
    let state = vigil.data_dir.join("state/container-churn.state.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        if text.contains("s/d/image/vigil-test/busybox") && text.contains("s/d/node/") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no persisted churn baseline in {}: {text}",
            state.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
