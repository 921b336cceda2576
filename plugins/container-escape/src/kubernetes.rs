//! Kubernetes pod writes (audit events and watched pods): one finding per rule
//! per pod, listing every container that matched it.
//!
//! Per pod rather than per container because pod-level settings (hostNetwork,
//! hostPID, hostIPC) are copied into every container: one finding per
//! container would repeat the same fact for each of them.

use vigil_plugin_sdk::{ContainerRole, EntityKind, Finding, KeyValue, Severity};

use vigil_plugin_sdk::view::{EventView, KubernetesEventView};

use crate::config::Config;
use crate::rules::{Origin, Rule, inspect};

/// Verbs that create or change a pod: audit verbs, and watch event types.
pub(crate) const WRITE_VERBS: &[&str] = &["create", "update", "patch", "added", "modified"];

/// The audit stage that reports a request's outcome; the others
/// (`RequestReceived`, `ResponseStarted`, `Panic`) are skipped so that one
/// request gives one finding, and only if it succeeded.
pub(crate) const FINAL_STAGE: &str = "ResponseComplete";

/// One rule's hits across the containers of a pod.
struct Matched {
    rule: Rule,
    severity: Severity,
    images: Vec<String>,
    evidence: Vec<KeyValue>,
}

/// Findings for a pod created or changed with an escape-prone configuration.
pub(crate) fn findings(
    event: &EventView<'_>,
    request: &KubernetesEventView<'_>,
    config: &Config,
    out: &mut Vec<Finding>,
) {
    let Some(pod) = &request.pod else { return };
    if !is_successful_pod_write(request) || config.namespace_allowed(request.namespace) {
        return;
    }

    let mut matched: Vec<Matched> = Vec::new();
    for container in &pod.containers {
        if config.image_allowed(container.image) {
            continue;
        }
        for hit in inspect(&container.security, config, Origin::Pod) {
            let index = match matched.iter().position(|m| m.rule == hit.rule) {
                Some(index) => index,
                None => {
                    matched.push(Matched {
                        rule: hit.rule,
                        severity: hit.severity,
                        images: Vec::new(),
                        evidence: Vec::new(),
                    });
                    matched.len() - 1
                }
            };
            let entry = &mut matched[index];
            entry.severity = entry.severity.max(hit.severity);
            if !container.image.is_empty() && !entry.images.iter().any(|i| i == container.image) {
                entry.images.push(container.image.to_owned());
            }
            entry
                .evidence
                .push(KeyValue::new("container", container.name));
            if container.role != ContainerRole::Main {
                entry
                    .evidence
                    .push(KeyValue::new("container.role", container.role.as_str()));
            }
            entry.evidence.push(KeyValue::new("image", container.image));
            entry.evidence.extend(hit.evidence);
        }
    }
    matched.sort_by_key(|m| m.rule);

    let (pod_id, pod_name, subject) = describe_pod(request);
    for m in matched {
        let mut finding = Finding::builder(m.rule.id(), m.severity)
            .title(m.rule.title())
            .summary(format!("{subject} {}.", m.rule.consequence()))
            .entity(EntityKind::Pod, pod_id.clone(), pod_name.clone());
        for technique in m.rule.techniques() {
            finding = finding.technique(*technique);
        }
        for image in m.images {
            finding = finding.entity(EntityKind::Image, image, "");
        }
        if !pod.node_name.is_empty() {
            finding = finding.entity(EntityKind::Node, pod.node_name, "");
        }
        finding = finding
            .evidence("verb", request.verb)
            .evidence("namespace", request.namespace)
            .evidence("user", request.user);
        if let Some(owner) = &request.owner {
            finding = finding.evidence("owner", format!("{}/{}", owner.kind, owner.name));
        }
        for evidence in m.evidence {
            finding = finding.evidence(evidence.key, evidence.value);
        }
        out.push(finding.event(event.id).build());
    }
}

/// A create/update/patch of a pod (or of its ephemeral containers) at its
/// final audit stage that was not refused; or a watched pod added or modified.
fn is_successful_pod_write(request: &KubernetesEventView<'_>) -> bool {
    WRITE_VERBS.iter().any(|verb| request.verb.eq_ignore_ascii_case(verb))
        // `pods/status` and the like cannot change the spec.
        && (request.subresource.is_empty() || request.subresource.eq_ignore_ascii_case("ephemeralcontainers"))
        && (request.stage.is_empty() || request.stage.eq_ignore_ascii_case(FINAL_STAGE))
        && request.response_code.is_none_or(|code| code < 400)
}

/// The pod entity's id and name, and the subject of the summary.
///
/// A pod created with `generateName` has no name yet in the request: it is
/// then identified by its owner (`namespace/<owner name>`), or as
/// `namespace/(unnamed)` when the owner is unknown too.
fn describe_pod(request: &KubernetesEventView<'_>) -> (String, String, String) {
    let namespace = &request.namespace;
    if !request.name.is_empty() {
        let id = format!("{namespace}/{}", request.name);
        let subject = format!("Pod {id}");
        return (id, String::new(), subject);
    }
    match &request.owner {
        Some(owner) => (
            format!("{namespace}/{}", owner.name),
            format!("unnamed pod of {} {}", owner.kind, owner.name),
            format!("A new pod of {} {namespace}/{}", owner.kind, owner.name),
        ),
        None => (
            format!("{namespace}/(unnamed)"),
            String::new(),
            format!("A new pod in namespace {namespace}"),
        ),
    }
}
