//! Throughput of the plugin runtime and of `vigil replay`, with a native
//! baseline run in the same process so that ratios hold on a noisy machine.
//!
//! `cargo bench -p vigil --bench runtime` (or `cargo xtask bench`) prints a
//! Markdown table; BENCHMARKS.md records the numbers. Single-threaded: each
//! figure is events per second on one core.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and benchmarks fail loudly on broken fixtures"
)]

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use container_escape::ContainerEscape;
use vigil::replay::{ReplayOptions, replay};
use vigil_core::model::Event;
use vigil_normalize::{Format, Origin, for_each_record};
use vigil_plugin_sdk::Detector;
use vigil_runtime::plugin_set::PluginSelection;
use vigil_runtime::{
    Allocator, CallOutcome, Clock, EngineSettings, Identity, PluginLimits, PluginOrigin,
    PluginSpec, ReplayClock, RunContext, Runtime,
};
use vigil_sources::Source as _;
use vigil_test_support::{corpus, to_sdk};

#[path = "runtime/callgrind.rs"]
mod callgrind;
#[path = "runtime/subscriptions.rs"]
mod subscriptions;

const MIN_TIME: Duration = Duration::from_millis(1500);
const ROUNDS: usize = 3;

/// Runs `f` (which processes `n` events) until MIN_TIME has passed; best of ROUNDS, in events/s.
fn rate(n: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut iters = 0usize;
        while started.elapsed() < MIN_TIME {
            f();
            iters += 1;
        }
        best = best.max((iters * n) as f64 / started.elapsed().as_secs_f64());
    }
    best
}

