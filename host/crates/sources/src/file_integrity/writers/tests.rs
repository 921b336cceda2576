use std::path::Path;
use std::time::{Duration, Instant};

use super::procfs::{
    MAX_ARGS_BYTES, StatusFields, WriterError, cmdline, read_writer, status_fields,
};
use super::{Marks, Recent, drain, group};
use crate::file_integrity::spec::PathSpec;
use vigil_core::metrics::{PluginMetrics, SourceMetrics};
use vigil_test_support::TempDir;

#[test]
fn status_gives_parent_real_uid_and_innermost_pid() {
    let status = "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\n\
                  Pid:\t4242\nPPid:\t4200\nTracerPid:\t0\nUid:\t1000\t0\t0\t0\n\
                  Gid:\t0\t0\t0\t0\nNSpid:\t4242\t17\n";
    assert_eq!(
        status_fields(status),
        StatusFields {
            parent_pid: 4200,
            uid: 1000,
            namespace_pid: Some(17),
        }
    );
    // A host process: one NSpid field; an old kernel: none; garbage: defaults.
    assert_eq!(
        status_fields("PPid:\t1\nUid:\t0\t0\t0\t0\nNSpid:\t99\n").namespace_pid,
        Some(99)
    );
    assert_eq!(status_fields("PPid:\t1\n").namespace_pid, None);
    assert_eq!(
        status_fields("PPid: x\nUid:\nNSpid:\n"),
        StatusFields::default()
    );
}

#[test]
fn cmdline_is_split_on_nul_and_cut() {
    assert_eq!(
        cmdline(b"sh\0-c\0echo x >> /w/runc\0"),
        (
            vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "echo x >> /w/runc".to_owned()
            ],
            false
        )
    );
    assert_eq!(cmdline(b""), (Vec::new(), false));
    // Without the trailing NUL (a process that rewrote its argv).
    assert_eq!(
        cmdline(b"a\0b"),
        (vec!["a".to_owned(), "b".to_owned()], false)
    );
    let long = vec![b'x'; MAX_ARGS_BYTES + 10];
    let (args, cut) = cmdline(&long);
    assert!(cut);
    assert_eq!(args[0].len(), MAX_ARGS_BYTES);
    // Not UTF-8: replaced, not refused.
    assert_eq!(cmdline(b"\xff\0").0, vec!["\u{fffd}".to_owned()]);
}

#[test]
fn a_writer_is_read_from_a_proc_tree_and_a_gone_one_is_an_error() {
    let t = TempDir::new("fim-writers-proc");
    let proc_root = t.to_path_buf();
    let dir = proc_root.join("4242");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(proc_root.join("4200")).unwrap();
    let id = "a".repeat(64);
    std::fs::write(
        dir.join("cgroup"),
        format!("0::/system.slice/docker-{id}.scope\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("status"),
        "PPid:\t4200\nUid:\t0\t0\t0\t0\nNSpid:\t4242\t1\n",
    )
    .unwrap();
    std::fs::write(dir.join("cmdline"), b"sh\0-c\0echo\0").unwrap();
    std::os::unix::fs::symlink("/bin/busybox", dir.join("exe")).unwrap();
    std::fs::write(proc_root.join("4200/comm"), "containerd-shim\n").unwrap();

    let w = read_writer(&proc_root, 4242).unwrap();
    assert_eq!(w.pid, 4242);
    assert_eq!(w.namespace_pid, 1);
    assert_eq!(w.parent_pid, 4200);
    assert_eq!(w.parent_name, "containerd-shim");
    assert_eq!(w.binary, "/bin/busybox");
    assert_eq!(w.args, ["sh", "-c", "echo"]);
    assert_eq!(
        crate::network::attribution::container_id(&w.cgroup),
        Some(id.as_str())
    );

    // Exited and reaped: no cgroup file.
    assert!(matches!(
        read_writer(&proc_root, 7),
        Err(WriterError::Gone { .. })
    ));
    assert!(matches!(
        read_writer(&proc_root, 0),
        Err(WriterError::NoPid(0))
    ));
    assert!(matches!(
        read_writer(&proc_root, -1),
        Err(WriterError::NoPid(-1))
    ));
}

#[test]
fn a_burst_of_one_writer_is_one_write_per_window() {
    let mut recent = Recent::new(Duration::from_secs(2));
    let now = Instant::now();
    let runc = Path::new("/usr/bin/runc");
    assert!(recent.first_at(runc, 10, now));
    assert!(!recent.first_at(runc, 10, now + Duration::from_millis(500)));
    assert!(recent.first_at(runc, 11, now), "another writer");
    assert!(
        recent.first_at(Path::new("/usr/bin/dockerd"), 10, now),
        "another file"
    );
    assert!(
        recent.first_at(runc, 10, now + Duration::from_secs(3)),
        "window over"
    );
}

/// The real kernel: a write by this very process to a watched file is
/// reported with this process's pid; a write to an unwatched sibling in the
/// same directory is not. Needs CAP_SYS_ADMIN; skipped (with a message)
/// without it.
#[test]
fn fanotify_names_this_process_as_the_writer_of_a_watched_file() {
    let group = match group() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipped: {}", vigil_core::error::chain(&e));
            return;
        }
    };
    let t = TempDir::new("fim-writers-live");
    let watched = t.join("runc");
    let other = t.join("other");
    std::fs::write(&watched, "v1").unwrap();
    std::fs::write(&other, "v1").unwrap();
    let spec = PathSpec::parse(watched.to_str().unwrap()).unwrap();
    let mut marks = Marks::new(group, vec![spec]);
    marks.arm();
    assert_eq!(marks.marked.len(), 1, "{:?}", marks.marked);

    std::fs::write(&other, "v2").unwrap();
    std::fs::write(&watched, "v2").unwrap();
    let metrics = SourceMetrics::new("file-integrity");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        got = drain(&mut marks, &metrics);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!got.is_empty(), "no write reported");
    for raw in &got {
        assert_eq!(raw.path, watched);
        assert_eq!(raw.pid, i32::try_from(std::process::id()).unwrap());
    }
    assert_eq!(PluginMetrics::get(&metrics.counters.gaps), 0);
    let w = read_writer(Path::new("/proc"), got[0].pid).unwrap();
    assert_eq!(
        w.binary,
        std::env::current_exe().unwrap().to_string_lossy(),
        "this test binary"
    );
}
