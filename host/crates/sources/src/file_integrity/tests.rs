use crate::Source as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::baseline::Baseline;
use super::monitor::{Monitor, classify};
use super::spec::{self, PathSpec, SpecKind};
use super::{FileIntegrityConfig, scan};
use vigil_core::model::{EventBody, FileChange, FileEvent, FileState};

/// A temporary directory removed when dropped.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("vigil-fim-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn key(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A host-like tree under `root`, watched with the built-in list.
fn fixture(root: &TempRoot) -> Monitor {
    root.write("etc/docker/daemon.json", "{}");
    root.write("usr/bin/runc", "runc-v1");
    root.write("usr/bin/containerd-shim-runc-v2", "shim");
    root.write("usr/bin/ls", "not watched");
    root.write("etc/cni/net.d/10-bridge.conf", "bridge");
    let specs = FileIntegrityConfig {
        root: root.0.clone(),
        ..FileIntegrityConfig::default()
    }
    .validated()
    .unwrap()
    .specs;
    Monitor::new(specs, Baseline::in_memory().unwrap())
}

/// Rescans everything, commits, and returns the events.
fn step(m: &mut Monitor) -> Vec<FileEvent> {
    let diff = m.rescan(&m.all());
    assert!(diff.unreadable.is_empty(), "{:?}", diff.unreadable);
    m.commit(&diff).unwrap();
    diff.events
}

fn only(events: Vec<FileEvent>) -> FileEvent {
    assert_eq!(events.len(), 1, "expected exactly one event: {events:#?}");
    events.into_iter().next().unwrap()
}

#[test]
fn first_start_records_silently() {
    let root = TempRoot::new("first");
    let mut m = fixture(&root);
    let (recorded, diff) = m.startup().unwrap();
    // daemon.json, runc, the shim, net.d itself and its one file.
    assert_eq!(recorded, 5);
    assert!(diff.events.is_empty());
    assert!(step(&mut m).is_empty(), "nothing changed");
}

