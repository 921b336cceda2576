//! Suppression rules (`[[suppress]]`): a finding whose rule and entities
//! match an active rule is not delivered. Never silently: each suppression
//! is counted per rule and suppression
//! (`vigil_findings_suppressed_total{rule,suppression}`) and logged.
//!
//! A rule is active from `starts` (optional) until `expires` (optional), and
//! within that, during any of its `windows` (all the time when it has
//! none). A window is either one-off (`start`/`end`, RFC 3339: a maintenance
//! window) or weekly (`days`, `from`/`to` as `HH:MM` UTC; `to` before `from`
//! runs past midnight; `days` are the days the window starts, all days when
//! empty).

use serde::{Deserialize, Serialize};

use vigil_core::finding_record::FindingRecord;
use vigil_core::glob::matches as glob;
use vigil_core::model::EntityKind;
use vigil_core::time::parse_rfc3339;
use vigil_core::validate::{Problems, Validate, join};

/// `[[suppress]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SuppressionRule {
    /// Name in logs and metrics (default: `suppress[INDEX]`).
    #[serde(default)]
    pub name: Option<String>,
    /// Rule id, `*` matching any run of characters (`container-escape/*`).
    pub rule: String,
    /// Each matcher must match at least one entity of the finding.
    #[serde(default)]
    pub entities: Vec<EntityMatch>,
    /// When the rule applies (always when empty).
    #[serde(default)]
    pub windows: Vec<TimeWindow>,
    /// RFC 3339: the rule applies from then on.
    #[serde(default)]
    pub starts: Option<String>,
    /// RFC 3339: the rule no longer applies from then on (logged once when it expires).
    #[serde(default)]
    pub expires: Option<String>,
    /// Why; logged with each suppression.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Matches one entity of a finding.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EntityMatch {
    /// Entity kind (any when absent).
    #[serde(default)]
    pub kind: Option<EntityKind>,
    /// Entity id pattern (`*` wildcards), e.g. `kube-system/*` for pods.
    #[serde(default)]
    pub id: Option<String>,
    /// Entity name pattern (`*` wildcards).
    #[serde(default)]
    pub name: Option<String>,
}

/// When a suppression applies.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// One-off window start, RFC 3339.
    #[serde(default)]
    pub start: Option<String>,
    /// One-off window end, RFC 3339.
    #[serde(default)]
    pub end: Option<String>,
    /// Weekly window: the days it starts (`mon` … `sun`; every day when empty).
    #[serde(default)]
    pub days: Vec<String>,
    /// Weekly window start, `HH:MM` UTC.
    #[serde(default)]
    pub from: Option<String>,
    /// Weekly window end, `HH:MM` UTC (before `from`: the next day).
    #[serde(default)]
    pub to: Option<String>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_NS: u64 = 86_400 * 1_000_000_000;

fn minutes(hhmm: &str) -> Option<u64> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && hhmm.len() == 5).then_some(h * 60 + m)
}

/// Day of the week (0 = Monday) of a time in ns since the epoch (a Thursday).
fn weekday(ns: u64) -> usize {
    ((ns / DAY_NS + 3) % 7) as usize
}

impl TimeWindow {
    fn contains(&self, now: u64) -> bool {
        if let (Some(s), Some(e)) = (&self.start, &self.end) {
            let (s, e) = (
                parse_rfc3339(s).unwrap_or(u64::MAX),
                parse_rfc3339(e).unwrap_or(0),
            );
            return s <= now && now < e;
        }
        let (Some(from), Some(to)) = (
            self.from.as_deref().and_then(minutes),
            self.to.as_deref().and_then(minutes),
        ) else {
            return false;
        };
        let day_ok = |d: usize| {
            self.days.is_empty() || self.days.iter().any(|x| x.eq_ignore_ascii_case(DAYS[d]))
        };
        let minute = (now % DAY_NS) / 60_000_000_000;
        let today = weekday(now);
        if from <= to {
            day_ok(today) && from <= minute && minute < to
        } else {
            // Past midnight: today's late part, or yesterday's window running on.
            (day_ok(today) && minute >= from) || (day_ok((today + 6) % 7) && minute < to)
        }
    }
}

