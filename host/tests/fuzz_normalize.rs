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
use vigil_test_support::fuzz::{Rng, iterations};

const TOKENS: [&[u8]; 14] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"0",
    b"-1e999",
    b"\"\\u0000\"",
    b"\xff",
    b"\"kind\":\"EventList\"",
    b"\"items\":[{}]",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let end = (at + rng.below(64)).min(v.len());
                v.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            2 if at < v.len() => v[at] = rng.next_u64() as u8,
            3 if !v.is_empty() => {
                // Duplicate a slice: nested and repeated structures.
                let from = rng.below(v.len());
                let end = (from + rng.below(256)).min(v.len());
                let chunk = v[from..end].to_vec();
                v.splice(at..at, chunk);
            }
            _ => v.truncate(at),
        }
    }
    v
}

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
        let input = mutate(&mut rng, seed);
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
