//! RFC 3339 text for the times put in evidence. Plugins have no date
//! library (and need none beyond this), and evidence is read by people.

use crate::types::Timestamp;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// A [`Timestamp`] (nanoseconds since the Unix epoch) as
/// `2025-11-26T09:40:00.123456789Z`, or `2025-11-26T09:40:00Z` on a whole
/// second. `0`, which the host sends for a time it does not know, is
/// `unknown`.
#[must_use]
pub fn rfc3339(ns: Timestamp) -> String {
    if ns == 0 {
        return "unknown".to_owned();
    }
    let date_time = date_time(ns / NANOS_PER_SEC);
    match ns % NANOS_PER_SEC {
        0 => format!("{date_time}Z"),
        nanos => format!("{date_time}.{nanos:09}Z"),
    }
}

/// Whole seconds since the Unix epoch as `2025-11-26T10:05:00Z`; `0` is
/// the epoch itself.
#[must_use]
pub fn rfc3339_secs(secs: u64) -> String {
    format!("{}Z", date_time(secs))
}

/// `2025-11-26T10:05:00` (no zone) of seconds since the epoch.
fn date_time(secs: u64) -> String {
    // `u64::MAX / 86_400` fits in an i64: the fallback is never taken.
    let days = i64::try_from(secs / SECS_PER_DAY).unwrap_or(i64::MAX);
    let rest = secs % SECS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3_600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to
/// (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Day 1..=31 and month 1..=12 by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests;
