//! The admin endpoint against hostile local clients, through the real
//! binary: whoever can reach it (any local user on loopback, the pod network
//! in the DaemonSet) must not be able to take the probes and the scrape
//! away, nor make Vigil read or keep what it sends.
//!
//! - clients that connect and send nothing hold every connection slot: they
//!   are cut off at the header deadline and a probe is served after them;
//! - clients that made one request and then sit idle on a kept-alive
//!   connection hold every slot: the same;
//! - a `POST` with a large body is answered 405 without the body being
//!   read, and any other method or path gets its error, never a crash.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::vigil;
use vigil_test_support::net::http_get;
use vigil_test_support::{TempDir, VigilProcess};

const DEADLINE: Duration = Duration::from_secs(60);

/// The endpoint's connection slots (`MAX_CONNECTIONS` in `host/src/admin.rs`).
const SLOTS: usize = 16;

fn start(dir: &TempDir) -> VigilProcess {
    let v = VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--node",
                "admin-hostile-test",
                "--no-docker",
                "--no-network",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--admin-listen",
                "127.0.0.1:0",
            ]),
    );
    v.wait_for_stderr("vigil running", DEADLINE);
    v
}

/// `GET /healthz` on a fresh connection, retried until it is answered;
/// returns how long that took.
fn probe_within(addr: SocketAddr, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let answered = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .ok()
            .and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .ok()?;
                let mut out = String::new();
                s.read_to_string(&mut out).ok()?;
                Some(out)
            })
            .is_some_and(|out| out.starts_with("HTTP/1.1 200"));
        if answered {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "the probe was not answered within {limit:?} while hostile clients held the slots"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn silent_clients_cannot_hold_the_probes_away() {
    let dir = TempDir::new("admin-silent");
    let v = start(&dir);
    let addr = v.admin_addr();
    // More than the slots: the excess wait in the kernel's backlog.
    let silent: Vec<TcpStream> = (0..SLOTS + 4)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Header deadline 5 s: every silent client is cut off well within 20 s.
    let took = probe_within(addr, Duration::from_secs(20));
    assert!(
        took >= Duration::from_secs(1),
        "the slots were not held at all ({took:?}): the test proves nothing"
    );
    drop(silent);
    assert_eq!(http_get(addr, "/healthz").0, 200);
}

#[test]
fn idle_kept_alive_clients_cannot_hold_the_probes_away() {
    let dir = TempDir::new("admin-idle");
    let v = start(&dir);
    let addr = v.admin_addr();
    let mut idle = Vec::new();
    for _ in 0..SLOTS {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        // Read the one response (its body is "ok\n"), keep the connection.
        let mut buf = [0u8; 1024];
        let mut got = Vec::new();
        while !got.ends_with(b"ok\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed before the response");
            got.extend_from_slice(&buf[..n]);
        }
        idle.push(s);
    }
    probe_within(addr, Duration::from_secs(20));
    drop(idle);
}

#[test]
fn a_large_post_is_refused_unread_and_odd_requests_get_their_error() {
    let dir = TempDir::new("admin-post");
    let v = start(&dir);
    let addr = v.admin_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Announces 1 GiB and sends a little: the answer must not wait for it.
    s.write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\nxxxxxxxx")
        .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");

    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: ",
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw).unwrap();
        if raw.starts_with(b"GET /metrics") {
            // An endless header line: refused once hyper's buffer is full.
            let _ = s.write_all(&vec![b'a'; 512 << 10]);
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            !text.starts_with("HTTP/1.1 200"),
            "{:?} was answered 200: {text}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        );
    }
    assert_eq!(http_get(addr, "/healthz").0, 200);
    assert!(v.exited().is_none(), "{}", v.stderr_text());
}
