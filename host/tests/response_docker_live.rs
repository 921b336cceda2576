//! The responder against the real Docker Engine of this machine, through
//! the real binary: `vigil run --response …` sees containers through its
//! `docker` source, the built-in container-escape plugin reports them, and
//! the responder quarantines them (or, in dry-run, only says it would).
//! `vigil quarantine list|release` are run as an operator would.
//!
//! Every container has the label `vigil-test=1` and a unique name, and is
//! removed at the end, pass or fail. Without a daemon the tests are skipped
//! with a message, unless `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::docker::{
    Containers, IMAGE, LABEL, docker, docker_ready, inspect, networks,
};
use vigil_test_support::{TempDir, VigilProcess, unique, without_kubernetes};

const DEADLINE: Duration = Duration::from_secs(20);

/// `vigil run` with the docker source only, once its event stream is open.
fn start(data: &Path, response: &[impl AsRef<OsStr>]) -> VigilProcess {
    let mut cmd = vigil();
    without_kubernetes(&mut cmd, &data.join("home"));
    let v = VigilProcess::spawn(
        cmd.arg("run")
            .arg("--data-dir")
            .arg(data)
            .args([
                "--node",
                "response-live-test",
                "--no-network",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--no-admin",
                // A restarted Vigil must report the container again (dedup
                // windows survive restarts in the spool).
                "--dedup-window-secs",
                "0",
            ])
            .args(response),
    );
    v.wait_for_stderr("docker: event stream open", Duration::from_secs(180));
    v
}

/// `--response MODE --response-rule RULE`, only for containers named
/// `*_TAG`: other tests (and other users of this daemon) run such
/// containers too.
fn response_flags(mode: &str, rule: &str, tag: &str) -> [String; 6] {
    [
        "--response".to_owned(),
        mode.to_owned(),
        "--response-rule".to_owned(),
        rule.to_owned(),
        "--response-include".to_owned(),
        format!("*_{tag}"),
    ]
}

/// Waits for a finding of `rule` naming `container`.
fn wait_finding(vigil: &VigilProcess, rule: &str, container: &str) -> Value {
    vigil.wait_for_finding(&format!("{rule} for {container}"), DEADLINE, |f| {
        f["rule_id"] == rule && f.to_string().contains(container)
    })
}

/// `vigil quarantine …`.
fn quarantine(data: &Path, args: &[&str]) -> Output {
    vigil()
        .env_remove("KUBECONFIG")
        .arg("quarantine")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run vigil quarantine")
}

