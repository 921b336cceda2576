//! Unit tests: decoding real captured ctnetlink events and built ones,
//! sides and events of a flow, Docker directory claims, the host's
//! addresses, and the shared dedup window.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::decode::{DecodeError, FlowKind, Message, Tuple, encode, messages};
use super::docker_dirs::{DockerDirs, HOSTS_MAX_BYTES, hosts_addresses, read_capped};
use super::flows::{flow_events, sides};
use crate::network::addresses::{Addresses, parse_fib_trie, parse_if_inet6};
use crate::network::shared::{FlowKey, RecentFlows};
use vigil_core::model::{ContainerRef, Direction, Protocol};

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/conntrack")
        .join(name);
    let hex = std::fs::read_to_string(p).unwrap();
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn only_flow(bytes: &[u8]) -> super::decode::Flow {
    let got: Vec<_> = messages(bytes).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    match got[0] {
        Ok(Message::Flow(f)) => f,
        ref other => panic!("not a flow: {other:?}"),
    }
}

// Captured on x86-64 (netlink headers are in the machine's byte order).
#[cfg(target_endian = "little")]
#[test]
fn real_events_decode() {
    let f = only_flow(&fixture("new-tcp4-bridge.hex"));
    assert_eq!(f.kind, FlowKind::New);
    assert_eq!(f.orig.src, ip("172.17.0.2"));
    assert_eq!(f.orig.dst, ip("172.17.0.1"));
    assert_eq!(f.orig.protocol, 6);
    assert_eq!((f.orig.src_port, f.orig.dst_port), (51514, 37135));
    let r = f.reply.unwrap();
    assert_eq!((r.src, r.dst), (ip("172.17.0.1"), ip("172.17.0.2")));
    assert_eq!((r.src_port, r.dst_port), (37135, 51514));
    assert!(f.id.is_some());

    let udp = only_flow(&fixture("new-udp4-loopback.hex"));
    assert_eq!(udp.orig.protocol, 17);
    assert_eq!(udp.orig.dst_port, 40999);
    assert_eq!(udp.orig.src, ip("127.0.0.1"));
    let tcp = only_flow(&fixture("new-tcp4-loopback.hex"));
    assert_eq!(tcp.orig.protocol, 6);
}

#[test]
fn built_events_round_trip_v4_and_v6() {
    for (src, dst) in [("10.1.2.3", "192.0.2.9"), ("2001:db8::5", "2001:db8::1")] {
        let orig = Tuple {
            src: ip(src),
            dst: ip(dst),
            protocol: 17,
            src_port: 40000,
            dst_port: 53,
        };
        let reply = Tuple {
            src: orig.dst,
            dst: orig.src,
            protocol: 17,
            src_port: 53,
            dst_port: 40000,
        };
        let f = only_flow(&encode::new_flow(&orig, &reply, 77));
        assert_eq!(
            (f.kind, f.orig, f.reply, f.id),
            (FlowKind::New, orig, Some(reply), Some(77))
        );
    }
}

#[test]
fn several_messages_and_broken_ones() {
    let orig = Tuple {
        src: ip("172.17.0.3"),
        dst: ip("1.1.1.1"),
        protocol: 6,
        src_port: 1,
        dst_port: 443,
    };
    let one = encode::new_flow(&orig, &orig, 1);
    let mut two = one.clone();
    two.extend_from_slice(&one);
    assert_eq!(messages(&two).filter(|m| m.is_ok()).count(), 2);
    // A header longer than the datagram ends the datagram.
    let mut bad = one.clone();
    bad[0] = 0xff;
    bad[1] = 0xff;
    let got: Vec<_> = messages(&bad).collect();
    assert!(
        matches!(got[..], [Err(DecodeError::Length { .. })]),
        "{got:?}"
    );
    // A short tail is a header error, not a panic.
    assert!(matches!(
        messages(&one[..10]).next(),
        Some(Err(DecodeError::Header { left: 10 }))
    ));
    // An attribute longer than its message is an error of that message only.
    let mut attr = one.clone();
    attr[20] = 0xff;
    let mut both = attr.clone();
    both.extend_from_slice(&one);
    let got: Vec<_> = messages(&both).collect();
    assert!(
        matches!(got[0], Err(DecodeError::Attribute { .. })),
        "{got:?}"
    );
    assert!(matches!(got[1], Ok(Message::Flow(_))));
    // A netlink error message (as answered to a request).
    let mut err = Vec::new();
    err.extend_from_slice(&36u32.to_ne_bytes());
    err.extend_from_slice(&2u16.to_ne_bytes());
    err.extend_from_slice(&[0; 10]);
    err.extend_from_slice(&(-1i32).to_ne_bytes());
    err.extend_from_slice(&[0; 16]);
    assert_eq!(messages(&err).next(), Some(Ok(Message::Error { errno: 1 })));
}

