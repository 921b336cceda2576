//! Live tests of the network sources (`procfs` poller, `conntrack`
//! listener) through the real binary and the real Docker daemon of this
//! machine, with the local image built by
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

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::docker::{Containers, IMAGE, LABEL, docker, docker_ready, run_container};
use vigil_test_support::output::read_jsonl;
use vigil_test_support::{TempDir, VigilProcess, unique};

/// A running `vigil run` writing its events to a file; killed (and its data
/// removed) when dropped.
struct Vigil {
    process: VigilProcess,
    events: PathBuf,
    _data_dir: TempDir,
}

impl Vigil {
    fn start(args: &[&str]) -> Self {
        let data_dir = TempDir::new("network-live");
        let events = data_dir.join("events.jsonl");
        let process = VigilProcess::spawn(
            vigil()
                .arg("run")
                .arg("--data-dir")
                .arg(data_dir.path())
                .args(["--no-cache", "--no-docker"])
                .args(args)
                .arg("--emit-events")
                .arg(&events),
        );
        Self {
            process,
            events,
            _data_dir: data_dir,
        }
    }

    /// Waits for a network event of container `id` matching `pred`.
    fn wait_event(
        &self,
        id: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.process.wait_for_showing(
            &format!("a network event ({what}) for container {id}"),
            timeout,
            || {
                read_jsonl(&self.events).into_iter().find(|e| {
                    e["body"]["kind"] == "network"
                        && e["body"]["container"]["id"] == id
                        && pred(&e["body"])
                })
            },
            || events_text(&self.events),
        )
    }
}

fn events_text(path: &Path) -> String {
    format!(
        "events:\n{}",
        std::fs::read_to_string(path).unwrap_or_default()
    )
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

    let vigil = Vigil::start(&["--network-interval-ms", "200"]);
    vigil.process.wait_for_stderr(
        "network: on (procfs, every 200 ms)",
        Duration::from_secs(120),
    );

    let client = format!("vigil_net_client_{}", unique());
    let server = format!("vigil_net_server_{}", unique());
    let _cleanup = Containers(vec![client.clone(), server.clone()]);
    // `sleep | nc`: nc's stdin stays open, so the connection does too.
    let client_id = run_container(
        &client,
        &["--network", "host"],
        &["sh", "-c", &format!("sleep 30 | nc 127.0.0.1 {port}")],
    );
    let server_id = run_container(&server, &[], &["nc", "-l", "-p", "8080"]);

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

/// The default bridge's gateway (the host's address on it), read from a
/// container's routing table: `docker network inspect` leaves it out on
/// some daemons.
fn bridge_gateway() -> Ipv4Addr {
    let routes = docker(&[
        "run",
        "--rm",
        "--label",
        LABEL,
        IMAGE,
        "cat",
        "/proc/net/route",
    ]);
    let hex = routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[1] == "00000000")
        .map(|f| f[2].to_owned())
        .expect("a default route");
    // Printed as a native-endian u32 of the network-order bytes.
    Ipv4Addr::from(u32::from_str_radix(&hex, 16).unwrap().to_ne_bytes())
}

/// Whether vigil said conntrack is on; a skip (with the reason) when the
/// machine has no netlink conntrack.
fn conntrack_on(vigil: &Vigil) -> bool {
    let process = &vigil.process;
    process.wait_for_stderr("conntrack: o", Duration::from_secs(120));
    let log = process.stderr_text();
    if log.contains("conntrack: on (") {
        return true;
    }
    assert!(
        std::env::var_os("VIGIL_REQUIRE_CONNTRACK").is_none(),
        "VIGIL_REQUIRE_CONNTRACK is set but conntrack is off:\n{log}"
    );
    eprintln!("SKIPPED: conntrack unavailable here:\n{log}");
    false
}

/// Accepts connections on `addr` and closes each at once; returns the port
/// and the peers seen.
fn closing_listener(addr: Ipv4Addr) -> (u16, Arc<Mutex<Vec<std::net::SocketAddr>>>) {
    let listener = TcpListener::bind((addr, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            if let Ok(peer) = conn.peer_addr() {
                seen.lock().unwrap().push(peer);
            }
            drop(conn);
        }
    });
    (port, peers)
}

