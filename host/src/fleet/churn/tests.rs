use super::*;

const RULE: ChurnRule = ChurnRule {
    enabled: true,
    window_secs: 300,
    warmup_windows: 4,
    z_threshold: 4.0,
    min_count: 10,
    min_bucket_samples: 3,
};

/// 2025-11-26 10:00 UTC (a Wednesday), on a window boundary.
const T0: u64 = 1_764_151_200_000;
const W: u64 = 300_000;

// The plugin's own tests of the ported pieces (baseline.rs, time.rs), with
// the same numbers: the port must keep answering as the original does.

#[test]
fn stat_is_exact_then_exponential() {
    let mut stat = Stat::default();
    for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
        stat.update(x, 100);
    }
    assert_eq!(stat.n, 8);
    assert!((stat.mean - 5.0).abs() < 1e-6);
    assert!((stat.var - 4.0).abs() < 1e-5); // population variance
    let mut capped = Stat::default();
    for _ in 0..10 {
        capped.update(0.0, 4);
    }
    capped.update(8.0, 4);
    assert_eq!(capped.n, 4);
    assert!((capped.mean - 2.0).abs() < 1e-6);
}

#[test]
fn advance_learns_quiet_windows_only_while_alive() {
    let mut series = Series::new(100);
    series.cur_count = 6;
    // Alive from window 103: 100 (before), 101, 102 are not learned; 103, 104 are zeros.
    series.advance(105, 103, 300);
    assert_eq!(series.learned, 2);
    assert_eq!((series.cur_window, series.cur_count), (105, 0));
    assert_eq!(series.overall.mean, 0.0);
    series.advance(105, 0, 300);
    assert_eq!(series.learned, 2, "not past the current window");
}

#[test]
fn calendar() {
    assert_eq!(hour_of_week(1_764_151_500), 2 * 24 + 10);
    assert_eq!(bucket_label(2 * 24 + 10), "Wed 10:00-11:00 UTC");
    assert_eq!(bucket_label(167), "Sun 23:00-00:00 UTC");
    // 1970-01-01 was a Thursday.
    assert_eq!(hour_of_week(0), 3 * 24);
}

#[test]
fn the_baseline_uses_the_hour_bucket_once_it_has_samples() {
    let mut series = Series::new(0);
    series.learn(0, 4.0, 300);
    let b = series.baseline(300, 3);
    assert_eq!(b.bucket, None, "overall until the bucket has 3 samples");
    series.learn(1, 4.0, 300);
    series.learn(2, 4.0, 300);
    let b = series.baseline(300, 3);
    assert_eq!(b.bucket, Some(hour_of_week(0)));
    assert!((b.mean - 4.0).abs() < 1e-6);
    // The standard deviation is at least √mean.
    assert!((b.sd - 2.0).abs() < 1e-6);
}

fn quiet(churn: &mut FleetChurn, windows: u64) {
    for w in 0..windows {
        assert!(churn.count("n1", 1, T0 + w * W, RULE).is_none());
    }
}

#[test]
fn a_spike_waits_for_the_warmup_and_is_reported_once_per_window() {
    let mut churn = FleetChurn::default();
    // During the warmup, even a burst is only learned.
    assert!(churn.count("n1", 500, T0, RULE).is_none());
    let mut churn = FleetChurn::default();
    quiet(&mut churn, RULE.warmup_windows.into());
    let at = T0 + u64::from(RULE.warmup_windows) * W;
    let mut found = Vec::new();
    for n in 0..20 {
        found.extend(churn.count(&format!("n{n}"), 2, at + 1_000, RULE));
    }
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.rule_id, "fleet/churn-spike");
    let ev = |k: &str| {
        f.evidence
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
            .unwrap_or_default()
    };
    // Crossed at 10 (min_count), five nodes in.
    assert_eq!(ev("observed"), "10");
    assert_eq!(ev("nodes"), "n0=2, n1=2, n2=2, n3=2, n4=2");
    assert_eq!(
        f.event_ids,
        [format!("churn-window:300:{}", at / 1000 / 300)]
    );
    // The burst is learned with its window: the same again in the next
    // window is no longer far enough above the baseline.
    let next = at + W;
    let again: Vec<_> = (0..20)
        .filter_map(|n| churn.count(&format!("n{n}"), 2, next, RULE))
        .collect();
    assert!(again.is_empty(), "{again:#?}");
    // A window far larger than it still is, with its own id.
    let later = churn.count("n0", 400, next + 1_000, RULE).expect("a spike");
    assert_ne!(later.event_ids, f.event_ids);
}

