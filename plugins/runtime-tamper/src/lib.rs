#![doc = include_str!("../README.md")]

mod config;
mod exec;
mod rules;
mod write;

pub use config::{
    Config, DEFAULT_DAEMON_CONFIGS, DEFAULT_INCONSISTENT_SEVERITY, DEFAULT_ORCHESTRATION_CONFIGS,
    DEFAULT_RUNTIME_CONFIGS, DEFAULT_STATIC_POD_DIRS, default_paths, default_runtime_binaries,
};
pub use exec::{ExecClass, NETWORK_TOOLS, PACKAGE_MANAGERS, SHELLS};
pub use rules::{PathClass, Rule};
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::lists::json_list;
use vigil_plugin_sdk::util::paths::file_name;
use vigil_plugin_sdk::util::timefmt::rfc3339;
use vigil_plugin_sdk::view::FileEventView;

use crate::rules::lower;

/// The daemon.json settings that weaken monitoring or isolation, named in the
/// evidence of `daemon-config-changed` for the reviewer (the event carries
/// hashes, not content).
const DAEMON_SETTINGS_TO_REVIEW: &str = "log-driver, insecure-registries, registry-mirrors, \
     userland-proxy, icc, iptables, userns-remap, no-new-privileges, seccomp-profile, \
     authorization-plugins, hosts, live-restore, default-runtime, runtimes";

/// The detector: file-integrity changes on container runtime binaries, their
/// configuration, CNI/kubelet configuration and static pod manifests; and
/// shells, package managers and network tools run in containers started
/// without a terminal (process events).
///
/// Stateless apart from its configuration and free of host calls.
#[derive(Debug, Clone, Default)]
pub struct RuntimeTamper {
    config: Config,
}