impl Validate for TimeWindow {
    fn validate(&self, path: &str, problems: &mut Problems) {
        let one_off = self.start.is_some() || self.end.is_some();
        let weekly = self.from.is_some() || self.to.is_some() || !self.days.is_empty();
        if one_off == weekly {
            problems.push(
                path.to_owned(),
                "a window is either one-off (start and end) or weekly (from and to, optional days)",
            );
            return;
        }
        if one_off {
            let s = self.start.as_deref().and_then(parse_rfc3339);
            let e = self.end.as_deref().and_then(parse_rfc3339);
            if s.is_none() {
                problems.push(
                    join(path, "start"),
                    "must be an RFC 3339 time, e.g. 2026-12-01T22:00:00Z",
                );
            }
            if e.is_none() {
                problems.push(
                    join(path, "end"),
                    "must be an RFC 3339 time, e.g. 2026-12-02T02:00:00Z",
                );
            }
            if let (Some(s), Some(e)) = (s, e)
                && e <= s
            {
                problems.push(join(path, "end"), "must be after start");
            }
        } else {
            for (k, v) in [("from", &self.from), ("to", &self.to)] {
                if v.as_deref().and_then(minutes).is_none() {
                    problems.push(join(path, k), "must be HH:MM (UTC)");
                }
            }
            for (i, d) in self.days.iter().enumerate() {
                if !DAYS.iter().any(|x| x.eq_ignore_ascii_case(d)) {
                    problems.push(
                        join(path, &format!("days[{i}]")),
                        "must be one of mon tue wed thu fri sat sun",
                    );
                }
            }
        }
    }
}

impl EntityMatch {
    fn matches(&self, rec: &FindingRecord) -> bool {
        rec.entities.iter().any(|e| {
            self.kind.is_none_or(|k| k == e.kind)
                && self.id.as_deref().is_none_or(|p| glob(p, &e.id))
                && self.name.as_deref().is_none_or(|p| glob(p, &e.name))
        })
    }
}

impl SuppressionRule {
    /// Whether the rule is past its expiry at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires
            .as_deref()
            .and_then(parse_rfc3339)
            .is_some_and(|e| now >= e)
    }

    /// Whether the rule suppresses this finding at `now`.
    pub fn matches(&self, rec: &FindingRecord, now: u64) -> bool {
        !self.expired(now)
            && self
                .starts
                .as_deref()
                .and_then(parse_rfc3339)
                .is_none_or(|s| now >= s)
            && glob(&self.rule, &rec.rule_id)
            && self.entities.iter().all(|m| m.matches(rec))
            && (self.windows.is_empty() || self.windows.iter().any(|w| w.contains(now)))
    }
}

impl Validate for SuppressionRule {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.rule.is_empty() {
            problems.push(
                join(path, "rule"),
                "must not be empty (use `*` for every rule)",
            );
        }
        if self.rule == "*" && self.entities.is_empty() && self.windows.is_empty() {
            problems.push(
                join(path, "rule"),
                "`*` with no entities and no windows would suppress every finding",
            );
        }
        for (i, m) in self.entities.iter().enumerate() {
            if m.kind.is_none() && m.id.is_none() && m.name.is_none() {
                problems.push(
                    join(path, &format!("entities[{i}]")),
                    "matches every entity: give a kind, id or name",
                );
            }
        }
        for (i, w) in self.windows.iter().enumerate() {
            w.validate(&join(path, &format!("windows[{i}]")), problems);
        }
        for (k, v) in [("starts", &self.starts), ("expires", &self.expires)] {
            if let Some(t) = v
                && parse_rfc3339(t).is_none()
            {
                problems.push(
                    join(path, k),
                    "must be an RFC 3339 time, e.g. 2026-12-31T00:00:00Z",
                );
            }
        }
    }
}

/// The suppression rules in force, with the state needed to log expiries once.
#[derive(Debug, Default)]
pub struct Suppressions {
    rules: Vec<(String, SuppressionRule, bool)>,
}

