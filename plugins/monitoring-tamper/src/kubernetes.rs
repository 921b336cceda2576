//! Audit events: a security agent's pods, workloads or namespace deleted
//! through the API by someone other than the control plane.

use vigil_plugin_sdk::view::{EventView, KubernetesEventView};
use vigil_plugin_sdk::{EntityKind, Finding, KubernetesFilter, Severity};

use crate::rules::Rule;
use crate::{Deletion, MonitoringTamper};

/// Resources whose deletion removes an agent (or, for pods, stops it until
/// its controller recreates it).
const RESOURCES: [&str; 6] = [
    "pods",
    "daemonsets",
    "deployments",
    "statefulsets",
    "replicasets",
    "namespaces",
];

/// The verbs of a deletion through the API.
const VERBS: [&str; 2] = ["delete", "deletecollection"];
/// The audit stages judged: the request complete, or no stage (watch events).
const STAGES: [&str; 2] = ["", "ResponseComplete"];

/// What [`findings`] reads, and so the plugin's Kubernetes subscription:
/// deletions of [`RESOURCES`] themselves (no subresource) at [`STAGES`],
/// with the pod spec when there is one (its images may name an agent).
pub(crate) fn filter() -> KubernetesFilter {
    KubernetesFilter::any()
        .resources(RESOURCES)
        .subresources([""])
        .verbs(VERBS)
        .stages(STAGES)
}

pub(crate) fn findings(
    plugin: &mut MonitoringTamper,
    event: &EventView<'_>,
    request: &KubernetesEventView<'_>,
    out: &mut Vec<Finding>,
) {
    let rule = Rule::AgentDeleted;
    let resource = request.resource;
    if !plugin.config.enabled(rule)
        || !VERBS.contains(&request.verb)
        || !RESOURCES.contains(&resource)
        || !request.subresource.is_empty()
        || !STAGES.contains(&request.stage)
        || request.response_code.is_some_and(|code| code >= 400)
    {
        return;
    }
    let namespace = request.namespace;
    let name = request.name;
    let matched = if resource == "namespaces" {
        plugin
            .config
            .agent_namespace(name)
            .then(|| format!("namespace={name}"))
    } else if plugin.config.agent_namespace(namespace) {
        Some(format!("namespace={namespace}"))
    } else if let Some(pattern) = plugin.config.name_match(name) {
        Some(format!("name={pattern}"))
    } else {
        request
            .pod
            .iter()
            .flat_map(|pod| &pod.containers)
            .find_map(|c| plugin.config.image_match(c.image))
            .map(|pattern| format!("image={pattern}"))
    };
    let Some(matched) = matched else {
        return;
    };
    // Pods of the deleted object (or namespace) are stopped by the kubelet
    // next: remember it, whoever deleted it, so that their containers' stops
    // are not reported as well (held ones are dropped).
    let (deleted_namespace, deleted_name) = if resource == "namespaces" {
        (name, "")
    } else {
        (namespace, name)
    };
    plugin.record_deletion(Deletion {
        namespace: deleted_namespace.to_owned(),
        name: deleted_name.to_owned(),
        exact: resource == "pods",
        time: event.time,
    });
    // The control plane's own deletions (rollouts, evictions, garbage
    // collection) are not reported.
    if plugin.config.is_system(request.user)
        || (!request.audit_id.is_empty() && !plugin.first_request(request.audit_id))
    {
        return;
    }

    // A pod comes back through its controller; a workload or namespace does not.
    let severity = if resource == "pods" {
        Severity::Medium
    } else {
        rule.severity()
    };
    let object = match (resource, name) {
        ("namespaces", _) => format!("namespace {name}"),
        (_, "") => format!("every {resource} in namespace {namespace} (deletecollection)"),
        _ => format!("{} {namespace}/{name}", singular(resource)),
    };
    let user = if request.user.is_empty() {
        "An unknown user"
    } else {
        request.user
    };
    let mut finding = Finding::builder(rule.id(), severity)
        .title(rule.title())
        .summary(format!(
            "{user} deleted {object}, which runs a security agent ({matched}): the nodes it watched are \
             not monitored until it is back{}.",
            if resource == "pods" {
                " (its controller recreates the pod)"
            } else {
                ""
            }
        ));
    for technique in rule.techniques() {
        finding = finding.technique(*technique);
    }
    finding = match resource {
        "pods" if !name.is_empty() => {
            finding.entity(EntityKind::Pod, format!("{namespace}/{name}"), "")
        }
        _ => finding,
    };
    if !request.user.is_empty() {
        finding = finding.entity(EntityKind::User, request.user, "");
    }
    finding = finding
        .evidence("verb", request.verb)
        .evidence("resource", resource)
        .evidence("namespace", namespace)
        .evidence("name", name)
        .evidence("user", request.user)
        .evidence("matched", matched);
    if !request.source_ips.is_empty() {
        finding = finding.evidence("source-ips", request.source_ips.join(","));
    }
    if !request.user_agent.is_empty() {
        finding = finding.evidence("user-agent", request.user_agent);
    }
    out.push(finding.event(event.id).build());
}

fn singular(resource: &str) -> &str {
    resource.strip_suffix('s').unwrap_or(resource)
}