impl RuntimeTamper {
    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Detector for RuntimeTamper {
    fn describe() -> PluginInfo {
        let mut info = PluginInfo::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .description(
                "File-integrity changes to container runtime binaries, the Docker daemon and runtime \
                 configuration, CNI and kubelet configuration and static pod manifests, with a severity \
                 per path class; new static pods; content changed behind an unchanged size and mtime \
                 (timestomping); shells, package managers and network tools run in containers \
                 started without a terminal; writes to those files by a container's process.",
            )
            .subscribe(EventKind::File)
            // Process events are governed by the `container` kind.
            .subscribe(EventKind::Container);
        for class in PathClass::ALL {
            info = info.setting(
                class.setting(),
                "list of path patterns (`/file`, `/dir/`, `/dir/name*`)",
                json_list(&default_paths(class)),
                format!(
                    "Paths of class `{}` (replaces the default). The first class, in the order \
                     runtime-binary, daemon-config, runtime-config, static-pod, orchestration-config, \
                     that selects a path decides its rule and severity.",
                    class.name()
                ),
            );
        }
        info.setting(
            "severities",
            "object: class name or `inconsistent` → `info`/`low`/`medium`/`high`/`critical`",
            r#"{"runtime-binary":"critical","daemon-config":"high","runtime-config":"high","static-pod":"high","orchestration-config":"medium","inconsistent":"critical"}"#,
            "Severity of a change per path class (a mode/owner-only change is one step lower unless it adds \
             setuid/setgid, group/world write or moves ownership away from root), and of `inconsistent-change`.",
        )
        .setting(
            "approved_sha256",
            "list of SHA-256 digests",
            "[]",
            "A created or modified file whose new content has one of these digests is an approved change \
             (e.g. the configuration-management or package version) and is not reported; timestomping still is.",
        )
        .setting("ignore_paths", "list of path patterns", "[]", "Paths never reported.")
        .setting(
            "exec_allowed_images",
            "list of image references (a trailing `*` matches any rest)",
            "[]",
            "Containers of these images are not judged by `unexpected-exec` (e.g. a CI runner image \
             that legitimately runs shells and package managers without a terminal).",
        )
        .disabled_rules_setting::<Rule>()
        .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        self.config = Config::from_json(settings)?;
        Ok(())
    }

    /// The watched paths of every class, as prefixes (ignored paths are
    /// left to the plugin: they only carve holes into these). Container
    /// events are subscribed to only because they govern process events:
    /// the rarest action keeps their cost near nothing.
    fn subscriptions(&self) -> SubscriptionSet {
        SubscriptionSet::everything()
            .files_under(self.config.path_prefixes())
            .containers([ContainerAction::Destroy])
    }

    /// Only the binaries `unexpected-exec` judges, and the writes
    /// `container-write` judges, only in containers.
    fn process_filter(&self) -> ProcessFilter {
        let filter = if self.config.enabled(Rule::UnexpectedExec) {
            ProcessFilter::everything().binaries(ExecClass::all_names())
        } else {
            // No exec is judged: a name no program has keeps them away.
            ProcessFilter::everything().binaries(["."])
        };
        let filter = filter.containers_only();
        if self.config.enabled(Rule::ContainerWrite) {
            filter.writes()
        } else {
            filter
        }
    }

    fn on_process_events(&mut self, batch: &[ProcessEvent]) -> Vec<Finding> {
        let execs = self.config.enabled(Rule::UnexpectedExec);
        let writes = self.config.enabled(Rule::ContainerWrite);
        batch
            .iter()
            .filter_map(|e| {
                if e.written_path().is_some() {
                    writes.then(|| write::inspect(e, &self.config)).flatten()
                } else if execs {
                    exec::inspect(e, &self.config.exec_allowed_images)
                } else {
                    None
                }
            })
            .collect()
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        self.on_event_views(&views_of(batch))
    }

    fn on_event_views(&mut self, batch: &[EventView<'_>]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for event in batch {
            if let EventBodyView::File(file) = &event.body
                && let Some(finding) = self.inspect(event, file)
            {
                findings.push(finding);
            }
        }
        findings
    }
}

export_detector!(RuntimeTamper, processes);

impl RuntimeTamper {
    /// At most one finding per event: `inconsistent-change` when the change
    /// hides behind an unchanged size and mtime, else its class's rule.
    fn inspect(&self, event: &EventView<'_>, file: &FileEventView<'_>) -> Option<Finding> {
        let (class, pattern, class_severity) = self.config.classify(file.path)?;
        // The kubelet ignores hidden files in its manifest directory (editor
        // swap files, `.tmp` files of atomic writers).
        if class == PathClass::StaticPod && file_name(file.path).starts_with('.') {
            return None;
        }

        let inconsistent = is_inconsistent(file);
        let (rule, severity) = if inconsistent && self.config.enabled(Rule::InconsistentChange) {
            (
                Rule::InconsistentChange,
                self.config.inconsistent_severity.max(class_severity),
            )
        } else {
            let created = file.change == FileChange::Created && !pattern.is_the_dir(file.path);
            let rule = Rule::for_class(class, created);
            if !self.config.enabled(rule) {
                return None;
            }
            let new_hash = file.after.as_ref().map_or("", |a| a.sha256);
            if matches!(file.change, FileChange::Created | FileChange::Modified)
                && self.config.approved(new_hash)
            {
                return None;
            }
            let severity = if file.change == FileChange::Metadata && risky_metadata(file).is_empty()
            {
                lower(class_severity)
            } else {
                class_severity
            };
            (rule, severity)
        };

        let subject = format!("{} {}", class.noun(), file.path);
        let summary = match rule {
            Rule::InconsistentChange => format!(
                "{subject} changed content while its size and modification time stayed the same: the \
                 time stamp was very likely reset after the change (timestomping) to hide it; {}.",
                class.consequence()
            ),
            Rule::StaticPodCreated => format!(
                "New static pod manifest {}: {}.",
                file.path,
                class.consequence()
            ),
            _ => format!("{subject} was {}: {}.", verb(file), class.consequence()),
        };

        let mut finding = Finding::builder(rule.id(), severity)
            .title(rule.title())
            .summary(summary);
        for technique in rule.techniques() {
            finding = finding.technique(*technique);
        }
        if rule == Rule::InconsistentChange {
            // The path class's own technique too: what was tampered with.
            for technique in Rule::for_class(class, false).techniques() {
                finding = finding.technique(*technique);
            }
        }
        finding = finding.entity(EntityKind::File, file.path, "");
        if !event.node.is_empty() {
            finding = finding.entity(EntityKind::Node, event.node, "");
        }
        finding = finding
            .evidence("path", file.path)
            .evidence("class", class.name())
            .evidence("pattern", pattern.raw())
            .evidence("change", change_name(file.change));
        if inconsistent {
            finding = finding.evidence(
                "inconsistency",
                "content hash changed; size and mtime unchanged",
            );
        }
        for evidence in state_evidence(file) {
            finding = finding.evidence(evidence.key, evidence.value);
        }
        if class == PathClass::DaemonConfig && file.change != FileChange::Metadata {
            finding = finding.evidence("review", DAEMON_SETTINGS_TO_REVIEW);
        }
        Some(finding.event(event.id).build())
    }
}

/// Content changed (hash) while size and mtime did not: what a forged mtime
/// (`touch -r`, `utimensat`) over an in-place, same-size edit looks like.
/// An mtime of 0 means the source did not know it: not evidence.
fn is_inconsistent(file: &FileEventView<'_>) -> bool {
    let (Some(before), Some(after)) = (&file.before, &file.after) else {
        return false;
    };
    file.change == FileChange::Modified
        && !before.sha256.is_empty()
        && !after.sha256.is_empty()
        && !before.sha256.eq_ignore_ascii_case(after.sha256)
        && before.size == after.size
        && before.mtime != 0
        && before.mtime == after.mtime
}

/// What makes a mode/owner change as dangerous as a content change.
fn risky_metadata(file: &FileEventView<'_>) -> Vec<&'static str> {
    let (Some(before), Some(after)) = (&file.before, &file.after) else {
        return Vec::new();
    };
    let mut risks = Vec::new();
    if after.mode & 0o6000 & !before.mode != 0 {
        risks.push("setuid/setgid bit added");
    }
    if after.mode & 0o022 & !before.mode != 0 {
        risks.push("group/world write permission added");
    }
    if before.uid == 0 && after.uid != 0 {
        risks.push("owner changed from root");
    }
    risks
}

/// The WIT spelling of a change.
fn change_name(change: FileChange) -> &'static str {
    match change {
        FileChange::Created => "created",
        FileChange::Modified => "modified",
        FileChange::Metadata => "metadata",
        FileChange::Deleted => "deleted",
    }
}

/// "modified", "created" …, for the summary.
fn verb(file: &FileEventView<'_>) -> &'static str {
    match file.change {
        FileChange::Created => "created",
        FileChange::Modified => "modified",
        FileChange::Deleted => "deleted",
        FileChange::Metadata => "re-permissioned (mode or owner changed)",
    }
}

/// The old and new state, as far as they are known and relevant.
fn state_evidence(file: &FileEventView<'_>) -> Vec<KeyValue> {
    let mut out = Vec::new();
    let (before, after) = (file.before.as_ref(), file.after.as_ref());
    if file.change != FileChange::Metadata {
        if let Some(b) = before {
            out.push(KeyValue::new("sha256.before", b.sha256));
        }
        if let Some(a) = after {
            out.push(KeyValue::new("sha256.after", a.sha256));
        }
        if let Some(b) = before {
            out.push(KeyValue::new("size.before", b.size.to_string()));
        }
        if let Some(a) = after {
            out.push(KeyValue::new("size.after", a.size.to_string()));
        }
        if let Some(b) = before {
            out.push(KeyValue::new("mtime.before", rfc3339(b.mtime)));
        }
        if let Some(a) = after {
            out.push(KeyValue::new("mtime.after", rfc3339(a.mtime)));
        }
    }
    if let (Some(b), Some(a)) = (before, after) {
        if b.mode != a.mode || file.change == FileChange::Metadata {
            out.push(KeyValue::new("mode.before", octal(b.mode)));
            out.push(KeyValue::new("mode.after", octal(a.mode)));
        }
        if b.uid != a.uid {
            out.push(KeyValue::new("uid.before", b.uid.to_string()));
            out.push(KeyValue::new("uid.after", a.uid.to_string()));
        }
        if b.gid != a.gid {
            out.push(KeyValue::new("gid.before", b.gid.to_string()));
            out.push(KeyValue::new("gid.after", a.gid.to_string()));
        }
        for risk in risky_metadata(file) {
            out.push(KeyValue::new("risk", risk));
        }
    } else if let Some(a) = after {
        out.push(KeyValue::new("mode", octal(a.mode)));
        out.push(KeyValue::new("owner", format!("{}:{}", a.uid, a.gid)));
    }
    out
}

/// Permission bits as `0755` (`4755` with setuid).
fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