impl Suppressions {
    pub fn new(rules: &[SuppressionRule]) -> Self {
        Self {
            rules: rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        r.name.clone().unwrap_or_else(|| format!("suppress[{i}]")),
                        r.clone(),
                        false,
                    )
                })
                .collect(),
        }
    }

    /// The name and reason of the first rule suppressing `rec` at `now`.
    pub fn check(&mut self, rec: &FindingRecord, now: u64) -> Option<(&str, &str)> {
        for (name, rule, expired_logged) in &mut self.rules {
            if !*expired_logged && rule.expired(now) {
                *expired_logged = true;
                tracing::warn!(
                    suppression = %name,
                    rule = %rule.rule,
                    expires = rule.expires.as_deref().unwrap_or_default(),
                    "suppression expired: its findings are delivered again"
                );
            }
        }
        self.rules
            .iter()
            .find(|(_, r, _)| r.matches(rec, now))
            .map(|(n, r, _)| (n.as_str(), r.reason.as_deref().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use vigil_core::model::{Entity, Finding, Severity};

    fn rec(rule: &str, pod: &str) -> FindingRecord {
        FindingRecord::new(
            Finding {
                rule_id: rule.into(),
                title: "t".into(),
                severity: Severity::High,
                summary: String::new(),
                techniques: vec![],
                entities: vec![Entity {
                    kind: EntityKind::Pod,
                    id: pod.into(),
                    name: String::new(),
                }],
                evidence: vec![],
                event_ids: vec![],
            },
            "p",
            "1",
            "n",
            0,
        )
    }

    fn t(s: &str) -> u64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn rule_entity_window_and_expiry() {
        let rule: SuppressionRule = toml::from_str(
            r#"
            rule = "p/priv*"
            entities = [{ kind = "pod", id = "kube-system/*" }]
            expires = "2026-12-01T00:00:00Z"
            windows = [
                { start = "2026-11-20T10:00:00Z", end = "2026-11-20T12:00:00Z" },
                { days = ["sat"], from = "22:00", to = "02:00" },
            ]
            "#,
        )
        .unwrap();
        let mut p = Problems::default();
        rule.validate("suppress[0]", &mut p);
        assert!(p.is_empty(), "{p:?}");
        let f = rec("p/privileged", "kube-system/etcd");
        // In the one-off window.
        assert!(rule.matches(&f, t("2026-11-20T11:00:00Z")));
        assert!(!rule.matches(&f, t("2026-11-20T12:00:00Z")));
        // 2026-11-21 is a Saturday: 23:00 and Sunday 01:00 are in the weekly window.
        assert!(rule.matches(&f, t("2026-11-21T23:00:00Z")));
        assert!(rule.matches(&f, t("2026-11-22T01:59:00Z")));
        assert!(!rule.matches(&f, t("2026-11-22T02:00:00Z")));
        assert!(
            !rule.matches(&f, t("2026-11-22T23:00:00Z")),
            "Sunday night is not in it"
        );
        // Other entity, other rule, expired.
        assert!(!rule.matches(
            &rec("p/privileged", "default/etcd"),
            t("2026-11-20T11:00:00Z")
        ));
        assert!(!rule.matches(
            &rec("p/host-network", "kube-system/etcd"),
            t("2026-11-20T11:00:00Z")
        ));
        assert!(!rule.matches(&f, t("2026-12-05T23:00:00Z")));
    }

    #[test]
    fn validation_reports_every_problem() {
        let rule: SuppressionRule = toml::from_str(
            r#"
            rule = "*"
            entities = [{}]
            expires = "tomorrow"
            windows = [{ start = "x", days = ["mon"] }, { from = "25:00", to = "01:00", days = ["funday"] }]
            "#,
        )
        .unwrap();
        let mut p = Problems::default();
        rule.validate("suppress[2]", &mut p);
        let paths: Vec<&str> = p.list().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "suppress[2].entities[0]",
                "suppress[2].windows[0]",
                "suppress[2].windows[1].from",
                "suppress[2].windows[1].days[0]",
                "suppress[2].expires",
            ]
        );
    }
}
