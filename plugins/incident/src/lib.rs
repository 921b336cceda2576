#![doc = include_str!("../README.md")]

mod config;
mod group;

pub use config::{Config, DEFAULT_GROUP_BY, GroupKind};
pub use group::{Incident, Incidents, Member};
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::timefmt::rfc3339;

/// The rule every incident is reported under.
pub const RULE: &str = "incident/correlated";
/// Entities listed in one incident finding (the rest are in its members).
const MAX_ENTITIES: usize = 32;

/// The correlator: groups the other plugins' findings into incidents.
///
/// It subscribes to no event kind: it is exported with
/// `export_detector!(Incident, findings)` and works on findings only.
/// Open incidents are kept in memory (a restart starts afresh).
#[derive(Debug, Clone, Default)]
pub struct IncidentDetector {
    config: Config,
    incidents: Incidents,
}

impl IncidentDetector {
    /// A detector with an already validated configuration.
    #[must_use]
    pub fn with_config(config: Config) -> Self {
        Self {
            config,
            incidents: Incidents::default(),
        }
    }
}

impl Detector for IncidentDetector {
    fn describe() -> PluginInfo {
        PluginInfo::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .description(
                "Findings of two or more plugins about the same container, pod, image or node within a \
                 window become one incident, with a score, the findings it groups and their timeline; \
                 reported again (same incident id) only when it grows.",
            )
            .setting(
                "window_secs",
                "integer seconds",
                "600",
                "An incident with no new finding for this long is closed; a later finding opens a new one.",
            )
            .setting(
                "min_plugins",
                "integer",
                "2",
                "Distinct plugins whose findings an incident needs before it is reported.",
            )
            .setting(
                "group_by",
                "list of `container`, `pod`, `service`, `image`, `node`",
                "[\"container\",\"pod\",\"service\",\"image\",\"node\"]",
                "What findings are grouped by, most preferred first (containers and pods only when the \
                 host verified them; a Docker Swarm service by the name in a finding's `service` \
                 evidence or `service:NAME` scope).",
            )
            .setting("max_open", "integer", "1024", "Incidents kept open at once.")
            .setting(
                "max_members",
                "integer",
                "64",
                "Findings listed in one incident; later ones are counted (`unlisted`).",
            )
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        self.config = Config::from_json(settings)?;
        Ok(())
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        let _ = batch;
        Vec::new()
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.incidents.expire(now, &self.config);
        Vec::new()
    }

    fn on_findings(&mut self, batch: &[FindingEvent]) -> Vec<Finding> {
        let mut out = Vec::new();
        for fe in batch {
            if let Some(incident) = self.incidents.add(fe, &self.config) {
                out.push(report(incident, &self.config));
            }
        }
        out
    }
}

/// The finding for an incident as it stands.
#[must_use]
pub fn report(incident: &Incident, config: &Config) -> Finding {
    let score = incident.score();
    let severity = match score {
        30.. => Severity::Critical,
        15.. => Severity::High,
        _ => Severity::Medium,
    };
    let plugins = incident.plugins();
    let (kind, key) = (&incident.key.0, &incident.key.1);
    let about = incident
        .entities
        .iter()
        .find(|(e, _)| GroupKind::Entity(e.kind) == *kind && e.id == *key && !e.name.is_empty())
        .map_or_else(
            || format!("{kind} {key}"),
            |(e, _)| format!("{kind} {} ({key})", e.name),
        );
    // Timeline order: by the time the host accepted each finding, arrival
    // order among equal times (a stable sort).
    let mut members: Vec<&Member> = incident.members.iter().collect();
    members.sort_by_key(|m| m.time);
    let steps: Vec<String> = members
        .iter()
        .map(|m| format!("{} ({})", m.rule_id, m.severity))
        .collect();
    let mut b = Finding::builder(RULE, severity)
        .title(format!(
            "Incident: {} findings of {} plugins about {about}",
            incident.members.len(),
            plugins.len()
        ))
        .summary(format!(
            "Incident {} (score {score}): {} about the same {kind} within {} s, in this order: {}.",
            incident.id,
            plugins.join(", "),
            config.window_ns / 1_000_000_000,
            steps.join(", then ")
        ))
        .evidence("incident-id", incident.id.clone())
        .evidence("revision", incident.revision.to_string())
        .evidence("score", score.to_string())
        .evidence("findings", incident.members.len().to_string())
        .evidence("plugins", plugins.join(","))
        .evidence("grouped-by", format!("{kind}:{key}"));
    if incident.unlisted > 0 {
        b = b.evidence("unlisted", incident.unlisted.to_string());
    }
    for (i, m) in members.iter().enumerate() {
        b = b.evidence(
            format!("timeline.{:02}", i + 1),
            format!(
                "{} {} {} {} {}",
                rfc3339(m.time),
                m.plugin,
                m.rule_id,
                m.severity,
                m.id
            ),
        );
        for t in &m.techniques {
            b = b.technique(t.clone());
        }
        b = b.event(m.id.clone());
    }
    for (e, _) in incident.entities.iter().take(MAX_ENTITIES) {
        b = b.entity(e.kind, e.id.clone(), e.name.clone());
    }
    b.build()
}

export_detector!(IncidentDetector, findings);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
