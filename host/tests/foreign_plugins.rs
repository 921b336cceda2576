//! Plugins in other languages, through the real binary: the Python plugin
//! `plugins/python/untrusted-registry`, the C plugin `plugins/c/shell-exec`
//! (both built by `scripts/foreign-plugins.sh`, which also installs their
//! toolchains), and `vigil plugin new` for Rust, Python and C.
//!
//! One test binary for all of them, because Cranelift takes ~9 s (more on a
//! busy machine) to compile a Python component: the project's own plugins are
//! compiled once into a compile cache shared by every test here and kept
//! across runs (`target/foreign-cache`, pruned to the current builds; safe:
//! entries are keyed by the component's SHA-256 and the engine's hash).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use common::vigil;
use vigil_test_support::fixtures::{falco, falco_dir, root};
use vigil_test_support::output::{rules, stdout_lines};
use vigil_test_support::{TempDir, VigilProcess};

const PYTHON: &str = "untrusted-registry";
const C: &str = "shell-exec";

struct Built {
    /// `target/wasm/foreign`: NAME.wasm for each plugin.
    dir: PathBuf,
    /// `XDG_CACHE_HOME` for vigil, warmed with both plugins.
    cache_home: PathBuf,
    /// The tool variables of `scripts/foreign-plugins.sh env`.
    tools: Vec<(String, String)>,
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds both plugins (once per test binary; a no-op when they are up to
/// date) and compiles them into the shared cache before any test uses it,
/// so that parallel tests never compile the Python component twice.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = root().join("scripts/foreign-plugins.sh");
        run(
            "scripts/foreign-plugins.sh build",
            Command::new("bash")
                .arg(&script)
                .arg("build")
                .env_remove("CARGO_TARGET_DIR"),
        );
        let env = run(
            "scripts/foreign-plugins.sh env",
            Command::new("bash").arg(&script).arg("env"),
        );
        let tools = String::from_utf8_lossy(&env.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let dir = root().join("target/wasm/foreign");
        let cache_home = root().join("target/foreign-cache");
        let mut digests = Vec::new();
        for name in [PYTHON, C] {
            let out = run(
                "vigil plugin inspect",
                vigil()
                    .env("XDG_CACHE_HOME", &cache_home)
                    .args(["plugin", "inspect"])
                    .arg(dir.join(format!("{name}.wasm"))),
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            digests.push(v["sha256"].as_str().unwrap().to_owned());
        }
        // Keep only the current builds' artifacts (a Python one is ~35 MB).
        let cache = cache_home.join("vigil/plugins");
        for entry in std::fs::read_dir(&cache).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !digests.iter().any(|d| name.starts_with(d.as_str())) {
                let _ = std::fs::remove_file(&path);
            }
        }
        Built {
            dir,
            cache_home,
            tools,
        }
    })
}

fn wasm(name: &str) -> PathBuf {
    built().dir.join(format!("{name}.wasm"))
}

fn plugin_dir(name: &str) -> PathBuf {
    let lang = if name == PYTHON { "python" } else { "c" };
    root().join("plugins").join(lang).join(name)
}

fn cached_vigil() -> Command {
    let mut c = vigil();
    c.env("XDG_CACHE_HOME", &built().cache_home);
    c
}

