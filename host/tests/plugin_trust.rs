//! A plugin is trusted with nothing it says (issue 10), through the real
//! binary with plugins built from source (`tests/plugins/`):
//!
//! - its name is the operator's (the built-in's, or its file's): a plugin
//!   claiming another name is refused before it sees that plugin's state or
//!   logs under that name, and a file cannot take a built-in's name;
//! - its capabilities come from `[plugins.policy.<name>]`: a `sha256` pin
//!   refuses a changed file at start and at reload, and a plugin from a file
//!   does not trigger a response unless granted `response = true`;
//! - its file is checked: a FIFO or a symlink to `/dev/zero` is refused in
//!   seconds and in bounded memory, an oversized file, and (as root) a file
//!   others can write, while the other plugins load;
//! - settings or a policy for a plugin that is not there are an error at
//!   start and refuse a reload.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::{
    QUIET_SOURCES, append, audit_line, builtin_build, falco, falco_event, hostile_plugin, replace,
};
use vigil_test_support::output::{rules, stdout_lines};
use vigil_test_support::{TempDir, VigilProcess, without_kubernetes};

const DEADLINE: Duration = Duration::from_secs(60);

/// How long a plugin directory with a FIFO or `/dev/zero` in it may take.
const BOUNDED: Duration = Duration::from_secs(20);

/// The most memory (peak RSS) `vigil` may use while refusing them.
const MAX_RSS_KIB: u64 = 1 << 20;

/// Copies a plugin into `dir` as `file`, `0644` like an installed file.
fn install(dir: &Path, from: &Path, file: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let to = dir.join(file);
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
    to
}

/// `vigil run` on no live source but what `extra` turns on.
fn run_command(dir: &Path, extra: &[&str]) -> Command {
    let mut c = vigil();
    without_kubernetes(&mut c, &dir.join("home"));
    c.arg("run")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args([
            "--no-docker",
            "--no-network",
            "--no-file-integrity",
            "--no-k8s-watch",
        ])
        .args(extra);
    c
}

/// Starts `vigil run`, waits until it runs, stops it: its whole log.
fn run_log(dir: &Path, extra: &[&str]) -> String {
    let v = VigilProcess::spawn(run_command(dir, extra).arg("--no-admin"));
    v.wait_for_stderr("vigil running", DEADLINE);
    v.stop()
}

fn line_with<'a>(log: &'a str, needle: &str) -> Option<&'a str> {
    log.lines().find(|l| l.contains(needle))
}

// ------------------------------------------------------------------ identity

#[test]
fn a_squatter_is_refused_before_it_sees_the_state_or_the_log_name_it_claims() {
    const SECRET: &str = "zz-churn-secret-key";
    let dir = TempDir::new("trust-squatter");
    // container-churn's persisted state, with a key only its owner may see.
    let state = dir.join("data/state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("container-churn.state.json"),
        format!(r#"{{"{SECRET}":"00"}}"#),
    )
    .unwrap();
    let squatter = hostile_plugin("hostile-squatter");

    // 1. Under its own file name, claiming container-churn: refused after
    //    `describe` (in a throwaway store, logging under its file), before
    //    `configure`, state or logs under the claimed name.
    let own = dir.join("own");
    let file = install(&own, &squatter, "hostile-squatter.wasm");
    let log = run_log(&dir, &["--plugin-dir", own.to_str().unwrap()]);
    assert!(
        log.contains(&format!(
            "plugin {} refused: it calls itself \"container-churn\", but the name it was given is \"hostile-squatter\"",
            file.display()
        )),
        "{log}"
    );
    let describe = line_with(&log, "squatter: describe").expect("the squatter's describe logged");
    assert!(
        describe.contains(&format!("plugin=\"{}\"", file.display())),
        "describe logs under the file, not the name it claims: {describe}"
    );
    assert!(!log.contains("squatter: configure"), "{log}");
    assert!(!log.contains(SECRET), "the state leaked:\n{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("squatter") && l.contains("plugin=\"container-churn\"")),
        "{log}"
    );
    // The real container-churn is there, with its state.
    let loaded = line_with(&log, "origin=builtin:container-churn").expect("container-churn loaded");
    assert!(loaded.contains("plugin loaded"), "{loaded}");

    // 2. Under the built-in's name: refused before it is even instantiated.
    let taken = dir.join("taken");
    install(&taken, &squatter, "container-churn.wasm");
    let log = run_log(&dir, &["--plugin-dir", taken.to_str().unwrap()]);
    assert!(
        log.contains(&format!(
            "plugin {} refused: the name \"container-churn\" is already taken by the built-in plugin container-churn",
            taken.join("container-churn.wasm").display()
        )),
        "{log}"
    );
    assert!(!log.contains("squatter:"), "it never ran:\n{log}");
    assert!(!log.contains(SECRET), "{log}");

    // 3. The control: an operator who runs it *as* container-churn (no
    //    built-ins, the file so named) gives it that state, and the probe
    //    sees it. This is what 1 and 2 keep from happening.
    let log = run_log(
        &dir,
        &["--no-builtin", "--plugin-dir", taken.to_str().unwrap()],
    );
    let seen = line_with(&log, "squatter: configure sees state").expect("configure ran");
    assert!(seen.contains(SECRET), "{seen}");
    assert!(seen.contains("plugin=\"container-churn\""), "{seen}");
}

