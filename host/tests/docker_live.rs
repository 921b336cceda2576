//! Live tests of the `docker` source against the real Docker daemon of this
//! machine (`/var/run/docker.sock`), with a local image built by
//! `scripts/test-image.sh` (no registry). Every container they create has
//! the label `vigil-test=1` and is removed at the end, pass or fail.
//!
//! Without a daemon the tests are skipped with a message, unless
//! `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and benchmarks fail loudly on broken fixtures"
)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::vigil;
use vigil_test_support::docker::{
    Containers, DOCKER_SOCKET, IMAGE, LABEL, docker, docker_ready, run_container,
};
use vigil_test_support::output::read_jsonl;
use vigil_test_support::{TempDir, VigilProcess, unique};

/// `vigil run` with its data in `dir/data` and the docker source on.
fn start(dir: &Path, extra: &[&str]) -> VigilProcess {
    VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--no-cache", "--node", "docker-live-test"])
            .args(extra),
    )
}

/// The seed scenario: a container on the host network is reported within a
/// second of `docker run` returning.
#[test]
fn host_network_container_is_reported_within_a_second() {
    if !docker_ready() {
        return;
    }
    let dir = TempDir::new("docker-live");
    let vigil = start(&dir, &[]);
    vigil.wait_for_stderr("docker: event stream open", Duration::from_secs(120));
    let name = format!("evasive_container_{}", unique());
    let _cleanup = Containers(vec![name.clone()]);

    let before = Instant::now();
    run_container(&name, &["--network", "host"], &["sleep", "300"]);
    let returned = Instant::now();

    let (found, _) = vigil.wait_for_finding_with_arrival(
        &format!("container-escape/host-network for {name}"),
        Duration::from_secs(10),
        |f| f["rule_id"] == "container-escape/host-network" && f.to_string().contains(&name),
    );
    let latency = found.saturating_duration_since(returned);
    let early = returned.saturating_duration_since(found);
    eprintln!(
        "docker run took {:?}; finding arrived {:?} after `docker run` started, {latency:?} after it returned ({early:?} before)",
        returned - before,
        found.saturating_duration_since(before),
    );
    assert!(
        latency <= Duration::from_secs(1),
        "finding came {latency:?} after docker run returned"
    );
}

/// A Unix-socket proxy to the Docker socket that can cut every connection
/// (and refuse new ones) on command: a daemon restart, as the source sees it.
///
/// With `forget_history`, the `since` of every `GET /events` passing through
/// is moved to the present: the daemon then replays nothing from before the
/// break, as after a daemon restart or a rolled-over event buffer.
struct Proxy {
    path: PathBuf,
    open: Arc<AtomicBool>,
    forget: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<UnixStream>>>,
}

