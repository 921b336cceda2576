//! Unit tests of the eBPF source's pure parts: record decoding, states,
//! the cgroup v2 mount and id → container mapping, counters, config. The
//! kernel side is tested through the binary (`host/tests/ebpf_live.rs`).

use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;

use super::cgroups::{Cgroups, Owner, cgroup2_mount};
use super::internal_events::EbpfKernelDrops;
use super::wire::{self, Record, WireError, counter};
use super::*;
use vigil_core::model::Protocol;

const ID: &str = "1dfc0f161815a4c8938505b212c43592e29181de229b5031047d7b539b4063fa";

/// A `struct connect_event` as the kernel writes it (96 bytes, padded).
fn record(family: u16, protocol: u16, remote: &[u8], local: &[u8], ret: i32) -> Vec<u8> {
    let mut b = vec![0u8; 96];
    b[0..4].copy_from_slice(&wire::EVENT_CONNECT.to_ne_bytes());
    b[4..8].copy_from_slice(&4242u32.to_ne_bytes());
    b[8..12].copy_from_slice(&4243u32.to_ne_bytes());
    b[12..16].copy_from_slice(&4026531833u32.to_ne_bytes());
    b[16..24].copy_from_slice(&77u64.to_ne_bytes());
    b[32..36].copy_from_slice(&ret.to_ne_bytes());
    b[36..38].copy_from_slice(&family.to_ne_bytes());
    b[38..40].copy_from_slice(&protocol.to_ne_bytes());
    b[40..42].copy_from_slice(&4444u16.to_ne_bytes());
    b[42..44].copy_from_slice(&50000u16.to_ne_bytes());
    b[44..44 + remote.len()].copy_from_slice(remote);
    b[60..60 + local.len()].copy_from_slice(local);
    b[76..79].copy_from_slice(b"nc\0");
    b
}

/// Decodes a record that must be a connect.
fn decode(bytes: &[u8]) -> Result<wire::Connect, WireError> {
    wire::decode(bytes).map(|r| match r {
        Record::Connect(c) => c,
        Record::Exec(x) => panic!("an exec: {x:?}"),
    })
}

/// A `struct exec_event` as the kernel writes it (568 bytes).
fn exec_record(binary: &str, args: &[u8], flags: u16) -> Vec<u8> {
    let mut b = vec![0u8; 568];
    b[0..4].copy_from_slice(&wire::EVENT_EXEC.to_ne_bytes());
    b[4..8].copy_from_slice(&4242u32.to_ne_bytes());
    b[8..12].copy_from_slice(&4200u32.to_ne_bytes());
    b[12..16].copy_from_slice(&1000u32.to_ne_bytes());
    b[16..24].copy_from_slice(&77u64.to_ne_bytes());
    b[32..34].copy_from_slice(&(args.len() as u16).to_ne_bytes());
    b[34..36].copy_from_slice(&flags.to_ne_bytes());
    b[36..40].copy_from_slice(&7u32.to_ne_bytes());
    b[40..44].copy_from_slice(b"runc");
    b[56..56 + binary.len()].copy_from_slice(binary.as_bytes());
    b[312..312 + args.len()].copy_from_slice(args);
    b
}

fn exec(bytes: &[u8]) -> Result<wire::Exec, WireError> {
    wire::decode(bytes).map(|r| match r {
        Record::Exec(x) => x,
        Record::Connect(c) => panic!("a connect: {c:?}"),
    })
}

#[test]
fn decodes_an_exec_with_its_arguments() {
    let x = exec(&exec_record("/bin/sh", b"sh\0-c\0sleep 1; id\0", 0)).unwrap();
    assert_eq!(x.pid, 4242);
    assert_eq!(x.namespace_pid, 7);
    assert_eq!(x.parent_pid, 4200);
    assert_eq!(x.uid, 1000);
    assert_eq!(x.cgroup_id, 77);
    assert_eq!(x.parent_name, "runc");
    assert_eq!(x.binary, "/bin/sh");
    assert_eq!(x.args, ["sh", "-c", "sleep 1; id"]);
    assert!(!x.args_truncated);
    // An empty argument stays an argument.
    let x = exec(&exec_record("/bin/true", b"true\0\0x\0", 0)).unwrap();
    assert_eq!(x.args, ["true", "", "x"]);
    // No argument block at all (argc 0).
    let x = exec(&exec_record("/bin/true", b"", 0)).unwrap();
    assert!(x.args.is_empty());
}

