//! The tests' inputs: the recorded Kubernetes audit events of Falco
//! (`tests/data/k8s-audit/falco-0.34.1`), the TLS test certificate, files
//! written the way their real writers do (appended, replaced by rename),
//! kubeconfigs for loopback API servers, and the hostile plugins built from
//! source (`tests/plugins/`, never committed as `.wasm`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// A `vigil run` config fragment that turns off the sources a test does
/// not drive (Docker, network, file integrity, the Kubernetes watch), so
/// only its own input reaches the plugins. Ends with a newline.
pub const QUIET_SOURCES: &str = "[sources.docker]
enabled = false
[sources.network]
enabled = false
[sources.file_integrity]
enabled = false
[sources.k8s_watch]
mode = \"off\"
";

/// The repository's root.
pub fn root() -> PathBuf {
    // This crate is `host/crates/test-support`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(3)
        .expect("the repository root above host/crates/test-support")
        .to_owned()
}

/// The directory of Falco's recorded audit events.
pub fn falco_dir() -> PathBuf {
    root().join("tests/data/k8s-audit/falco-0.34.1")
}

/// One of Falco's recorded audit events (a file name of [`falco_dir`]).
pub fn falco(name: &str) -> PathBuf {
    falco_dir().join(name)
}

/// The recorded audit event `name`, parsed.
pub fn falco_event(name: &str) -> Value {
    let path = falco(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `event` as one audit log line (newline included) with its own `auditID`,
/// so each line is a distinct event with its own findings.
pub fn audit_line(event: &Value, audit_id: &str) -> String {
    let mut event = event.clone();
    event["auditID"] = Value::String(audit_id.to_owned());
    format!("{event}\n")
}

/// A file of the TLS fixture (`host/tests/data/k8s-audit-tls`: `ca.pem`,
/// `cert.pem` for `localhost`, `key.pem`).
pub fn tls(name: &str) -> PathBuf {
    root().join("host/tests/data/k8s-audit-tls").join(name)
}

/// Appends `text` to `path` (created if missing), as a log writer does.
pub fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("cannot append to {}: {e}", path.display()));
}

/// Replaces `path` atomically, as editors, ConfigMap volumes and feed
/// downloaders do (a new file renamed over it): a reader never sees half.
pub fn replace(path: &Path, text: &str) {
    let next = path.with_extension("tmp");
    std::fs::write(&next, text)
        .and_then(|()| std::fs::rename(&next, path))
        .unwrap_or_else(|e| panic!("cannot replace {}: {e}", path.display()));
}

/// `DIR/kubeconfig`: a cluster at `http://127.0.0.1:PORT` with a token
/// user, for a loopback API server of the test (through `$KUBECONFIG`).
pub fn kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: loopback\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: loopback\n  context:\n    cluster: loopback\n    user: tester\ncurrent-context: loopback\nusers:\n- name: tester\n  user:\n    token: test-token\n"
        ),
    )
    .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Debian's `nats-server` (the fleet and NATS output tests run a real one),
/// installed by `scripts/test-deps.sh` when missing.
pub fn nats_server_binary() -> PathBuf {
    let find = || {
        [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return p;
    }
    let ok = Command::new("bash")
        .arg(root().join("scripts/test-deps.sh"))
        .status()
        .expect("run scripts/test-deps.sh")
        .success();
    assert!(ok, "scripts/test-deps.sh failed");
    find().expect("nats-server not installed by scripts/test-deps.sh")
}

/// Builds the hostile plugins in `tests/plugins/` (once per test binary)
/// and returns the directory holding their `.wasm` files.
pub fn hostile_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = root();
        let target = root.join("target/wasm");
        let status = Command::new("bash")
            .arg(root.join("scripts/wasm-cargo.sh"))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--manifest-path",
            ])
            .arg(root.join("tests/plugins/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("run scripts/wasm-cargo.sh");
        assert!(status.success(), "building the hostile plugins failed");
        target.join("wasm32-unknown-unknown/release")
    })
}

/// The built hostile plugin `name` (Cargo writes `hostile-loop` as
/// `hostile_loop.wasm`).
pub fn hostile_plugin(name: &str) -> PathBuf {
    hostile_dir().join(format!("{}.wasm", name.replace('-', "_")))
}

/// The component of built-in plugin `name` (`container-escape`) as the
/// host's build made it from `plugins/` (`vigil-runtime`'s build script,
/// into `target/wasm`, or `$VIGIL_WASM_TARGET_DIR`): the same bytes the
/// binary embeds, built from source, never a committed file.
pub fn builtin_build(name: &str) -> PathBuf {
    let target = std::env::var_os("VIGIL_WASM_TARGET_DIR")
        .map_or_else(|| root().join("target/wasm"), PathBuf::from);
    let path = target
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "{} missing: the host's build makes it (cargo build -p vigil)",
        path.display()
    );
    path
}

/// A fresh directory holding only the named hostile plugin, under its
/// plugin name (`hostile-loop.wasm`): in a plugin directory, a plugin's
/// name is its file name.
pub fn plugin_dir_with(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(hostile_plugin(name), dir.join(format!("{name}.wasm"))).expect("copy plugin");
    dir
}

/// The lines of Falco's recorded audit events, file by file in name order,
/// less the malformed one (`fal_01_003.json`): the real stream that
/// `scripts/bench-replay.sh` cycles to 200,000 events.
pub fn falco_lines() -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(falco_dir())
        .expect("the Falco fixtures")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| !p.ends_with("fal_01_003.json"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}
