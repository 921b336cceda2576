//! The `k8s-watch` source through the real binary, against a recorded API
//! stream served on loopback: a hand-written HTTP/1.1 server answers the
//! kube client's list and watch requests for Pods, ReplicaSets and Events
//! (watches as chunked streams of `{"type":"ADDED","object":…}` lines).
//! `vigil run` finds it through `$KUBECONFIG`; the watched hostNetwork pod
//! must arrive owned by its Deployment (through its ReplicaSet) and give a
//! `container-escape/host-network` finding. Without a kubeconfig the source
//! must stay off.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::vigil;
use serde_json::{Value, json};
use vigil_test_support::fixtures::kubeconfig;
use vigil_test_support::output::read_jsonl;
use vigil_test_support::{TempDir, VigilProcess, without_kubernetes};

/// How long an event may take to show up on a busy CI box.
const DEADLINE: Duration = Duration::from_secs(30);

/// How long Vigil may take to start (compiling the built-in plugins).
const STARTUP: Duration = Duration::from_secs(120);

fn replica_set() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": "web-5d4f", "namespace": "shop", "uid": "rs-uid-1", "resourceVersion": "100",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                 "uid": "dep-uid-1", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    })
}

fn host_network_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-5d4f-x7k2p", "generateName": "web-5d4f-", "namespace": "shop",
            "uid": "pod-uid-1", "resourceVersion": "201", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f",
                                 "uid": "rs-uid-1", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"hostNetwork": true, "nodeName": "node-1", "serviceAccountName": "default",
                 "containers": [{"name": "web", "image": "nginx:1.27"}]},
        "status": {"phase": "Pending"}
    })
}

fn core_event() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-5d4f-x7k2p.1", "namespace": "shop", "uid": "ev-uid-1", "resourceVersion": "301"},
        "involvedObject": {"kind": "Pod", "name": "web-5d4f-x7k2p", "namespace": "shop", "apiVersion": "v1"},
        "reason": "Scheduled", "message": "Successfully assigned shop/web-5d4f-x7k2p to node-1",
        "type": "Normal", "reportingComponent": "default-scheduler", "source": {"component": "default-scheduler"}
    })
}

/// One recorded resource: (path, list kind, items in the list, events on
/// the first watch, list resourceVersion).
type Resource = (
    &'static str,
    &'static str,
    Vec<Value>,
    Vec<Value>,
    &'static str,
);

/// The recorded API: what each list returns and what each watch streams.
struct Api {
    resources: Vec<Resource>,
}

fn recorded() -> Api {
    Api {
        resources: vec![
            (
                "/api/v1/pods",
                "PodList",
                vec![],
                vec![json!({"type": "ADDED", "object": host_network_pod()})],
                "200",
            ),
            (
                "/apis/apps/v1/replicasets",
                "ReplicaSetList",
                vec![replica_set()],
                vec![],
                "100",
            ),
            (
                "/api/v1/events",
                "EventList",
                vec![],
                vec![json!({"type": "ADDED", "object": core_event()})],
                "300",
            ),
        ],
    }
}

/// The loopback API server: one thread per connection, `Connection: close`.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(api: Api) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let api = Arc::new(api);
        let watched = Arc::new(Mutex::new(Vec::<String>::new()));
        let (s, r) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (api, s, r, w) = (api.clone(), s.clone(), r.clone(), watched.clone());
                std::thread::spawn(move || serve(conn, &api, &s, &r, &w));
            }
        });
        Self {
            port,
            stop,
            requests,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    conn: TcpStream,
    api: &Api,
    stop: &AtomicBool,
    requests: &Mutex<Vec<String>>,
    watched: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Skip the headers (GET requests have no body).
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    requests.lock().unwrap().push(target.clone());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut out = conn;
    let Some((_, kind, items, events, rv)) = api.resources.iter().find(|r| r.0 == path) else {
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#;
        let _ = write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    };
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    if !watch {
        let body = json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": rv}, "items": items})
            .to_string();
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    // A watch: the recorded events once (a re-watch gets none), then an
    // open stream until the test ends.
    let first = {
        let mut w = watched.lock().unwrap();
        let first = !w.iter().any(|p| p == path);
        w.push(path.to_owned());
        first
    };
    if write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return;
    }
    if first {
        for e in events {
            let line = format!("{e}\n");
            let _ = write!(out, "{:x}\r\n{line}\r\n", line.len());
        }
    }
    let _ = out.flush();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = out.write_all(b"0\r\n\r\n");
}

