//! Recurring maintenance windows: parsing and matching a time against them.

use core::fmt;

use serde::Deserialize;
use vigil_plugin_sdk::settings::Problems;

use crate::time::{DAY, DAY_NAMES, weekday};

/// One `maintenance_windows[]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindow {
    /// A label for evidence (default: the window's own text).
    #[serde(default)]
    name: Option<String>,
    /// Days the window starts on (`mon` … `sun`, or full names); empty: every day.
    #[serde(default)]
    days: Vec<String>,
    /// Start, `HH:MM` local to `tz_offset`.
    start: String,
    /// End, `HH:MM`; earlier than `start` means the next day.
    end: String,
    /// The offset from UTC of `start` and `end` (`+02:00`, `-05:00`, `Z`).
    #[serde(default)]
    tz_offset: Option<String>,
    /// `suppress` (default) or `downgrade`.
    #[serde(default)]
    action: Option<String>,
}

/// What a maintenance window does to findings inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowAction {
    /// Nothing is reported.
    Suppress,
    /// Findings are reported at `info`.
    Downgrade,
}

/// A validated maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// The label used in evidence.
    pub name: String,
    /// Bit `d` set: the window starts on weekday `d` (Monday = 0).
    days: u8,
    /// Minutes after local midnight.
    start: u32,
    /// Minutes after local midnight; `<= start` means the next day.
    end: u32,
    /// Seconds east of UTC.
    offset: i64,
    /// What it does.
    pub action: WindowAction,
}

impl MaintenanceWindow {
    /// True when `secs` (UTC) falls inside the window.
    pub fn contains(&self, secs: u64) -> bool {
        let local = i64::try_from(secs).unwrap_or(i64::MAX) + self.offset;
        let day = local.div_euclid(DAY);
        let minute = u32::try_from(local.rem_euclid(DAY) / 60).unwrap_or(0);
        let starts_on = |d: i64| self.days & (1 << weekday(d)) != 0;
        if self.start < self.end {
            starts_on(day) && (self.start..self.end).contains(&minute)
        } else {
            (starts_on(day) && minute >= self.start) || (starts_on(day - 1) && minute < self.end)
        }
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

pub(crate) fn parse_window(
    raw: &RawWindow,
    path: &str,
    problems: &mut Problems,
) -> Option<MaintenanceWindow> {
    let before = problems.clone();
    let mut days = 0u8;
    for (i, day) in raw.days.iter().enumerate() {
        let lower = day.trim().to_ascii_lowercase();
        match DAY_NAMES
            .iter()
            .position(|name| lower.len() >= 3 && full_day(name).starts_with(&lower))
        {
            Some(d) => days |= 1 << d,
            None => problems.push(
                format!("{path}.days[{i}]"),
                format!("`{day}` is not a day (`mon` … `sun`, or `monday` …)"),
            ),
        }
    }
    if raw.days.is_empty() {
        days = 0x7f;
    }
    let start = parse_hhmm(&raw.start);
    if start.is_none() {
        problems.push(
            format!("{path}.start"),
            format!("`{}` is not a time `HH:MM`", raw.start),
        );
    }
    let end = parse_hhmm(&raw.end);
    if end.is_none() {
        problems.push(
            format!("{path}.end"),
            format!("`{}` is not a time `HH:MM` (24:00 allowed)", raw.end),
        );
    }
    if let (Some(start), Some(end)) = (start, end)
        && start == end % (24 * 60)
    {
        problems.push(
            format!("{path}.end"),
            "the window is empty: `end` equals `start`",
        );
    }
    let tz = raw.tz_offset.as_deref().unwrap_or("+00:00");
    let offset = parse_offset(tz);
    if offset.is_none() {
        problems.push(
            format!("{path}.tz_offset"),
            format!("`{tz}` is not an offset (`+02:00`, `-05:30`, `Z`)"),
        );
    }
    let action = match raw.action.as_deref().map(|a| a.trim().to_ascii_lowercase()) {
        None => Some(WindowAction::Suppress),
        Some(a) if a == "suppress" => Some(WindowAction::Suppress),
        Some(a) if a == "downgrade" => Some(WindowAction::Downgrade),
        Some(a) => {
            problems.push(
                format!("{path}.action"),
                format!("unknown action `{a}`; expected `suppress` or `downgrade`"),
            );
            None
        }
    };
    if *problems != before {
        return None;
    }
    let (start, end, offset, action) = (start?, end?, offset?, action?);
    let day_text = if raw.days.is_empty() {
        "daily".to_owned()
    } else {
        DAY_NAMES
            .iter()
            .enumerate()
            .filter(|(d, _)| days & (1 << d) != 0)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(",")
    };
    let name = raw
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            format!(
                "{day_text} {}-{} {}",
                raw.start.trim(),
                raw.end.trim(),
                tz.trim()
            )
        });
    Some(MaintenanceWindow {
        name,
        days,
        start,
        end: end % (24 * 60),
        offset,
        action,
    })
}

fn full_day(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

/// `HH:MM` → minutes after midnight (`24:00` allowed as an end).
fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// `+02:00` / `-05:30` / `Z` → seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let minutes = parse_hhmm(rest)?;
    (minutes <= 14 * 60).then_some(sign * i64::from(minutes) * 60)
}
