//! A FAKE Docker Engine API on a Unix socket, for what the real engine
//! cannot be made to do: answer a malformed service, or restart with a
//! swarm service created while it was down. A hand-written HTTP/1.1 server,
//! one thread per connection (keep-alive), that
//!
//! - answers `GET /version`, `/_ping`, `/info` (this node a swarm manager),
//!   `/containers/json` (none), `/networks`, `/networks/{id}`, `/services`
//!   and `/services/{id}` from an [`Engine`] the test changes as it goes; a
//!   service's answer is raw text, so it can be anything but a service;
//! - streams `GET /events` (chunked, one JSON object per line): each event
//!   given to [`FakeEngine::emit`] goes to the streams open at the time; a
//!   stream replays nothing (like a restarted daemon);
//! - with [`FakeEngine::stop_daemon`] cuts every open connection and closes
//!   new ones at once (the daemon is down) until [`FakeEngine::start_daemon`];
//! - records every request target.
//!
//! The API version prefix (`/v1.45/…`) is accepted and ignored. What the
//! engine does with a request beyond that answer is not modelled.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

/// What the fake engine holds.
#[derive(Debug, Default)]
pub struct Engine {
    /// Service inspect answers by id, as raw text (listed by `GET /services`
    /// as `{"ID": id}`, in id order).
    pub services: BTreeMap<String, String>,
    /// Networks: id → name.
    pub networks: BTreeMap<String, String>,
}

/// The running server; stopped when dropped (its socket file removed).
pub struct FakeEngine {
    path: PathBuf,
    shared: Arc<Shared>,
}

struct Shared {
    engine: Mutex<Engine>,
    /// Events emitted so far; each stream sends those after its start.
    events: Mutex<Vec<String>>,
    /// Bumped by each stop of the daemon: connections of an older
    /// generation are cut.
    generation: AtomicU64,
    down: AtomicBool,
    stop: AtomicBool,
    requests: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeEngine {
    /// Serves `engine` on a new Unix socket at `path`.
    pub fn start(path: &Path, engine: Engine) -> Self {
        let listener = UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("bind the fake engine at {}: {e}", path.display()));
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            events: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if s.down.load(Ordering::Relaxed) {
                    // The daemon is down: the connection ends unanswered.
                    continue;
                }
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Self {
            path: path.to_owned(),
            shared,
        }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the engine holds now, to change.
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        lock(&self.shared.engine)
    }

    /// Sends `event` (an Engine event object) on every open event stream.
    pub fn emit(&self, event: &Value) {
        lock(&self.shared.events).push(event.to_string());
    }

    /// The daemon goes down: open connections are cut, new ones refused.
    pub fn stop_daemon(&self) {
        self.shared.down.store(true, Ordering::Relaxed);
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The daemon is back (with none of its past events to replay).
    pub fn start_daemon(&self) {
        self.shared.down.store(false, Ordering::Relaxed);
    }

    /// Every request target so far (`GET /v1.45/services`), in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A service event as a manager's stream carries it.
pub fn service_event(action: &str, id: &str, name: &str, time_nano: u64) -> Value {
    swarm_event("service", action, id, name, time_nano)
}

/// A swarm event (`service`, `node`, `secret`, `config`) as a manager's
/// stream carries it.
pub fn swarm_event(kind: &str, action: &str, id: &str, name: &str, time_nano: u64) -> Value {
    json!({"Type": kind, "Action": action, "scope": "swarm",
           "Actor": {"ID": id, "Attributes": {"name": name}},
           "time": time_nano / 1_000_000_000, "timeNano": time_nano})
}

/// The request line and headers of one request; `None` at the end of the
/// connection.
fn read_request(r: &mut BufReader<UnixStream>) -> Option<String> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let target = line.split_whitespace().nth(1)?.to_owned();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        // GETs only: no body to skip.
        if h == "\r\n" || h == "\n" {
            return Some(target);
        }
    }
}

fn serve(conn: UnixStream, s: &Shared) {
    let generation = s.generation.load(Ordering::Relaxed);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        // Wait for the next request, unless the daemon went down meanwhile.
        let target = loop {
            if s.generation.load(Ordering::Relaxed) != generation {
                return;
            }
            match r.fill_buf() {
                Ok([]) => return,
                Ok(_) => break read_request(&mut r),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        };
        let Some(target) = target else { return };
        lock(&s.requests).push(format!("GET {target}"));
        let (path, _query) = target.split_once('?').unwrap_or((&target, ""));
        let path = strip_version(path);
        if path == "/events" {
            stream_events(&mut w, s, generation);
            return;
        }
        let (status, body) = answer(path, s);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nApi-Version: 1.45\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

/// `/v1.45/info` → `/info`.
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v")
        && let Some(i) = rest.find('/')
        && rest[..i].bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return &rest[i..];
    }
    path
}

fn not_found(what: &str) -> (&'static str, String) {
    (
        "404 Not Found",
        json!({"message": format!("{what} not found")}).to_string(),
    )
}

fn answer(path: &str, s: &Shared) -> (&'static str, String) {
    let ok = |v: Value| ("200 OK", v.to_string());
    let engine = lock(&s.engine);
    match path {
        "/_ping" => ("200 OK", "OK".to_owned()),
        "/version" => ok(json!({"Version": "27.0.0-fake", "ApiVersion": "1.45",
            "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"})),
        "/info" => ok(
            json!({"ID": "fake", "Name": "fake-engine", "ServerVersion": "27.0.0-fake",
            "Swarm": {"NodeID": "node1", "LocalNodeState": "active", "ControlAvailable": true}}),
        ),
        "/containers/json" => ok(json!([])),
        "/networks" => ok(Value::Array(
            engine
                .networks
                .iter()
                .map(|(id, name)| json!({"Id": id, "Name": name}))
                .collect(),
        )),
        "/services" => ok(Value::Array(
            engine.services.keys().map(|id| json!({"ID": id})).collect(),
        )),
        p => {
            if let Some(id) = p.strip_prefix("/services/") {
                return match engine.services.get(id) {
                    Some(raw) => ("200 OK", raw.clone()),
                    None => not_found("service"),
                };
            }
            if let Some(id) = p.strip_prefix("/networks/") {
                return match engine.networks.get(id) {
                    Some(name) => ok(json!({"Id": id, "Name": name})),
                    None => not_found("network"),
                };
            }
            not_found("page")
        }
    }
}

/// Streams the events emitted from now on until the daemon goes down (the
/// connection is cut, without the chunked stream's end).
fn stream_events(w: &mut UnixStream, s: &Shared, generation: u64) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.45\r\nTransfer-Encoding: chunked\r\n\r\n";
    if w.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut sent = lock(&s.events).len();
    while s.generation.load(Ordering::Relaxed) == generation {
        let new: Vec<String> = lock(&s.events)[sent..].to_vec();
        for e in new {
            let line = format!("{e}\n");
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            if w.write_all(chunk.as_bytes()).is_err() {
                return;
            }
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = w.shutdown(std::net::Shutdown::Both);
}
