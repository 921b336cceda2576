//! The fleet as it is deployed, on the real Docker Engine (issue 13): every
//! part a container on a private network this test creates, nothing pulled.
//!
//! - NATS with JetStream: Debian's `nats-server` (`scripts/test-deps.sh`) in
//!   a `FROM scratch` image built here, its store on a volume, its client
//!   port published on loopback only so the test can provision the stream
//!   (and read it back) from the host.
//! - Three nodes n1..n3: containers of the project's image (the Dockerfile's
//!   `runtime` stage over deploy/rootfs.sh, as `deploy_image.rs` builds it),
//!   each `vigil run --node nN` with its own data directory volume, tailing
//!   a bind-mounted Kubernetes audit log the test appends privileged-pod
//!   events to (findings without Docker events), publishing findings
//!   (spooled) and heartbeats to NATS by its network alias.
//! - Two `vigil fleet` containers, active and standby, writing their picture
//!   and their fleet findings to a bind-mounted directory.
//!
//! One scenario, in order, each step on the state the last left:
//! (a) the fleet sees every node's findings exactly once; (b) `docker kill`
//! of the active fleet: the standby is active within the lease TTL; (c)
//! `docker kill` of a node: `fleet/node-silent` for it within its heartbeat
//! timeout; (d) a node cut off the network (`docker network disconnect`)
//! keeps its findings in its spool and delivers them once reconnected; (e)
//! NATS stopped and started again (store on its volume): findings made
//! meanwhile arrive. Throughout, the stream holds each node finding once
//! and no fleet finding is reported twice over both fleet instances.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_test_support::docker::image::{Image, build_binary_image, build_vigil_image};
use vigil_test_support::docker::network::{Network, Volume, logs};
use vigil_test_support::docker::{Containers, LABEL, docker, docker_ready};
use vigil_test_support::fixtures::{
    QUIET_SOURCES, append, audit_line, falco_event, nats_server_binary,
};
use vigil_test_support::output::read_jsonl;
use vigil_test_support::{TempDir, unique, wait_until};

/// Heartbeat interval of the nodes, intervals a node may miss, and the
/// lease TTL of the fleet: short, so the scenario takes about two minutes.
const INTERVAL_MS: u64 = 500;
const MISSED: u64 = 4;
const TTL_MS: u64 = 3_000;

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// NATS inside the image: JetStream on, its store on the volume at /data.
const NATS_CONF: &str = "listen: 0.0.0.0:4222\njetstream {\n  store_dir: \"/data\"\n}\n";

/// Everything the scenario creates. Fields drop in order: the containers
/// first, then the volumes and the network they used, the images, and the
/// host directory. When the test fails, every container's log is printed
/// first.
struct Fleet {
    containers: Containers,
    _volumes: Vec<Volume>,
    net: Network,
    _images: [Image; 2],
    vigil_image: String,
    dir: TempDir,
    /// Container names: `nats`, `n1`..`n3`, `fleet-a`, `fleet-b`.
    names: BTreeMap<&'static str, String>,
    /// Audit events appended per node (their ids).
    events: HashMap<&'static str, usize>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (what, name) in &self.names {
            let (out, err) = logs(name);
            let tail = |s: &str| {
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(60)..].join("\n")
            };
            eprintln!(
                "==== {what} ({name}) stdout ====\n{}\n==== {what} stderr ====\n{}",
                tail(&out),
                tail(&err)
            );
        }
    }
}

impl Fleet {
    fn name(&self, what: &str) -> &str {
        &self.names[what]
    }