/// One container event that container-escape reports (host network).
fn host_network_event(dir: &Path) -> PathBuf {
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        r#"{"id":"e1","time":1,"body":{"kind":"container","action":"start","id":"c1","name":"web","security":{"network_mode":"host"}}}"#,
    )
    .unwrap();
    events
}

#[test]
fn without_built_ins_a_file_still_cannot_call_itself_container_escape() {
    let dir = TempDir::new("trust-no-builtin");
    let events = host_network_event(&dir);
    // A real container-escape build (from `plugins/`, by the host's build),
    // in a file with another name.
    let escape = builtin_build("container-escape");
    let plugins = dir.join("plugins");
    let file = install(&plugins, &escape, "impostor.wasm");
    let replay = |plugins: &Path| {
        vigil()
            .args(["replay", "--no-builtin", "--no-cache", "--format", "vigil"])
            .arg("--plugin-dir")
            .arg(plugins)
            .arg(&events)
            .output()
            .unwrap()
    };
    let out = replay(&plugins);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stdout_lines(&out).is_empty(), "no finding under its rules");
    assert!(
        stderr.contains(&format!(
            "plugin {} refused: it calls itself \"container-escape\", but the name it was given is \"impostor\"",
            file.display()
        )),
        "{stderr}"
    );
    // The operator names it container-escape: then it is.
    std::fs::rename(&file, plugins.join("container-escape.wasm")).unwrap();
    let out = replay(&plugins);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        rules(&stdout_lines(&out)),
        ["container-escape/host-network"]
    );
}

// -------------------------------------------------------------- capabilities

/// A config with the admin endpoint, the audit log source only, no dedup,
/// `plugins.dir`, and `extra` appended.
fn config(dir: &Path, plugins: &Path, extra: &str) -> String {
    format!(
        r#"data_dir = "{data}"
[admin]
listen = "127.0.0.1:0"
{QUIET_SOURCES}
[sources.k8s_audit_log]
enabled = true
path = "{log}"
poll_interval_ms = 20
[dedup]
window_secs = 0
[plugins]
dir = "{plugins}"
cache_dir = "{cache}"
{extra}
"#,
        data = dir.join("data").display(),
        log = dir.join("audit.log").display(),
        plugins = plugins.display(),
        cache = dir.join("cache").display(),
    )
}

fn start(dir: &Path, cfg: &Path) -> VigilProcess {
    std::fs::write(dir.join("audit.log"), "").unwrap();
    let mut c = vigil();
    without_kubernetes(&mut c, &dir.join("home"));
    let v = VigilProcess::spawn(c.arg("run").arg("--config").arg(cfg));
    v.wait_for_stderr("vigil running", DEADLINE);
    v.wait_for_stderr("k8s-audit-log: following file", DEADLINE);
    v
}

fn metric(v: &VigilProcess, name: &str) -> u64 {
    let body = v.metrics();
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
}

fn digest(path: &Path) -> String {
    vigil_runtime::digest(&std::fs::read(path).unwrap())
}

