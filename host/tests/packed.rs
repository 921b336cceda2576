//! The packed batch encoding (`wit/PACKED.md`): what the host encodes, the
//! SDK decodes to exactly the events `on-events` (and the findings
//! `on-findings`, WIT 0.1.5) would have received; and the SDK's decoder
//! refuses malformed buffers without panicking.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use vigil_core::model::packed::{PackedEvents, encode_batch, encode_findings};
use vigil_core::model::{
    Entity, EntityKind, EntityVerdict, EventBody, Finding, FindingEvent, KeyValue, Severity,
};
use vigil_plugin_sdk::packed::{decode_batch, decode_findings};
use vigil_plugin_sdk::view::{EventView, decode_views, views_of};
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

/// The borrowed views of a batch (what `on-packed-events` hands a detector)
/// are the same events: field for field, and against views of the owned
/// events; their strings point into the buffer.
#[test]
fn every_corpus_event_reads_the_same_as_a_view() {
    let mut events = corpus::corpus();
    events.extend(corpus::typical(512));
    let mut buf = Vec::new();
    encode_batch(&events, &mut buf);
    let views = decode_views(&buf).expect("the host's encoding reads as views");
    let owned = decode_batch(&buf).unwrap();
    assert_eq!(views.len(), events.len());
    for (view, sdk) in views.iter().zip(&owned) {
        assert_eq!(&view.to_event(), sdk, "event {}", sdk.id);
    }
    assert_eq!(views, views_of(&owned));
    let inside = buf.as_ptr_range();
    assert!(
        views
            .iter()
            .all(|v| v.id.is_empty() || inside.contains(&v.id.as_ptr())),
        "an id was copied out of the buffer"
    );
}

