#![doc = include_str!("../README.md")]

mod config;
mod docker;
mod files;
mod kubernetes;
mod rules;
mod swarm;

use std::collections::{HashMap, VecDeque};

pub use config::{
    Config, DEFAULT_AGENT_IMAGES, DEFAULT_AGENT_LABELS, DEFAULT_AGENT_NAMES,
    DEFAULT_AGENT_NAMESPACES, DEFAULT_AUDIT_CONFIG_PATHS, DEFAULT_FOLD_WINDOW_SECS,
    DEFAULT_POD_HOLD_SECS, DEFAULT_SYSTEM_USERS,
};
pub use docker::{GAP_RAW_ACTION, GAP_REASON_LABEL, GAP_SINCE_LABEL};
pub use rules::Rule;
use vigil_plugin_sdk::host::clock;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::lists::json_list;

/// Containers whose last reported stop or pause is remembered (for folding).
const MAX_RECENT: usize = 1024;
/// Agent deletions through the API remembered (for folding container stops).
const MAX_DELETIONS: usize = 256;
/// Audit ids of reported deletions remembered (at-least-once delivery).
const MAX_REQUESTS: usize = 1024;
/// Findings held back at most (beyond, the oldest is released at once).
const MAX_HELD: usize = 256;

/// The detector: the security monitoring itself stopped, paused, deleted,
/// reconfigured or blinded.
///
/// It keeps small bounded windows in memory (not in state): what it just
/// reported, so that the several engine events of one stop, and the
/// kubelet stopping the containers of a pod deleted through the API, are
/// one finding; and the stops of pods' containers held back until a
/// deletion could explain them (released by `on_tick` when the hold ends,
/// or when the input has ended: the final tick of a replay).
#[derive(Debug, Clone, Default)]
pub struct MonitoringTamper {
    config: Config,
    /// Container id → its last reported stop or pause.
    recent: HashMap<String, Recent>,
    /// Agent pods, workloads and namespaces recently deleted through the API.
    deletions: VecDeque<Deletion>,
    /// Audit ids of reported deletions.
    requests: VecDeque<String>,
    /// Stops of pods' containers held back (see [`Held`]).
    held: Vec<Held>,
    /// Held findings released early (the hold was full), for the next return.
    released: Vec<Finding>,
    /// Global services reported, with the mounts reported (see `swarm.rs`).
    services: swarm::Reported,
}

/// A reported stop or pause of a container.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recent {
    pub(crate) time: u64,
    pub(crate) fold_key: u8,
}

/// An agent-stopped finding about a pod's container, held back for
/// `pod_hold_secs` in case the audit event of the pod's deletion follows.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) finding: Finding,
    pub(crate) time: u64,
    pub(crate) namespace: String,
    pub(crate) pod: String,
}

/// An agent deletion through the API.
#[derive(Debug, Clone)]
pub(crate) struct Deletion {
    pub(crate) namespace: String,
    /// The pod's name (`exact`), a workload's name (its pods start with
    /// `name-`), or empty for the whole namespace.
    pub(crate) name: String,
    pub(crate) exact: bool,
    pub(crate) time: u64,
}

impl Deletion {
    /// Whether pod `namespace/pod` is (or belongs to) what was deleted.
    fn covers(&self, namespace: &str, pod: &str) -> bool {
        self.namespace == namespace
            && (self.name.is_empty()
                || (self.exact && self.name == pod)
                || (!self.exact
                    && pod
                        .strip_prefix(self.name.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))))
    }
}

impl MonitoringTamper {
    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn remember(&mut self, key: String, recent: Recent) {
        if self.recent.len() >= MAX_RECENT {
            let window = self.config.fold_window_ns;
            self.recent
                .retain(|_, r| recent.time.abs_diff(r.time) <= window);
            if self.recent.len() >= MAX_RECENT {
                self.recent.clear();
            }
        }
        self.recent.insert(key, recent);
    }

    pub(crate) fn record_deletion(&mut self, deletion: Deletion) {
        let window = self.config.fold_window_ns;
        self.held.retain(|h| {
            !(h.time.abs_diff(deletion.time) <= window && deletion.covers(&h.namespace, &h.pod))
        });
        if self.deletions.len() >= MAX_DELETIONS {
            self.deletions.pop_front();
        }
        self.deletions.push_back(deletion);
    }

    /// Holds back a finding about a pod's container (see [`Held`]).
    pub(crate) fn hold(&mut self, held: Held) {
        if self.held.len() >= MAX_HELD {
            // Release the oldest now rather than grow.
            let oldest = self.held.remove(0);
            self.released.push(oldest.finding);
        }
        self.held.push(held);
    }

    /// The held findings that are due at `now`: held for `pod_hold_secs`,
    /// or all of them when the input has ended (`input_ended`: the final
    /// tick of a replay, after which no deletion can come to explain them).
    fn release(&mut self, now: u64, input_ended: bool) -> Vec<Finding> {
        let hold = self.config.pod_hold_ns;
        let mut out = std::mem::take(&mut self.released);
        let (due, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| input_ended || h.time.saturating_add(hold) <= now);
        self.held = kept;
        out.extend(due.into_iter().map(|h| h.finding));
        out
    }