#[test]
fn each_change_is_exactly_one_event_with_both_states() {
    let root = TempRoot::new("changes");
    let mut m = fixture(&root);
    m.startup().unwrap();

    // Content modified in place.
    let daemon = root.write("etc/docker/daemon.json", r#"{"userns-remap":""}"#);
    let e = only(step(&mut m));
    assert_eq!(
        (e.path.as_str(), e.change),
        (key(&daemon).as_str(), FileChange::Modified)
    );
    assert_eq!(e.before.unwrap().sha256, sha("{}"));
    assert_eq!(e.after.unwrap().sha256, sha(r#"{"userns-remap":""}"#));
    assert!(step(&mut m).is_empty(), "no duplicate");

    // Replaced by rename: one modification, not a deletion and a creation.
    let runc = root.path("usr/bin/runc");
    let tmp = root.write("usr/bin/.runc.tmp", "runc-evil");
    std::fs::rename(&tmp, &runc).unwrap();
    let e = only(step(&mut m));
    assert_eq!(
        (e.path.as_str(), e.change),
        (key(&runc).as_str(), FileChange::Modified)
    );
    assert_eq!(e.before.unwrap().sha256, sha("runc-v1"));
    assert_eq!(e.after.unwrap().sha256, sha("runc-evil"));

    // chmod only: metadata, same hash.
    std::fs::set_permissions(&runc, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let e = only(step(&mut m));
    assert_eq!(e.change, FileChange::Metadata);
    let (before, after) = (e.before.unwrap(), e.after.unwrap());
    assert_eq!(before.sha256, after.sha256);
    assert_eq!(after.mode & 0o7777, 0o4755);

    // mtime only (touch, same bytes): recorded, not reported.
    let f = std::fs::File::options().write(true).open(&runc).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    drop(f);
    let diff = m.rescan(&m.all());
    assert!(diff.events.is_empty(), "{:?}", diff.events);
    assert_eq!(diff.updates.len(), 1, "the new mtime is recorded silently");
    m.commit(&diff).unwrap();

    // Deleted.
    std::fs::remove_file(&daemon).unwrap();
    let e = only(step(&mut m));
    assert_eq!(e.change, FileChange::Deleted);
    assert_eq!(e.before.unwrap().sha256, sha(r#"{"userns-remap":""}"#));
    assert!(e.after.is_none());

    // Created: in a watched directory and matching a glob; an unwatched file is ignored.
    root.write("usr/bin/ls", "changed but not watched");
    let shim = root.write("usr/bin/containerd-shim-evil", "x");
    let e = only(step(&mut m));
    assert_eq!(
        (e.path.as_str(), e.change),
        (key(&shim).as_str(), FileChange::Created)
    );
    assert!(e.before.is_none());
    assert_eq!(e.after.unwrap().sha256, sha("x"));
    let conf = root.write("etc/cni/net.d/00-evil.conflist", "{}");
    let e = only(step(&mut m));
    assert_eq!(
        (e.path.as_str(), e.change),
        (key(&conf).as_str(), FileChange::Created)
    );
    assert!(step(&mut m).is_empty());
}

#[test]
fn missing_directory_created_later_is_reported() {
    let root = TempRoot::new("later");
    let mut m = fixture(&root);
    m.startup().unwrap();
    let manifest = root.write("etc/kubernetes/manifests/evil.yaml", "kind: Pod");
    let events = step(&mut m);
    let mut got: Vec<(String, FileChange)> =
        events.into_iter().map(|e| (e.path, e.change)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let dir = root.path("etc/kubernetes/manifests");
    assert_eq!(
        got,
        vec![
            (key(&dir), FileChange::Created),
            (key(&manifest), FileChange::Created)
        ]
    );
}

#[test]
fn change_while_down_is_reported_at_start() {
    let root = TempRoot::new("restart");
    let db = root.path("fim.sqlite");
    let specs = {
        let m = fixture(&root);
        m.specs().to_vec()
    };
    {
        let mut m = Monitor::new(specs.clone(), Baseline::open(&db).unwrap());
        let (recorded, diff) = m.startup().unwrap();
        assert_eq!((recorded, diff.events.len()), (5, 0));
    }
    let daemon = root.write("etc/docker/daemon.json", r#"{"icc":true}"#);
    let mut m = Monitor::new(specs.clone(), Baseline::open(&db).unwrap());
    let (recorded, diff) = m.startup().unwrap();
    assert_eq!(recorded, 0);
    let e = only(diff.events.clone());
    assert_eq!((e.path, e.change), (key(&daemon), FileChange::Modified));
    m.commit(&diff).unwrap();
    drop(m);
    // Committed: the next start is quiet.
    let mut m = Monitor::new(specs, Baseline::open(&db).unwrap());
    assert!(m.startup().unwrap().1.events.is_empty());
}

#[test]
fn newly_configured_path_is_recorded_silently_and_stale_rows_dropped() {
    let root = TempRoot::new("newspec");
    let db = root.path("fim.sqlite");
    let extra = root.write("opt/extra.conf", "a");
    let one = vec![PathSpec::parse(&key(&root.path("usr/bin/runc"))).unwrap()];
    root.write("usr/bin/runc", "runc");
    Monitor::new(one, Baseline::open(&db).unwrap())
        .startup()
        .unwrap();
    let two = vec![PathSpec::parse(&key(&extra)).unwrap()];
    let mut m = Monitor::new(two, Baseline::open(&db).unwrap());
    let (recorded, diff) = m.startup().unwrap();
    assert_eq!(recorded, 1);
    assert!(diff.events.is_empty());
    assert_eq!(m.baseline().paths().collect::<Vec<_>>(), vec![key(&extra)]);
}

#[test]
fn fifo_is_not_opened() {
    let root = TempRoot::new("fifo");
    let fifo = root.path("fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: no mkfifo");
        return;
    }
    let state = scan::read_state(&fifo).unwrap().unwrap();
    assert!(state.sha256.is_empty());
}

#[test]
fn unreadable_file_is_counted_not_reported() {
    use std::os::unix::fs::MetadataExt;
    // Root reads everything; the owner of /proc/self is our effective uid.
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
        == 0
    {
        eprintln!("SKIPPED: running as root");
        return;
    }
    let root = TempRoot::new("unreadable");
    let mut m = fixture(&root);
    m.startup().unwrap();
    let runc = root.path("usr/bin/runc");
    std::fs::set_permissions(&runc, std::fs::Permissions::from_mode(0o000)).unwrap();
    let diff = m.rescan(&m.all());
    assert!(diff.events.is_empty());
    assert_eq!(diff.unreadable.len(), 1);
}

#[test]
fn classify_rules() {
    let a = FileState {
        sha256: "aa".into(),
        size: 1,
        mode: 0o100_644,
        ..FileState::default()
    };
    let mtime = FileState {
        mtime: 9,
        ..a.clone()
    };
    let chown = FileState {
        uid: 1,
        ..a.clone()
    };
    let content = FileState {
        sha256: "bb".into(),
        uid: 1,
        ..a.clone()
    };
    assert_eq!(classify(Some(&a), Some(&mtime)), None);
    assert_eq!(classify(Some(&a), Some(&chown)), Some(FileChange::Metadata));
    assert_eq!(
        classify(Some(&a), Some(&content)),
        Some(FileChange::Modified)
    );
    assert_eq!(classify(None, Some(&a)), Some(FileChange::Created));
    assert_eq!(classify(Some(&a), None), Some(FileChange::Deleted));
}

#[test]
fn specs_parse_and_match() {
    let f = PathSpec::parse("/etc/docker/daemon.json").unwrap();
    assert_eq!(f.kind, SpecKind::File);
    assert!(
        f.affected_by(Path::new("/etc/docker")),
        "directory on the way"
    );
    assert!(!f.selects(Path::new("/etc/docker/other.json")));
    let d = PathSpec::parse("/etc/cni/net.d/").unwrap();
    assert_eq!(d.kind, SpecKind::Dir);
    assert!(d.selects(Path::new("/etc/cni/net.d/10.conf")));
    assert!(
        !d.selects(Path::new("/etc/cni/net.d/sub/10.conf")),
        "not recursive"
    );
    let g = PathSpec::parse("/usr/bin/containerd-shim*").unwrap();
    assert!(g.selects(Path::new("/usr/bin/containerd-shim-runc-v2")));
    assert!(!g.selects(Path::new("/usr/bin/containerd")));
    for bad in ["relative", "/a/../b", "/a*/b", "/", "/a/b*/"] {
        assert!(PathSpec::parse(bad).is_err(), "{bad}");
    }
    assert!(
        spec::defaults(Path::new("/r"))
            .iter()
            .any(|p| p == "/r/usr/bin/runc")
    );
}

#[test]
fn config_reports_every_problem() {
    let err = FileIntegrityConfig {
        root: "rel".into(),
        paths: vec!["x".into(), "/ok".into(), "/a/../b".into()],
        rehash_interval_secs: 0,
        debounce_ms: 1,
        max_delay_ms: 0,
        ..FileIntegrityConfig::default()
    }
    .validated()
    .unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "file_integrity.root",
            "file_integrity.paths[0]",
            "file_integrity.paths[2]",
            "file_integrity.rehash_interval_secs",
            "file_integrity.debounce_ms",
            "file_integrity.max_delay_ms",
        ]
    );
    let json = r#"{"paths": ["/a"], "bogus": 1}"#;
    assert!(serde_json::from_str::<FileIntegrityConfig>(json).is_err());
}

/// Through inotify and the thread: a burst of writes, a rename over and a
/// chmod each arrive as exactly one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_watch_sends_one_event_per_change() {
    let root = TempRoot::new("live");
    root.write("etc/docker/daemon.json", "{}");
    let settings = FileIntegrityConfig {
        root: root.0.clone(),
        rehash_interval_secs: 3600,
        baseline: root.path("fim.sqlite"),
        ..FileIntegrityConfig::default()
    }
    .validated()
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(vigil_core::metrics::SourceMetrics::new(super::SOURCE));
    let ctx = crate::SourceContext::new("n".into(), tx, metrics, stop_rx);
    let thread = super::start(settings, ctx).unwrap();
    // Let the startup scan finish and the watches be placed.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut next = async |what: &str| -> Vec<FileEvent> {
        let mut got = Vec::new();
        // Collect everything until a quiet second.
        while let Ok(Some(batch)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            for e in batch.into_events() {
                assert_eq!(e.source, "file-integrity");
                let EventBody::File(f) = e.body else {
                    panic!("{what}: not a file event")
                };
                got.push(f);
            }
        }
        got
    };

    let daemon = root.path("etc/docker/daemon.json");
    for i in 0..5 {
        std::fs::write(&daemon, format!("{{\"n\":{i}}}")).unwrap();
    }
    let e = only(next("burst").await);
    assert_eq!(
        (e.change, e.after.unwrap().sha256),
        (FileChange::Modified, sha("{\"n\":4}"))
    );

    let tmp = root.write("etc/docker/.daemon.json.new", "{\"replaced\":1}");
    std::fs::rename(&tmp, &daemon).unwrap();
    let e = only(next("rename").await);
    assert_eq!(e.change, FileChange::Modified);

    std::fs::set_permissions(&daemon, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(only(next("chmod").await).change, FileChange::Metadata);

    // A directory that did not exist at start.
    let unit = root.write(
        "etc/systemd/system/docker.service.d/override.conf",
        "[Service]",
    );
    let got = next("drop-in").await;
    assert!(
        got.iter()
            .any(|e| e.path == key(&unit) && e.change == FileChange::Created),
        "{got:#?}"
    );

    stop_tx.send(true).unwrap();
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap()
        .unwrap();
}
