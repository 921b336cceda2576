//! Unit tests: socket-table and cgroup parsing on real-format lines, the
//! direction rule, the tracker, and whole polls over a fake proc tree.

use crate::Source as _;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::attribution::container_id;
use super::config::NetworkConfig;
use super::procfs::{parse_endpoint, parse_row, parse_table};
use super::scan::{Scanner, direction};
use super::tracker::{Seen, SocketKey, Tracker};
use vigil_core::model::{Direction, Protocol};

const ID: &str = "cd53cdcc2274a2ba95b2c85731ec98436f18d77c79ef363bdd446f17e1a7bb31";
const ID2: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

// The kernel prints addresses in the machine's byte order; these lines come
// from x86-64.
#[cfg(target_endian = "little")]
mod little_endian {
    use super::*;

    #[test]
    fn ipv4_rows() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1145 1 00000000a267fd4b 100 0 0 10 0\n   1: 020200C0:A816 507100CB:01BB 01 00000000:00000000 00:00000000 00000000     0        0 61890 1 00000000e12836eb 21 4 1 48 146\n";
        let (rows, rejected) = parse_table(text, Protocol::Tcp);
        assert!(rejected.is_empty());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].local, addr("0.0.0.0:2024"));
        assert_eq!(rows[0].state_name(), "LISTEN");
        assert!(rows[0].is_listening());
        assert_eq!(rows[0].inode, 1145);
        assert_eq!(rows[1].local, addr("192.0.2.2:43030"));
        assert_eq!(rows[1].remote, addr("203.0.113.80:443"));
        assert_eq!(rows[1].state_name(), "ESTABLISHED");
        assert_eq!(rows[1].inode, 61890);
        assert_eq!(parse_endpoint("0100007F:0035"), Some(addr("127.0.0.1:53")));
    }

    #[test]
    fn ipv6_rows() {
        let line = "   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0";
        let row = parse_row(line, Protocol::Tcp).unwrap();
        assert_eq!(row.local, addr("[::1]:631"));
        assert_eq!(row.remote, addr("[::]:0"));
        // 2001:db8::1 as the kernel prints it, word by word.
        assert_eq!(
            parse_endpoint("B80D0120000000000000000001000000:01BB"),
            Some(addr("[2001:db8::1]:443"))
        );
    }

    #[test]
    fn ipv4_mapped_rows_read_as_ipv4() {
        let line = "   3: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000200007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1";
        let row = parse_row(line, Protocol::Tcp).unwrap();
        assert_eq!(row.local, addr("127.0.0.1:8080"));
        assert_eq!(row.remote, addr("127.0.0.2:54321"));
    }

    #[test]
    fn udp_rows() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  221: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 20984 2 0000000000000000 0\n  300: 0F02000A:E1A2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 3333 2 0000000000000000 0\n";
        let (rows, _) = parse_table(text, Protocol::Udp);
        assert_eq!(rows[0].state_name(), "UNCONN");
        assert!(rows[0].is_listening());
        assert!(rows[0].is_reportable());
        assert_eq!(rows[1].remote, addr("8.8.8.8:53"));
        assert_eq!(rows[1].state_name(), "ESTABLISHED");
        assert!(!rows[1].is_listening());
    }
}

#[test]
fn odd_rows_are_rejected_not_panicking() {
    let text = "header\n   0: zz:0035 00000000:0000 0A\n   1: 00000000:07E8\n   2: 0000é000:07E8 00000000:0000 0A 0:0 0:0 0 0 0 1\n   3: 0000000:07E8 00000000:0000 0A 0:0 0:0 0 0 0 1\n\n";
    let (rows, rejected) = parse_table(text, Protocol::Tcp);
    assert!(rows.is_empty());
    assert_eq!(rejected.len(), 4);
    // A closed TCP socket (bound, not used) is not reported.
    let closed = parse_row(
        "0: 00000000:07E8 00000000:0000 07 0:0 0:0 0 0 0 9",
        Protocol::Tcp,
    )
    .unwrap();
    assert!(!closed.is_reportable());
}

#[test]
fn cgroup_paths_name_the_container() {
    let v1 = format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n");
    assert_eq!(container_id(&v1), Some(ID));
    let v2 = format!("0::/system.slice/docker-{ID}.scope\n");
    assert_eq!(container_id(&v2), Some(ID));
    let kube_v1 =
        format!("4:cpu,cpuacct:/kubepods/burstable/pod0d3c1a3e-8a4a-4f7e-9b1a-2a3b4c5d6e7f/{ID}\n");
    assert_eq!(container_id(&kube_v1), Some(ID));
    let kube_v2 = format!(
        "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0d3c1a3e_8a4a_4f7e_9b1a_2a3b4c5d6e7f.slice/cri-containerd-{ID}.scope\n"
    );
    assert_eq!(container_id(&kube_v2), Some(ID));
    assert_eq!(
        container_id(&format!("0::/machine.slice/crio-conmon-{ID}.scope")),
        None
    );
    // Docker in Docker: the outer container, the one this host knows.
    assert_eq!(
        container_id(&format!("1:name=systemd:/docker/{ID}/docker/{ID2}")),
        Some(ID)
    );
    for host in [
        "0::/\n",
        "9:name=systemd:/\n",
        "0::/user.slice/user-1000.slice/session-2.scope\n",
        "",
        "garbage",
    ] {
        assert_eq!(container_id(host), None, "{host}");
    }
    assert_eq!(container_id(&format!("0::/docker/{}", &ID[1..])), None);
}