/// Mutations of real batches: the views refuse exactly what the decoder
/// refuses, with the same error, and read the same events from the rest.
#[test]
fn mutated_batches_get_the_same_answer_as_views() {
    let mut events = corpus::corpus();
    events.extend(corpus::typical(64));
    let mut buf = Vec::new();
    encode_batch(&events, &mut buf);
    let (mut refused, mut read) = (0, 0);
    mutations(&buf, 0x853c_49e6_748f_ea9b, 3_000, |m| {
        let views = decode_views(m).map(|v| v.iter().map(EventView::to_event).collect::<Vec<_>>());
        let decoded = decode_batch(m);
        assert_eq!(views, decoded);
        if decoded.is_ok() {
            read += 1;
        } else {
            refused += 1;
        }
    });
    assert!(
        refused > 1_000 && read > 0,
        "refused {refused}, read {read}"
    );
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

/// Hands `each` deterministic mutations of `buf` (byte flips, truncations,
/// insertions; one to four per mutant), `iterations` of them.
fn mutations(buf: &[u8], mut seed: u64, iterations: usize, mut each: impl FnMut(&[u8])) {
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..iterations {
        let mut m = buf.to_vec();
        for _ in 0..=(next() % 4) {
            let at = (next() as usize) % m.len();
            match next() % 3 {
                0 => m[at] = next() as u8,
                1 => m.truncate(at.max(1)),
                _ => m.insert(at, next() as u8),
            }
        }
        each(&m);
    }
}

/// `VIGIL_FUZZ_ITERATIONS` mutations of `buf` (5,000 by default), each
/// handed to `decode`, which must return an error or a batch, never panic;
/// an error's offset lies within the buffer. Most mutations must be refused.
fn mutations_are_refused_or_decoded<T>(
    buf: &[u8],
    seed: u64,
    decode: impl Fn(&[u8]) -> Result<T, vigil_plugin_sdk::packed::PackedError>,
) {
    let iterations = std::env::var("VIGIL_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000usize);
    let (mut refused, mut accepted) = (0usize, 0usize);
    mutations(buf, seed, iterations, |m| match decode(m) {
        Ok(_) => accepted += 1,
        Err(e) => {
            assert!(e.offset <= m.len(), "offset {} past the end", e.offset);
            refused += 1;
        }
    });
    assert!(
        refused > iterations / 2,
        "refused {refused}, accepted {accepted}"
    );
}

/// Mutations of real batches of events.
#[test]
fn mutated_batches_are_refused_or_decoded_never_panic() {
    let events = corpus::typical(64);
    let mut buf = Vec::new();
    encode_batch(&events, &mut buf);
    mutations_are_refused_or_decoded(&buf, 0x9e37_79b9_7f4a_7c15, decode_batch);
}

/// Findings handed on as a correlator receives them: every severity, entity
/// kind and verdict, empty and long lists, empty, multi-byte and long
/// strings.
fn finding_events() -> Vec<FindingEvent> {
    let severities = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    let kinds = [
        EntityKind::Container,
        EntityKind::Pod,
        EntityKind::Node,
        EntityKind::File,
        EntityKind::Image,
        EntityKind::User,
        EntityKind::Address,
    ];
    let verdicts = [
        EntityVerdict::NotChecked,
        EntityVerdict::Unverified,
        EntityVerdict::Verified,
    ];
    (0..40usize)
        .map(|i| {
            let entities: Vec<Entity> = (0..i % 5)
                .map(|j| Entity {
                    kind: kinds[(i + j) % kinds.len()],
                    id: format!("{:064x}", i * 31 + j),
                    name: if j % 2 == 0 {
                        String::new()
                    } else {
                        format!("näme-{j}")
                    },
                })
                .collect();
            FindingEvent {
                id: format!("{:024x}", i * 7919),
                plugin: "container-escape".into(),
                plugin_version: "0.3.1".into(),
                time: 1_700_000_000_000 + i as u64,
                node: if i % 3 == 0 {
                    String::new()
                } else {
                    "node-ü".into()
                },
                depth: (i % 4) as u32,
                verdicts: (0..entities.len()).map(|j| verdicts[(i + j) % 3]).collect(),
                finding: Finding {
                    rule_id: format!("container-escape/rule-{i}"),
                    title: "Privileged pod created".into(),
                    severity: severities[i % severities.len()],
                    summary: "x".repeat(i * 13),
                    techniques: (0..i % 3).map(|t| format!("T161{t}")).collect(),
                    entities,
                    evidence: (0..i % 4)
                        .map(|k| KeyValue {
                            key: format!("key-{k}"),
                            value: format!("välue 😀 {k}"),
                        })
                        .collect(),
                    event_ids: (0..i % 6).map(|e| format!("event-{e}")).collect(),
                },
            }
        })
        .collect()
}

#[test]
fn findings_round_trip_field_for_field() {
    let findings = finding_events();
    let mut buf = vec![7; 9];
    encode_findings(&findings, &mut buf);
    assert_eq!(buf[0], 1, "the format version");
    let decoded = decode_findings(&buf).expect("the host's encoding decodes");
    let expected: Vec<_> = findings
        .iter()
        .map(vigil_test_support::to_sdk::finding_event)
        .collect();
    assert_eq!(decoded, expected);

    encode_findings(&[], &mut buf);
    assert_eq!(buf, [1, 0, 0, 0, 0], "an empty batch is five bytes");
    assert!(decode_findings(&buf).unwrap().is_empty());
}

/// Every truncation, trailing bytes, another version and an out-of-range
/// enum are refused, with the offset where decoding stopped.
#[test]
fn malformed_findings_batches_are_refused() {
    let findings = finding_events();
    let mut buf = Vec::new();
    encode_findings(&findings[..6], &mut buf);
    for cut in 0..buf.len() {
        let e = decode_findings(&buf[..cut]).expect_err("a truncated batch");
        assert!(e.offset <= cut, "offset {} past the cut {cut}", e.offset);
    }
    let mut long = buf.clone();
    long.push(0);
    assert_eq!(
        decode_findings(&long).unwrap_err().reason,
        "trailing bytes after the last finding"
    );
    let mut other = buf.clone();
    other[0] = 2;
    assert_eq!(
        decode_findings(&other).unwrap_err().reason,
        "unsupported format version"
    );
    // The first finding's severity: after the version, the count, its id,
    // plugin, version, time, node, depth, rule id and title.
    let first = &findings[0];
    let at = 1
        + 4
        + [&first.id, &first.plugin, &first.plugin_version]
            .iter()
            .map(|s| 4 + s.len())
            .sum::<usize>()
        + 8
        + 4
        + first.node.len()
        + 4
        + [&first.finding.rule_id, &first.finding.title]
            .iter()
            .map(|s| 4 + s.len())
            .sum::<usize>();
    assert_eq!(buf[at], first.finding.severity as u8);
    let mut bad = buf.clone();
    bad[at] = 5;
    let e = decode_findings(&bad).unwrap_err();
    assert_eq!((e.offset, e.reason), (at, "unknown severity"));
}

/// Mutations of a real findings batch, as for events above.
#[test]
fn mutated_findings_batches_are_refused_or_decoded_never_panic() {
    let mut buf = Vec::new();
    encode_findings(&finding_events(), &mut buf);
    mutations_are_refused_or_decoded(&buf, 0x2545_f491_4f6c_dd1d, decode_findings);
}
