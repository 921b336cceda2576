//! File-integrity events on the Kubernetes audit policy and audit webhook
//! configuration.

use vigil_plugin_sdk::util::timefmt::rfc3339;
use vigil_plugin_sdk::view::{EventView, FileEventView};
use vigil_plugin_sdk::{EntityKind, FileChange, Finding, Severity};

use crate::MonitoringTamper;
use crate::rules::Rule;

pub(crate) fn findings(
    plugin: &MonitoringTamper,
    event: &EventView<'_>,
    file: &FileEventView<'_>,
    out: &mut Vec<Finding>,
) {
    let rule = Rule::AuditConfigChanged;
    if !plugin.config.enabled(rule) {
        return;
    }
    let Some(pattern) = plugin.config.audit_config(file.path) else {
        return;
    };
    let (before, after) = (file.before.as_ref(), file.after.as_ref());
    // Content changed behind an unchanged size and mtime: a forged time stamp.
    let inconsistent = match (before, after) {
        (Some(b), Some(a)) => {
            file.change == FileChange::Modified
                && !b.sha256.is_empty()
                && !a.sha256.is_empty()
                && !b.sha256.eq_ignore_ascii_case(a.sha256)
                && b.size == a.size
                && b.mtime != 0
                && b.mtime == a.mtime
        }
        _ => false,
    };
    let writable_added = match (before, after) {
        (Some(b), Some(a)) => a.mode & 0o022 & !b.mode != 0,
        _ => false,
    };
    let (severity, what) = match file.change {
        _ if inconsistent => (
            Severity::Critical,
            "modified, and its modification time reset to hide it (content changed; size and mtime did not)",
        ),
        FileChange::Modified => (rule.severity(), "modified"),
        FileChange::Deleted => (rule.severity(), "deleted"),
        FileChange::Created => (Severity::Medium, "created"),
        FileChange::Metadata if writable_added => {
            (rule.severity(), "made group- or world-writable")
        }
        FileChange::Metadata => (Severity::Low, "re-permissioned (mode or owner changed)"),
    };
    let mut finding = Finding::builder(rule.id(), severity)
        .title(rule.title())
        .summary(format!(
            "Kubernetes audit configuration {} was {what}: the audit policy decides which API requests are \
             recorded, and the webhook configuration where they go; a weakened policy or a redirected \
             webhook blinds every detection built on the audit log. Changes take effect when the API \
             server restarts.",
            file.path
        ));
    for technique in rule.techniques() {
        finding = finding.technique(*technique);
    }
    if inconsistent {
        finding = finding.technique("T1070.006");
    }
    finding = finding.entity(EntityKind::File, file.path, "");
    if !event.node.is_empty() {
        finding = finding.entity(EntityKind::Node, event.node, "");
    }
    finding = finding
        .evidence("path", file.path)
        .evidence("pattern", pattern.raw())
        .evidence(
            "change",
            match file.change {
                FileChange::Created => "created",
                FileChange::Modified => "modified",
                FileChange::Metadata => "metadata",
                FileChange::Deleted => "deleted",
            },
        );
    if inconsistent {
        finding = finding.evidence(
            "inconsistency",
            "content hash changed; size and mtime unchanged",
        );
    }
    for (suffix, state) in [("before", before), ("after", after)] {
        if let Some(state) = state {
            finding = finding
                .evidence(format!("sha256.{suffix}"), state.sha256)
                .evidence(format!("size.{suffix}"), state.size.to_string())
                .evidence(format!("mtime.{suffix}"), rfc3339(state.mtime))
                .evidence(
                    format!("mode.{suffix}"),
                    format!("{:04o}", state.mode & 0o7777),
                )
                .evidence(
                    format!("owner.{suffix}"),
                    format!("{}:{}", state.uid, state.gid),
                );
        }
    }
    out.push(finding.event(event.id).build());
}