impl Proxy {
    fn start(path: PathBuf) -> Self {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let open = Arc::new(AtomicBool::new(true));
        let forget = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<UnixStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (o, f, c) = (open.clone(), forget.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !o.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(upstream) = UnixStream::connect(DOCKER_SOCKET) else {
                    continue;
                };
                let pipes = (
                    client.try_clone(),
                    upstream.try_clone(),
                    client.try_clone(),
                    upstream.try_clone(),
                );
                let (Ok(c1), Ok(u1), Ok(c2), Ok(u2)) = pipes else {
                    continue;
                };
                {
                    let mut all = c.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    all.push(client);
                    all.push(upstream);
                }
                let forget = f.clone();
                std::thread::spawn(move || pipe_requests(c1, u1, &forget));
                std::thread::spawn(move || pipe(u2, c2));
            }
        });
        Self {
            path,
            open,
            forget,
            conns,
        }
    }

    /// From now on, `GET /events` asks for events from the present only.
    fn forget_history(&self) {
        self.forget.store(true, Ordering::SeqCst);
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client to daemon: like [`pipe`], moving the `since` of `GET /events`
/// requests to the present while `forget` is set.
fn pipe_requests(mut from: UnixStream, mut to: UnixStream, forget: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = if forget.load(Ordering::SeqCst) {
                    since_now(&buf[..n])
                } else {
                    buf[..n].to_vec()
                };
                if to.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// `GET /v1.41/events?since=1764150000.123456789&…` with `since` set to now.
fn since_now(chunk: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(chunk);
    let Some(events) = text.find("/events?") else {
        return chunk.to_vec();
    };
    let Some(start) = text[events..]
        .find("since=")
        .map(|i| events + i + "since=".len())
    else {
        return chunk.to_vec();
    };
    let end = text[start..]
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(text.len(), |i| start + i);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let since = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    format!("{}{since}{}", &text[..start], &text[end..]).into_bytes()
}

fn pipe(mut from: UnixStream, mut to: UnixStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// The container events of the events file: (name, action, lifetime_ms).
fn container_events(path: &Path) -> Vec<(String, String, Option<u64>)> {
    read_jsonl(path)
        .iter()
        .filter(|e| e["body"]["kind"] == "container")
        .map(|e| {
            let b = &e["body"];
            (
                b["name"].as_str().unwrap_or_default().to_owned(),
                b["action"].as_str().unwrap_or_default().to_owned(),
                b["lifetime_ms"].as_u64(),
            )
        })
        .collect()
}

fn wait_events(
    path: &Path,
    vigil: &VigilProcess,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[(String, String, Option<u64>)]) -> bool,
) {
    vigil.wait_for_showing(
        what,
        timeout,
        || done(&container_events(path)).then_some(()),
        || format!("events: {:#?}", container_events(path)),
    );
}

fn has(events: &[(String, String, Option<u64>)], name: &str, action: &str) -> bool {
    events.iter().any(|(n, a, _)| n == name && a == action)
}

/// No container event is lost when the connection to the daemon breaks:
/// the source reconnects and resumes from the last event it saw.
#[test]
fn no_container_event_is_lost_across_a_broken_stream() {
    if !docker_ready() {
        return;
    }
    let id = unique();
    let dir = TempDir::new("docker-gap");
    let proxy = Proxy::start(dir.join("docker.sock"));
    let events = dir.join("events.jsonl");
    let proxy_path = proxy.path.to_string_lossy().into_owned();
    let events_path = events.to_string_lossy().into_owned();
    let vigil = start(
        &dir,
        &[
            "--docker-socket",
            &proxy_path,
            "--emit-events",
            &events_path,
        ],
    );
    vigil.wait_for_stderr("docker: event stream open", Duration::from_secs(120));

    let [a, b, c, d] = ["a", "b", "c", "d"].map(|x| format!("vigil_gap_{x}_{id}"));
    let _cleanup = Containers(vec![a.clone(), b.clone(), c.clone(), d.clone()]);
    for n in [&a, &b] {
        run_container(n, &[], &["sleep", "300"]);
    }
    wait_events(
        &events,
        &vigil,
        "A and B started",
        Duration::from_secs(10),
        |e| has(e, &a, "start") && has(e, &b, "start"),
    );

    proxy.cut();
    vigil.wait_for_stderr("docker: event stream interrupted", Duration::from_secs(10));
    // While the source is cut off: a short-lived container comes and goes, B is removed.
    docker(&["run", "--rm", "--name", &c, "--label", LABEL, IMAGE, "true"]);
    docker(&["rm", "-f", &b]);
    std::thread::sleep(Duration::from_millis(500));
    proxy.restore();

    run_container(&d, &[], &["sleep", "300"]);
    wait_events(&events, &vigil, "D started", Duration::from_secs(20), |e| {
        has(e, &d, "start")
    });

    let all = container_events(&events);
    for (name, actions) in [
        (&a, &["create", "start"][..]),
        (&b, &["create", "start", "kill", "die", "destroy"]),
        (&c, &["create", "start", "die", "destroy"]),
        (&d, &["create", "start"]),
    ] {
        for action in actions {
            assert!(
                has(&all, name, action),
                "no {action} event for {name}; events: {all:#?}"
            );
            let copies = all
                .iter()
                .filter(|(n, a, _)| n == name && a == action)
                .count();
            assert_eq!(
                copies, 1,
                "{action} of {name} sent {copies} times (replayed events must be dropped)"
            );
        }
    }
    let c_died = all
        .iter()
        .find(|(n, a, _)| n == &c && a == "die")
        .and_then(|e| e.2);
    assert!(
        c_died.is_some_and(|ms| ms < 60_000),
        "die of the short-lived container carries its lifetime: {c_died:?}"
    );
    let log = vigil.stderr_text();
    for line in log.lines().filter(|l| l.contains("docker: ")) {
        eprintln!("vigil: {line}");
    }
    assert!(
        log.contains("docker: event stream reconnected"),
        "reconnect not logged:\n{log}"
    );
    let reconnects = log
        .lines()
        .filter(|l| l.contains("docker: event stream reconnected"))
        .count();
    assert!(reconnects >= 1);
    assert!(
        !log.contains("DOCKER EVENTS MAY HAVE BEEN LOST"),
        "the gap should have been closed:\n{log}"
    );
}

/// A gap the source cannot close (the daemon replays nothing from before the
/// break, as after a restart) is sent down the pipeline as a
/// `vigil-events-gap` container event, which monitoring-tamper reports.
#[test]
fn an_unclosable_gap_reaches_the_plugins() {
    if !docker_ready() {
        return;
    }
    let id = unique();
    let dir = TempDir::new("docker-lost");
    let proxy = Proxy::start(dir.join("docker.sock"));
    let events = dir.join("events.jsonl");
    let proxy_path = proxy.path.to_string_lossy().into_owned();
    let events_path = events.to_string_lossy().into_owned();
    let vigil = start(
        &dir,
        &[
            "--docker-socket",
            &proxy_path,
            "--emit-events",
            &events_path,
        ],
    );
    vigil.wait_for_stderr("docker: event stream open", Duration::from_secs(120));

    // An event seen before the break, so that the reconnection checks the replay.
    let a = format!("vigil_lost_a_{id}");
    let _cleanup = Containers(vec![a.clone()]);
    run_container(&a, &[], &["sleep", "300"]);
    wait_events(&events, &vigil, "A started", Duration::from_secs(10), |e| {
        has(e, &a, "start")
    });

    proxy.cut();
    vigil.wait_for_stderr("docker: event stream interrupted", Duration::from_secs(10));
    proxy.forget_history();
    proxy.restore();
    vigil.wait_for_stderr("DOCKER EVENTS MAY HAVE BEEN LOST", Duration::from_secs(30));

    // The marker event, as written by --emit-events …
    let marker = vigil.wait_for("a vigil-events-gap event", Duration::from_secs(10), || {
        read_jsonl(&events)
            .into_iter()
            .find(|e| e["body"]["raw_action"] == "vigil-events-gap")
    });
    assert_eq!(marker["source"], "docker");
    assert_eq!(marker["body"]["kind"], "container");
    assert_eq!(marker["body"]["action"], "other");
    let labels = marker["body"]["labels"].to_string();
    assert!(
        labels.contains("vigil.gap.since") && labels.contains("vigil.gap.reason"),
        "{marker}"
    );

    // … and the finding of the plugin that watches for it.
    let f = vigil.wait_for_rule(
        "monitoring-tamper/docker-events-gap",
        Duration::from_secs(10),
    );
    assert_eq!(f["plugin"], "monitoring-tamper");
    assert_eq!(f["node"], "docker-live-test");
    assert!(f["evidence"]["reason"].as_str().is_some(), "{f}");
}