#[test]
fn a_sha256_pin_refuses_a_changed_file_at_start_and_at_reload() {
    let dir = TempDir::new("trust-pin");
    let plugins = dir.join("plugins");
    let probe = install(&plugins, &hostile_plugin("trust-probe"), "trust-probe.wasm");
    let good = digest(&probe);
    let wrong = "0".repeat(64);
    let cfg = dir.join("vigil.toml");
    let pinned = |pin: &str| {
        config(
            &dir,
            &plugins,
            &format!("[plugins.policy.trust-probe]\nsha256 = \"{pin}\"\n"),
        )
    };

    // At start: refused with both digests; the built-ins run.
    replace(&cfg, &pinned(&wrong));
    let v = start(&dir, &cfg);
    let at_start = format!(
        "plugin {} refused: its SHA-256 is {good}, but plugins.policy.trust-probe.sha256 pins {wrong}",
        probe.display()
    );
    v.wait_for_stderr(&at_start, DEADLINE);

    // The right pin: loaded by the reload.
    replace(&cfg, &pinned(&good));
    v.wait_for_metric("vigil_reloads_ok_total 1", DEADLINE);
    let loaded = line_with(&v.stderr_text(), "plugin=\"trust-probe\"")
        .map(str::to_owned)
        .expect("trust-probe loaded");
    assert!(loaded.contains("plugin loaded"), "{loaded}");

    // The file changes under the pin: the reload is refused, naming both.
    let other = hostile_plugin("hostile-output");
    let next = plugins.join("trust-probe.next");
    std::fs::copy(&other, &next).unwrap();
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&next, &probe).unwrap();
    v.wait_for_metric("vigil_reloads_failed_total 1", DEADLINE);
    // The log is read by a thread of the harness: the line may trail the
    // counter by a moment.
    v.wait_for_stderr("RELOAD REFUSED", DEADLINE);
    let log = v.stderr_text();
    let refused = line_with(&log, "RELOAD REFUSED").expect("the reload refused");
    assert!(
        refused.contains(&format!(
            "its SHA-256 is {}, but plugins.policy.trust-probe.sha256 pins {good}",
            digest(&probe)
        )),
        "{refused}"
    );
    // The running set is kept: the probe still reports.
    append(
        &dir.join("audit.log"),
        &audit_line(
            &falco_event("create_nginx_pod_privileged.json"),
            "pin-after",
        ),
    );
    v.wait_for_finding(
        "trust-probe's finding after the refused reload",
        DEADLINE,
        |f| f["rule_id"] == "trust-probe/seen",
    );
}

#[test]
fn a_plugin_from_a_file_triggers_no_response_unless_granted() {
    let dir = TempDir::new("trust-response");
    let plugins = dir.join("plugins");
    install(&plugins, &hostile_plugin("trust-probe"), "trust-probe.wasm");
    let cfg = dir.join("vigil.toml");
    let response = |policy: &str| {
        config(
            &dir,
            &plugins,
            &format!(
                "{policy}\n[response]\nmode = \"dry-run\"\n[[response.rules]]\nrule = \"trust-probe/*\"\n[response.docker]\nenabled = false\n[response.kubernetes]\nenabled = false\n"
            ),
        )
    };
    let audit = dir.join("audit.log");
    let privileged = falco_event("create_nginx_pod_privileged.json");
    let event_id = |audit_id: &str| format!("k8s-audit:{audit_id}:ResponseComplete");
    let seen = |v: &VigilProcess, audit_id: &str| {
        let id = event_id(audit_id);
        v.wait_for_finding(&format!("trust-probe/seen for {audit_id}"), DEADLINE, |f| {
            f["rule_id"] == "trust-probe/seen"
                && f["event_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i.as_str() == Some(&id)))
        });
    };

    // By default: delivered, matched by the rule, never acted on (counted).
    replace(&cfg, &response(""));
    let v = start(&dir, &cfg);
    append(&audit, &audit_line(&privileged, "resp-1"));
    seen(&v, "resp-1");
    v.wait_for_metric("vigil_response_not_permitted_total 1", DEADLINE);
    assert_eq!(metric(&v, "vigil_response_decisions_total"), 0);

    // Granted by the operator (applied by a reload): now it is.
    replace(
        &cfg,
        &response("[plugins.policy.trust-probe]\nresponse = true\n"),
    );
    v.wait_for_metric("vigil_reloads_ok_total 1", DEADLINE);
    append(&audit, &audit_line(&privileged, "resp-2"));
    seen(&v, "resp-2");
    v.wait_for_metric("vigil_response_decisions_total 1", DEADLINE);
    assert_eq!(metric(&v, "vigil_response_not_permitted_total"), 1);
}

#[test]
fn event_kinds_outside_the_policy_never_reach_the_plugin() {
    let dir = TempDir::new("trust-kinds");
    let plugins = dir.join("plugins");
    install(&plugins, &hostile_plugin("trust-probe"), "trust-probe.wasm");
    let cfg = dir.join("vigil.toml");
    // It subscribes to kubernetes and container events; only the latter are
    // granted, so it never sees the audit events it would report.
    replace(
        &cfg,
        &config(
            &dir,
            &plugins,
            "[plugins.policy.trust-probe]\nkinds = [\"container\"]\n",
        ),
    );
    let v = start(&dir, &cfg);
    let narrowed = line_with(&v.stderr_text(), "will not receive them")
        .map(str::to_owned)
        .expect("the narrowing logged");
    assert!(
        narrowed.contains("plugin=trust-probe") && narrowed.contains("withheld=kubernetes"),
        "{narrowed}"
    );
    append(
        &dir.join("audit.log"),
        &audit_line(&falco_event("create_nginx_pod_privileged.json"), "kinds-1"),
    );
    // container-escape (a built-in) reports the same event: by then the
    // probe would have too.
    v.wait_for_finding("container-escape's finding", DEADLINE, |f| {
        f["rule_id"] == "container-escape/privileged"
    });
    v.stop();
    assert!(
        !v.findings().iter().any(|f| f["plugin"] == "trust-probe"),
        "{:?}",
        v.findings()
    );

    // Granting none of the kinds it subscribes to refuses it.
    let dir2 = TempDir::new("trust-kinds-none");
    replace(
        &cfg,
        &config(
            &dir2,
            &plugins,
            "[plugins.policy.trust-probe]\nkinds = [\"file\"]\n",
        ),
    );
    let v = start(&dir2, &cfg);
    v.wait_for_stderr(
        "plugin trust-probe refused: it subscribes to kubernetes, container only, none of which plugins.policy.trust-probe.kinds allows",
        DEADLINE,
    );
}

// --------------------------------------------------------------- plugin files

/// A FIFO and a symlink to `/dev/zero` named like plugins, beside a good one.
fn booby_trapped_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    install(&plugins, &hostile_plugin("trust-probe"), "trust-probe.wasm");
    let fifo = plugins.join("x.wasm");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink("/dev/zero", plugins.join("zero.wasm")).unwrap();
    plugins
}

