//! Hostile NATS servers against the real `vigil run`: a server whose
//! `INFO` never ends (64 MiB without `\r\n`), one that answers a publish
//! with a `MSG` to the client's inbox declaring 2 GiB and streams bytes,
//! and one that starts a `MSG` and stalls. Each is cut off by the frame
//! guard: the cause is logged naming the server, the operation and the
//! size, `vigil_output_protocol_violations_total` counts it, and Vigil's
//! peak memory stays under 100 MiB (about 50 without a hostile server).
//! The finding stays in the spool meanwhile and, once a real
//! `nats-server` takes the port, is stored exactly once. A connection of
//! another process to the guard's loopback listener is refused and counted.
//! `vigil config check` refuses a read cap out of its bounds.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Client, audit_log_with_a_finding, run_reading, write_run_config};
use crate::common::vigil;
use vigil_test_support::TempDir;
use vigil_test_support::nats::NatsServer;
use vigil_test_support::net::free_port;

const OUTPUT: &str = "nats:vigil.findings";

/// How a fake server misbehaves.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// `INFO {"server_id":"aaaa…` for 64 MiB, never a `\r\n`.
    EndlessInfo,
    /// A valid handshake, then `MSG <inbox> <sid> 2147483648` and up to
    /// 256 MiB of payload bytes after the client's first publish.
    HugeMsg,
    /// A valid handshake, then the first 3 bytes of a 100-byte `MSG`
    /// payload after the client's first publish, and silence.
    Stall,
}

/// A fake server on a fixed port, one thread per connection.
struct FakeServer {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(port: u16, kind: Hostile) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let accept = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let flag = flag.clone();
                        std::thread::spawn(move || serve(conn, kind, &flag));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            stop,
            accept: Some(accept),
        }
    }

    /// Closes the listener (the port is free again) and ends every connection.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            t.join().unwrap();
        }
        // Connection threads notice the flag within a read timeout.
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Writes `total` bytes of `b` in 64 KiB chunks while the peer reads them.
fn stream(conn: &mut TcpStream, b: u8, total: usize, stop: &AtomicBool) {
    let chunk = vec![b; 64 << 10];
    let mut sent = 0;
    while sent < total && !stop.load(Ordering::Relaxed) {
        if conn.write_all(&chunk).is_err() {
            return;
        }
        sent += chunk.len();
    }
}

fn serve(mut conn: TcpStream, kind: Hostile, stop: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    if let Hostile::EndlessInfo = kind {
        if conn.write_all(b"INFO {\"server_id\":\"").is_ok() {
            stream(&mut conn, b'a', 64 << 20, stop);
        }
        return;
    }
    let info = r#"INFO {"server_id":"HOSTILE","version":"2.10.0","proto":1,"headers":true,"max_payload":1048576,"jetstream":true}"#;
    if conn.write_all(format!("{info}\r\n").as_bytes()).is_err() {
        return;
    }
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut seen = String::new();
    let mut pongs = 0;
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => continue,
        }
        while pongs < seen.matches("PING\r\n").count() {
            pongs += 1;
            if conn.write_all(b"PONG\r\n").is_err() {
                return;
            }
        }
        // The client's inbox subscription, then its first publish.
        let Some(sub) = seen.lines().find(|l| l.starts_with("SUB ")) else {
            continue;
        };
        if !seen.contains("PUB ") {
            continue;
        }
        let parts: Vec<&str> = sub.split_ascii_whitespace().collect();
        let inbox = parts[1].replace('*', "ack");
        let sid = parts[parts.len() - 1];
        match kind {
            Hostile::HugeMsg => {
                let line = format!("MSG {inbox} {sid} 2147483648\r\n");
                if conn.write_all(line.as_bytes()).is_ok() {
                    stream(&mut conn, b'x', 256 << 20, stop);
                }
            }
            Hostile::Stall => {
                let line = format!("MSG {inbox} {sid} 100\r\nabc");
                if conn.write_all(line.as_bytes()).is_err() {
                    return;
                }
                // Silence until the client gives up or the test ends.
                while !stop.load(Ordering::Relaxed) {
                    match conn.read(&mut buf) {
                        Ok(0) => return,
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
            Hostile::EndlessInfo => {}
        }
        return;
    }
}

/// The value of a counter of the NATS output in the metrics text.
fn counter(metrics: &str, family: &str) -> u64 {
    let key = format!("{family}{{output=\"{OUTPUT}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Peak resident memory of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{status}"));
    kb * 1024
}

/// The loopback ports process `pid` listens on.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|t| {
            let t = t.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let cols: Vec<&str> = row.split_ascii_whitespace().collect();
            let (local, state, inode) = (cols.get(1)?, cols.get(3)?, cols.get(9)?);
            let port = local.strip_prefix("0100007F:")?;
            (*state == "0A" && inodes.contains(*inode))
                .then(|| u16::from_str_radix(port, 16).ok())
                .flatten()
        })
        .collect()
}

