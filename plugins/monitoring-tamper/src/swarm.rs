//! Docker Swarm (a manager's service events): a global service runs a task
//! on every node, so one that mounts the container runtime's socket or
//! directories holds the runtime, and the monitoring beside it, of the
//! whole swarm. Reported once per service and set of such mounts; a known
//! security agent (matched like agent containers) is expected to do it.

use std::collections::{HashMap, VecDeque};

use vigil_plugin_sdk::view::{List, View};
use vigil_plugin_sdk::{EntityKind, Finding, ServiceEvent, ServiceMode, SwarmObject};

use crate::MonitoringTamper;
use crate::rules::Rule;

/// Host paths of container runtimes: their sockets, state and data. A
/// mount of one of these, or of a path under or above one, counts.
pub const RUNTIME_PATHS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/docker",
    "/run/docker",
    "/var/lib/docker",
    "/var/run/containerd",
    "/run/containerd",
    "/var/lib/containerd",
    "/run/runc",
    "/var/run/crio",
    "/run/crio",
    "/var/lib/containers",
];

/// Services remembered as reported.
const MAX_SERVICES: usize = 1024;

/// Service id → the runtime mounts last reported for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reported {
    mounts: HashMap<String, String>,
    order: VecDeque<String>,
}

fn runtime_path(source: &str) -> bool {
    let source = source.trim_end_matches('/');
    !source.is_empty()
        && RUNTIME_PATHS.iter().any(|p| {
            source == *p
                || source
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
                || p.strip_prefix(source)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

pub(crate) fn findings(
    plugin: &mut MonitoringTamper,
    event: &ServiceEvent,
    out: &mut Vec<Finding>,
) {
    if event.object != SwarmObject::Service
        || !plugin.config.enabled(Rule::GlobalServiceRuntimeMount)
    {
        return;
    }
    if event.action == "remove" {
        plugin.services.mounts.remove(&event.object_id);
        plugin.services.order.retain(|id| *id != event.object_id);
        return;
    }
    let Some(spec) = &event.service else {
        return;
    };
    if !matches!(spec.mode, ServiceMode::Global | ServiceMode::GlobalJob) {
        return;
    }
    let mounts: Vec<String> = spec
        .security
        .mounts
        .iter()
        .filter(|m| runtime_path(&m.source))
        .map(|m| {
            let mode = if m.read_only { "ro" } else { "rw" };
            format!("{}:{}:{mode}", m.source, m.destination)
        })
        .collect();
    if mounts.is_empty()
        || plugin
            .config
            .agent_container(&spec.name, &spec.image, List::of(&spec.labels))
            .is_some()
    {
        return;
    }
    let key = mounts.join(",");
    if plugin.services.mounts.get(&spec.id) == Some(&key) {
        return;
    }
    if !plugin.services.mounts.contains_key(&spec.id) {
        if plugin.services.order.len() >= MAX_SERVICES
            && let Some(old) = plugin.services.order.pop_front()
        {
            plugin.services.mounts.remove(&old);
        }
        plugin.services.order.push_back(spec.id.clone());
    }
    plugin.services.mounts.insert(spec.id.clone(), key.clone());
    let rule = Rule::GlobalServiceRuntimeMount;
    let mut f = Finding::builder(rule.id(), rule.severity())
        .title(rule.title())
        .summary(format!(
            "Swarm service {} ({}, spec version {}) runs a task on every node with the container \
             runtime mounted ({key}): it can stop, pause or blind the security monitoring and every \
             container of the swarm.",
            spec.name, spec.image, spec.version
        ));
    for technique in rule.techniques() {
        f = f.technique(*technique);
    }
    if !spec.image.is_empty() {
        f = f.entity(EntityKind::Image, spec.image.clone(), "");
    }
    if !event.node.is_empty() {
        f = f.entity(EntityKind::Node, event.node.clone(), "");
    }
    out.push(
        f.evidence("service", spec.name.clone())
            .evidence("service-id", spec.id.clone())
            .evidence("spec-version", spec.version.to_string())
            .evidence("mode", spec.mode.as_str())
            .evidence("image", spec.image.clone())
            .evidence("runtime-mounts", key)
            .event(event.id.clone())
            .build(),
    );
}