    /// `docker run -d` on the test's network, labelled and guarded.
    fn run(&mut self, what: &'static str, opts: &[&str], image: &str, cmd: &[&str]) {
        let name = format!("vt-{what}-{}", self.id());
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            LABEL,
            "--network",
            self.net.name(),
        ];
        args.extend_from_slice(opts);
        args.push(image);
        args.extend_from_slice(cmd);
        self.containers.0.push(name.clone());
        self.names.insert(what, name.clone());
        docker(&args);
    }

    fn id(&self) -> &str {
        self.net.name().trim_start_matches("vt-net-")
    }

    /// The host port NATS's 4222 is published on (it may change when the
    /// container is started again).
    fn nats_port(&self) -> u16 {
        let out = docker(&["port", self.name("nats"), "4222/tcp"]);
        let line = out.lines().next().unwrap_or_default();
        line.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no published port in {out:?}"))
    }

    fn start_nats(&mut self, image: &str, store: &str) {
        let volume = format!("{store}:/data");
        self.run(
            "nats",
            &[
                "--network-alias",
                "nats",
                "-p",
                "127.0.0.1::4222",
                "-v",
                &volume,
            ],
            image,
            &[],
        );
    }

    fn start_node(&mut self, node: &'static str, data: &str) {
        let audit = self.dir.join(format!("audit-{node}"));
        std::fs::create_dir_all(&audit).unwrap();
        std::fs::write(audit.join("audit.log"), "").unwrap();
        let mounts = [
            format!("{data}:/var/lib/vigil"),
            format!("{}:/conf:ro", self.dir.join("conf").display()),
            format!("{}:/audit:ro", audit.display()),
        ];
        let image = self.vigil_image.clone();
        self.run(
            node,
            &[
                "--hostname",
                node,
                "-v",
                &mounts[0],
                "-v",
                &mounts[1],
                "-v",
                &mounts[2],
            ],
            &image,
            &[
                "run",
                "--config",
                "/conf/node.toml",
                "--node",
                node,
                "--data-dir",
                "/var/lib/vigil",
                "--audit-log",
                "/audit/audit.log",
                "--audit-log-from-beginning",
            ],
        );
    }

    fn start_fleet(&mut self, which: &'static str) {
        let mounts = [
            format!("{}:/conf:ro", self.dir.join("conf").display()),
            format!("{}:/out", self.dir.join("out").display()),
        ];
        let image = self.vigil_image.clone();
        let config = format!("/conf/{which}.toml");
        self.run(
            which,
            &["-v", &mounts[0], "-v", &mounts[1]],
            &image,
            &["fleet", "--config", &config, "--node", which],
        );
    }

    /// One more privileged-pod audit event on `node`: findings there.
    fn event(&mut self, node: &'static str) {
        let n = self.events.entry(node).or_default();
        *n += 1;
        let id = format!("{node}-{n}");
        append(
            &self.dir.join(format!("audit-{node}/audit.log")),
            &audit_line(&falco_event("create_nginx_pod_privileged.json"), &id),
        );
    }

    /// The findings `node` wrote on its stdout.
    fn node_findings(&self, node: &str) -> Vec<Value> {
        let (out, _) = logs(self.name(node));
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|f| f.get("rule_id").is_some())
            .collect()
    }

    /// The picture `fleet-a` or `fleet-b` last wrote.
    fn state(&self, which: &str) -> Value {
        std::fs::read_to_string(self.dir.join(format!("out/{which}.json")))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }

    fn running(&self, what: &str) -> bool {
        docker(&["inspect", "-f", "{{.State.Running}}", self.name(what)]) == "true"
    }

    fn active(&self, which: &str) -> bool {
        self.state(which)["active"] == true && self.running(which)
    }

    /// Findings of `node` in `which`'s picture.
    fn seen(&self, which: &str, node: &str) -> usize {
        let n = self.state(which)["picture"]["nodes"][node]["findings"]
            .as_u64()
            .unwrap_or(0);
        usize::try_from(n).unwrap()
    }

    /// The fleet findings `which` wrote to its file output.
    fn fleet_findings(&self, which: &str) -> Vec<Value> {
        read_jsonl(&self.dir.join(format!("out/{which}.jsonl")))
    }

    /// What the test was looking at, for a failed wait.
    fn show(&self) -> String {
        let mut s = String::new();
        for which in ["fleet-a", "fleet-b"] {
            s.push_str(&format!("{which}: {}\n", self.state(which)));
        }
        for node in NODES {
            s.push_str(&format!(
                "{node}: {} findings\n",
                self.node_findings(node).len()
            ));
        }
        s
    }

    fn wait(&self, what: &str, timeout: Duration, done: impl FnMut() -> bool) {
        wait_until(what, timeout, done, || self.show());
    }

    /// Waits until `node` has written `at_least` findings and then nothing
    /// more for 2 s (the built-in `incident` may add one after the first
    /// two); returns the count.
    fn settled(&self, node: &str, at_least: usize) -> usize {
        self.wait(
            &format!("{at_least} findings of {node}"),
            Duration::from_secs(60),
            || self.node_findings(node).len() >= at_least,
        );
        let mut last = self.node_findings(node).len();
        let mut since = Instant::now();
        self.wait(
            &format!("{node}'s findings settled"),
            Duration::from_secs(30),
            || {
                let now = self.node_findings(node).len();
                if now != last {
                    last = now;
                    since = Instant::now();
                }
                since.elapsed() >= Duration::from_secs(2)
            },
        );
        last
    }

    /// Waits until `which` has seen exactly `count` findings of `node`
    /// (no fewer, and a second later still no more).
    fn sees_exactly(&self, which: &str, node: &str, count: usize, timeout: Duration) {
        self.wait(
            &format!("{which} seeing {count} findings of {node}"),
            timeout,
            || self.seen(which, node) >= count,
        );
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            self.seen(which, node),
            count,
            "{which} saw {node}'s findings more than once\n{}",
            self.show()
        );
    }
}

