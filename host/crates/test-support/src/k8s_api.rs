//! A FAKE Kubernetes API server on loopback, for the tests of the `k8s-watch`
//! source and the Kubernetes quarantine (no cluster exists in CI): a
//! hand-written HTTP/1.1 server, one thread per connection, that
//!
//! - answers list requests of the [`Collection`]s it is given and streams
//!   their recorded watch events (chunked `{"type":…,"object":…}` lines) on
//!   the first watch of each collection; a re-watch gets no event, and every
//!   watch stays open until the server is dropped;
//! - keeps pods and NetworkPolicies in memory ([`Cluster`]): pod GET and
//!   JSON merge-patch PATCH, policy POST (409 `AlreadyExists` like the API
//!   server), GET and DELETE;
//! - records every request ([`Request`]) so a test can check exactly what
//!   Vigil sent.
//!
//! What a real API server and network plugin do with a label or a policy is
//! not modelled. `vigil` finds the server through a kubeconfig made by
//! [`crate::fixtures::kubeconfig`] with [`FakeApi::port`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

/// One request as the fake API server received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `PATCH`, `POST`, `DELETE`…
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The whole request target, query included.
    pub target: String,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    /// The body as JSON (`null` when empty or not JSON).
    pub body: Value,
}

/// A listable, watchable collection, e.g. `/api/v1/pods`.
#[derive(Debug, Clone)]
pub struct Collection {
    /// The list kind, e.g. `PodList`.
    pub kind: String,
    /// What a list returns.
    pub items: Vec<Value>,
    /// What the first watch streams (`{"type": "ADDED", "object": …}`).
    pub events: Vec<Value>,
    /// The list's `resourceVersion`.
    pub resource_version: String,
}

impl Collection {
    /// A collection of `kind` listing `items` at `resource_version`, whose
    /// first watch streams `events`.
    pub fn new(kind: &str, items: Vec<Value>, events: Vec<Value>, resource_version: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            items,
            events,
            resource_version: resource_version.to_owned(),
        }
    }
}

/// What the fake API holds.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Listable and watchable collections by path (`/api/v1/pods`).
    pub collections: BTreeMap<String, Collection>,
    /// Pods for GET and PATCH, by (namespace, name).
    pub pods: BTreeMap<(String, String), Value>,
    /// NetworkPolicies created, by (namespace, name).
    pub policies: BTreeMap<(String, String), Value>,
    /// Answer the next policy creation with 409 (storing it anyway), as if
    /// an earlier, interrupted quarantine had created it.
    pub conflict_on_create: bool,
}

impl Cluster {
    /// Adds a pod (keyed by its `metadata.namespace` and `metadata.name`).
    pub fn with_pod(mut self, pod: Value) -> Self {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        self.pods.insert((ns.to_owned(), name.to_owned()), pod);
        self
    }

    /// Adds a collection at `path`.
    pub fn with_collection(mut self, path: &str, collection: Collection) -> Self {
        self.collections.insert(path.to_owned(), collection);
        self
    }
}

/// The running server; stopped (and its watches ended) when dropped.
pub struct FakeApi {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
    cluster: Arc<Mutex<Cluster>>,
}