#[test]
fn windows_the_fleet_did_not_listen_through_are_not_learned() {
    let mut churn = FleetChurn::default();
    churn.watching_since(T0, RULE);
    quiet(&mut churn, 2);
    // The fleet away for ten windows: they are no data, not zeros.
    churn.watching_since(T0 + 12 * W, RULE);
    churn.advance(T0 + 12 * W, RULE);
    let s = churn.series.as_ref().unwrap();
    assert_eq!(s.learned, 1, "window 0 only (window 1 was cut off)");
    churn.advance(T0 + 14 * W, RULE);
    assert_eq!(churn.series.as_ref().unwrap().learned, 3);
}

#[test]
fn disabled_reports_nothing() {
    let off = ChurnRule {
        enabled: false,
        ..RULE
    };
    let mut churn = FleetChurn::default();
    for w in 0..10 {
        assert!(churn.count("n1", 100 * w, T0 + w * W, off).is_none());
    }
}

/// The baseline as an instance that just became active reads it back.
fn stored(churn: &FleetChurn) -> FleetChurn {
    let bytes = churn.snapshot(RULE).expect("something learned").encode();
    assert!(bytes.len() < 16 * 1024, "{} bytes", bytes.len());
    let mut restored = FleetChurn::default();
    restored.restore(ChurnSnapshot::decode(&bytes, RULE).expect("decodes"));
    restored
}

#[test]
fn a_restored_baseline_does_not_warm_up_again_and_judges_as_the_original() {
    let mut churn = FleetChurn::default();
    quiet(&mut churn, RULE.warmup_windows.into());
    let at = T0 + u64::from(RULE.warmup_windows) * W;
    // A spike, learned with its window.
    assert!(churn.count("n0", 40, at, RULE).is_some());
    churn.advance(at + W, RULE);
    let mut restored = stored(&churn);
    assert_eq!(
        restored.snapshot(RULE),
        churn.snapshot(RULE),
        "the same series"
    );
    // A fresh instance would only be warming up: the burst is learned, not
    // reported.
    let mut fresh = FleetChurn::default();
    assert!(fresh.count("n0", 400, at + W + 1_000, RULE).is_none());
    // The restored one judges the next windows as the original does: the
    // same burst again is within the learned baseline, a larger one is not.
    let next = at + W + 1_000;
    assert_eq!(
        churn.count("n0", 20, next, RULE),
        restored.count("n0", 20, next, RULE)
    );
    let original = churn.count("n1", 400, next, RULE).expect("a spike");
    let again = restored.count("n1", 400, next, RULE).expect("a spike");
    assert_eq!(again.event_ids, original.event_ids);
    let samples = |f: &Finding| {
        f.evidence
            .iter()
            .find(|e| e.key == "baseline-samples")
            .map(|e| e.value.clone())
    };
    assert_eq!(samples(&again), samples(&original));
    // Reported once per window, restored or not.
    assert!(restored.count("n2", 400, next, RULE).is_none());
}

#[test]
fn a_stored_baseline_of_other_windows_or_shape_is_refused() {
    let mut churn = FleetChurn::default();
    quiet(&mut churn, 3);
    let bytes = churn.snapshot(RULE).unwrap().encode();
    let other = ChurnRule {
        window_secs: 60,
        ..RULE
    };
    assert!(matches!(
        ChurnSnapshot::decode(&bytes, other),
        Err(SnapshotError::OtherWindow {
            stored: 300,
            configured: 60
        })
    ));
    assert!(matches!(
        ChurnSnapshot::decode(b"{not json", RULE),
        Err(SnapshotError::Malformed(_))
    ));
    assert!(matches!(
        ChurnSnapshot::decode(&vec![b' '; MAX_SNAPSHOT_BYTES + 1], RULE),
        Err(SnapshotError::Oversized(_))
    ));
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["buckets"].as_array_mut().unwrap().truncate(3);
    assert!(matches!(
        ChurnSnapshot::decode(v.to_string().as_bytes(), RULE),
        Err(SnapshotError::Buckets(3))
    ));
    assert!(
        FleetChurn::default().snapshot(RULE).is_none(),
        "nothing learned"
    );
}
