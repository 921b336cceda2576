//! Docker Swarm services: a service whose spec gives its tasks a way to the
//! host is reported once, naming the service, instead of once per task
//! container. The spec is checked with the container rules (the host
//! normalises a service's task template like a container's settings).
//!
//! A service is reported once per spec whose risky settings differ from
//! those last reported for it: a `docker service update` that changes them
//! gives a new finding; a scale, a restart or an update of other fields
//! (each a new spec version in the swarm's store) does not: none changes
//! what makes the service dangerous, and the same alarm at every scale
//! would be noise (issue 12 said "per spec version"; the finding still
//! names the version it was made from). The finding
//! waits for the service's task containers on this node (its entities): it
//! is sent once as many as the desired replicas were seen, or after
//! `service_task_wait_ms`, whichever comes first. Task containers of a
//! service known this way give no container finding of their own.

use std::collections::{BTreeMap, HashMap, VecDeque};

use vigil_plugin_sdk::{
    ContainerAction, EntityKind, Finding, KeyValue, ServiceEvent, ServiceSpec, Severity,
    SwarmObject, Timestamp,
};

use vigil_plugin_sdk::view::{ContainerEventView, ContainerSecurityView, View};

use crate::config::Config;
use crate::rules::{Origin, Rule, inspect};

/// The label the Engine puts on a task container: its service's id.
pub(crate) const SERVICE_ID_LABEL: &str = "com.docker.swarm.service.id";
/// Services remembered; the oldest is forgotten first.
const SERVICE_CAPACITY: usize = 4096;
/// Task containers named in one finding.
const TASKS_PER_FINDING: usize = 64;

/// A service's risky settings, one reason per line; empty when none.
type Reasons = Vec<(Severity, Vec<KeyValue>, &'static str)>;

#[derive(Debug, Clone, Default)]
struct Service {
    name: String,
    /// The reasons last reported (or pending); empty: nothing to report.
    reported: String,
    /// A finding waiting for the task containers.
    pending: Option<Pending>,
}

#[derive(Debug, Clone)]
struct Pending {
    spec: ServiceSpec,
    reasons: Reasons,
    since: Timestamp,
    event_id: String,
    changes: Vec<KeyValue>,
    node: String,
    /// Task containers seen: (id, name, id of the event that showed it).
    /// The finding cites those events: the host verifies a container entity
    /// only against the events a finding cites.
    tasks: Vec<(String, String, String)>,
}

/// The services this plugin knows from a manager's service events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Services {
    by_id: HashMap<String, Service>,
    order: VecDeque<String>,
}

impl Services {
    /// Handles one service event; findings come from [`Self::due`].
    pub(crate) fn observe(
        &mut self,
        event: &ServiceEvent,
        config: &Config,
        out: &mut Vec<Finding>,
    ) {
        if event.object != SwarmObject::Service || !config.enabled(Rule::SwarmService) {
            return;
        }
        if event.action == "remove" {
            self.by_id.remove(&event.object_id);
            self.order.retain(|id| *id != event.object_id);
            return;
        }
        let Some(spec) = &event.service else {
            return;
        };
        if !self.by_id.contains_key(&spec.id) {
            if self.order.len() >= SERVICE_CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.by_id.remove(&old);
            }
            self.order.push_back(spec.id.clone());
        }
        let service = self.by_id.entry(spec.id.clone()).or_default();
        service.name.clone_from(&spec.name);
        if config.image_allowed(&spec.image) || config.container_allowed(&spec.name) {
            service.pending = None;
            return;
        }
        let reasons = reasons(spec, config);
        let key = fingerprint(&reasons);
        if key == service.reported {
            // Same risky settings (a scale, an update of other fields): a
            // pending finding just gets the newer spec.
            if let Some(p) = &mut service.pending {
                p.spec = spec.clone();
            }
            return;
        }
        service.reported = key;
        // A pending finding of an older spec is sent now, as it is: the
        // operator sees both versions.
        if let Some(old) = service.pending.take() {
            out.push(finding(old));
        }
        if !reasons.is_empty() {
            service.pending = Some(Pending {
                spec: spec.clone(),
                reasons,
                since: event.time,
                event_id: event.id.clone(),
                changes: event.changes.clone(),
                node: event.node.clone(),
                tasks: Vec::new(),
            });
        }
    }

    /// Whether `container` is a task of a known service (then the service
    /// covers it: no container finding). Records it for a pending finding,
    /// which is sent when all its desired replicas were seen.
    pub(crate) fn claims(
        &mut self,
        event_id: &str,
        container: &ContainerEventView<'_>,
        out: &mut Vec<Finding>,
    ) -> bool {
        let Some(service_id) = container
            .labels
            .iter()
            .find(|l| l.key == SERVICE_ID_LABEL)
            .map(|l| l.value)
        else {
            return false;
        };
        let Some(service) = self.by_id.get_mut(service_id) else {
            return false;
        };
        if let Some(p) = &mut service.pending
            && matches!(
                container.action,
                ContainerAction::Create | ContainerAction::Start | ContainerAction::Running
            )
            && !container.id.is_empty()
            && !p.tasks.iter().any(|(id, _, _)| *id == container.id)
            && p.tasks.len() < TASKS_PER_FINDING
        {
            p.tasks.push((
                container.id.to_owned(),
                container.name.to_owned(),
                event_id.to_owned(),
            ));
            let wanted = p.spec.replicas.map_or(usize::MAX, |r| r as usize);
            if p.tasks.len() >= wanted.min(TASKS_PER_FINDING)
                && let Some(done) = service.pending.take()
            {
                out.push(finding(done));
            }
        }
        true
    }

    /// The pending findings whose wait is over at `now`.
    pub(crate) fn due(&mut self, now: Timestamp, wait_ns: u64, out: &mut Vec<Finding>) {
        for service in self.by_id.values_mut() {
            if service
                .pending
                .as_ref()
                .is_some_and(|p| now >= p.since.saturating_add(wait_ns))
                && let Some(done) = service.pending.take()
            {
                out.push(finding(done));
            }
        }
    }
}

