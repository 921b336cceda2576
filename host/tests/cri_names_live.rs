//! A container Docker does not know, named from its OCI bundle, through
//! `vigil run`, the real kernel and a real containerd: this machine's
//! Docker runs its own containerd, in whose `k8s.io` namespace `ctr` starts
//! a container with the annotations containerd's CRI plugin writes
//! (container name, image, pod) and no terminal, as the kubelet would. A
//! busybox `wget` `ctr task exec`'d in it is a process event of that
//! container carrying the annotations' name, image and pod and
//! `container-tty: false`, and a `runtime-tamper/unexpected-exec` finding
//! naming the container and its pod. Docker's source is off and Docker
//! never sees the container: the names can only come from the bundle.
//!
//! Needs root, `ctr` and Docker's containerd (Docker builds the busybox
//! root filesystem, `scripts/test-image.sh`); without them the test is
//! skipped with a message unless `VIGIL_REQUIRE_DOCKER=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::vigil;
use vigil_test_support::docker::{Containers, IMAGE, docker, docker_ready};
use vigil_test_support::{TempDir, VigilProcess, unique};

/// Docker's containerd: its socket and its state directory (where the
/// runtime v2 shim keeps each container's bundle).
const CONTAINERD_SOCKET: &str = "/var/run/docker/containerd/containerd.sock";
const CONTAINERD_STATE: &str = "/var/run/docker/containerd/daemon";
/// The namespace containerd's CRI plugin uses.
const NAMESPACE: &str = "k8s.io";
const ON: &str = "ebpf: on (";
const RULE: &str = "runtime-tamper/unexpected-exec";

/// Whether the test can run here; see the module's doc.
fn containerd_ready() -> bool {
    let ctr = Command::new("ctr")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ctr || !Path::new(CONTAINERD_SOCKET).exists() {
        assert!(
            std::env::var_os("VIGIL_REQUIRE_DOCKER").is_none(),
            "VIGIL_REQUIRE_DOCKER is set but there is no ctr or no containerd at {CONTAINERD_SOCKET}"
        );
        eprintln!("SKIPPED: no ctr or no containerd at {CONTAINERD_SOCKET}");
        return false;
    }
    docker_ready()
}

/// `ctr --address SOCKET -n k8s.io ARGS`.
fn ctr(args: &[&str]) -> Output {
    Command::new("ctr")
        .args(["--address", CONTAINERD_SOCKET, "-n", NAMESPACE])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ctr")
}

