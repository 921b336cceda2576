//! Calendar arithmetic on UTC seconds: weekdays, hour-of-week buckets and
//! RFC 3339 text, without a date library.

/// Hours in a week: the number of seasonal buckets.
pub(crate) const WEEK_HOURS: usize = 168;

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// Day names, Monday first, as written in settings and evidence.
pub(crate) const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The weekday (Monday = 0) of a day counted from 1970-01-01 (a Thursday).
pub(crate) fn weekday(days_since_epoch: i64) -> usize {
    // rem_euclid of 7 is in 0..7.
    usize::try_from((days_since_epoch + 3).rem_euclid(7)).unwrap_or(0)
}

/// The hour-of-week bucket (Monday 00:00-01:00 UTC = 0) of a time in seconds.
pub(crate) fn hour_of_week(secs: u64) -> usize {
    let hours = secs / 3_600;
    let day = i64::try_from(hours / 24).unwrap_or(0);
    weekday(day) * 24 + usize::try_from(hours % 24).unwrap_or(0)
}

/// `Wed 10:00-11:00 UTC`.
pub(crate) fn bucket_label(bucket: usize) -> String {
    let day = DAY_NAMES[(bucket / 24) % 7];
    let hour = bucket % 24;
    let mut name = day.to_owned();
    if let Some(first) = name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    format!("{name} {hour:02}:00-{:02}:00 UTC", (hour + 1) % 24)
}

/// `2025-11-26T10:05:00Z`.
pub(crate) fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let days = secs.div_euclid(DAY);
    let rest = secs.rem_euclid(DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        (rest / 60) % 60,
        rest % 60
    )
}

/// Year, month, day of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_151_500), "2025-11-26T10:05:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        // 1970-01-01 was a Thursday; 2025-11-26 a Wednesday.
        assert_eq!(DAY_NAMES[weekday(0)], "thu");
        assert_eq!(hour_of_week(1_764_151_500), 2 * 24 + 10);
        assert_eq!(bucket_label(2 * 24 + 10), "Wed 10:00-11:00 UTC");
        assert_eq!(bucket_label(167), "Sun 23:00-00:00 UTC");
    }
}