#[test]
fn hostile_servers_are_cut_off_and_the_finding_waits_in_the_spool() {
    let dir = TempDir::new("nats-hostile");
    let port = free_port();
    let log = audit_log_with_a_finding(dir.path(), "nats-h");
    let config = dir.path().join("vigil.toml");
    write_run_config(
        &config,
        port,
        r#"
        stream = "VIGIL"
        timeout_ms = 1000
        retry = { initial_ms = 100, max_ms = 300 }
        "#,
    );
    let mut fake = Some(FakeServer::start(port, Hostile::EndlessInfo));
    let vigil_run = run_reading(&config, &dir.path().join("data"), &log);

    let server = format!("protocol violation by NATS server 127.0.0.1:{port}, connection closed");
    let phases = [
        (
            Hostile::EndlessInfo,
            "INFO control line longer than 65536 bytes".to_owned(),
        ),
        (
            Hostile::HugeMsg,
            "MSG declaring a payload of 2147483648 bytes, over the cap of 65536 bytes (max_read_payload_bytes)"
                .to_owned(),
        ),
        (
            Hostile::Stall,
            "partial MSG (".to_owned(),
        ),
    ];
    let mut violations = 0;
    for (kind, cause) in phases {
        if fake.is_none() {
            fake = Some(FakeServer::start(port, kind));
        }
        let want = format!("{server}: {cause}");
        vigil_run.wait_until(
            &format!("{kind:?}: {want}"),
            Duration::from_secs(30),
            || vigil_run.stderr_text().contains(&want),
        );
        // The delivery failed with the guard's reason, and was counted.
        vigil_run.wait_until(
            &format!("{kind:?} in the delivery error"),
            Duration::from_secs(30),
            || {
                vigil_run.stderr_text().lines().any(|l| {
                    l.contains("delivery failed; findings stay in the spool") && l.contains(&want)
                })
            },
        );
        let now = counter(
            &vigil_run.metrics(),
            "vigil_output_protocol_violations_total",
        );
        assert!(now > violations, "{kind:?}: {now} after {violations}");
        violations = now;
        fake.take().unwrap().stop();
    }
    assert!(
        vigil_run
            .stderr_text()
            .contains("and then nothing for 500 ms"),
        "{}",
        vigil_run.stderr_text()
    );
    let peak = peak_rss(vigil_run.id());
    eprintln!(
        "vigil peak RSS after the hostile servers: {} MiB",
        peak >> 20
    );
    // About 50 MiB without any hostile server; a client buffering the 64 MiB
    // INFO or the streamed payload would be well past this.
    assert!(peak < 100 << 20, "peak RSS {} MiB", peak >> 20);
    assert_eq!(
        counter(&vigil_run.metrics(), "vigil_output_delivered_total"),
        0
    );

    // A real server on the same port: the spooled finding arrives, once.
    let store = dir.path().join("js");
    let real = NatsServer::start(&store, port);
    let mut client = Client::with_stream(real.port(), false, false);
    vigil_run.wait_until("the finding in the stream", Duration::from_secs(30), || {
        client.stream_messages() >= 1
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(client.stream_messages(), 1);
    let metrics = vigil_run.metrics();
    assert_eq!(
        counter(&metrics, "vigil_output_delivered_total"),
        1,
        "{metrics}"
    );
    assert!(metrics.contains("vigil_spool_depth 0"), "{metrics}");

    // The guard of the live connection takes nothing from another process.
    let admin = vigil_run.admin_addr().port();
    let guards: Vec<u16> = listening_ports(vigil_run.id())
        .into_iter()
        .filter(|p| *p != admin)
        .collect();
    assert_eq!(guards.len(), 1, "{guards:?}");
    let mut other = TcpStream::connect(("127.0.0.1", guards[0])).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let n = other.read_to_end(&mut got).unwrap();
    assert_eq!(n, 0, "the guard relayed to another process: {got:?}");
    vigil_run.wait_for_metric(
        &format!("vigil_output_guard_refused_total{{output=\"{OUTPUT}\"}} 1"),
        Duration::from_secs(10),
    );
    // The counter is raised before the warning is logged, and the log is
    // read from the process's stderr by another thread: wait for it.
    vigil_run.wait_for_stderr(
        "nats: connection to the frame guard refused",
        Duration::from_secs(10),
    );
    // The live connection still works.
    assert_eq!(client.stream_messages(), 1);
    vigil_run.stop();
}

/// `vigil config check` refuses a read cap out of bounds (with its path)
/// and one that is not a number.
#[test]
fn config_check_refuses_a_bad_read_cap() {
    let dir = TempDir::new("nats-cap-check");
    let file = dir.path().join("vigil.toml");
    let check = |cap: &str| {
        std::fs::write(
            &file,
            format!(
                "[[outputs.nats]]\nurl = \"nats://127.0.0.1:4222\"\nsubject = \"vigil.findings\"\nmax_read_payload_bytes = {cap}\n"
            ),
        )
        .unwrap();
        let out = vigil()
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = check("100");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout
            .contains("outputs.nats[0].max_read_payload_bytes: must be between 1024 and 67108864"),
        "{stdout}"
    );
    let (code, stdout) = check("\"big\"");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("max_read_payload_bytes"), "{stdout}");
    let (code, stdout) = check("1048576");
    assert_eq!(code, Some(0), "{stdout}");
}