#[test]
fn exec_arguments_cut_by_the_kernel_are_marked() {
    // The kernel read 256 of more bytes: flagged, and the last argument
    // ends without its NUL.
    let mut long = b"curl\0".to_vec();
    long.resize(256, b'a');
    let x = exec(&exec_record("/usr/bin/curl", &long, 1)).unwrap();
    assert!(x.args_truncated);
    assert_eq!(x.args.len(), 2);
    assert_eq!(x.args[1].len(), 251);
    // Cut without the flag (a block that ends mid-argument): still marked.
    let x = exec(&exec_record("/bin/x", b"x\0ab", 0)).unwrap();
    assert!(x.args_truncated);
    assert_eq!(x.args, ["x", "ab"]);
}

#[test]
fn refuses_malformed_exec_records() {
    let full = exec_record("/bin/sh", b"sh\0", 0);
    assert!(matches!(
        wire::decode(&full[..567]),
        Err(WireError::Short { kind: 2, len: 567 })
    ));
    assert!(matches!(
        wire::decode(&full[..8]),
        Err(WireError::Short { kind: 2, .. })
    ));
    // A length past the buffer is refused, never read past it.
    let mut lying = full.clone();
    lying[32..34].copy_from_slice(&257u16.to_ne_bytes());
    assert_eq!(wire::decode(&lying), Err(WireError::ArgsLength(257)));
    // Strings without a NUL stop at their buffer; bad UTF-8 is replaced.
    let mut unterminated = full.clone();
    unterminated[56..312].fill(b'p');
    unterminated[40..56].fill(0xff);
    let x = exec(&unterminated).unwrap();
    assert_eq!(x.binary.len(), 256);
    assert!(
        x.parent_name
            .chars()
            .all(|c| c == char::REPLACEMENT_CHARACTER)
    );
}