/// Shared by the connection threads.
struct Shared {
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
    cluster: Arc<Mutex<Cluster>>,
    /// Collections watched at least once.
    watched: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide what the server recorded.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeApi {
    /// Starts serving `cluster` on a free loopback port.
    pub fn start(cluster: Cluster) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API server");
        let port = listener.local_addr().expect("fake API address").port();
        let shared = Arc::new(Shared {
            stop: Arc::new(AtomicBool::new(false)),
            requests: Arc::new(Mutex::new(Vec::new())),
            cluster: Arc::new(Mutex::new(cluster)),
            watched: Mutex::new(Vec::new()),
        });
        let api = Self {
            port,
            stop: shared.stop.clone(),
            requests: shared.requests.clone(),
            cluster: shared.cluster.clone(),
        };
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        api
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.requests).clone()
    }

    /// Every request that is not a read.
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    /// How many GETs of exactly `path` arrived.
    pub fn gets(&self, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .count()
    }

    /// What the API holds now.
    pub fn cluster(&self) -> MutexGuard<'_, Cluster> {
        lock(&self.cluster)
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A Kubernetes `Status` failure.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// RFC 7386 merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn serve(conn: TcpStream, shared: &Shared) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "content-type" => v.trim().clone_into(&mut content_type),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        lock(&shared.requests).push(Request {
            method: method.clone(),
            path: path.to_owned(),
            target: target.clone(),
            content_type,
            body: body.clone(),
        });
        let listed = lock(&shared.cluster).collections.get(path).cloned();
        if let Some(collection) = listed {
            let watch = query
                .split('&')
                .any(|kv| kv == "watch=true" || kv == "watch=1");
            if watch {
                stream(&mut out, path, &collection.events, shared);
                return;
            }
            let list = json!({"apiVersion": "v1", "kind": collection.kind,
                              "metadata": {"resourceVersion": collection.resource_version},
                              "items": collection.items});
            if reply(&mut out, 200, &list).is_err() {
                return;
            }
            continue;
        }
        let (code, answer) = answer(&method, path, &body, &mut lock(&shared.cluster));
        if reply(&mut out, code, &answer).is_err() {
            return;
        }
    }
}

fn reply(out: &mut TcpStream, code: u16, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    write!(
        out,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A watch: the recorded events on the first watch of a collection (a
/// re-watch gets none), then an open chunked stream until the server stops.
fn stream(out: &mut TcpStream, path: &str, events: &[Value], shared: &Shared) {
    let first = {
        let mut w = lock(&shared.watched);
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
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = out.write_all(b"0\r\n\r\n");
}

fn already_exists(name: &str) -> (u16, Value) {
    (
        409,
        status(
            409,
            "AlreadyExists",
            &format!("networkpolicies \"{name}\" already exists"),
        ),
    )
}

/// The quarantine side: pod GET and PATCH, NetworkPolicy POST, GET, DELETE.
fn answer(method: &str, path: &str, body: &Value, c: &mut Cluster) -> (u16, Value) {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    match seg.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name] => {
            let key = ((*ns).to_owned(), (*name).to_owned());
            let Some(pod) = c.pods.get_mut(&key) else {
                return (
                    404,
                    status(404, "NotFound", &format!("pods \"{name}\" not found")),
                );
            };
            match method {
                "GET" => (200, pod.clone()),
                "PATCH" => {
                    merge(pod, body);
                    (200, pod.clone())
                }
                _ => (405, status(405, "MethodNotAllowed", method)),
            }
        }
        [
            "apis",
            "networking.k8s.io",
            "v1",
            "namespaces",
            ns,
            "networkpolicies",
        ] if method == "POST" => {
            let name = body["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let key = ((*ns).to_owned(), name.clone());
            if c.policies.contains_key(&key) {
                return already_exists(&name);
            }
            c.policies.insert(key, body.clone());
            if std::mem::take(&mut c.conflict_on_create) {
                return already_exists(&name);
            }
            (201, body.clone())
        }
        [
            "apis",
            "networking.k8s.io",
            "v1",
            "namespaces",
            ns,
            "networkpolicies",
            name,
        ] => {
            let key = ((*ns).to_owned(), (*name).to_owned());
            match method {
                "GET" => c.policies.get(&key).map_or_else(
                    || (404, status(404, "NotFound", "not found")),
                    |p| (200, p.clone()),
                ),
                "DELETE" => match c.policies.remove(&key) {
                    Some(_) => (
                        200,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200}),
                    ),
                    None => (404, status(404, "NotFound", "not found")),
                },
                _ => (405, status(405, "MethodNotAllowed", method)),
            }
        }
        _ => (404, status(404, "NotFound", path)),
    }
}