fn container(id: &str) -> ContainerRef {
    ContainerRef {
        id: id.to_owned(),
        ..ContainerRef::default()
    }
}

#[test]
fn outbound_and_dnat_inbound_sides() {
    // Container 172.17.0.2 connects out; masqueraded to 198.51.100.7.
    let orig = Tuple {
        src: ip("172.17.0.2"),
        dst: ip("203.0.113.9"),
        protocol: 6,
        src_port: 40000,
        dst_port: 443,
    };
    let reply = Tuple {
        src: ip("203.0.113.9"),
        dst: ip("198.51.100.7"),
        protocol: 6,
        src_port: 443,
        dst_port: 40000,
    };
    let f = only_flow(&encode::new_flow(&orig, &reply, 1));
    let mut out = Vec::new();
    flow_events(
        &f,
        |a| (a == ip("172.17.0.2")).then(|| container("c1")),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let e = &out[0];
    assert_eq!(e.direction, Direction::Outbound);
    assert_eq!(
        (e.local_address.as_str(), e.local_port),
        ("172.17.0.2", 40000)
    );
    assert_eq!(
        (e.remote_address.as_str(), e.remote_port),
        ("203.0.113.9", 443)
    );
    assert_eq!((e.state.as_str(), e.protocol), ("new", Protocol::Tcp));
    assert_eq!(e.container.as_ref().unwrap().id, "c1");
    assert!(!e.host_network);

    // A client reaches a published port 8080 → container 172.17.0.5:80.
    let orig = Tuple {
        src: ip("192.0.2.50"),
        dst: ip("192.0.2.1"),
        protocol: 6,
        src_port: 5555,
        dst_port: 8080,
    };
    let reply = Tuple {
        src: ip("172.17.0.5"),
        dst: ip("192.0.2.50"),
        protocol: 6,
        src_port: 80,
        dst_port: 5555,
    };
    let f = only_flow(&encode::new_flow(&orig, &reply, 2));
    let s = sides(&f).unwrap();
    assert_eq!(s[1].direction, Direction::Inbound);
    assert_eq!(
        s[1].key(),
        FlowKey::new(Protocol::Tcp, sa("172.17.0.5:80"), sa("192.0.2.50:5555"))
    );
    let mut out = Vec::new();
    flow_events(
        &f,
        |a| (a == ip("172.17.0.5")).then(|| container("web")),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].direction, Direction::Inbound);
    assert_eq!(out[0].local_port, 80);

    // ICMP: nothing the event model can carry.
    let icmp = Tuple {
        protocol: 1,
        ..orig
    };
    assert!(sides(&only_flow(&encode::new_flow(&icmp, &icmp, 3))).is_none());
}

#[test]
fn hosts_file_names_the_container_address() {
    let text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n10.9.9.9\tregistry # --add-host\n172.17.0.2\t8fb2dbd2137b\n2001:db8::2\t8fb2dbd2137b.example 8fb2dbd2137b\n";
    assert_eq!(
        hosts_addresses(text, "8fb2dbd2137b"),
        vec![ip("172.17.0.2"), ip("2001:db8::2")]
    );
    assert!(hosts_addresses(text, "").is_empty());
    assert!(hosts_addresses(text, "localhost").is_empty());
}

fn metrics() -> std::sync::Arc<vigil_core::metrics::SourceMetrics> {
    std::sync::Arc::new(vigil_core::metrics::SourceMetrics::new("conntrack"))
}

