//! {{name}}: a Vigil correlation plugin (scaffolded by
//! `vigil plugin new --kind correlator`).
//!
//! Exported with `export_detector!(Plugin, findings)`, it also receives the
//! findings the other plugins reported (never its own), with the host's
//! verdict on each entity. The sample rule reports a container that two or
//! more other plugins reported (say container-escape for `--network host`,
//! then suspicious-egress for a connection to a C2 address): one finding per
//! container, naming the plugins and the findings it stands on. Replace it
//! with your own logic; keep the shape.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::{host, settings};

/// The rule this plugin reports.
const RULE: &str = "{{name}}/multi-plugin";
/// Containers remembered at most (a bound on memory, oldest first out).
const MAX_CONTAINERS: usize = 10_000;

/// The correlator. One instance lives as long as the component instance;
/// what it has seen is kept in memory (a restart starts afresh).
#[derive(Debug, Default)]
pub struct Plugin {
    settings: Settings,
    seen: HashMap<String, Seen>,
    /// Container ids in the order they were first seen.
    order: std::collections::VecDeque<String>,
}

/// What the other plugins reported about one container.
#[derive(Debug, Default)]
struct Seen {
    name: String,
    plugins: BTreeSet<String>,
    rules: Vec<String>,
    finding_ids: Vec<String>,
    reported: bool,
}

/// The settings, a JSON object; every field optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// How many distinct plugins must report one container.
    min_plugins: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self { min_plugins: 2 }
    }
}

impl Detector for Plugin {
    fn describe() -> PluginInfo {
        // No event kinds: findings come through `on_findings`.
        PluginInfo::builder("{{name}}", "0.1.0")
            .description("A container reported by two or more other plugins.")
            .setting(
                "min_plugins",
                "integer >= 2",
                "2",
                "How many distinct plugins must report one container.",
            )
            .build()
    }

    fn configure(&mut self, json: &str) -> Result<(), ConfigError> {
        let parsed: Settings = settings::parse(json)?;
        let mut problems = settings::Problems::new();
        if parsed.min_plugins < 2 {
            problems.push("min_plugins", "must be at least 2");
        }
        problems.into_result()?;
        host::log::info(
            "configured",
            &[("min_plugins", &parsed.min_plugins.to_string())],
        );
        self.settings = parsed;
        Ok(())
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        Vec::new()
    }

    fn on_findings(&mut self, batch: &[FindingEvent]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for fe in batch {
            // Only findings made from events: other correlators' findings
            // (depth 1 and more) would count one story twice.
            if fe.depth > 0 {
                continue;
            }
            // Only containers the host verified for the reporting plugin: a
            // plugin can name any container, it was shown only some.
            for entity in fe.verified_entities() {
                if entity.kind != EntityKind::Container {
                    continue;
                }
                if let Some(finding) = self.add(fe, entity) {
                    findings.push(finding);
                }
            }
        }
        findings
    }
}

impl Plugin {
    /// Records one finding about a container; the finding of this rule
    /// when the container has just reached the threshold.
    fn add(&mut self, fe: &FindingEvent, container: &Entity) -> Option<Finding> {
        if !self.seen.contains_key(&container.id) {
            if self.order.len() >= MAX_CONTAINERS
                && let Some(oldest) = self.order.pop_front()
            {
                self.seen.remove(&oldest);
            }
            self.order.push_back(container.id.clone());
        }
        let seen = self.seen.entry(container.id.clone()).or_default();
        seen.name.clone_from(&container.name);
        seen.plugins.insert(fe.plugin.clone());
        seen.rules.push(fe.finding.rule_id.clone());
        seen.finding_ids.push(fe.id.clone());
        if seen.reported || seen.plugins.len() < self.settings.min_plugins {
            return None;
        }
        seen.reported = true;
        let plugins: Vec<&str> = seen.plugins.iter().map(String::as_str).collect();
        let mut b = Finding::builder(RULE, Severity::High)
            .title(format!(
                "Container {} reported by {} plugins",
                seen.name,
                plugins.len()
            ))
            .summary(format!(
                "Container {} was reported by {}: {}.",
                seen.name,
                plugins.join(", "),
                seen.rules.join(", then ")
            ))
            .entity(EntityKind::Container, &container.id, &seen.name)
            .evidence("plugins", plugins.join(","))
            .evidence("rules", seen.rules.join(","));
        // The findings it stands on, by their ids.
        for id in &seen.finding_ids {
            b = b.event(id);
        }
        Some(b.build())
    }
}

vigil_plugin_sdk::export_detector!(Plugin, findings);

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(id: &str, plugin: &str, rule: &str, verdict: EntityVerdict) -> FindingEvent {
        FindingEvent {
            id: id.into(),
            plugin: plugin.into(),
            plugin_version: "1.0.0".into(),
            time: 1_700_000_000_000_000_000,
            node: "node-1".into(),
            depth: 0,
            finding: Finding::builder(rule, Severity::High)
                .entity(EntityKind::Container, "c0ffee", "web")
                .build(),
            verdicts: vec![verdict],
        }
    }

    #[test]
    fn reports_a_container_once_two_plugins_named_it() {
        let mut plugin = Plugin::default();
        plugin.configure("{}").expect("default settings");
        let first = reported(
            "f1",
            "container-escape",
            "container-escape/host-network",
            EntityVerdict::Verified,
        );
        assert!(plugin.on_findings(&[first]).is_empty());
        let second = reported(
            "f2",
            "suspicious-egress",
            "suspicious-egress/threat-intel",
            EntityVerdict::Verified,
        );
        let third = reported(
            "f3",
            "runtime-tamper",
            "runtime-tamper/x",
            EntityVerdict::Verified,
        );
        let findings = plugin.on_findings(&[second, third]);
        assert_eq!(findings.len(), 1, "once per container");
        assert_eq!(findings[0].rule_id, RULE);
        assert_eq!(findings[0].event_ids, ["f1", "f2"]);
    }

    #[test]
    fn unverified_containers_do_not_count() {
        let mut plugin = Plugin::default();
        plugin.configure("{}").expect("default settings");
        let batch = [
            reported("f1", "a", "a/x", EntityVerdict::Unverified),
            reported("f2", "b", "b/x", EntityVerdict::Unverified),
        ];
        assert!(plugin.on_findings(&batch).is_empty());
    }

    #[test]
    fn settings_problems_have_paths() {
        let mut plugin = Plugin::default();
        let error = plugin
            .configure(r#"{"min_plugins": 1}"#)
            .expect_err("bad settings");
        let paths: Vec<String> = error.problems.into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["min_plugins"]);
    }
}