/// [`ctr`], panicking with its stderr when it fails.
fn ctr_ok(args: &[&str]) {
    let out = ctr(args);
    assert!(
        out.status.success(),
        "ctr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills and deletes the containerd container when dropped, pass or fail.
struct CtrContainer(String);

impl Drop for CtrContainer {
    fn drop(&mut self) {
        let id = self.0.as_str();
        let _ = ctr(&["task", "kill", "--signal", "SIGKILL", id]);
        // The task is deleted once it has exited; give it a moment.
        for _ in 0..50 {
            if ctr(&["task", "delete", id]).status.success()
                || !ctr(&["task", "ls", "-q"])
                    .stdout
                    .windows(id.len())
                    .any(|w| w == id.as_bytes())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = ctr(&["container", "delete", id]);
    }
}

/// A container id as engines make them: 64 hex digits (what the cgroup path
/// must carry to be recognised), unique to this run.
fn container_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let salt: u128 = unique()
        .bytes()
        .fold(u128::from(std::process::id()), |h, b| {
            h.wrapping_mul(0x0100_0000_01b3).wrapping_add(u128::from(b))
        });
    format!("{nanos:032x}{salt:032x}")
}

/// The busybox image's files, for `ctr run --rootfs`.
fn busybox_rootfs(into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let name = format!("cri_rootfs_{}", unique());
    let _guard = Containers(vec![name.clone()]);
    docker(&["create", "--name", &name, IMAGE, "/bin/true"]);
    let mut export = Command::new("docker")
        .args(["export", &name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = Command::new("tar")
        .arg("-C")
        .arg(into)
        .arg("-x")
        .stdin(export.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "tar -x of docker export failed");
    assert!(export.wait().unwrap().success(), "docker export failed");
    assert!(into.join("bin/busybox").exists());
}

#[test]
fn exec_in_a_containerd_container_is_named_from_its_bundle() {
    if !containerd_ready() {
        return;
    }
    let dir = TempDir::new("cri-names-live");
    let rootfs = dir.join("rootfs");
    busybox_rootfs(&rootfs);
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        format!("[sources.ebpf]\nenabled = true\ncontainerd_state = \"{CONTAINERD_STATE}\"\n"),
    )
    .unwrap();
    let events = dir.join("events.jsonl");
    let vigil = VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--config")
            .arg(&config)
            .arg("--emit-events")
            .arg(&events)
            .args([
                "--no-cache",
                "--no-docker",
                "--no-network",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--no-admin",
            ]),
    );
    vigil.wait_for_stderr(ON, Duration::from_secs(120));

    let id = container_id();
    let name = format!("web-{}", unique().replace('_', "-"));
    let image = "registry.example/shop/web:1.4.2";
    let annotations = [
        ("io.kubernetes.cri.container-type", "container"),
        ("io.kubernetes.cri.container-name", name.as_str()),
        ("io.kubernetes.cri.image-name", image),
        ("io.kubernetes.cri.sandbox-name", "web-0"),
        ("io.kubernetes.cri.sandbox-namespace", "shop"),
    ]
    .map(|(k, v)| format!("{k}={v}"));
    let mut run = vec!["run", "-d", "--rootfs", "--env", "PATH=/bin"];
    for a in &annotations {
        run.extend(["--annotation", a.as_str()]);
    }
    run.extend([rootfs.to_str().unwrap(), id.as_str(), "/bin/sleep", "60"]);
    // The guard first: a failed start can leave the container behind.
    let _container = CtrContainer(id.clone());
    ctr_ok(&run);
    let bundle = Path::new(CONTAINERD_STATE)
        .join("io.containerd.runtime.v2.task")
        .join(NAMESPACE)
        .join(&id)
        .join("config.json");
    assert!(bundle.exists(), "no bundle at {}", bundle.display());
    std::thread::sleep(Duration::from_millis(500));

    // Nothing listens on the discard port: wget fails, after its exec.
    let marker = format!("cri-{}", unique());
    let url = format!("http://127.0.0.1:9/{marker}");
    let exec_id = format!("exec-{}", unique().replace('_', "-"));
    ctr(&[
        "task",
        "exec",
        "--exec-id",
        &exec_id,
        &id,
        "/bin/wget",
        "-q",
        "-T",
        "1",
        "-O",
        "/dev/null",
        &url,
    ]);
    let f = vigil.wait_for_finding(
        &format!("{RULE} for the wget in {name}"),
        Duration::from_secs(10),
        |f| {
            f["rule_id"] == RULE
                && f["evidence"]["args"]
                    .as_str()
                    .is_some_and(|a| a.contains(&marker))
        },
    );
    assert_eq!(f["evidence"]["binary"], "/bin/wget", "{f}");
    assert_eq!(f["evidence"]["class"], "network-tool", "{f}");
    assert_eq!(f["evidence"]["image"], image, "{f}");
    assert_eq!(f["evidence"]["container-tty"], "false", "{f}");
    let entities = f["entities"].as_array().unwrap();
    let container = entities.iter().find(|e| e["kind"] == "container").unwrap();
    assert_eq!(container["id"], id.as_str(), "{f}");
    assert_eq!(container["name"], name.as_str(), "{f}");
    assert!(
        entities
            .iter()
            .any(|e| e["kind"] == "pod" && e["id"] == "shop/web-0"),
        "{f}"
    );
    assert!(
        f["summary"].as_str().unwrap().contains(&format!(
            "ran in container {name} (image {image}), which was started without a terminal"
        )),
        "{f}"
    );
    vigil.stop();

    // The process event itself: the bundle's name, image, pod and terminal.
    let text = std::fs::read_to_string(&events).unwrap();
    let event: serde_json::Value = text
        .lines()
        .filter(|l| l.contains(&marker))
        .map(|l| serde_json::from_str(l).unwrap())
        .find(|e: &serde_json::Value| e["body"]["kind"] == "process")
        .unwrap_or_else(|| panic!("no process event with {marker} in {text}"));
    let body = &event["body"];
    assert_eq!(body["container"]["id"], id.as_str(), "{event}");
    assert_eq!(body["container"]["name"], name.as_str(), "{event}");
    assert_eq!(body["container"]["image"], image, "{event}");
    assert_eq!(body["container"]["pod"], "shop/web-0", "{event}");
    assert_eq!(body["container_tty"], false, "{event}");
}