/// `vigil quarantine release QID`, which must succeed; its stdout.
fn release(data: &Path, qid: &str) -> String {
    let out = quarantine(data, &["release", qid]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "release {qid}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn list(data: &Path) -> Vec<Value> {
    let out = quarantine(data, &["list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// Waits until the record of `container_id` satisfies `done`.
fn wait_record(
    data: &Path,
    vigil: &VigilProcess,
    container_id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    vigil.wait_for_showing(
        &format!("the record of {container_id} as expected"),
        DEADLINE,
        || {
            list(data)
                .into_iter()
                .find(|r| r["target"] == container_id && done(r))
        },
        || format!("records: {:#}", Value::Array(list(data))),
    )
}

/// Checks that the container `id` runs, unpaused, under its own `name`
/// (not renamed): as before a quarantine, or after its release. Says
/// `what` went wrong otherwise.
fn assert_running_unmarked(id: &str, name: &str, what: &str) {
    let i = inspect(id);
    assert_eq!(i["State"]["Paused"], false, "{what} paused it: {i:#}");
    assert_eq!(i["State"]["Running"], true, "{what} stopped it: {i:#}");
    assert_eq!(
        i["Name"],
        format!("/{name}").as_str(),
        "{what} renamed it: {i:#}"
    );
}

fn actions<'a>(record: &'a Value, action: &str) -> Vec<&'a Value> {
    record["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == action)
        .collect()
}

const EVASIVE_CMD: [&str; 3] = [
    "sh",
    "-c",
    "echo evasive started; echo >/tmp/dropped; exec sleep 300",
];

/// The seed's evasive container (host network) in `enforce`: paused (no
/// network to disconnect), renamed, recorded, evidence written; a second
/// finding for it (a restarted Vigil's inventory) does nothing new;
/// `vigil quarantine release` unpauses it and gives its name back; after
/// that it is not quarantined again for the same rule.
#[test]
fn evasive_host_network_container_is_isolated_in_enforce_mode() {
    if !docker_ready() {
        return;
    }
    let data = TempDir::new("response-enforce");
    let tag = unique();
    let flags = response_flags("enforce", "container-escape/*", &tag);
    let name = format!("evasive_container_{tag}");
    let late = format!("evasive_late_{tag}");
    let mut cleanup = Containers(Vec::new());
    // Running (and writing its log and file) before Vigil starts: Vigil's
    // inventory reports it, so the evidence has something to show.
    let id = cleanup.run(&name, &["--network", "host"], &EVASIVE_CMD);
    std::thread::sleep(Duration::from_secs(1));
    let vigil = start(&data, &flags);

    wait_finding(&vigil, "container-escape/host-network", &name);
    let record = wait_record(&data, &vigil, &id, |r| r["state"] == "quarantined");

    // And one started while Vigil runs: quarantined from its create/start events.
    let late_id = cleanup.run(&late, &["--network", "host"], &["sleep", "300"]);
    wait_finding(&vigil, "container-escape/host-network", &late);
    wait_record(&data, &vigil, &late_id, |r| r["state"] == "quarantined");
    assert_eq!(inspect(&late_id)["State"]["Paused"], true);
    let i = inspect(&id);
    assert_eq!(i["State"]["Paused"], true, "not paused: {i:#}");
    let qid = record["id"].as_str().unwrap().to_owned();
    let marked = format!("/{name}.vigil-quarantine.{qid}");
    assert_eq!(i["Name"], marked.as_str());
    assert_eq!(i["HostConfig"]["NetworkMode"], "host");
    assert_eq!(record["mode"], "enforce");
    assert_eq!(record["kind"], "docker");
    assert_eq!(record["target_name"], name.as_str());
    assert!(
        record["rule"]
            .as_str()
            .unwrap()
            .starts_with("container-escape/"),
        "{record:#}"
    );
    let disconnect = actions(&record, "disconnect");
    assert_eq!(disconnect.len(), 1, "{record:#}");
    assert_eq!(disconnect[0]["outcome"], "skipped");
    assert!(
        disconnect[0]["detail"]
            .as_str()
            .unwrap()
            .contains("host network")
    );
    assert!(
        actions(&record, "pause")
            .iter()
            .any(|a| a["outcome"] == "ok"),
        "{record:#}"
    );
    assert_eq!(actions(&record, "mark").len(), 1, "{record:#}");
    assert_eq!(actions(&record, "mark")[0]["outcome"], "ok");

    // The evidence bundle.
    let dir = PathBuf::from(record["evidence_dir"].as_str().unwrap());
    assert_eq!(dir, data.join("quarantine").join(&qid));
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}; record {record:#}"))
    };
    let inspected: Value = serde_json::from_str(&read("inspect.json")).unwrap();
    assert_eq!(inspected["Id"], id.as_str());
    assert_eq!(
        inspected["Name"],
        format!("/{name}").as_str(),
        "inspect.json is taken before the rename"
    );
    assert_eq!(
        inspected["State"]["Paused"], false,
        "inspect.json is taken before the pause"
    );
    assert!(
        read("logs.txt").contains("stdout ") && read("logs.txt").contains("evasive started"),
        "{}",
        read("logs.txt")
    );
    let changes: Value = serde_json::from_str(&read("changes.json")).unwrap();
    assert!(
        changes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "/tmp/dropped" && c["kind"] == "A"),
        "{changes:#}"
    );
    let top: Value = serde_json::from_str(&read("top.json")).unwrap();
    assert!(top.to_string().contains("sleep 300"), "{top:#}");
    let findings: Vec<Value> = read("findings.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        findings
            .iter()
            .any(|f| f["rule_id"] == "container-escape/host-network")
    );
    let manifest: Value = serde_json::from_str(&read("manifest.json")).unwrap();
    for f in [
        "inspect.json",
        "logs.txt",
        "changes.json",
        "top.json",
        "findings.jsonl",
    ] {
        assert_eq!(
            manifest[f]["sha256"].as_str().map(str::len),
            Some(64),
            "{manifest:#}"
        );
    }
    let on_disk: Value = serde_json::from_str(&read("record.json")).unwrap();
    assert_eq!(on_disk["state"], "quarantined");

    // Recorded as events: log lines (and the counters behind them).
    let logs = vigil.stop();
    assert!(logs.contains("response: QUARANTINING docker"), "{logs}");
    assert!(logs.contains("response: pause done"), "{logs}");

    // Idempotent: a new Vigil finds the (paused) container running again
    // and reports it; the responder does nothing new.
    let actions_before = record["actions"].as_array().unwrap().len();
    let again = start(&data, &flags);
    wait_finding(&again, "container-escape/host-network", &name);
    again.wait_for_stderr("response: target already handled", DEADLINE);
    let records: Vec<Value> = list(&data)
        .into_iter()
        .filter(|r| r["target"] == id.as_str())
        .collect();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        records[0]["actions"].as_array().unwrap().len(),
        actions_before
    );
    assert!(
        records[0]["findings"].as_array().unwrap().len() >= 2,
        "the new finding is attached"
    );
    assert_eq!(inspect(&id)["State"]["Paused"], true);

    // The table.
    let table = quarantine(&data, &["list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("ID  "), "{table}");
    assert!(
        table.contains(&qid) && table.contains("quarantined") && table.contains(&id[..12]),
        "{table}"
    );

    // Release, while Vigil runs.
    let text = release(&data, &qid);
    assert!(
        text.contains(&format!("quarantine {qid}: released")),
        "{text}"
    );
    assert_running_unmarked(&id, &name, "the release");
    let released = list(&data)
        .into_iter()
        .find(|r| r["id"] == qid.as_str())
        .unwrap();
    assert_eq!(released["state"], "released");
    assert_eq!(actions(&released, "unpause")[0]["outcome"], "ok");
    assert_eq!(actions(&released, "unmark")[0]["outcome"], "ok");
    // Releasing twice is refused.
    assert!(!quarantine(&data, &["release", &qid]).status.success());
    drop(again);

    // Released for this rule: a new Vigil reports it but leaves it alone.
    let third = start(&data, &flags);
    wait_finding(&third, "container-escape/host-network", &name);
    third.wait_for_stderr("released by an operator for this rule", DEADLINE);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&id)["State"]["Paused"], false);
}

