//! Counters keyed by label values known only at run time (rule ids, output
//! names, spool policies). They are bumped per finding, far below the event
//! rate, so a mutex-guarded map is cheap enough; the per-event counters are
//! plain atomics elsewhere.

use std::collections::BTreeMap;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::exposition::{self, Zipped};
use super::lock;

/// Counters keyed by label values (rule ids, output names): few keys, low rate.
#[derive(Debug, Default)]
pub struct LabeledCounter {
    values: std::sync::Mutex<BTreeMap<Vec<String>, u64>>,
}

impl LabeledCounter {
    /// Adds `n` to the counter of these label values.
    pub fn add(&self, labels: &[&str], n: u64) {
        let mut values = lock(&self.values);
        let key: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        *values.entry(key).or_default() += n;
    }

    /// The counter of these label values (0 when never counted).
    pub fn get(&self, labels: &[&str]) -> u64 {
        let values = lock(&self.values);
        values
            .iter()
            .find(|(k, _)| k.iter().map(String::as_str).eq(labels.iter().copied()))
            .map_or(0, |(_, v)| *v)
    }

    /// Writes the family `name` (`_total` is added), one series per key,
    /// the key's values under `label_names`.
    pub(crate) fn encode(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        label_names: &[&'static str],
    ) -> fmt::Result {
        let values = lock(&self.values);
        let series: Vec<_> = values
            .iter()
            .map(|(key, n)| {
                let labels = Zipped {
                    names: label_names,
                    values: key,
                };
                (labels, *n)
            })
            .collect();
        exposition::counters(enc, name, help, &series)
    }
}

/// Distinct (plugin, rule) series kept: a plugin inventing rule ids must
/// not grow the metrics without bound; the excess is counted under
/// `rule="(other)"`.
pub(crate) const MAX_RULE_SERIES: usize = 1_000;

/// The rule id the excess series are counted under.
const OTHER_RULE: &str = "(other)";

/// Findings written, per plugin and rule id (`vigil_findings_total`).
#[derive(Debug, Default)]
pub(crate) struct FindingCounts {
    inner: std::sync::Mutex<Findings>,
}

#[derive(Debug, Default)]
struct Findings {
    /// plugin → rule → findings; nested so that counting a known series
    /// looks it up by `&str` without allocating.
    by_plugin: BTreeMap<String, BTreeMap<String, u64>>,
    /// Series in `by_plugin`.
    series: usize,
}

impl FindingCounts {
    /// Counts a finding written for `rule` of `plugin`.
    pub(crate) fn add(&self, plugin: &str, rule: &str) {
        let mut f = lock(&self.inner);
        let Findings { by_plugin, series } = &mut *f;
        if let Some(n) = by_plugin.get_mut(plugin).and_then(|r| r.get_mut(rule)) {
            *n += 1;
            return;
        }
        let rule = if *series < MAX_RULE_SERIES {
            rule
        } else {
            OTHER_RULE
        };
        let rules = by_plugin.entry(plugin.to_owned()).or_default();
        let n = rules.entry(rule.to_owned()).or_insert_with(|| {
            *series += 1;
            0
        });
        *n += 1;
    }

    /// Writes `vigil_findings_total{plugin,rule}`.
    pub(crate) fn encode(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let f = lock(&self.inner);
        let series: Vec<_> = f
            .by_plugin
            .iter()
            .flat_map(|(plugin, rules)| {
                rules.iter().map(move |(rule, n)| {
                    ([("plugin", plugin.as_str()), ("rule", rule.as_str())], *n)
                })
            })
            .collect();
        exposition::counters(
            enc,
            "vigil_findings",
            "Findings written, per plugin and rule id (at most 1,000 series; the excess under rule=\"(other)\").",
            &series,
        )
    }
}
