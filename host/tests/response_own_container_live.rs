//! Vigil inside a container of the project's image (deploy/Dockerfile's
//! `runtime` stage over deploy/rootfs.sh, built here from the binary under
//! test), with the Docker socket mounted and `--response enforce`: a plugin
//! (`tests/plugins/hostile-redirect`, built from source) reports Vigil's own
//! container, by its name, citing the inventory event about it — so the
//! entity is verified — and Vigil must never quarantine itself. It knows its
//! container from what the Engine returns for the full id, compared with its
//! own process's mount table (see `vigil_response::own`), not from the name.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::time::Duration;

use serde_json::Value;
use vigil_test_support::docker::image::build_vigil_image;
use vigil_test_support::docker::network::logs;
use vigil_test_support::docker::{Containers, LABEL, docker, docker_ready};
use vigil_test_support::fixtures::hostile_dir;
use vigil_test_support::{TempDir, unique, wait_until};

const PLUGIN: &str = "hostile-redirect";
const STARTUP: Duration = Duration::from_secs(120);

fn inspect(container: &str) -> Value {
    serde_json::from_str::<Vec<Value>>(&docker(&["inspect", container]))
        .unwrap()
        .remove(0)
}

#[test]
fn vigil_in_a_container_never_quarantines_its_own_container() {
    if !docker_ready() {
        return;
    }
    let tag = unique();
    let image = build_vigil_image(
        env!("CARGO_BIN_EXE_vigil").as_ref(),
        &format!("vigil-test/vigil:own-{}", tag.replace('_', "-")),
    );
    let dir = TempDir::new("response-own");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        hostile_dir().join("hostile_redirect.wasm"),
        plugins.join(format!("{PLUGIN}.wasm")),
    )
    .unwrap();
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("vigil.toml"),
        format!("[plugins.policy.{PLUGIN}]\nresponse = true\n"),
    )
    .unwrap();
    // Every container whose name ends with the tag: Vigil's own only.
    std::fs::write(
        conf.join("redirect.json"),
        serde_json::json!({"target": "@shown-name", "suffix": format!("_{tag}")}).to_string(),
    )
    .unwrap();

    let name = format!("vigil_self_{tag}");
    let cleanup = Containers(vec![name.clone()]);
    let mounts = [
        "/var/run/docker.sock:/var/run/docker.sock".to_owned(),
        format!("{}:/plugins:ro", plugins.display()),
        format!("{}:/conf:ro", conf.display()),
    ];
    let include = format!("*_{tag}");
    let settings = format!("{PLUGIN}=/conf/redirect.json");
    let rule = format!("{PLUGIN}/*");
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        LABEL,
        "--tmpfs",
        "/var/lib/vigil",
        "-v",
        &mounts[0],
        "-v",
        &mounts[1],
        "-v",
        &mounts[2],
        image.tag(),
        "run",
        "--config",
        "/conf/vigil.toml",
        "--data-dir",
        "/var/lib/vigil",
        "--no-cache",
        "--no-builtin",
        "--no-network",
        "--no-file-integrity",
        "--no-k8s-watch",
        "--no-admin",
        "--node",
        "own-container-test",
        "--plugin-dir",
        "/plugins",
        "--plugin-settings",
        &settings,
        "--response",
        "enforce",
        "--response-rule",
        &rule,
        "--response-include",
        &include,
    ]);
    let id = inspect(&name)["Id"].as_str().unwrap().to_owned();
    let before = inspect(&id);
    wait_until(
        "the own-container refusal",
        STARTUP,
        || {
            logs(&name).1.lines().any(|l| {
                l.contains("response: finding about Vigil's own container; never quarantined")
                    && l.contains(&id)
            })
        },
        || {
            let (out, err) = logs(&name);
            format!("{err}\n{out}")
        },
    );
    let (out, err) = logs(&name);
    // The finding was verified (it cites the event about the container):
    // what spared the container is the self-protection, not verification.
    let finding: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|f| f["rule_id"] == "hostile-redirect/redirect")
        .unwrap_or_else(|| panic!("no finding on stdout:\n{out}\n{err}"));
    assert!(
        finding["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "container" && e["id"] == id.as_str() && e["verified"] == true),
        "{finding:#}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let now = inspect(&id);
    assert_eq!(now["State"]["Running"], true, "{now:#}");
    assert_eq!(now["State"]["Paused"], false, "{now:#}");
    assert_eq!(now["Name"], format!("/{name}").as_str());
    assert_eq!(
        now["NetworkSettings"]["Networks"],
        before["NetworkSettings"]["Networks"]
    );
    let err = logs(&name).1;
    assert!(!err.contains("QUARANTINING"), "{err}");
    drop(cleanup);
    drop(image);
}
