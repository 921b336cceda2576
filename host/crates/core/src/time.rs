//! RFC 3339 timestamps to and from nanoseconds since the epoch, without a
//! date-time dependency: audit events carry one or two per event and the
//! replay path parses hundreds of thousands per second. Also the wall
//! clock every part of the host stamps its records with.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in nanoseconds since the epoch (0 before 1970: a clock
/// that far off is not worth failing for).
pub fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `None` when malformed.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos as u64)
}

/// Formats nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`
/// (microseconds; trailing `.000000` is kept for a fixed width).
pub fn format_rfc3339(nanos: u64) -> String {
    let secs = (nanos / 1_000_000_000) as i64;
    let micros = (nanos % 1_000_000_000) / 1_000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    // Digit by digit rather than `format!`: every finding's record has a
    // time. A `u64` of nanoseconds ends in 2554, so the year has 4 digits.
    let mut s = String::with_capacity(27);
    for (n, width, sep) in [
        (y, 4, '-'),
        (m, 2, '-'),
        (d, 2, 'T'),
        (rem / 3600, 2, ':'),
        (rem % 3600 / 60, 2, ':'),
        (rem % 60, 2, '.'),
    ] {
        push_digits(&mut s, n.unsigned_abs(), width);
        s.push(sep);
    }
    push_digits(&mut s, micros, 6);
    s.push('Z');
    s
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_digits(s: &mut String, mut n: u64, width: u32) {
    let mut buf = [b'0'; 20];
    let width = width as usize;
    for digit in buf[..width].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    s.extend(buf[..width].iter().map(|&b| char::from(b)));
}

// Howard Hinnant's algorithms, proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_round_trip() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2018-10-25T17:53:06.995407Z"),
            Some(1_540_489_986_995_407_000)
        );
        assert_eq!(
            parse_rfc3339("2018-10-25T19:53:06.995407+02:00"),
            Some(1_540_489_986_995_407_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.123456789123Z"),
            Some(1_709_208_000_123_456_789)
        );
        assert_eq!(
            format_rfc3339(1_540_489_986_995_407_000),
            "2018-10-25T17:53:06.995407Z"
        );
        assert_eq!(
            format_rfc3339(parse_rfc3339("2000-03-01T00:00:00Z").unwrap()),
            "2000-03-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn formats_the_whole_range_as_format_did() {
        // The format!-based original, as the reference.
        let reference = |nanos: u64| {
            let secs = (nanos / 1_000_000_000) as i64;
            let micros = (nanos % 1_000_000_000) / 1_000;
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            )
        };
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_rfc3339(u64::MAX), "2554-07-21T23:34:33.709551Z");
        // A spread of instants over the range, odd steps so that every
        // field takes many values.
        let mut nanos = 0u64;
        while let Some(next) = nanos.checked_add(3_333_333_333_333_337) {
            assert_eq!(format_rfc3339(nanos), reference(nanos), "{nanos}");
            assert_eq!(
                parse_rfc3339(&format_rfc3339(nanos)),
                Some(nanos / 1_000 * 1_000)
            );
            nanos = next;
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2018-10-25",
            "2018-13-01T00:00:00Z",
            "2018-10-25T17:53:06",
            "2018-10-25T17:53:06.Z",
            "1969-12-31T23:59:59Z",
            "2018-10-25T17:5a:06Z",
            "2018-10-25T17:53:06Zjunk",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }
}