fn assert_traps_refused(stderr: &str, plugins: &Path) {
    for (file, why) in [
        ("x.wasm", "it is a FIFO, not a regular file"),
        ("zero.wasm", "it is a character device, not a regular file"),
    ] {
        let msg = format!(
            "plugin file {} refused: {why}",
            plugins.join(file).display()
        );
        assert!(stderr.contains(&msg), "{msg}\n{stderr}");
    }
}

/// Peak RSS of a running process, KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Polls a child until `done` or its exit, failing (and killing it) past
/// [`BOUNDED`] or [`MAX_RSS_KIB`]; returns the highest peak RSS seen.
fn watch_bounded(pid: u32, mut done: impl FnMut() -> bool, what: &str) -> u64 {
    let started = Instant::now();
    let mut peak = 0;
    loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if done() {
            return peak;
        }
        let over = peak > MAX_RSS_KIB || started.elapsed() > BOUNDED;
        if over {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!(
                "{what}: still going after {:?} with a peak RSS of {peak} KiB",
                started.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn replay_refuses_a_fifo_and_dev_zero_in_seconds_and_bounded_memory() {
    let dir = TempDir::new("trust-files-replay");
    let plugins = booby_trapped_dir(&dir);
    let mut child = vigil()
        .args(["replay", "--no-builtin", "--no-cache", "--plugin-dir"])
        .arg(&plugins)
        .arg(falco("create_nginx_pod_privileged.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut status = None;
    watch_bounded(
        pid,
        || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
        "vigil replay",
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_traps_refused(&stderr, &plugins);
    // The good plugin beside them loaded and reported.
    assert_eq!(rules(&stdout_lines(&out)), ["trust-probe/seen"], "{stderr}");
}

#[test]
fn run_refuses_a_fifo_and_dev_zero_in_seconds_and_bounded_memory() {
    let dir = TempDir::new("trust-files-run");
    let plugins = booby_trapped_dir(&dir);
    let v = VigilProcess::spawn(run_command(&dir, &["--no-admin", "--plugin-dir"]).arg(&plugins));
    let peak = watch_bounded(
        v.id(),
        || v.stderr_text().contains("vigil running") || v.exited().is_some(),
        "vigil run",
    );
    let log = v.stop();
    assert!(log.contains("vigil running"), "{log}");
    assert!(peak <= MAX_RSS_KIB, "{peak} KiB");
    assert_traps_refused(&log, &plugins);
    assert!(
        line_with(&log, "plugin=\"trust-probe\"").is_some_and(|l| l.contains("plugin loaded")),
        "{log}"
    );
}

#[test]
fn oversized_and_writable_plugin_files_are_refused() {
    let dir = TempDir::new("trust-files-size");
    let plugins = dir.join("plugins");
    let probe = install(&plugins, &hostile_plugin("trust-probe"), "trust-probe.wasm");
    let size = std::fs::metadata(&probe).unwrap().len();
    let replay = |extra: &[&str]| {
        vigil()
            .args(["replay", "--no-cache", "--plugin-dir"])
            .arg(&plugins)
            .args(extra)
            .arg(falco("create_nginx_pod_privileged.json"))
            .output()
            .unwrap()
    };
    let out = replay(&["--plugin-max-file-bytes", "1000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "plugin file {} refused: it is larger than plugins.max_file_bytes (1000 bytes): {size} bytes",
            probe.display()
        )),
        "{stderr}"
    );
    // The built-ins still ran.
    assert!(
        rules(&stdout_lines(&out)).contains(&"container-escape/privileged".to_owned()),
        "{stderr}"
    );
    let out = replay(&[]);
    assert_eq!(out.status.code(), Some(0));

    // As root, a file others may write is code anyone could make root run.
    let as_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if as_root {
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o666)).unwrap();
        let out = replay(&[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "plugin file {} refused: Vigil runs as root and the file is writable by group or others (mode 666)",
                probe.display()
            )),
            "{stderr}"
        );
    }
}

/// As root, a plugin file owned by another user (who could replace the code
/// root runs) is refused, naming the file and why; the plugin beside it and
/// the built-ins load and run.
#[test]
fn a_plugin_file_owned_by_another_user_is_refused_as_root() {
    let as_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !as_root {
        eprintln!("skipped: the owner check applies when Vigil runs as root");
        return;
    }
    let dir = TempDir::new("trust-files-owner");
    let plugins = dir.join("plugins");
    let foreign = install(&plugins, &hostile_plugin("trust-probe"), "trust-probe.wasm");
    let ours = install(
        &plugins,
        &hostile_plugin("subscription-probe"),
        "subscription-probe.wasm",
    );
    let status = Command::new("chown")
        .arg("65534:65534")
        .arg(&foreign)
        .status()
        .unwrap();
    assert!(status.success(), "chown 65534 {}", foreign.display());
    let out = vigil()
        .args(["replay", "--no-cache", "--log", "info", "--plugin-dir"])
        .arg(&plugins)
        .arg(falco("create_nginx_pod_privileged.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "plugin file {} refused: Vigil runs as root and the file is owned by uid 65534, not root",
            foreign.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("plugin file {} refused", ours.display())),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("plugin loaded") && l.contains("subscription-probe")),
        "the plugin beside it loads: {stderr}"
    );
    assert!(
        rules(&stdout_lines(&out)).contains(&"container-escape/privileged".to_owned()),
        "{stderr}"
    );
}

// ------------------------------------------------- entries for absent plugins

#[test]
fn settings_or_a_policy_for_no_loaded_plugin_is_an_error_at_start_and_at_reload() {
    let dir = TempDir::new("trust-unknown");
    let settings = dir.join("s.json");
    std::fs::write(&settings, "{}").unwrap();
    let out = run_command(&dir, &["--no-admin"])
        .arg("--plugin-settings")
        .arg(format!("container-escpae={}", settings.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("plugins.settings.container-escpae: no plugin named \"container-escpae\" is selected (plugins: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("container-escape"),
        "the names are listed: {stderr}"
    );

    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let cfg = dir.join("vigil.toml");
    replace(
        &cfg,
        &config(&dir, &plugins, "[plugins.policy.nosuch]\nresponse = true\n"),
    );
    let out = vigil()
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("plugins.policy.nosuch: no plugin named \"nosuch\" is selected"),
        "{stderr}"
    );

    // At reload: refused, the running set kept.
    replace(&cfg, &config(&dir, &plugins, ""));
    let v = start(&dir, &cfg);
    replace(
        &cfg,
        &config(
            &dir,
            &plugins,
            "[plugins.settings.container-escpae]\ndisabled_rules = [\"privileged\"]\n",
        ),
    );
    v.wait_for_metric("vigil_reloads_failed_total 1", DEADLINE);
    // The log is read by a thread of the harness: the line may trail the
    // counter by a moment.
    v.wait_for_stderr("RELOAD REFUSED", DEADLINE);
    let log = v.stderr_text();
    let refused = line_with(&log, "RELOAD REFUSED").expect("refused");
    assert!(
        refused.contains("plugins.settings.container-escpae: no plugin named"),
        "{refused}"
    );
    append(
        &dir.join("audit.log"),
        &audit_line(&falco_event("create_nginx_pod_privileged.json"), "kept"),
    );
    let f: Value = v.wait_for_finding("container-escape still runs", DEADLINE, |f| {
        f["rule_id"] == "container-escape/privileged"
    });
    assert_eq!(f["plugin"], "container-escape");
}