/// The same container in `dry-run`: left untouched (running, its name,
/// no evidence written); the actions it would have taken are logged and
/// recorded.
#[test]
fn evasive_container_is_left_untouched_in_dry_run() {
    if !docker_ready() {
        return;
    }
    let data = TempDir::new("response-dry-run");
    let tag = unique();
    let vigil = start(
        &data,
        &response_flags("dry-run", "container-escape/*", &tag),
    );
    let name = format!("evasive_container_{tag}");
    let mut cleanup = Containers(Vec::new());
    let id = cleanup.run(&name, &["--network", "host"], &EVASIVE_CMD);

    wait_finding(&vigil, "container-escape/host-network", &name);
    // The planned rename ("mark") is the last step recorded, after the
    // evidence: wait for it rather than read the record in between.
    let record = wait_record(&data, &vigil, &id, |r| {
        r["state"] == "dry-run"
            && !actions(r, "evidence").is_empty()
            && !actions(r, "mark").is_empty()
    });
    vigil.wait_for_stderr("response (dry-run): would quarantine docker", DEADLINE);
    vigil.wait_for_stderr("response (dry-run): would pause", DEADLINE);
    assert_eq!(record["mode"], "dry-run");
    assert_eq!(record["evidence_dir"], "");
    assert_eq!(actions(&record, "pause")[0]["outcome"], "planned");
    assert_eq!(actions(&record, "mark")[0]["outcome"], "planned");
    assert!(
        actions(&record, "mark")[0]["detail"]
            .as_str()
            .unwrap()
            .contains(".vigil-quarantine.")
    );
    assert_eq!(actions(&record, "evidence")[0]["outcome"], "planned");
    assert_eq!(actions(&record, "disconnect")[0]["outcome"], "skipped");
    // Give a wrongly enforcing responder time to act, then check nothing changed.
    std::thread::sleep(Duration::from_secs(1));
    assert_running_unmarked(&id, &name, "dry-run");
    assert!(
        !data
            .join("quarantine")
            .join(record["id"].as_str().unwrap())
            .exists()
    );
    let logs = vigil.stop();
    assert!(!logs.contains("response: pause done"), "{logs}");
}