/// `vigil plugin test NAME.wasm --events … [--settings …] --expect …` must pass.
fn plugin_test(name: &str, events: &Path, settings: Option<&Path>, expect: &Path) -> String {
    let mut cmd = cached_vigil();
    cmd.args(["plugin", "test"])
        .arg(wasm(name))
        .arg("--events")
        .arg(events)
        .arg("--expect")
        .arg(expect);
    if let Some(s) = settings {
        cmd.arg("--settings").arg(s);
    }
    let out = run(&format!("vigil plugin test {name}"), &mut cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fixtures(name: &str) {
    let tests = plugin_dir(name).join("tests");
    let stdout = plugin_test(
        name,
        &tests.join("events.jsonl"),
        None,
        &tests.join("expected.jsonl"),
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
    let stdout = plugin_test(
        name,
        &tests.join("events.jsonl"),
        Some(&tests.join("settings.json")),
        &tests.join("expected-with-settings.jsonl"),
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
    let dir = TempDir::new(&format!("foreign-{name}-empty"));
    let empty = dir.join("none.jsonl");
    std::fs::write(&empty, "").unwrap();
    let stdout = plugin_test(name, &tests.join("benign.jsonl"), None, &empty);
    assert_eq!(stdout.trim(), "ok: 0 findings as expected");
}

#[test]
fn python_plugin_passes_its_fixtures() {
    fixtures(PYTHON);
}

#[test]
fn c_plugin_passes_its_fixtures() {
    fixtures(C);
}

#[test]
fn native_tests_of_the_plugins_logic() {
    run(
        "python3 -m unittest (untrusted-registry)",
        Command::new("python3")
            .args(["-m", "unittest", "discover", "-s", "tests"])
            .current_dir(plugin_dir(PYTHON))
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
    run(
        "plugins/c/shell-exec/build.sh --test",
        Command::new("bash")
            .arg(plugin_dir(C).join("build.sh"))
            .arg("--test"),
    );
}

#[test]
fn inspect_shows_only_vigil_imports() {
    for name in [PYTHON, C] {
        let out = run(
            "vigil plugin inspect",
            cached_vigil().args(["plugin", "inspect"]).arg(wasm(name)),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["describe"]["name"], name);
        assert_eq!(v["forbidden_imports"], serde_json::json!([]), "{name}: {v}");
        let imports = v["imports"].as_array().unwrap();
        assert!(
            imports
                .iter()
                .all(|i| i.as_str().unwrap().starts_with("vigil:detector/")),
            "{name} imports only the world: {imports:?}"
        );
        assert_eq!(v["from_cache"], true, "{name} was compiled once, up front");
    }
}

#[test]
fn replay_loads_both_from_a_plugin_dir() {
    let dir = TempDir::new("foreign-plugin-dir");
    for name in [PYTHON, C] {
        std::fs::copy(wasm(name), dir.join(format!("{name}.wasm"))).unwrap();
    }
    let out = cached_vigil()
        .arg("replay")
        .arg("--plugin-dir")
        .arg(&dir)
        .arg("--plugin-settings")
        .arg(format!(
            "{PYTHON}={}",
            plugin_dir(PYTHON).join("tests/settings.json").display()
        ))
        .arg(plugin_dir(PYTHON).join("tests/events.jsonl"))
        .arg(plugin_dir(C).join("tests/events.jsonl"))
        .arg(falco("exec_pod.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = stdout_lines(&out);
    let count = |plugin: &str| findings.iter().filter(|f| f["plugin"] == plugin).count();
    // The Python plugin with its settings file; the C one with its defaults.
    assert_eq!(count(PYTHON), 5, "{findings:#?}");
    assert_eq!(
        count(C),
        6,
        "five fixtures and the Falco exec: {findings:#?}"
    );
    assert!(
        findings.iter().any(|f| f["plugin"] == C
            && f["rule_id"] == "shell-exec/interactive-shell"
            && f["evidence"]["pod"] == "default/nginx-deployment-7998647bdf-phvq7"),
        "{findings:#?}"
    );
}

#[test]
fn on_the_falco_audit_fixtures_only_the_exec_is_reported() {
    let dir = TempDir::new("foreign-falco");
    for name in [PYTHON, C] {
        std::fs::copy(wasm(name), dir.join(format!("{name}.wasm"))).unwrap();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(falco_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("fal_01_003.json")) // deliberately malformed
        .collect();
    files.sort();
    let out = cached_vigil()
        .args(["replay", "--no-builtin", "--plugin-dir"])
        .arg(&dir)
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = stdout_lines(&out);
    // Every image in the fixtures is a Docker Hub official one (nginx, mysql).
    assert_eq!(
        rules(&findings),
        ["shell-exec/interactive-shell"],
        "{findings:#?}"
    );
}

/// `vigil run --plugin-dir` on this machine's Docker Engine: the test image
/// (`vigil-test/busybox`, a Docker Hub user namespace as Docker reads the name)
/// is an untrusted image, and `docker exec … sh -c …` a shell command.
#[test]
fn vigil_run_reports_live_docker_activity_through_both() {
    use vigil_test_support::docker::{Containers, docker, docker_ready, run_container};
    use vigil_test_support::unique;
    if !docker_ready() {
        return;
    }
    let dir = TempDir::new("foreign-live");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in [PYTHON, C] {
        std::fs::copy(wasm(name), plugins.join(format!("{name}.wasm"))).unwrap();
    }
    let vigil = VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--cache-dir")
            .arg(built().cache_home.join("vigil/plugins"))
            .args([
                "--no-builtin",
                "--no-network",
                "--no-file-integrity",
                "--no-k8s-watch",
            ])
            .arg("--plugin-dir")
            .arg(&plugins),
    );
    vigil.wait_for_stderr("docker: event stream open", Duration::from_secs(120));

    let name = format!("vigil_foreign_{}", unique());
    let _cleanup = Containers(vec![name.clone()]);
    run_container(&name, &[], &["sleep", "300"]);
    docker(&["exec", &name, "sh", "-c", "id"]);

    let want = BTreeSet::from([
        "untrusted-registry/untrusted-image",
        "shell-exec/shell-command",
    ]);
    vigil.wait_for_findings(
        &format!("{want:?} for {name}"),
        Duration::from_secs(30),
        |findings| {
            let seen: BTreeSet<&str> = findings
                .iter()
                .filter(|f| f["evidence"]["container"] == name.as_str())
                .filter_map(|f| f["rule_id"].as_str())
                .collect();
            want.is_subset(&seen)
        },
    );
}

/// `vigil plugin new --lang LANG NAME --dir …`, then the project's own
/// `./test.sh` (build, `vigil plugin inspect`, `vigil plugin test`).
/// Returns the scratch directory (removed when dropped) and the project in it.
fn scaffold(lang: &str, name: &str) -> (TempDir, PathBuf) {
    scaffold_kind(lang, "detector", name)
}

/// [`scaffold`] of a kind of plugin (`detector`, `correlator`).
fn scaffold_kind(lang: &str, kind: &str, name: &str) -> (TempDir, PathBuf) {
    let base = TempDir::new(&format!("foreign-new-{lang}-{kind}"));
    let project = base.join(name);
    let out = run(
        "vigil plugin new",
        vigil()
            .args([
                "plugin", "new", "--lang", lang, "--kind", kind, name, "--dir",
            ])
            .arg(&project),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("./test.sh"),
        "says how to test it"
    );
    // A fresh cache: each build of a scaffold is new bytes.
    let cache = base.join("cache");
    let mut test = Command::new(project.join("test.sh"));
    test.env("VIGIL", env!("CARGO_BIN_EXE_vigil"))
        .env("XDG_CACHE_HOME", &cache)
        .env("VIGIL_WASM_CARGO", root().join("scripts/wasm-cargo.sh"))
        .env("CARGO_TARGET_DIR", root().join("target/scaffold"))
        .envs(built().tools.iter().map(|(k, v)| (k, v)));
    let out = run(&format!("{lang} scaffold's ./test.sh"), &mut test);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok: 1 findings as expected"),
        "{lang}: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&cache);
    (base, project)
}

#[test]
fn new_rust_plugin_passes_its_own_tests() {
    let (_base, project) = scaffold("rust", "demo-rust");
    // Its native unit tests too, with plain `cargo test`.
    run(
        "cargo test (Rust scaffold)",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("test")
            .arg("--manifest-path")
            .arg(project.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", root().join("target/scaffold")),
    );
}

#[test]
fn new_python_plugin_passes_its_own_test() {
    let (_base, project) = scaffold("python", "demo_python");
    assert!(project.join("wit/detector.wit").is_file(), "self-contained");
}

/// The issue-12 scenario (a host-network container, its connection to a C2
/// address, a change of `runc`) replayed with a scaffolded correlator in the
/// plugin directory: it reports the container the built-ins reported, once,
/// beside the built-in `incident`, from the same findings. `packed`: the
/// plugin exports `packed-correlate` (WIT 0.1.5, the Rust SDK) and is
/// handed the findings through it, else through `correlate.on-findings`
/// (Python): both paths must give this same finding.
fn correlator_reports_the_seed(wasm: &Path, name: &str, packed: bool) {
    let inspected = cached_vigil()
        .args(["plugin", "inspect"])
        .arg(wasm)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&inspected.stdout)
        .unwrap_or_else(|e| panic!("inspect {name}: {e}: {inspected:?}"));
    assert_eq!(report["receives_findings"], true, "{report}");
    assert_eq!(report["packed_findings"], packed, "{report}");
    let dir = TempDir::new(&format!("foreign-correlator-{name}"));
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
    let data = root().join("tests/data/incident");
    let out = cached_vigil()
        .args([
            "replay",
            "--format",
            "vigil",
            "--node",
            "n1",
            "--plugin-dir",
        ])
        .arg(&dir)
        .arg("--intel")
        .arg(data.join("c2.txt"))
        .arg(data.join("seed.jsonl"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = stdout_lines(&out);
    let mine: Vec<&serde_json::Value> = findings.iter().filter(|f| f["plugin"] == name).collect();
    assert_eq!(mine.len(), 1, "once per container: {findings:#?}");
    let f = mine[0];
    assert_eq!(f["rule_id"], format!("{name}/multi-plugin"));
    assert_eq!(f["entities"][0]["name"], "evasive_container");
    assert_eq!(f["entities"][0]["verified"], true, "{f}");
    assert_eq!(
        f["evidence"]["plugins"], "container-escape,suspicious-egress",
        "{f}"
    );
    // The findings it stands on are the built-ins' own, by id.
    let cited: Vec<&str> = f["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for id in &cited {
        assert!(
            findings
                .iter()
                .any(|g| g["id"] == *id && g["plugin"] != name),
            "{id} is another plugin's finding"
        );
    }
    assert!(
        findings
            .iter()
            .any(|g| g["rule_id"] == "incident/correlated"),
        "the built-in incident saw the same findings"
    );
}

#[test]
fn new_python_correlator_passes_its_own_test_and_correlates_the_seed() {
    let (_base, project) = scaffold_kind("python", "correlator", "corr_python");
    correlator_reports_the_seed(&project.join("corr_python.wasm"), "corr_python", false);
}

#[test]
fn new_rust_correlator_passes_its_own_tests_and_correlates_the_seed() {
    let (_base, project) = scaffold_kind("rust", "correlator", "corr-rust");
    run(
        "cargo test (Rust correlator scaffold)",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("test")
            .arg("--manifest-path")
            .arg(project.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", root().join("target/scaffold")),
    );
    correlator_reports_the_seed(&project.join("corr-rust.wasm"), "corr-rust", true);
}

#[test]
fn new_c_plugin_passes_its_own_test() {
    let (_base, project) = scaffold("c", "demo-c");
    assert!(project.join("wit/types.wit").is_file(), "self-contained");
}

#[test]
fn new_refuses_bad_names_and_non_empty_dirs() {
    let base = TempDir::new("foreign-new-refusals");
    let out = vigil()
        .args(["plugin", "new", "--lang", "c", "Bad Name", "--dir"])
        .arg(base.join("x"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plugin name"));

    std::fs::write(base.join("keep.txt"), "mine").unwrap();
    let out = vigil()
        .args(["plugin", "new", "--lang", "python", "ok", "--dir"])
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let left: BTreeSet<_> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "nothing written: {left:?}");

    let out = vigil()
        .args(["plugin", "new", "--lang", "rust", "demo", "--sdk-path"])
        .arg(&base)
        .arg("--dir")
        .arg(base.join("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("vigil-plugin-sdk"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