fn write_configs(dir: &Path) {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(
        conf.join("node.toml"),
        format!(
            r#"{QUIET_SOURCES}
[dedup]
window_secs = 0
[spool]
shutdown_grace_ms = 200
[heartbeat]
enabled = true
interval_ms = {INTERVAL_MS}
[[outputs.nats]]
url = "nats://nats:4222"
subject = "vigil.findings"
stream = "VIGIL"
timeout_ms = 1000
retry = {{ initial_ms = 100, max_ms = 500 }}
"#
        ),
    )
    .unwrap();
    for which in ["fleet-a", "fleet-b"] {
        std::fs::write(
            conf.join(format!("{which}.toml")),
            format!(
                r#"
[dedup]
window_secs = 0
[spool]
shutdown_grace_ms = 200
[fleet]
url = "nats://nats:4222"
timeout_ms = 1000
lease_ttl_ms = {TTL_MS}
missed_heartbeats = {MISSED}
state_file = "/out/{which}.json"
[[outputs.file]]
path = "/out/{which}.jsonl"
"#
            ),
        )
        .unwrap();
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The stream an operator provisions, created from the host through the
/// published port once the server answers.
fn create_stream(port: u16) {
    let start = Instant::now();
    loop {
        let r = block_on(async {
            let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
                .await
                .map_err(|e| e.to_string())?;
            let js = async_nats::jetstream::new(client);
            js.create_stream(async_nats::jetstream::stream::Config {
                name: "VIGIL".into(),
                subjects: vec!["vigil.findings".into(), "vigil.heartbeat.>".into()],
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        });
        match r {
            Ok(()) => return,
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(30),
                "cannot create the stream: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The id of every finding stored on `vigil.findings`, in stream order.
fn stream_ids(port: u16) -> Vec<String> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    use futures_util::StreamExt;
    block_on(async {
        let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("VIGIL").await.unwrap();
        let info = stream.info().await.unwrap();
        if info.state.messages == 0 {
            return Vec::new();
        }
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: "vigil.findings".into(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut ids = Vec::new();
        while let Ok(Some(msg)) =
            tokio::time::timeout(Duration::from_secs(2), messages.next()).await
        {
            let msg = msg.unwrap();
            let v: Value = serde_json::from_slice(&msg.payload).unwrap();
            ids.push(v["id"].as_str().unwrap_or_default().to_owned());
            if msg.info().is_ok_and(|i| i.pending == 0) {
                break;
            }
        }
        ids
    })
}

fn about(f: &Value) -> &str {
    f["entities"][0]["id"].as_str().unwrap_or_default()
}

#[test]
fn a_fleet_of_containers_survives_takeover_node_loss_partition_and_a_nats_restart() {
    if !docker_ready() {
        return;
    }
    let id = unique().replace('_', "-");
    let dir = TempDir::new("fleet-containers");
    write_configs(dir.path());
    let vigil_image = build_vigil_image(
        env!("CARGO_BIN_EXE_vigil").as_ref(),
        &format!("vigil-test/vigil:fleet-{id}"),
    );
    let nats_image = build_binary_image(
        &format!("vigil-test/nats:fleet-{id}"),
        &nats_server_binary(),
        &[("/etc/nats.conf", NATS_CONF)],
        &["-c", "/etc/nats.conf"],
    );
    let volumes = vec![
        Volume::create(&format!("vt-js-{id}")),
        Volume::create(&format!("vt-data-n1-{id}")),
        Volume::create(&format!("vt-data-n2-{id}")),
        Volume::create(&format!("vt-data-n3-{id}")),
    ];
    let store = volumes[0].name().to_owned();
    let data: Vec<String> = volumes[1..].iter().map(|v| v.name().to_owned()).collect();
    let mut f = Fleet {
        containers: Containers(Vec::new()),
        _volumes: volumes,
        net: Network::create(&format!("vt-net-{id}")),
        vigil_image: vigil_image.tag().to_owned(),
        _images: [vigil_image, nats_image],
        dir,
        names: BTreeMap::new(),
        events: HashMap::new(),
    };
    let nats_tag = f._images[1].tag().to_owned();
    f.start_nats(&nats_tag, &store);
    create_stream(f.nats_port());

    f.start_fleet("fleet-a");
    f.wait("fleet-a active", Duration::from_secs(60), || {
        f.active("fleet-a")
    });
    f.start_fleet("fleet-b");
    for (node, data) in NODES.into_iter().zip(&data) {
        f.start_node(node, data);
    }

    // (a) Every node's findings, seen once by the active fleet.
    for node in NODES {
        f.event(node);
    }
    let mut made = HashMap::new();
    for node in NODES {
        // The privileged pod trips container-escape/privileged.
        made.insert(node, f.settled(node, 1));
    }
    for node in NODES {
        f.sees_exactly("fleet-a", node, made[node], Duration::from_secs(60));
    }
    assert!(!f.active("fleet-b"), "both active: {}", f.show());

    // (b) The active fleet killed: the standby is active within the TTL
    // (plus a renewal period and the fetch loop's step).
    docker(&["kill", f.name("fleet-a")]);
    let killed = Instant::now();
    f.wait(
        "fleet-b active after fleet-a was killed",
        Duration::from_millis(TTL_MS + 4_000),
        || f.active("fleet-b"),
    );
    eprintln!("standby active after {:?}", killed.elapsed());
    // It reads on from the durable position: new findings, once.
    let before = f.node_findings("n1").len();
    f.event("n1");
    let n1_new = f.settled("n1", before + 1) - before;
    f.sees_exactly("fleet-b", "n1", n1_new, Duration::from_secs(30));

    // (c) A node killed: node-silent within its heartbeat timeout.
    docker(&["kill", f.name("n3")]);
    let stopped = Instant::now();
    f.wait(
        "fleet/node-silent for n3",
        Duration::from_millis(INTERVAL_MS * MISSED + 5_000),
        || {
            f.fleet_findings("fleet-b")
                .iter()
                .any(|x| x["rule_id"] == "fleet/node-silent" && about(x) == "n3")
        },
    );
    eprintln!("node-silent after {:?}", stopped.elapsed());

    // (d) n2 cut off NATS: its findings wait in its spool, then arrive
    // once it is back, each once.
    docker(&["network", "disconnect", f.net.name(), f.name("n2")]);
    let before = f.node_findings("n2").len();
    f.event("n2");
    let n2_new = f.settled("n2", before + 1) - before;
    assert_eq!(
        f.seen("fleet-b", "n2"),
        0,
        "n2's findings reached the fleet while n2 was disconnected\n{}",
        f.show()
    );
    docker(&["network", "connect", f.net.name(), f.name("n2")]);
    f.sees_exactly("fleet-b", "n2", n2_new, Duration::from_secs(60));

    // (e) NATS stopped (its store on the volume) and started again; a
    // finding made meanwhile arrives, once, and the fleet goes on.
    docker(&["stop", "-t", "2", f.name("nats")]);
    let before = f.node_findings("n1").len();
    f.event("n1");
    let n1_more = f.settled("n1", before + 1) - before;
    docker(&["start", f.name("nats")]);
    f.sees_exactly("fleet-b", "n1", n1_new + n1_more, Duration::from_secs(60));
    f.wait(
        "fleet-b active after NATS restart",
        Duration::from_secs(30),
        || f.active("fleet-b"),
    );

    // The stream holds every node finding once (Nats-Msg-Id dedup over the
    // spool's retries), and every one a node wrote is there.
    let stored = stream_ids(f.nats_port());
    let mut count: HashMap<&str, usize> = HashMap::new();
    for s in &stored {
        *count.entry(s.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    for node in NODES {
        for finding in f.node_findings(node) {
            let fid = finding["id"].as_str().unwrap();
            assert!(
                count.contains_key(fid),
                "{node}'s finding {fid} is not in the stream"
            );
        }
    }

    // No fleet finding reported twice over both instances; no node runs
    // another plugin than the fleet's majority (one image for all).
    let mut all = f.fleet_findings("fleet-a");
    all.extend(f.fleet_findings("fleet-b"));
    let mut ids: HashMap<String, usize> = HashMap::new();
    for x in &all {
        *ids.entry(x["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "reported twice: {twice:?}\n{all:#?}");
    assert!(
        !all.iter()
            .any(|x| x["rule_id"] == "fleet/plugin-digest-differs"),
        "{all:#?}"
    );
    let silent: Vec<&str> = all
        .iter()
        .filter(|x| x["rule_id"] == "fleet/node-silent")
        .map(about)
        .collect();
    assert!(silent.contains(&"n3"), "{all:#?}");
}
