//! Loopback networking for the tests: a free port, and HTTP/1.1 requests
//! written by hand (the admin endpoint, the audit webhook), so that what goes
//! over the wire is exactly what the test says.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

/// A loopback port free at the time of the call (bound, then released): for
/// servers that must be given their port up front, or restarted on it.
///
/// The kernel may hand the same ephemeral port to another test process once
/// it is released (two nats-servers then raced for one port and a test talked
/// to the other's server), so each port handed out is also reserved across
/// processes: an exclusive lock on `$TMPDIR/vigil-test-ports/PORT`, held
/// until this process exits. A port another test process holds is skipped.
pub fn free_port() -> u16 {
    static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("vigil-test-ports");
    std::fs::create_dir_all(&dir).expect("create the port reservation directory");
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a free loopback port")
            .port();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
            .expect("open a port reservation file");
        if file.try_lock().is_ok() {
            // flock is per open file: this process's own earlier
            // reservation of the port refuses it too.
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
            return port;
        }
    }
}

/// One request on a new connection (`Connection: close`); returns the
/// status (0 when the answer has no status line) and the body. The answer
/// is whatever arrived before the server closed the connection, the
/// `timeout` ran out or the connection broke: a server that refuses a body
/// may close before reading it.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(timeout))
        .expect("set a read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .unwrap_or_else(|e| panic!("cannot send to {addr}: {e}"));
    // The server may already have answered and closed (a refused body).
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `GET path` with a 5 s timeout (the admin endpoint answers at once).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, &[], b"", Duration::from_secs(5))
}
