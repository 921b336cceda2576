//! Mutation fuzzing of the ctnetlink decoder: real events captured from
//! this kernel (`tests/data/conntrack/`) and built ones (IPv6, several
//! messages per datagram), corrupted thousands of ways — lengths and
//! attribute types overwritten, bytes flipped, slices cut and repeated —
//! must each decode to flows or errors, never panic, never loop, and every
//! flow decoded must normalise without panicking.
//!
//! Deterministic (fixed seed) so a failure reproduces; `VIGIL_FUZZ_ITERS`
//! raises the iteration count for longer local runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::net::IpAddr;
use std::path::Path;

use vigil_core::model::ContainerRef;
use vigil_sources::network::conntrack::{Message, Tuple, encode, flow_events, messages};
use vigil_test_support::fuzz::{Rng, iterations};

/// Values that hit the decoder's edges when written over a length or type.
const WORDS: [u16; 10] = [0, 1, 3, 4, 5, 8, 0xffff, 0x8001, 0x4002, 0x7fff];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let end = (at + rng.below(32)).min(v.len());
                v.drain(at.min(end)..end);
            }
            // Overwrite a 16-bit word (an attribute's length or type, or
            // half of a message length) at a 4-byte boundary.
            1 if v.len() >= 4 => {
                let at = (at & !3).min(v.len() - 2);
                let w = WORDS[rng.below(WORDS.len())];
                v[at..at + 2].copy_from_slice(&w.to_ne_bytes());
            }
            2 if at < v.len() => v[at] = rng.next_u64() as u8,
            3 if !v.is_empty() => {
                let from = rng.below(v.len());
                let end = (from + rng.below(128)).min(v.len());
                let chunk = v[from..end].to_vec();
                v.splice(at..at, chunk);
            }
            4 if v.len() >= 4 => {
                // A message length pointing anywhere.
                let len = rng.below(v.len() * 2) as u32;
                v[0..4].copy_from_slice(&len.to_ne_bytes());
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn hex(p: &Path) -> Vec<u8> {
    let t = std::fs::read_to_string(p).unwrap();
    let t = t.trim();
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap())
        .collect()
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conntrack");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .map(|p| hex(&p))
        .collect();
    assert!(out.len() >= 3, "fixtures missing in {}", dir.display());
    let t = |src: &str, dst: &str, protocol, sp, dp| Tuple {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        protocol,
        src_port: sp,
        dst_port: dp,
    };
    let v6 = encode::new_flow(
        &t("2001:db8::2", "2001:db8::1", 6, 40000, 8443),
        &t("2001:db8::1", "2001:db8::2", 6, 8443, 40000),
        9,
    );
    let mut two = out[0].clone();
    two.extend_from_slice(&v6);
    out.push(v6);
    out.push(two);
    out
}

#[test]
fn corrupted_datagrams_never_panic() {
    let iters = iterations(20_000);
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut flows, mut errors) = (0usize, 0usize);
    let owner = |ip: IpAddr| {
        (!ip.is_loopback()).then(|| ContainerRef {
            id: ip.to_string(),
            ..ContainerRef::default()
        })
    };
    for i in 0..iters {
        let input = mutate(&mut rng, &seeds[i % seeds.len()]);
        // Each message consumes at least a header: bounded iteration.
        let mut n = 0;
        for m in messages(&input) {
            n += 1;
            assert!(n <= input.len() / 16 + 1, "decoder does not advance");
            match m {
                Ok(Message::Flow(f)) => {
                    flows += 1;
                    let mut out = Vec::new();
                    flow_events(&f, owner, &mut out);
                    assert!(out.len() <= 2);
                }
                Ok(_) => {}
                Err(e) => {
                    errors += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    // The mutations must exercise both outcomes, or the test proves little.
    assert!(flows > iters / 10, "{flows} flows in {iters}");
    assert!(errors > iters / 10, "{errors} errors in {iters}");
}

#[cfg(target_endian = "little")]
#[test]
fn pristine_fixtures_decode() {
    for seed in seeds() {
        let all: Vec<_> = messages(&seed).collect();
        assert!(!all.is_empty());
        assert!(
            all.iter().all(|m| matches!(m, Ok(Message::Flow(_)))),
            "{all:?}"
        );
    }
}