/// A bridge container whose only act is a connection of a few milliseconds
/// (to a listener on the gateway's address, closed at once; the container
/// exits right after) is reported by conntrack and attributed to it. The
/// poller looks only once a minute here, so it cannot be what saw it; at
/// its default interval of 1 s it would almost always miss it too (the
/// container's whole life is ~40 ms).
#[test]
fn short_bridge_connection_is_reported_by_conntrack() {
    if !docker_ready() {
        return;
    }
    let gateway = bridge_gateway();
    let (port, peers) = closing_listener(gateway);
    let vigil = Vigil::start(&["--network-interval-ms", "60000"]);
    if !conntrack_on(&vigil) {
        return;
    }
    vigil
        .process
        .wait_for_stderr("network: on (procfs", Duration::from_secs(30));

    let name = format!("vigil_ct_short_{}", unique());
    let _cleanup = Containers(vec![name.clone()]);
    let id = run_container(
        &name,
        &[],
        &["sh", "-c", &format!("nc {gateway} {port} </dev/null")],
    );
    assert_eq!(docker(&["wait", &id]), "0", "nc failed");
    assert!(
        !peers.lock().unwrap().is_empty(),
        "the connection did not reach the listener"
    );

    let e = vigil.wait_event(&id, "conntrack outbound", Duration::from_secs(10), |b| {
        b["remote_port"] == port
    });
    assert_eq!(e["source"], "conntrack");
    let body = &e["body"];
    assert_eq!(body["protocol"], "tcp");
    assert_eq!(body["direction"], "outbound");
    assert_eq!(body["state"], "new");
    assert_eq!(body["remote_address"], gateway.to_string());
    assert_eq!(body["host_network"], false);
    assert_eq!(body["container"]["name"], name);
    assert_eq!(body["container"]["image"], IMAGE);
    let peer = peers.lock().unwrap()[0];
    assert_eq!(body["local_address"], peer.ip().to_string());
    assert_eq!(body["local_port"], peer.port());
}

/// A bridge container's connection that stays open is reported once, by
/// whichever source saw it first, however many polls see it afterwards.
#[test]
fn long_bridge_connection_is_reported_once_by_both_sources() {
    if !docker_ready() {
        return;
    }
    let gateway = bridge_gateway();
    let listener = TcpListener::bind((gateway, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn);
        }
    });
    let vigil = Vigil::start(&["--network-interval-ms", "200"]);
    if !conntrack_on(&vigil) {
        return;
    }
    let name = format!("vigil_ct_long_{}", unique());
    let _cleanup = Containers(vec![name.clone()]);
    let id = run_container(
        &name,
        &[],
        &["sh", "-c", &format!("sleep 30 | nc {gateway} {port}")],
    );
    vigil.wait_event(&id, "outbound", Duration::from_secs(10), |b| {
        b["remote_port"] == port
    });
    // Several polls see the established socket; none may report it again.
    std::thread::sleep(Duration::from_millis(1500));
    let text = std::fs::read_to_string(&vigil.events).unwrap();
    let reports: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&id) && l.contains(&format!("\"remote_port\":{port}")))
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "events:\n{text}\nstderr:\n{}",
        vigil.process.stderr_text()
    );
}

/// A container's `/etc/hosts` is Docker's `containers/<id>/hosts`, which
/// the conntrack listener reads to name containers that live milliseconds.
/// A running container that rewrites it to give its own hostname another
/// running container's address (and so makes it the newest claim) must not
/// get that container's flows: they stay attributed to the container the
/// daemon gave the address to.
#[test]
fn a_forged_hosts_file_does_not_take_another_containers_flows() {
    if !docker_ready() {
        return;
    }
    let gateway = bridge_gateway();
    let (port, peers) = closing_listener(gateway);
    let victim = format!("vigil_ct_victim_{}", unique());
    let forger = format!("vigil_ct_forger_{}", unique());
    let _cleanup = Containers(vec![victim.clone(), forger.clone()]);
    let victim_id = run_container(&victim, &[], &["sleep", "300"]);
    let victim_ip = docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}}",
        &victim_id,
    ]);
    assert!(!victim_ip.is_empty(), "the victim has no bridge address");
    // Once running (its state recorded by the daemon), the forger names the
    // victim's address as its own.
    let forger_id = run_container(
        &forger,
        &[],
        &[
            "sh",
            "-c",
            &format!("sleep 1; echo \"{victim_ip} $(hostname)\" >> /etc/hosts; sleep 300"),
        ],
    );
    let hosts = Path::new("/var/lib/docker/containers")
        .join(&forger_id)
        .join("hosts");
    vigil_test_support::wait_until(
        "the forged line in the forger's hosts file",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&hosts)
                .unwrap_or_default()
                .contains(&victim_ip)
        },
        || std::fs::read_to_string(&hosts).unwrap_or_default(),
    );

    let vigil = Vigil::start(&["--network-interval-ms", "60000"]);
    if !conntrack_on(&vigil) {
        return;
    }
    vigil
        .process
        .wait_for_stderr("network: on (procfs", Duration::from_secs(30));
    docker(&[
        "exec",
        &victim_id,
        "sh",
        "-c",
        &format!("nc {gateway} {port} </dev/null"),
    ]);
    assert!(
        !peers.lock().unwrap().is_empty(),
        "the connection did not reach the listener"
    );
    let e = vigil.wait_event(
        &victim_id,
        "conntrack outbound of the victim",
        Duration::from_secs(10),
        |b| b["remote_port"] == port,
    );
    assert_eq!(e["source"], "conntrack");
    assert_eq!(e["body"]["local_address"], victim_ip);
    assert_eq!(e["body"]["container"]["name"], victim);
    let text = std::fs::read_to_string(&vigil.events).unwrap();
    assert!(
        !text
            .lines()
            .any(|l| l.contains(&forger_id) && l.contains(&format!("\"remote_port\":{port}"))),
        "the victim's flow was attributed to the forger:\n{text}"
    );
}