/// A running `vigil run` writing its events to `DIR/events.jsonl`.
struct Vigil {
    process: VigilProcess,
    events: PathBuf,
}

impl Vigil {
    fn start(dir: &Path, kubeconfig: Option<&Path>) -> Self {
        let events = dir.join("events.jsonl");
        let mut cmd = vigil();
        without_kubernetes(&mut cmd, &dir.join("home"));
        if let Some(k) = kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        let process = VigilProcess::spawn(
            cmd.arg("run")
                .arg("--data-dir")
                .arg(dir.join("data"))
                .args([
                    "--no-cache",
                    "--no-docker",
                    "--no-network",
                    "--no-file-integrity",
                    "--node",
                    "k8s-watch-test",
                ])
                .arg("--emit-events")
                .arg(&events),
        );
        Self { process, events }
    }

    fn watch_events(&self) -> Vec<Value> {
        read_jsonl(&self.events)
            .into_iter()
            .filter(|e| e["source"] == "k8s-watch")
            .collect()
    }

    fn wait_event(&self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        self.process.wait_for_showing(
            &format!("a {what} event"),
            DEADLINE,
            || self.watch_events().into_iter().find(&pick),
            || format!("events: {:?}", self.watch_events()),
        )
    }
}

/// The Kubernetes event body of an emitted event (internally tagged).
fn body(e: &Value) -> &Value {
    &e["body"]
}

#[test]
fn watched_pod_is_attributed_to_its_deployment_and_found_on_the_host_network() {
    let dir = TempDir::new("k8s-watch");
    let server = Server::start(recorded());
    let config = kubeconfig(&dir, server.port);
    let vigil = Vigil::start(&dir, Some(&config));
    vigil
        .process
        .wait_for_stderr("k8s-watch: on (all namespaces, kubeconfig ", STARTUP);

    let pod = vigil.wait_event("pod", |e| body(e)["resource"] == "pods");
    let k = body(&pod);
    assert_eq!(k["verb"], "added", "{pod}");
    assert_eq!(k["namespace"], "shop");
    assert_eq!(k["name"], "web-5d4f-x7k2p");
    assert_eq!(k["audit_id"], "pod-uid-1");
    assert_eq!(k["owner"]["kind"], "Deployment", "{pod}");
    assert_eq!(k["owner"]["name"], "web");
    assert_eq!(k["pod"]["host_network"], true);
    assert_eq!(pod["node"], "k8s-watch-test");

    let finding = vigil
        .process
        .wait_for_rule("container-escape/host-network", DEADLINE);
    assert!(finding.to_string().contains("web"), "{finding}");

    let ev = vigil.wait_event("core event", |e| body(e)["resource"] == "events");
    let k = body(&ev);
    assert_eq!(k["verb"], "Scheduled");
    assert_eq!(k["name"], "web-5d4f-x7k2p");
    assert_eq!(k["user_agent"], "default-scheduler");

    let requests = server.requests.lock().unwrap().clone();
    for path in [
        "/api/v1/pods?",
        "/apis/apps/v1/replicasets?",
        "/api/v1/events?",
    ] {
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with(path) && r.contains("watch=true")),
            "no watch of {path}: {requests:?}"
        );
    }
    // Exactly one pod event: re-watches and re-lists must not repeat it.
    std::thread::sleep(Duration::from_millis(500));
    let pods = vigil
        .watch_events()
        .into_iter()
        .filter(|e| body(e)["resource"] == "pods")
        .count();
    assert_eq!(pods, 1, "logs:\n{}", vigil.process.stderr_text());
}

#[test]
fn without_a_kubeconfig_the_source_stays_off() {
    let dir = TempDir::new("k8s-watch-off");
    let vigil = Vigil::start(&dir, None);
    vigil.process.wait_for_stderr(
        "k8s-watch: off (no kubeconfig or in-cluster service account)",
        STARTUP,
    );
}