fn fmt(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else {
        format!("{:.0}k", r / 1e3)
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
}

fn ctx() -> RunContext {
    RunContext {
        clock: Clock::Replay(ReplayClock::new()),
        intel: Arc::new(RwLock::new(Arc::default())),
        state_dir: None,
    }
}

/// The built-in container-escape, or the component at
/// `VIGIL_BENCH_COMPONENT` (another build of it, to compare two builds with
/// one bench binary).
fn spec() -> PluginSpec {
    let bytes: Arc<[u8]> = match std::env::var_os("VIGIL_BENCH_COMPONENT") {
        Some(path) => Arc::from(std::fs::read(&path).expect("VIGIL_BENCH_COMPONENT is readable")),
        None => Arc::from(vigil_runtime::builtin::bytes("container-escape").expect("built-in")),
    };
    PluginSpec {
        origin: PluginOrigin::Builtin("container-escape"),
        identity: Identity::Named("container-escape".into()),
        bytes,
        settings: "{}".into(),
        limits: PluginLimits::default(),
        policy: Default::default(),
    }
}

/// A live-like mix: mostly container lifecycle events, some audit events
/// with full pod specs (the corpus cycled to `n` events).
fn mixed(n: usize) -> Vec<Event> {
    let base = corpus::corpus();
    base.iter().cycle().take(n).cloned().collect()
}

/// The engine settings of the bench: `vigil`'s own, except that
/// `VIGIL_BENCH_ALLOCATOR=on-demand` swaps the pooling allocator for
/// wasmtime's on-demand one, which valgrind can run.
fn engine_settings() -> EngineSettings {
    let allocator = match std::env::var("VIGIL_BENCH_ALLOCATOR").as_deref() {
        Err(_) | Ok("pooling") => Allocator::Pooling,
        Ok("on-demand") => Allocator::OnDemand,
        Ok(other) => panic!("VIGIL_BENCH_ALLOCATOR={other}: expected pooling or on-demand"),
    };
    EngineSettings {
        allocator,
        perf_map: std::env::var_os("VIGIL_BENCH_PERF_MAP").is_some(),
        ..EngineSettings::default()
    }
}

fn main() {
    // cargo passes `--bench`; every other argument is the filter and, for
    // `plugin-count`, its case.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let filter = args.first().cloned();
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let runtime = Runtime::new(&engine_settings(), None).expect("runtime");
    if callgrind::run(&runtime, &args) {
        return;
    }

    for (label, events) in [
        ("typical live mix", corpus::typical(4096)),
        (
            "pod-spec-heavy mix (Falco audit fixtures + Docker)",
            mixed(4096),
        ),
    ] {
        if !want("plugin") {
            break;
        }
        println!("## container-escape through the runtime, {label} (one core)\n");
        println!("| batch | Wasm events/s | native events/s | Wasm / native time |");
        println!("|---|---|---|---|");
        for batch in [1usize, 16, 256] {
            let mut runner = runtime.load(spec(), &ctx()).expect("load");
            let wasm = rate(events.len(), || {
                for chunk in events.chunks(batch) {
                    let CallOutcome::Findings(f) = runner.on_events(chunk) else {
                        panic!("plugin failed")
                    };
                    black_box(f);
                }
            });
            let mut native = ContainerEscape::default();
            native.configure("{}").expect("settings");
            let native_rate = rate(events.len(), || {
                for chunk in events.chunks(batch) {
                    // The same copy the Wasm boundary makes, then the same logic.
                    let sdk: Vec<_> = chunk.iter().map(to_sdk::event).collect();
                    black_box(native.on_events(&sdk));
                }
            });
            println!(
                "| {batch} | {} | {} | {:.2}× |",
                fmt(wasm),
                fmt(native_rate),
                native_rate / wasm
            );
        }
        println!();
        // Part of every `on-events` above: what the host notes of each batch
        // so that the plugin's findings can be checked against it.
        let mut window = vigil_core::subjects::SubjectWindow::default();
        let record = rate(events.len(), || {
            for chunk in events.chunks(256) {
                window.record(chunk);
            }
        });
        println!(
            "Subject window (`SubjectWindow::record`, batch 256): {} events/s, {:.0} ns per event\n",
            fmt(record),
            1e9 / record
        );
    }

    if want("subscription") {
        subscriptions::idle_plugin_cost(&runtime);
    }

    if want("foreign") {
        foreign(&runtime);
    }

    if want("start") {
        println!(
            "## plugin start (container-escape, {} KiB)\n",
            vigil_runtime::builtin::bytes("container-escape").map_or(0, <[u8]>::len) / 1024
        );
        let dir = std::env::temp_dir().join(format!("vigil-bench-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cached = Runtime::new(&engine_settings(), Some(&dir)).expect("runtime");
        let t = Instant::now();
        let cold = cached.load(spec(), &ctx()).expect("load");
        let cold_total = t.elapsed();
        let t = Instant::now();
        let warm = cached.load(spec(), &ctx()).expect("load");
        let warm_total = t.elapsed();
        println!(
            "| start | compile or cache load | total load (validate, instantiate, describe, configure) |"
        );
        println!("|---|---|---|");
        println!(
            "| cold (compile) | {:.1} ms | {:.1} ms |",
            cold.plugin().compile.duration.as_secs_f64() * 1e3,
            cold_total.as_secs_f64() * 1e3
        );
        println!(
            "| warm (from cache) | {:.1} ms | {:.1} ms |",
            warm.plugin().compile.duration.as_secs_f64() * 1e3,
            warm_total.as_secs_f64() * 1e3
        );
        println!();
        let _ = std::fs::remove_dir_all(&dir);
    }

    if want("sources") {
        println!("## Source normalisation (one core)\n");
        println!("| source | input | events/s |");
        println!("|---|---|---|");
        let origin = Origin {
            node: "bench",
            source: "bench",
        };
        // What the Docker source does for every create/start/inventory: an
        // inspect response into a container event.
        let inspect = br#"{"Id":"4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c","Name":"/shop_web_1","Created":"2024-05-01T10:00:00.123456789Z","Image":"sha256:0d1e2f3a4b5c6d7e8f9a0b1c4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c","State":{"Running":true,"StartedAt":"2024-05-01T10:00:01.5Z","FinishedAt":"0001-01-01T00:00:00Z"},"Config":{"Image":"registry.local/shop/web:1.4.2","User":"1000","Labels":{"com.docker.compose.project":"shop","com.docker.compose.service":"web","com.docker.compose.version":"2.24.0","maintainer":"shop team"}},"HostConfig":{"NetworkMode":"shop_default","PidMode":"","IpcMode":"private","CgroupnsMode":"host","Privileged":false,"CapAdd":null,"CapDrop":["NET_RAW"],"SecurityOpt":["no-new-privileges:true"],"LogConfig":{"Type":"json-file"},"RestartPolicy":{"Name":"unless-stopped"},"ReadonlyRootfs":false,"Runtime":"runc"},"Mounts":[{"Type":"volume","Name":"shop_data","Source":"/var/lib/docker/volumes/shop_data/_data","Destination":"/data","RW":true},{"Type":"bind","Source":"/srv/shop/config","Destination":"/etc/shop","RW":false}]}"#;
        let docker = rate(10_000, || {
            let mut out = Vec::with_capacity(1);
            for _ in 0..10_000 {
                out.clear();
                vigil_normalize::docker_inspect::normalise_value(
                    std::str::from_utf8(inspect).expect("utf-8"),
                    &origin,
                    &mut out,
                )
                .expect("valid");
                black_box(&out);
            }
        });
        println!(
            "| Docker (inspect → container event) | a 1.2 KB inspect response | {} |",
            fmt(docker)
        );
        let events = corpus::typical(10_000);
        let lines: String = events
            .iter()
            .map(|e| serde_json::to_string(e).expect("serialise") + "\n")
            .collect();
        let vigil_json = rate(events.len(), || {
            let mut n = 0;
            for_each_record(
                "bench",
                lines.as_bytes(),
                Format::Vigil,
                &origin,
                |e| n += e.len(),
                |_| {},
            );
            black_box(n);
        });
        println!(
            "| Vigil JSON lines (`--emit-events` output, replay input) | typical mix, {} B/line | {} |",
            lines.len() / events.len(),
            fmt(vigil_json)
        );
        network_and_fim();
        println!();
    }

    if want("replay") {
        // Real audit events: the Falco fixtures (less the malformed one) as JSON lines, repeated.
        let dir = root().join("tests/data/k8s-audit/falco-0.34.1");
        let mut lines = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in files.iter().filter(|f| !f.ends_with("fal_01_003.json")) {
            lines.extend(
                std::fs::read_to_string(f)
                    .expect("fixture")
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
        let n_lines = 100_000;
        let mut data = String::new();
        for l in lines.iter().cycle().take(n_lines) {
            data.push_str(l);
            data.push('\n');
        }
        let path =
            std::env::temp_dir().join(format!("vigil-bench-audit-{}.jsonl", std::process::id()));
        std::fs::write(&path, &data).expect("write corpus");
        println!(
            "## Kubernetes audit replay, end to end (one core; {n_lines} real audit lines, {:.1} MiB)\n",
            data.len() as f64 / (1 << 20) as f64
        );
        println!("| stage | events/s |");
        println!("|---|---|");
        let origin = Origin {
            node: "bench",
            source: "replay",
        };
        let parse = rate(n_lines, || {
            let mut n = 0;
            for_each_record(
                "bench",
                data.as_bytes(),
                Format::K8sAudit,
                &origin,
                |e| n += e.len(),
                |_| {},
            );
            black_box(n);
        });
        println!(
            "| normalise only (typed, borrowing parse) | {} |",
            fmt(parse)
        );
        let json_value = rate(n_lines, || {
            for l in data.lines() {
                black_box(serde_json::from_str::<serde_json::Value>(l).ok());
            }
        });
        println!(
            "| baseline: `serde_json::Value` parse only | {} |",
            fmt(json_value)
        );
        let opts = ReplayOptions {
            paths: vec![path.clone()],
            format: Format::Auto,
            plugins: PluginSelection {
                builtin: true,
                ..Default::default()
            },
            node: "bench".into(),
            batch: 256,
            // Like the binary: compiled plugins come from the on-disk cache.
            cache_dir: Some(
                std::env::temp_dir()
                    .join(format!("vigil-bench-replay-cache-{}", std::process::id())),
            ),
            intel_files: Vec::new(),
            threads: 1,
        };
        let e2e = rate(n_lines, || {
            let report = replay(&opts, &mut std::io::sink(), &mut |_| {}).expect("replay");
            assert_eq!(report.input_errors, 0);
            black_box(report);
        });
        println!(
            "| `vigil replay` end to end (read, normalise, container-escape in Wasm, findings JSON) | {} |",
            fmt(e2e)
        );
        println!();
        let _ = std::fs::remove_file(&path);
    }
}

/// A fake proc tree: the host (pid 1) and one container (pid 100, its own
/// namespace) whose `net/tcp` holds `rows` connections; removed on drop.
struct FakeProc(std::path::PathBuf);

impl FakeProc {
    const ID: &str = "cd53cdcc2274a2ba95b2c85731ec98436f18d77c79ef363bdd446f17e1a7bb31";

    fn new(rows: usize) -> Self {
        use std::os::unix::fs::symlink;
        let root = std::env::temp_dir().join(format!("vigil-bench-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (pid, netns, cgroup) in [
            (1, 4026531840u64, "0::/init.scope\n".to_owned()),
            (
                100,
                4026532500,
                format!("0::/system.slice/docker-{}.scope\n", Self::ID),
            ),
        ] {
            let dir = root.join(pid.to_string());
            std::fs::create_dir_all(dir.join("ns")).expect("dir");
            std::fs::create_dir_all(dir.join("net")).expect("dir");
            symlink(format!("net:[{netns}]"), dir.join("ns/net")).expect("link");
            std::fs::write(dir.join("cgroup"), cgroup).expect("cgroup");
            std::fs::write(dir.join("net/udp"), "header\n").expect("udp");
        }
        // Real-format rows: a listener and connections to many peers.
        let mut tcp = String::from(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        );
        tcp.push_str("   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1000 1 0000000000000000 100 0 0 10 0\n");
        for i in 1..rows {
            tcp.push_str(&format!(
                "{i:4}: 0200110A:{:04X} {:08X}:01BB 01 00000000:00000000 02:000A7214 00000000  1000        0 {} 1 0000000000000000 20 4 30 10 -1\n",
                30000 + i,
                0x0A00_0000u32 + i as u32,
                1000 + i
            ));
        }
        std::fs::write(root.join("100/net/tcp"), tcp).expect("tcp");
        std::fs::write(root.join("1/net/tcp"), "header\n").expect("tcp");
        let cfg = root.join("docker/containers").join(Self::ID);
        std::fs::create_dir_all(&cfg).expect("dir");
        std::fs::write(
            cfg.join("config.v2.json"),
            r#"{"Name":"/web","Config":{"Image":"nginx:1.27","Labels":{}},"State":{}}"#,
        )
        .expect("config");
        Self(root)
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The network sources (procfs rows, conntrack messages) and file
/// integrity (a file's state into an event).
fn network_and_fim() {
    use vigil_sources::network::conntrack::{Message, flow_events, messages};
    use vigil_sources::network::{NetworkConfig, Scanner};

    // procfs: a whole poll of a container namespace with 2,000 sockets, all
    // new (a fresh scanner each time): list the processes, read and parse
    // the table, attribute, build the events.
    let rows = 2_000;
    let fake = FakeProc::new(rows);
    let settings = NetworkConfig {
        proc_root: fake.0.clone(),
        docker_root: fake.0.join("docker"),
        ..NetworkConfig::default()
    }
    .validated()
    .expect("settings");
    let procfs = rate(rows, || {
        let poll = Scanner::new(settings.clone()).poll().expect("poll");
        assert_eq!(poll.events.len(), rows);
        black_box(poll);
    });
    println!(
        "| Network, procfs poller (`/proc/<pid>/net/tcp` rows → attributed events; whole poll incl. reading the table) | {rows} sockets of one container, 150 B/row | {} |",
        fmt(procfs)
    );

    // conntrack: one event per datagram, as the socket delivers them: the
    // real `CT_NEW` captured from this kernel (a bridge container's
    // connection, 196 B with status, timeout, protoinfo, mark, …), its
    // container address varied over 1,024 containers; decoded, attributed
    // by address, into an event.
    let hex = std::fs::read_to_string(root().join("host/tests/data/conntrack/new-tcp4-bridge.hex"))
        .expect("fixture");
    let hex = hex.trim();
    let real: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let container_ip = [172u8, 17, 0, 2];
    let datagrams: Vec<Vec<u8>> = (0..1024u32)
        .map(|i| {
            let mut d = real.clone();
            let ip = [172, 17, 4 + (i >> 8) as u8, (i & 0xff) as u8];
            let at: Vec<usize> = d
                .windows(4)
                .enumerate()
                .filter(|(_, w)| *w == container_ip)
                .map(|(at, _)| at)
                .collect();
            for at in at {
                d[at..at + 4].copy_from_slice(&ip);
            }
            d
        })
        .collect();
    let owners: std::collections::HashMap<std::net::IpAddr, vigil_core::model::ContainerRef> =
        datagrams
            .iter()
            .filter_map(|d| match messages(d).next() {
                Some(Ok(Message::Flow(f))) => Some(f.orig.src),
                _ => None,
            })
            .map(|ip| {
                (
                    ip,
                    vigil_core::model::ContainerRef {
                        id: FakeProc::ID.to_owned(),
                        name: "web".into(),
                        image: "nginx:1.27".into(),
                        pod: String::new(),
                    },
                )
            })
            .collect();
    let conntrack = rate(datagrams.len(), || {
        let mut out = Vec::with_capacity(datagrams.len());
        for d in &datagrams {
            for m in messages(d) {
                if let Ok(Message::Flow(f)) = m {
                    flow_events(&f, |ip| owners.get(&ip).cloned(), &mut out);
                }
            }
        }
        assert_eq!(out.len(), datagrams.len());
        black_box(out);
    });
    println!(
        "| Network, conntrack (ctnetlink `CT_NEW` datagram → decoded → attributed event) | a real {} B event per datagram | {} |",
        datagrams[0].len(),
        fmt(conntrack)
    );

    // File integrity: a watched config file's state (stat, open, SHA-256)
    // compared with its baseline into an event, as each rescan does.
    let file = std::env::temp_dir().join(format!("vigil-bench-fim-{}.json", std::process::id()));
    std::fs::write(&file, vec![b'x'; 2048]).expect("file");
    let before = vigil_core::model::FileState {
        sha256: "0".repeat(64),
        size: 2048,
        mode: 0o100_644,
        ..vigil_core::model::FileState::default()
    };
    let n = 1_000;
    let fim = rate(n, || {
        for _ in 0..n {
            let after = vigil_sources::file_integrity::read_state(&file).expect("state");
            let change = vigil_sources::file_integrity::classify(Some(&before), after.as_ref())
                .expect("a change");
            black_box(vigil_core::model::FileEvent {
                path: file.to_string_lossy().into_owned(),
                change,
                before: Some(before.clone()),
                after,
            });
        }
    });
    let _ = std::fs::remove_file(&file);
    println!(
        "| File integrity (state of a watched file → event: stat, open, SHA-256, compare) | a 2 KiB config file | {} |",
        fmt(fim)
    );
}

/// The Python and C plugins of `plugins/python` and `plugins/c` (built by
/// `scripts/foreign-plugins.sh`) beside the Rust container-escape, on the same
/// event mixes at batch 256, with the native baseline in the same process.
fn foreign(runtime: &Runtime) {
    // Where scripts/foreign-plugins.sh puts them (same override).
    let dir = std::env::var_os("VIGIL_FOREIGN_OUT").map_or_else(
        || root().join("target/wasm/foreign"),
        std::path::PathBuf::from,
    );
    let plugins = [
        ("untrusted-registry", "Python (componentize-py)"),
        ("shell-exec", "C (clang, wasi-libc)"),
    ];
    if plugins
        .iter()
        .any(|(n, _)| !dir.join(format!("{n}.wasm")).exists())
    {
        println!(
            "## Plugins in other languages: skipped (run `scripts/foreign-plugins.sh` to build them)\n"
        );
        return;
    }
    let file_spec = |name: &str| PluginSpec {
        origin: PluginOrigin::File(dir.join(format!("{name}.wasm"))),
        identity: Identity::Named(name.to_owned()),
        bytes: Arc::from(std::fs::read(dir.join(format!("{name}.wasm"))).expect("plugin")),
        settings: "{}".into(),
        limits: PluginLimits::default(),
        policy: Default::default(),
    };
    const BATCH: usize = 256;
    for (label, events) in [
        ("typical live mix", corpus::typical(4096)),
        (
            "pod-spec-heavy mix (Falco audit fixtures + Docker)",
            mixed(4096),
        ),
    ] {
        println!("## Plugins by language, {label}, batch {BATCH} (one core)\n");
        println!(
            "| plugin | language | events/s | µs/event | findings per 4096 events | native container-escape, measured right after | plugin time / native time |"
        );
        println!("|---|---|---|---|---|---|---|");
        let mut native = ContainerEscape::default();
        native.configure("{}").expect("settings");
        // The native baseline is measured right after each plugin, so that each
        // ratio compares two runs close in time on a noisy machine.
        let mut native_rate = || {
            rate(events.len(), || {
                for chunk in events.chunks(BATCH) {
                    // The same copy the Wasm boundary makes, then the logic.
                    let sdk: Vec<_> = chunk.iter().map(to_sdk::event).collect();
                    black_box(native.on_events(&sdk));
                }
            })
        };
        let mut rows = vec![(spec(), "container-escape", "Rust (wasm32-unknown-unknown)")];
        rows.extend(
            plugins
                .iter()
                .map(|(name, lang)| (file_spec(name), *name, *lang)),
        );
        for (mut spec, name, lang) in rows {
            // Throughput, not deadlines: a busy machine can stall a call past 250 ms.
            spec.limits.deadline_ms = 10_000;
            let mut runner = runtime.load(spec, &ctx()).expect("load");
            let mut findings = 0;
            for chunk in events.chunks(BATCH) {
                let CallOutcome::Findings(f) = runner.on_events(chunk) else {
                    panic!("{name} failed")
                };
                findings += f.len();
            }
            let wasm = rate(events.len(), || {
                for chunk in events.chunks(BATCH) {
                    let CallOutcome::Findings(f) = runner.on_events(chunk) else {
                        panic!("{name} failed")
                    };
                    black_box(f);
                }
            });
            let native = native_rate();
            println!(
                "| {name} | {lang} | {} | {:.2} | {findings} | {} | {:.2}× |",
                fmt(wasm),
                1e6 / wasm,
                fmt(native),
                native / wasm
            );
        }
        println!();
    }

    println!("## Plugin start by language\n");
    println!(
        "| plugin | size | compile (Cranelift, no cache) | load from the compile cache | instantiate + describe + configure |"
    );
    println!("|---|---|---|---|---|");
    let cache = std::env::temp_dir().join(format!("vigil-bench-foreign-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let cached = Runtime::new(&engine_settings(), Some(&cache)).expect("runtime");
    let mut rows = vec![(spec(), "container-escape (Rust)")];
    rows.push((
        file_spec("untrusted-registry"),
        "untrusted-registry (Python)",
    ));
    rows.push((file_spec("shell-exec"), "shell-exec (C)"));
    for (spec, label) in rows {
        let size = spec.bytes.len();
        let cold = cached.load(spec.clone(), &ctx()).expect("load");
        let compile = cold.plugin().compile.duration;
        drop(cold);
        let t = Instant::now();
        let warm = cached.load(spec, &ctx()).expect("load");
        let total = t.elapsed();
        let from_cache = warm.plugin().compile.duration;
        println!(
            "| {label} | {:.1} MiB | {:.2} s | {:.1} ms | {:.1} ms |",
            size as f64 / (1 << 20) as f64,
            compile.as_secs_f64(),
            from_cache.as_secs_f64() * 1e3,
            (total - from_cache).as_secs_f64() * 1e3
        );
    }
    println!();
    let _ = std::fs::remove_dir_all(&cache);
}
