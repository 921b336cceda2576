//! The audit webhook's protections through the real binary: a bearer token
//! is required on loopback too unless `allow_unauthenticated = true` says
//! otherwise (then warned at start and by `vigil config check`); TLS is
//! required off loopback unless `allow_plaintext = true`; and slow clients
//! (headers then a trickled body, or trickled headers) are cut off at the
//! request deadline, counted and logged, and free their connection slots
//! for the API server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::vigil;
use vigil_test_support::fixtures::QUIET_SOURCES;
use vigil_test_support::net::http_request;
use vigil_test_support::{TempDir, VigilProcess};

/// How long Vigil may take to start (compiling the built-in plugins).
const STARTUP: Duration = Duration::from_secs(120);

const TOKEN: &str = "webhook-trust-token";

/// A config file with only the audit webhook as a source, `section` being
/// the body of its `[sources.k8s_audit_webhook]` table.
fn config(dir: &Path, section: &str) -> PathBuf {
    let path = dir.join("vigil.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {data:?}\n\
             {QUIET_SOURCES}\
             [sources.k8s_audit_webhook]\nenabled = true\n{section}\n",
            data = dir.join("data").display().to_string(),
        ),
    )
    .unwrap();
    path
}

fn start(config: &Path) -> VigilProcess {
    let process = VigilProcess::spawn(vigil().arg("run").arg("--config").arg(config).args([
        "--no-cache",
        "--admin-listen",
        "127.0.0.1:0",
    ]));
    process.wait_for_stderr("k8s-audit-webhook: on (listening on", STARTUP);
    process
}

/// The address from "k8s-audit-webhook: on (listening on ADDR)".
fn webhook_addr(process: &VigilProcess) -> SocketAddr {
    let logs = process.stderr_text();
    let at = logs.find("listening on ").unwrap() + "listening on ".len();
    let end = logs[at..].find(')').unwrap();
    logs[at..at + end].parse().unwrap()
}

const BATCH: &str = r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"trust-1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/pods","user":{"username":"u"}}]}"#;

fn post(addr: SocketAddr, token: Option<&str>) -> (u16, String) {
    let mut headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("Content-Length", BATCH.len().to_string()),
    ];
    if let Some(t) = token {
        headers.push(("Authorization", format!("Bearer {t}")));
    }
    http_request(
        addr,
        "POST",
        "/audit",
        &headers,
        BATCH.as_bytes(),
        Duration::from_secs(20),
    )
}