#[test]
fn direction_follows_the_listen_set() {
    let row = |local: &str, remote: &str, state: u8| {
        parse_row(
            &format!("0: {local} {remote} {state:02X} 0:0 0:0 0 0 0 1"),
            Protocol::Tcp,
        )
        .unwrap()
    };
    let listener = row("00000000:1F90", "00000000:0000", 0x0A);
    let accepted = row("0100007F:1F90", "0100007F:D431", 0x01);
    let opened = row("0100007F:D431", "0100007F:1F90", 0x02);
    let listening: HashSet<(bool, u16)> = [(false, 8080)].into();
    assert_eq!(direction(&listener, &listening), Direction::Listen);
    assert_eq!(direction(&accepted, &listening), Direction::Inbound);
    assert_eq!(direction(&opened, &listening), Direction::Outbound);
    // The UDP set is apart from the TCP one.
    assert_eq!(
        direction(&accepted, &[(true, 8080)].into()),
        Direction::Outbound
    );
}

#[test]
fn tracker_reports_once_forgets_and_is_bounded() {
    let row = parse_row(
        "0: 0100007F:D431 0100007F:1F90 01 0:0 0:0 0 0 0 1",
        Protocol::Tcp,
    )
    .unwrap();
    let other = parse_row(
        "0: 0100007F:D432 0100007F:1F90 01 0:0 0:0 0 0 0 2",
        Protocol::Tcp,
    )
    .unwrap();
    let mut t = Tracker::new(1);
    t.begin();
    assert_eq!(t.observe(SocketKey::new(1, &row)), Seen::New);
    assert_eq!(t.observe(SocketKey::new(1, &other)), Seen::Untracked);
    assert_eq!(t.end(), 0);
    t.begin();
    assert_eq!(t.observe(SocketKey::new(1, &row)), Seen::Known);
    // Same 5-tuple in another namespace is another socket.
    assert_eq!(t.observe(SocketKey::new(2, &row)), Seen::Untracked);
    t.end();
    t.begin();
    assert_eq!(t.end(), 1);
    t.begin();
    assert_eq!(t.observe(SocketKey::new(1, &row)), Seen::New);
}