/// A privileged container on the default bridge network is disconnected
/// from it (and paused when it runs); release reconnects it. Some daemons
/// (this CI's, in a user namespace) cannot start privileged containers: the
/// container then stays `created`, the finding comes from its `create`
/// event, and the quarantine is `partial` (nothing to pause yet).
#[test]
fn privileged_bridge_container_is_disconnected_and_release_reconnects_it() {
    if !docker_ready() {
        return;
    }
    let data = TempDir::new("response-privileged");
    let tag = unique();
    let vigil = start(
        &data,
        &response_flags("enforce", "container-escape/privileged", &tag),
    );
    let name = format!("vigil_priv_{tag}");
    let mut cleanup = Containers(vec![name.clone()]);
    // By id: Vigil may rename it before the test looks.
    let id = docker(&[
        "create",
        "--name",
        &name,
        "--label",
        LABEL,
        "--privileged",
        IMAGE,
        "sleep",
        "300",
    ]);
    // By id too: Vigil renames what it quarantines.
    cleanup.0.push(id.clone());
    let created = Command::new("docker")
        .args(["start", &id])
        .output()
        .unwrap();
    let started = created.status.success();
    if !started {
        eprintln!(
            "NOTE: this daemon cannot start privileged containers ({}); testing the created one",
            String::from_utf8_lossy(&created.stderr).trim()
        );
    }
    wait_finding(&vigil, "container-escape/privileged", &id[..12]);
    let want = if started { "quarantined" } else { "partial" };
    let record = wait_record(&data, &vigil, &id, |r| r["state"] == want);
    let disconnect = actions(&record, "disconnect");
    assert_eq!(disconnect.len(), 1, "{record:#}");
    assert_eq!(disconnect[0]["outcome"], "ok");
    assert!(
        disconnect[0]["detail"]
            .as_str()
            .unwrap()
            .contains("network bridge")
    );
    assert_eq!(record["detail"]["networks"][0]["name"], "bridge");
    let i = inspect(&id);
    assert!(
        networks(&i).is_empty(),
        "still connected: {:?}",
        networks(&i)
    );
    assert_eq!(i["State"]["Paused"], started);
    if !started {
        assert_eq!(actions(&record, "pause")[0]["outcome"], "skipped");
    }

    release(&data, record["id"].as_str().unwrap());
    let i = inspect(&id);
    assert_eq!(networks(&i), ["bridge"]);
    assert_eq!(i["State"]["Paused"], false);
    assert_eq!(i["Name"], format!("/{name}").as_str());
    drop(vigil);
}