/// Why the spec is risky: the container rules' hits, plus added
/// capabilities that are not among the dangerous ones (a service fixes them
/// for every task it will ever run).
fn reasons(spec: &ServiceSpec, config: &Config) -> Reasons {
    let mut out: Reasons = inspect(
        &ContainerSecurityView::of(&spec.security),
        config,
        Origin::Engine,
    )
    .into_iter()
    .filter(|hit| hit.rule != Rule::SwarmService)
    .map(|hit| (hit.severity, hit.evidence, hit.rule.name()))
    .collect();
    if !out
        .iter()
        .any(|(_, _, rule)| *rule == Rule::DangerousCapability.name())
        && !spec.security.cap_add.is_empty()
    {
        out.push((
            Severity::Medium,
            vec![KeyValue::new("cap-add", spec.security.cap_add.join(","))],
            "capability-added",
        ));
    }
    out
}

fn fingerprint(reasons: &Reasons) -> String {
    let mut lines: Vec<String> = reasons
        .iter()
        .map(|(_, evidence, rule)| {
            let kv: Vec<String> = evidence
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect();
            format!("{rule}:{}", kv.join(";"))
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

fn finding(p: Pending) -> Finding {
    let spec = &p.spec;
    let severity = p
        .reasons
        .iter()
        .map(|(s, _, _)| *s)
        .max()
        .unwrap_or(Severity::Medium);
    let rules: Vec<&str> = p.reasons.iter().map(|(_, _, r)| *r).collect();
    let replicas = spec
        .replicas
        .map_or_else(|| "one per node".to_owned(), |r| r.to_string());
    let mut f = Finding::builder(Rule::SwarmService.id(), severity)
        .title(Rule::SwarmService.title())
        .summary(format!(
            "Swarm service {} ({}, spec version {}, {} mode, {} replicas) {}: {}.",
            spec.name,
            spec.image,
            spec.version,
            spec.mode.as_str(),
            replicas,
            Rule::SwarmService.consequence(),
            rules.join(", ")
        ));
    for technique in Rule::SwarmService.techniques() {
        f = f.technique(*technique);
    }
    for (id, name, _) in &p.tasks {
        f = f.entity(EntityKind::Container, id.clone(), name.clone());
    }
    if !spec.image.is_empty() {
        f = f.entity(EntityKind::Image, spec.image.clone(), "");
    }
    if !p.node.is_empty() {
        f = f.entity(EntityKind::Node, p.node.clone(), "");
    }
    f = f
        .evidence("service", spec.name.clone())
        .evidence("service-id", spec.id.clone())
        .evidence("spec-version", spec.version.to_string())
        .evidence("mode", spec.mode.as_str())
        .evidence("replicas", replicas)
        .evidence("networks", spec.networks.join(","))
        .evidence("image", spec.image.clone())
        .evidence("rules", rules.join(","))
        .evidence("task-containers", p.tasks.len().to_string());
    let mut seen = BTreeMap::new();
    for (_, evidence, _) in &p.reasons {
        for e in evidence {
            seen.entry(e.key.clone()).or_insert_with(|| e.value.clone());
        }
    }
    for (k, v) in seen {
        f = f.evidence(k, v);
    }
    for c in &p.changes {
        f = f.evidence(format!("change.{}", c.key), c.value.clone());
    }
    f = f.event(p.event_id);
    for (_, _, event_id) in p.tasks {
        f = f.event(event_id);
    }
    f.build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