fn config_check(file: &Path) -> (bool, String) {
    let out = vigil()
        .args(["config", "check", "--no-plugins"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// No token and no waiver: invalid, for `vigil run` (on loopback too) as
/// for `vigil config check`, with the key to set named.
#[test]
fn a_loopback_webhook_without_token_is_refused_unless_waived() {
    let dir = TempDir::new("webhook-trust-token");
    let file = config(&dir, "listen = \"127.0.0.1:0\"");
    let (ok, text) = config_check(&file);
    assert!(!ok, "{text}");
    assert!(
        text.contains("sources.k8s_audit_webhook.token_file: required (on loopback too)")
            && text.contains("allow_unauthenticated = true"),
        "{text}"
    );
    let out = vigil()
        .arg("run")
        .arg("--config")
        .arg(&file)
        .arg("--no-cache")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("sources.k8s_audit_webhook.token_file"),
        "{stderr}"
    );
    // Same with the flag alone: the old loopback default is gone.
    let out = vigil()
        .args(["run", "--no-cache", "--no-docker", "--no-network"])
        .args(["--no-file-integrity", "--no-k8s-watch", "--data-dir"])
        .arg(dir.join("data2"))
        .args(["--audit-webhook-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("sources.k8s_audit_webhook.token_file"),
        "{stderr}"
    );

    // Waived: valid, warned by `config check` and at start, and serving.
    let file = config(
        &dir,
        "listen = \"127.0.0.1:0\"\nallow_unauthenticated = true",
    );
    let (ok, text) = config_check(&file);
    assert!(ok, "{text}");
    assert!(
        text.contains("warning: sources.k8s_audit_webhook.allow_unauthenticated = true: requests are accepted without a bearer token"),
        "{text}"
    );
    let process = start(&file);
    assert!(
        process
            .stderr_text()
            .contains("k8s-audit-webhook: allow_unauthenticated = true"),
        "{}",
        process.stderr_text()
    );
    let (status, body) = post(webhook_addr(&process), None);
    assert_eq!(status, 200, "{body}");
    process.stop();
}

/// Off loopback, plain HTTP needs `allow_plaintext = true` (warned).
#[test]
fn plain_http_off_loopback_is_refused_unless_waived() {
    let dir = TempDir::new("webhook-trust-tls");
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let token_line = format!("token_file = {:?}", token.display().to_string());
    let file = config(&dir, &format!("listen = \"0.0.0.0:8444\"\n{token_line}"));
    let (ok, text) = config_check(&file);
    assert!(!ok, "{text}");
    assert!(
        text.contains("sources.k8s_audit_webhook.tls_cert: required (with tls_key) when listening on a non-loopback address")
            && text.contains("allow_plaintext = true"),
        "{text}"
    );
    let file = config(
        &dir,
        &format!("listen = \"0.0.0.0:8444\"\n{token_line}\nallow_plaintext = true"),
    );
    let (ok, text) = config_check(&file);
    assert!(ok, "{text}");
    assert!(
        text.contains("warning: sources.k8s_audit_webhook.allow_plaintext = true: plain HTTP"),
        "{text}"
    );
    assert!(!text.contains("allow_unauthenticated"), "{text}");
}

/// An address of the test's own: 198.18.0.1 (the benchmarking range, never
/// routed) on the loopback interface of a new network namespace.
const OWN_ADDR: &str = "198.18.0.1";

/// `cmd` run in a new network namespace where [`OWN_ADDR`] is a local,
/// non-loopback address; `None` when namespaces cannot be made here.
fn in_own_netns(cmd: &Command) -> Option<Command> {
    let ok = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return None;
    }
    let mut c = Command::new("unshare");
    c.args([
        "-n",
        "sh",
        "-c",
        &format!("ip link set lo up && ip addr add {OWN_ADDR}/32 dev lo && exec \"$0\" \"$@\""),
    ])
    .arg(cmd.get_program())
    .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    Some(c)
}

/// `vigil run` itself, on an address of the node that is not loopback:
/// plain HTTP is refused at start with the message `config check` gives,
/// before anything listens; waived, it listens there, warned.
#[test]
fn run_refuses_plain_http_on_a_non_loopback_address_unless_waived() {
    let dir = TempDir::new("webhook-trust-run-tls");
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let token_line = format!("token_file = {:?}", token.display().to_string());
    let file = config(&dir, &format!("listen = \"{OWN_ADDR}:8444\"\n{token_line}"));
    let mut run = vigil();
    run.arg("run")
        .arg("--config")
        .arg(&file)
        .args(["--no-cache", "--no-admin"]);
    let Some(mut refused) = in_own_netns(&run) else {
        eprintln!("skipped: no network namespace (unshare -n) here");
        return;
    };
    let out = refused.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("sources.k8s_audit_webhook.tls_cert: required (with tls_key) when listening on a non-loopback address")
            && stderr.contains("allow_plaintext = true"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("k8s-audit-webhook: on (listening on"),
        "{stderr}"
    );

    let file = config(
        &dir,
        &format!("listen = \"{OWN_ADDR}:8444\"\n{token_line}\nallow_plaintext = true"),
    );
    let mut run = vigil();
    run.arg("run")
        .arg("--config")
        .arg(&file)
        .args(["--no-cache", "--no-admin"]);
    let process = VigilProcess::spawn(&mut in_own_netns(&run).unwrap());
    process.wait_for_stderr(
        &format!("k8s-audit-webhook: on (listening on {OWN_ADDR}:8444)"),
        STARTUP,
    );
    let logs = process.stop();
    assert!(
        logs.contains("allow_plaintext = true"),
        "the waiver is warned at start: {logs}"
    );
}

/// Sends `head` and then one byte of body every 200 ms until the server
/// closes; returns what it answered and when the connection ended.
fn slow_client(addr: SocketAddr, head: String, trickle: &'static [u8]) -> (String, Instant) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while Instant::now() < deadline {
        if s.write_all(&trickle[i % trickle.len()..=i % trickle.len()])
            .is_err()
        {
            break;
        }
        i += 1;
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    (String::from_utf8_lossy(&got).into_owned(), Instant::now())
}

/// Slow-loris: with two connection slots, two clients that send their
/// headers and then trickle their bodies (always progressing, never done),
/// and one that trickles its headers, are each cut off at the deadline
/// (408 for the bodies), counted and logged; the API server's request,
/// sent while they hold the slots, is served as soon as they are cut off.
#[test]
fn slow_clients_are_cut_off_at_the_deadline_and_free_their_slots() {
    let dir = TempDir::new("webhook-trust-slow");
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let file = config(
        &dir,
        &format!(
            "listen = \"127.0.0.1:0\"\ntoken_file = {:?}\nmax_connections = 2\nrequest_timeout_secs = 3\nheader_timeout_secs = 3",
            token.display().to_string()
        ),
    );
    let process = start(&file);
    let addr = webhook_addr(&process);
    let t0 = Instant::now();
    let body_head = format!(
        "POST /audit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
    );
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let head = body_head.clone();
            std::thread::spawn(move || slow_client(addr, head, b" "))
        })
        .collect();
    // Both slots taken; the real request waits in the backlog.
    std::thread::sleep(Duration::from_millis(500));
    let (status, answer) = post(addr, Some(TOKEN));
    let served = t0.elapsed();
    assert_eq!(status, 200, "{answer}");
    assert!(
        served >= Duration::from_millis(2500) && served < Duration::from_secs(8),
        "served after {served:?}: the slots were not freed at the deadline"
    );
    for h in slow {
        let (answer, ended) = h.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        let held = ended.duration_since(t0);
        assert!(held < Duration::from_secs(8), "held for {held:?}");
    }
    // Trickled headers: closed at the header deadline (no answer possible).
    let t1 = Instant::now();
    let (answer, ended) = slow_client(
        addr,
        "POST /audit HTTP/1.1\r\nHost: x\r\n".to_owned(),
        b"X-Slow: a\r\n",
    );
    let held = ended.duration_since(t1);
    assert!(
        held >= Duration::from_millis(2500) && held < Duration::from_secs(8),
        "headers held for {held:?}: {answer:?}"
    );
    process.wait_for_metric(
        "vigil_source_timeouts_total{source=\"k8s-audit-webhook\"} 3",
        Duration::from_secs(10),
    );
    let log = process.stderr_text();
    assert_eq!(
        log.matches("k8s-audit-webhook: request not received in time")
            .count(),
        3,
        "{log}"
    );
    assert!(
        log.contains("phase=\"body\"") && log.contains("phase=\"headers\""),
        "{log}"
    );
    process.stop();
}