    /// Whether pod `namespace/pod` belongs to an agent deleted through the
    /// API within the fold window of `time`.
    pub(crate) fn deleted_recently(&self, namespace: &str, pod: &str, time: u64) -> bool {
        let window = self.config.fold_window_ns;
        self.deletions
            .iter()
            .any(|d| time.abs_diff(d.time) <= window && d.covers(namespace, pod))
    }

    /// True the first time an audit id is reported.
    pub(crate) fn first_request(&mut self, audit_id: &str) -> bool {
        if self.requests.iter().any(|r| r == audit_id) {
            return false;
        }
        if self.requests.len() >= MAX_REQUESTS {
            self.requests.pop_front();
        }
        self.requests.push_back(audit_id.to_owned());
        true
    }
}

impl Detector for MonitoringTamper {
    fn describe() -> PluginInfo {
        PluginInfo::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .description(
                "The security monitoring itself impaired: an agent's container (Vigil, Falco, Sysdig, \
                 Tetragon, Tracee …) stopped, killed, paused or removed, its pods, workloads or namespace \
                 deleted through the API, the Kubernetes audit policy or webhook configuration changed, \
                 Docker events lost, a Docker Swarm global service mounting the container runtime on every node.",
            )
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .subscribe(EventKind::File)
            .setting(
                "agents.images",
                "list of image globs (`*` matches anything; no tag = any tag or digest)",
                json_list(DEFAULT_AGENT_IMAGES),
                "Images of security agents. Replaces the default.",
            )
            .setting(
                "agents.labels",
                "list of `key` or `key=value`",
                json_list(DEFAULT_AGENT_LABELS),
                "Container labels marking a security agent. Replaces the default.",
            )
            .setting(
                "agents.names",
                "list of name globs",
                json_list(DEFAULT_AGENT_NAMES),
                "Names of agent containers, and of agent pods and workloads in the audit log. Replaces the default.",
            )
            .setting(
                "agents.namespaces",
                "list of strings",
                json_list(DEFAULT_AGENT_NAMESPACES),
                "Kubernetes namespaces holding agents: deleting them, or their pods and workloads, is reported. \
                 Replaces the default.",
            )
            .setting(
                "system_users",
                "list of user names (`prefix*` allowed)",
                json_list(DEFAULT_SYSTEM_USERS),
                "Identities whose deletions are not reported (controllers' rollouts, evictions, garbage \
                 collection). Replaces the default.",
            )
            .setting(
                "audit_config_paths",
                "list of path patterns (`/file`, `/dir/`, `/dir/name*`)",
                json_list(DEFAULT_AUDIT_CONFIG_PATHS),
                "The audit policy and audit webhook configuration files. Replaces the default.",
            )
            .setting(
                "fold_window_secs",
                "integer seconds, at most 86400",
                DEFAULT_FOLD_WINDOW_SECS.to_string(),
                "The engine events of one stop (kill, die, stop, destroy) of a container within this window \
                 are one finding; so are a pod's deletion through the API and its containers' stops.",
            )
            .setting(
                "pod_hold_secs",
                "integer seconds, at most 3600",
                DEFAULT_POD_HOLD_SECS.to_string(),
                "How long an `agent-stopped` finding about a Kubernetes pod's container (it has the \
                 `io.kubernetes.pod.*` labels) is held back, in case the audit event of the pod's deletion \
                 follows (then it is the same behaviour, or a rollout); 0 reports at once.",
            )
            .disabled_rules_setting::<Rule>()
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        self.config = Config::from_json(settings)?;
        Ok(())
    }

    /// Only what its rules read: the container actions `docker.rs` judges
    /// (the gap marker among them, as `other`), the deletions through the
    /// API `kubernetes.rs` judges (with the pod spec, whose images may name
    /// an agent), and file events under the audit configuration paths.
    /// Held findings need no other event: the end of a replay releases them
    /// through `clock::input_ended` (WIT 0.1.4), not through event times.
    fn subscriptions(&self) -> SubscriptionSet {
        SubscriptionSet::everything()
            .containers(docker::ACTIONS)
            .kubernetes(kubernetes::filter())
            .files_under(self.config.audit_config_prefixes())
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        self.on_event_views(&views_of(batch))
    }

    fn on_event_views(&mut self, batch: &[EventView<'_>]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for event in batch {
            match &event.body {
                EventBodyView::Container(container) => {
                    docker::findings(self, event, container, &mut findings);
                }
                EventBodyView::Kubernetes(request) => {
                    kubernetes::findings(self, event, request, &mut findings);
                }
                EventBodyView::File(file) => files::findings(self, event, file, &mut findings),
                EventBodyView::Network(_) => {}
            }
        }
        // Only ticks release held findings by time: a later batch of another
        // kind may still bring the deletion that explains them.
        findings.append(&mut self.released);
        findings
    }

    /// Swarm services only (WIT 0.1.3): nodes, secrets and configs say
    /// nothing about what this plugin looks for.
    fn service_filter(&self) -> ServiceFilter {
        ServiceFilter::everything().objects([SwarmObject::Service])
    }

    fn on_service_events(&mut self, batch: &[ServiceEvent]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for event in batch {
            swarm::findings(self, event, &mut findings);
        }
        findings
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.release(now, clock::input_ended())
    }
}

export_detector!(MonitoringTamper, services);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
