//! The packed batch encoding (`wit/PACKED.md`): what the host encodes, the
//! SDK decodes to exactly the events `on-events` would have received; and
//! the SDK's decoder refuses malformed buffers without panicking.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use vigil_core::model::EventBody;
use vigil_core::model::packed::{PackedEvents, encode_batch};
use vigil_plugin_sdk::packed::decode_batch;
use vigil_test_support::{corpus, to_sdk};

#[test]
fn every_corpus_event_round_trips_field_for_field() {
    let mut events = corpus::corpus();
    events.extend(corpus::typical(512));
    assert!(events.len() > 500, "corpus too small: {}", events.len());
    let mut buf = Vec::new();
    encode_batch(&events, &mut buf);
    let decoded = decode_batch(&buf).expect("the host's encoding decodes");
    assert_eq!(decoded.len(), events.len());
    for (host, sdk) in events.iter().zip(&decoded) {
        assert_eq!(&to_sdk::event(host), sdk, "event {}", host.id);
    }
}

/// Encoded once, assembled per plugin: the whole buffer is exactly
/// `encode_batch`, and a picked subset (pod specs left out for some)
/// decodes to exactly those events.
#[test]
fn shared_encoding_assembles_what_each_plugin_picks() {
    let mut events = corpus::corpus();
    events.extend(corpus::typical(256));
    let mut reference = Vec::new();
    encode_batch(&events, &mut reference);
    let mut shared = PackedEvents::default();
    shared.encode(&events, |_| true);
    assert_eq!(shared.whole(), Some(reference.as_slice()));

    // Every third event is wanted by nobody: never encoded, no whole buffer.
    shared.encode(&events, |i| i % 3 != 0);
    assert!(shared.whole().is_none());
    assert!(!shared.has(0) && shared.has(1));
    let picks: Vec<(u32, bool)> = (0..events.len() as u32)
        .filter(|i| i % 3 != 0)
        .map(|i| (i, i % 2 == 0))
        .collect();
    let mut out = Vec::new();
    shared.assemble(&picks, &mut out);
    let decoded = decode_batch(&out).expect("an assembled batch decodes");
    let expected: Vec<_> = picks
        .iter()
        .map(|&(i, without_pod)| {
            let mut e = events[i as usize].clone();
            if without_pod && let EventBody::Kubernetes(k) = &mut e.body {
                k.pod = None;
            }
            to_sdk::event(&e)
        })
        .collect();
    assert_eq!(decoded, expected);
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, EventBody::Kubernetes(k) if k.pod.is_some())),
        "the corpus has pod specs to leave out"
    );
}

#[test]
fn an_empty_batch_is_five_bytes() {
    let mut buf = vec![9; 3];
    encode_batch(&[], &mut buf);
    assert_eq!(buf, [1, 0, 0, 0, 0]);
    assert!(decode_batch(&buf).unwrap().is_empty());
}

/// Deterministic mutations (byte flips, truncations, insertions) of real
/// batches: the decoder returns an error or a batch, never panics.
#[test]
fn mutated_batches_are_refused_or_decoded_never_panic() {
    let events = corpus::typical(64);
    let mut buf = Vec::new();
    encode_batch(&events, &mut buf);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let iterations = std::env::var("VIGIL_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000usize);
    let (mut refused, mut accepted) = (0usize, 0usize);
    for _ in 0..iterations {
        let mut m = buf.clone();
        for _ in 0..=(next() % 4) {
            let at = (next() as usize) % m.len();
            match next() % 3 {
                0 => m[at] = next() as u8,
                1 => m.truncate(at.max(1)),
                _ => m.insert(at, next() as u8),
            }
        }
        match decode_batch(&m) {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert!(e.offset <= m.len(), "offset {} past the end", e.offset);
                refused += 1;
            }
        }
    }
    assert!(
        refused > iterations / 2,
        "refused {refused}, accepted {accepted}"
    );
}