#[test]
fn decodes_an_ipv4_tcp_connect() {
    let c = decode(&record(2, 6, &[127, 0, 0, 9], &[127, 0, 0, 1], 0)).unwrap();
    assert_eq!(c.pid, 4242);
    assert_eq!(c.tid, 4243);
    assert_eq!(c.netns, 4026531833);
    assert_eq!(c.cgroup_id, 77);
    assert_eq!(c.protocol, Protocol::Tcp);
    assert_eq!(c.remote, "127.0.0.9".parse::<IpAddr>().unwrap());
    assert_eq!(c.remote_port, 4444);
    assert_eq!(c.local, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(c.local_port, 50000);
    assert_eq!(c.comm, "nc");
}

#[test]
fn decodes_ipv6_and_maps_ipv4_mapped_addresses_to_ipv4() {
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let IpAddr::V6(raw) = v6 else { unreachable!() };
    let c = decode(&record(10, 17, &raw.octets(), &[0; 16], -111)).unwrap();
    assert_eq!(c.protocol, Protocol::Udp);
    assert_eq!(c.remote, v6);
    assert_eq!(c.ret, -111);
    let mapped: std::net::Ipv6Addr = "::ffff:10.1.2.3".parse().unwrap();
    let c = decode(&record(10, 6, &mapped.octets(), &[0; 16], 0)).unwrap();
    assert_eq!(c.remote, "10.1.2.3".parse::<IpAddr>().unwrap());
}

#[test]
fn refuses_short_unknown_and_foreign_records() {
    let full = record(2, 6, &[1, 2, 3, 4], &[0; 4], 0);
    assert!(matches!(
        decode(&full[..91]),
        Err(WireError::Short { len: 91, .. })
    ));
    assert!(matches!(decode(&[1, 0]), Err(WireError::Short { .. })));
    let mut other = full.clone();
    other[0..4].copy_from_slice(&9u32.to_ne_bytes());
    assert_eq!(decode(&other), Err(WireError::Kind(9)));
    assert!(matches!(
        decode(&record(2, 132, &[1, 2, 3, 4], &[0; 4], 0)),
        Err(WireError::Family { protocol: 132, .. })
    ));
    assert!(matches!(
        decode(&record(1, 6, &[1, 2, 3, 4], &[0; 4], 0)),
        Err(WireError::Family { family: 1, .. })
    ));
}

#[test]
fn states_name_the_result() {
    assert_eq!(wire::state(0), "connected");
    assert_eq!(wire::state(-115), "in-progress");
    assert_eq!(wire::state(-111), "failed: ECONNREFUSED");
    assert!(wire::state(-1234).starts_with("failed: "));
}

#[test]
fn finds_the_cgroup2_mount_hybrid_and_pure() {
    let hybrid = "\
25 1 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory";
    assert_eq!(
        cgroup2_mount(hybrid).unwrap(),
        std::path::Path::new("/sys/fs/cgroup/unified")
    );
    let pure = "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate";
    assert_eq!(
        cgroup2_mount(pure).unwrap(),
        std::path::Path::new("/sys/fs/cgroup")
    );
    let escaped = r"30 1 0:26 / /mnt/c\040g rw - cgroup2 none rw";
    assert_eq!(
        cgroup2_mount(escaped).unwrap(),
        std::path::Path::new("/mnt/c g")
    );
    let v1_only = "27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
    assert_eq!(cgroup2_mount(v1_only), None);
}

#[test]
fn maps_cgroup_ids_to_containers_host_and_unknown() {
    let root = std::env::temp_dir().join(format!("vigil-ebpf-cg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let docker = root.join("docker").join(ID);
    let systemd = root
        .join("system.slice")
        .join(format!("docker-{}.scope", ID.replace('1', "2")));
    let host = root.join("user.slice");
    for d in [&docker, &systemd, &host] {
        std::fs::create_dir_all(d).unwrap();
    }
    let ino = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
    let mut cgroups = Cgroups::new(root.clone(), 16);
    assert_eq!(cgroups.owner(ino(&docker)), Owner::Container(ID.into()));
    assert_eq!(
        cgroups.owner(ino(&systemd)),
        Owner::Container(ID.replace('1', "2"))
    );
    assert_eq!(cgroups.owner(ino(&host)), Owner::Host);
    assert_eq!(cgroups.owner(ino(&root)), Owner::Host);
    assert_eq!(cgroups.scans, 1, "known ids are answered from the cache");
    // A container started after the last walk is found by walking again.
    let later = root.join("docker").join(ID.replace('1', "3"));
    std::fs::create_dir_all(&later).unwrap();
    assert_eq!(
        cgroups.owner(ino(&later)),
        Owner::Container(ID.replace('1', "3"))
    );
    assert_eq!(cgroups.scans, 2);
    // An id that is nowhere is unknown, and remembered as such.
    assert_eq!(cgroups.owner(u64::MAX), Owner::Unknown);
    assert_eq!(cgroups.owner(u64::MAX), Owner::Unknown);
    assert_eq!(cgroups.scans, 3);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn kernel_drops_are_differences_of_counters() {
    let mut before = [0u64; counter::COUNT as usize];
    let mut now = before;
    now[counter::SUBMITTED as usize] = 10;
    now[counter::RING_FULL as usize] = 3;
    now[counter::PENDING_FULL as usize] = 2;
    assert_eq!(
        EbpfKernelDrops::since(&before, &now),
        EbpfKernelDrops {
            ring_full: 3,
            pending_full: 2,
            read_failed: 0
        }
    );
    before = now;
    assert_eq!(
        EbpfKernelDrops::since(&before, &now),
        EbpfKernelDrops::default()
    );
    let m = vigil_core::metrics::SourceMetrics::new("ebpf");
    EbpfKernelDrops {
        ring_full: 3,
        pending_full: 2,
        read_failed: 1,
    }
    .emit(&m);
    use vigil_core::metrics::PluginMetrics;
    assert_eq!(PluginMetrics::get(&m.counters.gaps), 3);
    assert_eq!(PluginMetrics::get(&m.counters.overflow), 2);
    assert_eq!(PluginMetrics::get(&m.counters.rejected), 1);
}

#[test]
fn config_reports_every_problem() {
    let bad = EbpfConfig {
        enabled: true,
        ring_buffer_bytes: 100_000,
        max_pending_connects: 0,
        max_cached_containers: 0,
        proc_root: "proc".into(),
        docker_root: "docker".into(),
        crio_runroot: "storage".into(),
        ..EbpfConfig::default()
    };
    let err = bad.validated().unwrap_err().to_string();
    for field in [
        "ebpf.ring_buffer_bytes",
        "ebpf.max_pending_connects",
        "ebpf.max_cached_containers",
        "ebpf.proc_root",
        "ebpf.docker_root",
        "ebpf.crio_runroot",
    ] {
        assert!(err.contains(field), "{field} missing from {err}");
    }
    let good = EbpfConfig::default().validated().unwrap();
    assert_eq!(good.ring_buffer_bytes, 1 << 22);
}
