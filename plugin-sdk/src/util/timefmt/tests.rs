use super::*;

#[test]
fn renders_nanoseconds() {
    assert_eq!(rfc3339(0), "unknown");
    assert_eq!(rfc3339(1_000_000_000), "1970-01-01T00:00:01Z");
    assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
    assert_eq!(
        rfc3339(1_764_150_000_123_456_789),
        "2025-11-26T09:40:00.123456789Z"
    );
}

#[test]
fn renders_seconds() {
    assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_secs(1_764_151_500), "2025-11-26T10:05:00Z");
    assert_eq!(rfc3339_secs(951_782_400), "2000-02-29T00:00:00Z");
}

#[test]
fn both_agree_and_the_extremes_do_not_panic() {
    assert_eq!(
        rfc3339(1_764_151_500 * NANOS_PER_SEC),
        rfc3339_secs(1_764_151_500)
    );
    assert_eq!(rfc3339(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    assert!(rfc3339_secs(u64::MAX).ends_with('Z'));
    // The last day of a year, and the first of the next.
    assert_eq!(rfc3339_secs(1_767_225_599), "2025-12-31T23:59:59Z");
    assert_eq!(rfc3339_secs(1_767_225_600), "2026-01-01T00:00:00Z");
}