#[test]
fn config_reports_every_problem() {
    let bad = NetworkConfig {
        enabled: true,
        interval_ms: 1,
        max_tracked_sockets: 0,
        max_cached_containers: 0,
        proc_root: PathBuf::from("proc"),
        docker_root: PathBuf::from("docker"),
        containerd_state: PathBuf::from("run/containerd"),
        crio_runroot: PathBuf::new(),
        include_host: false,
        conntrack: true,
        conntrack_receive_buffer_bytes: 1024,
        attribution_wait_ms: 60_000,
        max_pending_flows: 0,
    };
    let err = bad.validated().unwrap_err();
    assert_eq!(err.0.len(), 9);
    assert!(err.to_string().contains("network.containerd_state"));
    assert!(err.to_string().contains("network.interval_ms"));
    assert!(NetworkConfig::default().validated().is_ok());
    let unknown = serde_json::from_str::<NetworkConfig>(r#"{"interval":5}"#);
    assert!(unknown.is_err());
}

/// A fake proc tree: processes with a netns link, a cgroup file, socket
/// tables and fd links.
struct FakeProc {
    root: PathBuf,
}

impl FakeProc {
    fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("vigil-net-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Self { root }
    }

    fn process(&self, pid: u32, netns: u64, container: Option<&str>, sockets: &[u64]) {
        let dir = self.root.join(pid.to_string());
        std::fs::create_dir_all(dir.join("ns")).unwrap();
        std::fs::create_dir_all(dir.join("fd")).unwrap();
        std::fs::create_dir_all(dir.join("net")).unwrap();
        symlink(format!("net:[{netns}]"), dir.join("ns/net")).unwrap();
        let cgroup = container.map_or("0::/\n".to_owned(), |id| {
            format!("0::/system.slice/docker-{id}.scope\n")
        });
        std::fs::write(dir.join("cgroup"), cgroup).unwrap();
        symlink("/dev/null", dir.join("fd/0")).unwrap();
        for (i, inode) in sockets.iter().enumerate() {
            symlink(
                format!("socket:[{inode}]"),
                dir.join(format!("fd/{}", i + 3)),
            )
            .unwrap();
        }
    }

    /// Writes `tcp` of `pid` (an empty `udp`; no v6 tables, like IPv6 off).
    fn tcp(&self, pid: u32, rows: &[&str]) {
        let net = self.root.join(pid.to_string()).join("net");
        std::fs::write(net.join("tcp"), format!("header\n{}\n", rows.join("\n"))).unwrap();
        std::fs::write(net.join("udp"), "header\n").unwrap();
    }

    fn scanner(&self, include_host: bool) -> Scanner {
        let settings = NetworkConfig {
            proc_root: self.root.clone(),
            docker_root: self.root.join("docker"),
            include_host,
            ..NetworkConfig::default()
        }
        .validated()
        .unwrap();
        Scanner::new(settings)
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn write_docker_config(root: &Path, id: &str) {
    let dir = root.join("docker/containers").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.v2.json"),
        r#"{"Name":"/web","Config":{"Image":"nginx:1.27","Labels":{"io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.name":"web-0"}},"State":{}}"#,
    )
    .unwrap();
}

#[cfg(target_endian = "little")]
#[test]
fn own_namespace_sockets_go_to_the_container_once() {
    let fake = FakeProc::new("own");
    fake.process(1, 100, None, &[]);
    fake.tcp(1, &["0: 00000000:0016 00000000:0000 0A 0:0 0:0 0 0 0 10"]);
    fake.process(40, 200, Some(ID), &[]);
    fake.process(41, 200, Some(ID), &[]);
    write_docker_config(&fake.root, ID);
    // pid 40 has no tables (exiting): pid 41 of the same namespace answers.
    fake.tcp(
        41,
        &[
            "0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 20",
            "1: 0200110A:1F90 0100110A:D431 01 0:0 0:0 0 0 0 21",
            "2: 0200110A:B000 08080808:01BB 02 0:0 0:0 0 0 0 22",
            "3: 0200110A:B001 08080808:01BB 06 0:0 0:0 0 0 0 0",
        ],
    );
    std::fs::remove_file(fake.root.join("40/net/tcp")).ok();
    let mut scanner = fake.scanner(false);
    let poll = scanner.poll().unwrap();
    let got: Vec<_> = poll
        .events
        .iter()
        .map(|e| {
            (
                e.local_port,
                e.remote_port,
                e.direction,
                e.state.as_str(),
                e.host_network,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (8080, 0, Direction::Listen, "LISTEN", false),
            (8080, 54321, Direction::Inbound, "ESTABLISHED", false),
            (45056, 443, Direction::Outbound, "SYN_SENT", false),
            (45057, 443, Direction::Outbound, "TIME_WAIT", false),
        ]
    );
    let c = poll.events[0].container.as_ref().unwrap();
    assert_eq!(
        (
            c.id.as_str(),
            c.name.as_str(),
            c.image.as_str(),
            c.pod.as_str()
        ),
        (ID, "web", "nginx:1.27", "shop/web-0")
    );
    assert_eq!(poll.events[0].remote_address, "");
    assert_eq!(poll.events[2].remote_address, "8.8.8.8");
    // The host's listener on port 22 is not reported by default.
    assert!(poll.events.iter().all(|e| e.local_port != 22));
    // Nothing new: nothing reported.
    assert!(scanner.poll().unwrap().events.is_empty());
}

#[cfg(target_endian = "little")]
#[test]
fn host_network_sockets_go_by_file_descriptor() {
    let fake = FakeProc::new("hostnet");
    fake.process(1, 100, None, &[30]);
    fake.tcp(
        1,
        &[
            "0: 00000000:0016 00000000:0000 0A 0:0 0:0 0 0 0 30",
            "1: 0100007F:A000 0100007F:9C41 01 0:0 0:0 0 0 0 31",
            "2: 0100007F:9C41 0100007F:A000 01 0:0 0:0 0 0 0 32",
        ],
    );
    // A host-network container holding socket 31; the host holds 32.
    fake.process(50, 100, Some(ID2), &[31]);
    let poll = fake.scanner(false).poll().unwrap();
    assert_eq!(poll.events.len(), 1, "{:?}", poll.events);
    let e = &poll.events[0];
    assert_eq!(e.container.as_ref().unwrap().id, ID2);
    assert_eq!(e.container.as_ref().unwrap().name, "");
    assert!(e.host_network);
    assert_eq!((e.remote_port, e.direction), (40001, Direction::Outbound));

    let with_host = fake.scanner(true).poll().unwrap();
    assert_eq!(with_host.events.len(), 3);
    assert_eq!(
        with_host
            .events
            .iter()
            .filter(|e| e.container.is_none())
            .count(),
        2
    );
    let accepted = with_host
        .events
        .iter()
        .find(|e| e.local_port == 40001)
        .unwrap();
    assert!(!accepted.host_network);
}
