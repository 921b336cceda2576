//! `container-write`: a process of a container wrote to a watched runtime
//! file. The file-integrity source names the writer of each write (a
//! `write` process event, WIT 0.1.3); a container has no business writing
//! the node's runtime binaries or configuration, so whichever way it got
//! at them (a bind mount of `/usr/bin`, `/etc/docker` or the host's root, a
//! privileged container) this is an escape to the host in progress.
//! Writes by the host's own processes are not judged here: their change is
//! reported by the path class's rule, as it always was.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::paths::file_name;

use crate::config::Config;
use crate::rules::{PathClass, Rule};

/// The finding for a `write` event, when a container's process wrote to a
/// path of a class.
pub(crate) fn inspect(e: &ProcessEvent, config: &Config) -> Option<Finding> {
    let path = e.written_path()?;
    let container = e.container.as_ref()?;
    let (class, pattern, class_severity) = config.classify(path)?;
    // As for file events: the kubelet ignores hidden files in its manifest
    // directory.
    if class == PathClass::StaticPod && file_name(path).starts_with('.') {
        return None;
    }
    let rule = Rule::ContainerWrite;
    // At least high: a container reaching the node's runtime files is an
    // escape whatever the file's own class weighs.
    let severity = class_severity.max(Severity::High);
    let shown = if container.name.is_empty() {
        container.id.get(..12).unwrap_or(&container.id).to_owned()
    } else {
        container.name.clone()
    };
    let binary = if e.binary.is_empty() {
        "an exited process"
    } else {
        e.binary.as_str()
    };
    let summary = format!(
        "{} {path} was written by `{binary}` (pid {}) in container {shown} (image {}): a \
         container's process reached the node's runtime files, an escape to the host; {}.",
        class.noun(),
        e.pid,
        if container.image.is_empty() {
            "unknown"
        } else {
            container.image.as_str()
        },
        class.consequence()
    );
    let mut finding = Finding::builder(rule.id(), severity)
        .title(rule.title())
        .summary(summary);
    for technique in rule.techniques() {
        finding = finding.technique(*technique);
    }
    // What was tampered with: the class's own technique too.
    for technique in Rule::for_class(class, false).techniques() {
        finding = finding.technique(*technique);
    }
    finding = finding.entity(
        EntityKind::Container,
        container.id.clone(),
        container.name.clone(),
    );
    if !container.pod.is_empty() {
        finding = finding.entity(EntityKind::Pod, container.pod.clone(), "");
    }
    finding = finding.entity(EntityKind::File, path.to_owned(), "");
    if !e.node.is_empty() {
        finding = finding.entity(EntityKind::Node, e.node.clone(), "");
    }
    finding = finding
        .evidence("path", path.to_owned())
        .evidence("class", class.name())
        .evidence("pattern", pattern.raw())
        .evidence("binary", e.binary.clone())
        .evidence("args", e.args.join(" "))
        .evidence("args-truncated", e.args_truncated.to_string())
        .evidence("pid", e.pid.to_string())
        .evidence("namespace-pid", e.namespace_pid.to_string())
        .evidence("parent-pid", e.parent_pid.to_string())
        .evidence("parent", e.parent_name.clone())
        .evidence("uid", e.uid.to_string())
        .evidence("image", container.image.clone());
    Some(finding.event(e.id.clone()).build())
}
