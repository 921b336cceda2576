//! Calendar arithmetic on UTC seconds: weekdays and hour-of-week buckets,
//! without a date library (RFC 3339 text is the SDK's
//! `util::timefmt::rfc3339_secs`).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        // 1970-01-01 was a Thursday; 2025-11-26 a Wednesday.
        assert_eq!(DAY_NAMES[weekday(0)], "thu");
        assert_eq!(hour_of_week(1_764_151_500), 2 * 24 + 10);
        assert_eq!(bucket_label(2 * 24 + 10), "Wed 10:00-11:00 UTC");
        assert_eq!(bucket_label(167), "Sun 23:00-00:00 UTC");
    }
}
