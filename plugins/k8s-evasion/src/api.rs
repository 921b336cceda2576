//! Requests that reach into a running pod through the API server: exec,
//! attach, port-forward (long-running: reported when the response starts)
//! and ephemeral containers (reported when the request completes).

use vigil_plugin_sdk::{ContainerRole, EntityKind, Finding, FindingBuilder, Severity};

use vigil_plugin_sdk::view::{EventView, KubernetesEventView};

use crate::rules::Rule;
use crate::uri::{query, values};
use crate::{K8sEvasion, Stage, refused, stage};

/// Verbs that add ephemeral containers (`kubectl debug` patches the subresource).
const EPHEMERAL_VERBS: [&str; 3] = ["create", "update", "patch"];

pub(crate) fn findings(
    plugin: &mut K8sEvasion,
    event: &EventView<'_>,
    request: &KubernetesEventView<'_>,
    out: &mut Vec<Finding>,
) {
    if !request.resource.eq_ignore_ascii_case("pods") {
        return;
    }
    let rule = match request.subresource {
        "exec" => Rule::PodExec,
        "attach" => Rule::PodAttach,
        "portforward" => Rule::PortForward,
        "ephemeralcontainers" => Rule::EphemeralContainer,
        _ => return,
    };
    if !plugin.config.enabled(rule)
        || refused(request)
        || plugin.config.allowed(request.user, request.namespace)
    {
        return;
    }
    let stage = stage(request);
    let reportable = match rule {
        // Long-running: `ResponseStarted` says the session was opened; when
        // the policy omits that stage, `ResponseComplete` is the first word.
        Rule::PodExec | Rule::PodAttach | Rule::PortForward => {
            matches!(stage, Stage::Started | Stage::Final)
        }
        _ => {
            stage == Stage::Final
                && EPHEMERAL_VERBS
                    .iter()
                    .any(|verb| request.verb.eq_ignore_ascii_case(verb))
        }
    };
    if !reportable || !plugin.first_report(request.audit_id, request.stage) {
        return;
    }
    out.push(finding(plugin, event, request, rule));
}

fn finding(
    plugin: &K8sEvasion,
    event: &EventView<'_>,
    request: &KubernetesEventView<'_>,
    rule: Rule,
) -> Finding {
    let namespace = request.namespace;
    let pod = format!("{namespace}/{}", request.name);
    let protected = plugin.config.protected(namespace);
    let severity = if protected {
        rule.severity().max(Severity::High)
    } else {
        rule.severity()
    };
    let params = query(request.request_uri);
    let container = values(&params, "container").first().copied().unwrap_or("");
    let in_container = if container.is_empty() {
        String::new()
    } else {
        format!(" (container {container})")
    };
    let user = if request.user.is_empty() {
        "An unknown user"
    } else {
        request.user
    };
    let flag = |name: &str| values(&params, name).first().copied() == Some("true");
    let interactive = flag("stdin") && flag("tty");
    let command = values(&params, "command").join(" ");
    let ports = values(&params, "ports").join(",");

    let summary = match rule {
        Rule::PodExec => format!(
            "{user} ran `{}` in pod {pod}{in_container} through the API server{}: a command run this way \
             bypasses the image's entrypoint and the workload's deployment pipeline, with the container's \
             credentials and network position.",
            if command.is_empty() {
                "(command not logged)"
            } else {
                &command
            },
            if interactive {
                ", in an interactive terminal"
            } else {
                ""
            }
        ),
        Rule::PodAttach => format!(
            "{user} attached to pod {pod}{in_container} through the API server{}: the session reads and \
             writes the main process's standard streams (a shell there is a shell in the container).",
            if interactive { ", with a terminal" } else { "" }
        ),
        Rule::PortForward => format!(
            "{user} forwarded {} of pod {pod} through the API server: the tunnel reaches the pod directly, \
             around network policies, ingress and service meshes.",
            if ports.is_empty() {
                "ports".to_owned()
            } else {
                format!("port(s) {ports}")
            }
        ),
        _ => format!(
            "{user} added an ephemeral container to running pod {pod}: it can run any image next to the \
             pod's containers, share their process namespace and volumes, and is not part of the \
             workload's spec."
        ),
    };
    let mut finding = Finding::builder(rule.id(), severity)
        .title(rule.title())
        .summary(summary)
        .entity(EntityKind::Pod, pod, "");
    for technique in rule.techniques() {
        finding = finding.technique(*technique);
    }
    if !request.user.is_empty() {
        finding = finding.entity(EntityKind::User, request.user, "");
    }
    let ephemeral = request
        .pod
        .iter()
        .flat_map(|pod| &pod.containers)
        .filter(|c| c.role == ContainerRole::Ephemeral);
    if rule == Rule::EphemeralContainer {
        for image in ephemeral.clone().map(|c| c.image).filter(|i| !i.is_empty()) {
            finding = finding.entity(EntityKind::Image, image, "");
        }
    }
    finding = finding
        .evidence("verb", request.verb)
        .evidence("subresource", request.subresource)
        .evidence("namespace", namespace)
        .evidence("pod", request.name)
        .evidence("user", request.user)
        .evidence("stage", request.stage);
    if protected {
        finding = finding.evidence("protected-namespace", "true");
    }
    if !container.is_empty() {
        finding = finding.evidence("container", container);
    }
    if !command.is_empty() {
        finding = finding.evidence("command", command);
    }
    for name in ["stdin", "tty"] {
        if let Some(value) = values(&params, name).first() {
            finding = finding.evidence(name, *value);
        }
    }
    if !ports.is_empty() {
        finding = finding.evidence("ports", ports);
    }
    if rule == Rule::EphemeralContainer {
        // The body lists every ephemeral container of the pod after the request.
        for c in ephemeral {
            finding = finding
                .evidence("ephemeral-container", c.name)
                .evidence("image", c.image);
        }
    }
    finding = attribution(plugin, namespace, request.name, finding);
    if !request.source_ips.is_empty() {
        finding = finding.evidence("source-ips", request.source_ips.join(","));
    }
    if !request.user_agent.is_empty() {
        finding = finding.evidence("user-agent", request.user_agent);
    }
    finding.event(event.id).build()
}

/// The pod's controller and the workload's creator, when known.
fn attribution(
    plugin: &K8sEvasion,
    namespace: &str,
    pod: &str,
    mut finding: FindingBuilder,
) -> FindingBuilder {
    let attribution = crate::pods::resolve(plugin, namespace, "Pod", pod);
    if attribution.chain.len() > 1 {
        finding = finding.evidence("pod.owners", attribution.chain[1..].join(" → "));
    }
    if attribution.chain.len() > 1
        && let Some(creator) = attribution.creator
    {
        finding = finding.evidence("pod.workload-creator", creator);
    }
    finding
}
