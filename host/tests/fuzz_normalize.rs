//! Mutation fuzzing of the decoders of outside input (audit events, docker
//! inspect, Vigil events): thousands of corrupted variants of the real
//! fixtures must each give events or located errors, never a panic.
//!
//! Deterministic (fixed seed) so a failure reproduces; `VIGIL_FUZZ_ITERS`
//! raises the iteration count for longer local runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use vigil_normalize::{Format, Origin, for_each_record};
use vigil_test_support::fixtures::falco_dir;
use vigil_test_support::fuzz::{Rng, iterations, mutate_json};

#[test]
fn corrupted_input_never_panics() {
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(falco_dir())
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    seeds.push(br#"[{"Id":"abc","Name":"/x","State":{"Running":true,"StartedAt":"2024-05-01T10:00:01Z"},"Config":{"Image":"busybox","Labels":{"a":"b"}},"HostConfig":{"NetworkMode":"host","CapAdd":["SYS_ADMIN"],"SecurityOpt":["seccomp=unconfined"],"Devices":[{"PathOnHost":"/dev/kmsg"}]},"Mounts":[{"Type":"bind","Source":"/","Destination":"/host","RW":true}]}]"#.to_vec());
    seeds.push(br#"{"id":"e1","time":1,"node":"n","source":"s","body":{"kind":"container","action":"start","id":"c","security":{"network_mode":"host","mounts":[{"source":"/etc"}]}}}"#.to_vec());
    let iters = iterations(20_000);
    let origin = Origin {
        node: "n",
        source: "fuzz",
    };
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut events, mut errors) = (0usize, 0usize);
    for i in 0..iters {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate_json(&mut rng, seed);
        let format = [
            Format::Auto,
            Format::K8sAudit,
            Format::DockerInspect,
            Format::Vigil,
        ][i % 4];
        let result = std::panic::catch_unwind(|| {
            let (mut ev, mut er) = (0, 0);
            for_each_record(
                "fuzz",
                &input,
                format,
                &origin,
                |e| ev += e.len(),
                |e| {
                    assert!(e.line >= 1, "errors are located: {e}");
                    er += 1;
                },
            );
            (ev, er)
        });
        match result {
            Ok((ev, er)) => {
                events += ev;
                errors += er;
            }
            Err(_) => panic!(
                "panic on iteration {i} ({format:?}) with input:\n{}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    // The fuzzer exercised both outcomes.
    assert!(events > 0 && errors > 0, "events {events}, errors {errors}");
}