/// A fake Docker data root.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vigil-ct-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("containers")).unwrap();
        Self(p)
    }

    fn config(&self, id: &str, running: bool, ip_addr: &str) {
        let dir = self.0.join("containers").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let json = format!(
            r#"{{"Name":"/n{}","Config":{{"Image":"busybox","Hostname":"{}"}},"State":{{"Running":{running}}},"NetworkSettings":{{"Networks":{{"bridge":{{"IPAddress":"{ip_addr}"}}}}}}}}"#,
            &id[..4],
            &id[..12]
        );
        std::fs::write(dir.join("config.v2.json"), json).unwrap();
    }

    fn hosts(&self, id: &str, ip_addr: &str) {
        let dir = self.0.join("containers").join(id);
        std::fs::write(
            dir.join("hosts"),
            format!("127.0.0.1\tlocalhost\n{ip_addr}\t{}\n", &id[..12]),
        )
        .unwrap();
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn docker_dirs_follow_start_run_stop_and_reuse() {
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let root = Root::new("dirs");
    let mut dirs = DockerDirs::new(&root.0, metrics());
    let pause = || std::thread::sleep(Duration::from_millis(20));
    // Created, then being started: hosts written after the config.
    root.config(&a, false, "");
    pause();
    assert!(dirs.rescan());
    assert!(dirs.owner(ip("172.17.0.2")).is_none());
    root.hosts(&a, "172.17.0.2");
    assert!(dirs.rescan());
    assert_eq!(dirs.owner(ip("172.17.0.2")).unwrap().id, a);
    assert_eq!(dirs.owner(ip("172.17.0.2")).unwrap().name, "naaaa");
    assert!(!dirs.rescan(), "nothing changed");
    // Running, checkpointed with its address.
    pause();
    root.config(&a, true, "172.17.0.2");
    dirs.rescan();
    assert_eq!(dirs.owner(ip("172.17.0.2")).unwrap().id, a);
    // Stopped: the address is cleared; the old hosts file no longer counts.
    pause();
    root.config(&a, false, "");
    dirs.rescan();
    assert!(dirs.owner(ip("172.17.0.2")).is_none());
    // Another container gets the address.
    root.config(&b, false, "");
    pause();
    root.hosts(&b, "172.17.0.2");
    dirs.rescan();
    assert_eq!(dirs.owner(ip("172.17.0.2")).unwrap().id, b);
    // Removed.
    std::fs::remove_dir_all(root.0.join("containers").join(&b)).unwrap();
    assert!(dirs.rescan());
    assert!(dirs.owner(ip("172.17.0.2")).is_none());
    // No Docker at all: empty, not an error.
    let mut none = DockerDirs::new(Path::new("/nonexistent-vigil"), metrics());
    assert!(!none.rescan());
}

/// A running container that rewrites its `/etc/hosts` (its `hosts` file)
/// to give its hostname another running container's address, with a
/// newer mtime than anything else, does not take that address; a running
/// container's `hosts` file is not even used for its own.
#[test]
fn a_running_container_cannot_claim_an_address_through_its_hosts_file() {
    let victim = "c".repeat(64);
    let attacker = "d".repeat(64);
    let root = Root::new("forged-hosts");
    let mut dirs = DockerDirs::new(&root.0, metrics());
    let pause = || std::thread::sleep(Duration::from_millis(20));
    root.config(&victim, true, "172.17.0.5");
    root.config(&attacker, true, "172.17.0.6");
    pause();
    root.hosts(&victim, "172.17.0.5");
    root.hosts(&attacker, "172.17.0.6");
    pause();
    dirs.rescan();
    assert_eq!(dirs.owner(ip("172.17.0.5")).unwrap().id, victim);
    // The attacker names the victim's address (and a free one) as its own.
    let dir = root.0.join("containers").join(&attacker);
    std::fs::write(
        dir.join("hosts"),
        format!("172.17.0.5\t{h}\n172.17.0.99\t{h}\n", h = &attacker[..12]),
    )
    .unwrap();
    assert!(dirs.rescan());
    assert_eq!(dirs.owner(ip("172.17.0.5")).unwrap().id, victim);
    assert_eq!(dirs.owner(ip("172.17.0.6")).unwrap().id, attacker);
    assert!(dirs.owner(ip("172.17.0.99")).is_none());
    // Even a hosts claim in a starting window loses to a running container.
    let starter = "e".repeat(64);
    root.config(&starter, false, "");
    pause();
    root.hosts(&starter, "172.17.0.5");
    dirs.rescan();
    assert_eq!(dirs.owner(ip("172.17.0.5")).unwrap().id, victim);
}

#[test]
fn an_oversized_hosts_file_is_not_used_and_counted() {
    let root = Root::new("big-hosts");
    let m = metrics();
    let mut dirs = DockerDirs::new(&root.0, m.clone());
    let a = "f".repeat(64);
    root.config(&a, false, "");
    std::thread::sleep(Duration::from_millis(20));
    let dir = root.0.join("containers").join(&a);
    let mut text = format!("172.17.0.7\t{}\n", &a[..12]);
    text.push_str(&"#".repeat(usize::try_from(HOSTS_MAX_BYTES).unwrap()));
    std::fs::write(dir.join("hosts"), &text).unwrap();
    dirs.rescan();
    assert!(dirs.owner(ip("172.17.0.7")).is_none());
    assert_eq!(
        vigil_core::metrics::PluginMetrics::get(&m.counters.rejected),
        1
    );
    // The cap itself: up to it is read, one byte more is not.
    let f = dir.join("capped");
    std::fs::write(&f, "x".repeat(10)).unwrap();
    assert_eq!(read_capped(&f, 10).unwrap().len(), 10);
    assert!(read_capped(&f, 9).is_none());
    assert_eq!(read_capped(&dir.join("missing"), 9).unwrap(), "");
}

#[test]
fn namespace_addresses_from_procfs_tables() {
    let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n        +-- 127.0.0.0/31 1 0 0\n           |-- 127.0.0.0\n              /8 host LOCAL\n           |-- 127.0.0.1\n              /32 host LOCAL\n        |-- 127.255.255.255\n           /32 link BROADCAST\n     +-- 172.17.0.0/16 2 0 2\n        +-- 172.17.0.0/30 2 0 2\n           |-- 172.17.0.0\n              /16 link UNICAST\n           |-- 172.17.0.2\n              /32 host LOCAL\n        |-- 172.17.255.255\n           /32 link BROADCAST\nLocal:\n  +-- 0.0.0.0/0 3 0 5\n";
    let inet6 = "fe800000000000000042acfffe110002 02 40 20 80     eth0\n20010db8000000000000000000000002 02 40 00 80     eth0\n00000000000000000000000000000001 01 80 10 80       lo\nzz\n";
    let mut a = Addresses::default();
    parse_fib_trie(trie, &mut a);
    parse_if_inet6(inet6, &mut a);
    assert_eq!(a.local, vec![ip("172.17.0.2"), ip("2001:db8::2")]);
    assert!(a.is_connected(ip("172.17.200.1")));
    assert!(!a.is_connected(ip("172.18.0.1")));
    assert!(a.is_connected(ip("2001:db8::99")));
    assert!(!a.is_connected(ip("2001:db9::1")));
    assert!(a.is_local(ip("172.17.0.2")));
    // Our own namespace, for real: never a panic, loopback left out.
    let own = Addresses::read(Path::new("/proc"), "self");
    assert!(own.local.iter().all(|ip| !ip.is_loopback()));
}

#[test]
fn recent_flows_claim_once_within_the_window_and_stay_bounded() {
    let key = |port| {
        FlowKey::new(
            Protocol::Tcp,
            sa("172.17.0.2:1"),
            SocketAddr::new(ip("1.1.1.1"), port),
        )
    };
    let t0 = Instant::now();
    let mut r = RecentFlows::new(Duration::from_secs(10), 2);
    assert!(r.claim(key(1), t0));
    assert!(!r.claim(key(1), t0 + Duration::from_secs(1)));
    assert!(r.claim(key(2), t0));
    // Full: the oldest goes.
    assert!(r.claim(key(3), t0));
    assert!(r.len() <= 2);
    assert!(r.claim(key(1), t0 + Duration::from_secs(2)));
    // After the window, a key is new again.
    assert!(r.claim(key(3), t0 + Duration::from_secs(30)));
    assert!(!r.is_empty());
}