/// A running container on the default bridge with `CAP_SYS_ADMIN` (high):
/// disconnected *and* paused, evidence written; release reconnects it (it
/// gets an address again) and unpauses it.
#[test]
fn running_bridge_container_is_disconnected_paused_and_restored() {
    if !docker_ready() {
        return;
    }
    let data = TempDir::new("response-bridge");
    let tag = unique();
    let vigil = start(
        &data,
        &response_flags("enforce", "container-escape/dangerous-capability", &tag),
    );
    let name = format!("vigil_sysadmin_{tag}");
    let mut cleanup = Containers(Vec::new());
    let id = cleanup.run(&name, &["--cap-add", "SYS_ADMIN"], &["sleep", "300"]);

    wait_finding(&vigil, "container-escape/dangerous-capability", &name);
    let record = wait_record(&data, &vigil, &id, |r| r["state"] == "quarantined");
    let i = inspect(&id);
    assert!(networks(&i).is_empty(), "{:?}", networks(&i));
    assert_eq!(i["State"]["Paused"], true);
    assert_eq!(actions(&record, "disconnect")[0]["outcome"], "ok");
    assert_eq!(
        record["detail"]["networks"][0]["name"], "bridge",
        "{record:#}"
    );

    let text = release(&data, record["id"].as_str().unwrap());
    assert!(
        text.contains("reconnect") && text.contains("unpause"),
        "{text}"
    );
    let i = inspect(&id);
    assert_eq!(networks(&i), ["bridge"]);
    assert!(
        !i["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(i["State"]["Running"], true);
    assert_eq!(i["State"]["Paused"], false);
    drop(vigil);
}

/// `[response]` in the config file is applied by a reload: off at start
/// (nothing recorded), then `dry-run` after the file changes.
#[test]
fn a_config_reload_turns_the_response_on() {
    if !docker_ready() {
        return;
    }
    let data = TempDir::new("response-reload");
    let tag = unique();
    let config = data.join("vigil.toml");
    std::fs::write(&config, "[response]\nmode = \"off\"\n").unwrap();
    let config_arg = config.to_string_lossy().into_owned();
    let vigil = start(&data, &["--config", &config_arg]);
    vigil.wait_for_stderr("response: off", DEADLINE);
    let before = format!("evasive_before_{tag}");
    let after = format!("evasive_after_{tag}");
    let mut cleanup = Containers(Vec::new());
    let before_id = cleanup.run(&before, &["--network", "host"], &["sleep", "300"]);
    wait_finding(&vigil, "container-escape/host-network", &before);

    std::fs::write(
        &config,
        format!(
            "[response]\nmode = \"dry-run\"\n[[response.rules]]\nrule = \"container-escape/*\"\n[response.docker]\ninclude = [\"*_{tag}\"]\n"
        ),
    )
    .unwrap();
    vigil.wait_for_stderr("response: settings reloaded", DEADLINE);
    let after_id = cleanup.run(&after, &["--network", "host"], &["sleep", "300"]);
    wait_finding(&vigil, "container-escape/host-network", &after);
    wait_record(&data, &vigil, &after_id, |r| r["state"] == "dry-run");
    assert!(
        list(&data)
            .iter()
            .all(|r| r["target"] != before_id.as_str()),
        "a finding made while the response was off got a response"
    );
}

/// `[response.docker] exempt` and `include` from the config file: two
/// containers with `CAP_SYS_ADMIN` (a verified critical-or-high finding
/// each, under `enforce`); the one matching `exempt` is left exactly as it
/// was (logged and counted as exempt, no record), the other one, matched
/// by `include`, is quarantined — so the exemption, not a broken finding
/// path, is what spared the first.
#[test]
fn an_exempt_container_is_left_untouched_in_enforce_mode() {
    if !docker_ready() {
        return;
    }
    let data = TempDir::new("response-exempt");
    let tag = unique();
    let config = data.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[response]\nmode = \"enforce\"\nrules = [{{ rule = \"container-escape/dangerous-capability\" }}]\n\
             [response.docker]\ninclude = [\"*_{tag}\"]\nexempt = [\"spared_*\"]\n"
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let vigil = start(&data, &["--config", cfg]);
    let spared = format!("spared_sysadmin_{tag}");
    let hit = format!("hit_sysadmin_{tag}");
    let mut cleanup = Containers(Vec::new());
    let spared_id = cleanup.run(&spared, &["--cap-add", "SYS_ADMIN"], &["sleep", "300"]);
    let before = inspect(&spared_id);
    let hit_id = cleanup.run(&hit, &["--cap-add", "SYS_ADMIN"], &["sleep", "300"]);

    let f = wait_finding(&vigil, "container-escape/dangerous-capability", &spared);
    let verified = f["entities"].as_array().unwrap().iter().any(|e| {
        e["kind"] == "container" && e["id"] == spared_id.as_str() && e["verified"] == true
    });
    assert!(
        verified,
        "the finding names the spared container, verified: {f:#}"
    );
    vigil.wait_for_showing(
        "the exemption logged for the spared container",
        DEADLINE,
        || {
            vigil
                .stderr_text()
                .lines()
                .any(|l| {
                    l.contains("response: target exempt; not quarantined")
                        && l.contains(&spared_id)
                        && l.contains("matches response.docker.exempt")
                })
                .then_some(())
        },
        || vigil.stderr_text(),
    );
    // The other one, same rule, same run: quarantined.
    wait_record(&data, &vigil, &hit_id, |r| r["state"] == "quarantined");
    assert!(
        !list(&data)
            .iter()
            .any(|r| r["target"] == spared_id.as_str()),
        "no record for the exempt container"
    );
    let now = inspect(&spared_id);
    assert_eq!(now["State"]["Paused"], false, "{now:#}");
    assert_eq!(now["Name"], format!("/{spared}").as_str());
    assert_eq!(networks(&now), networks(&before));
    drop(vigil);
}
