#![doc = include_str!("../README.md")]

mod api;
mod config;
mod pods;
mod rules;
mod store;
mod uri;

pub use config::{
    Config, DEFAULT_MAX_TRACKED_OBJECTS, DEFAULT_PROTECTED_NAMESPACES, DEFAULT_SYSTEM_USERS,
    DEFAULT_TRUSTED_IMAGES,
};
pub use rules::Rule;
use store::BoundedMap;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::lists::json_list;
use vigil_plugin_sdk::view::KubernetesEventView;

/// The detector: Kubernetes API behaviours that get around pod-level
/// controls (exec, attach, ephemeral containers, port-forward) and pods
/// slipped into system namespaces, attributed through their controllers to
/// the user who created the workload when that is known.
///
/// It keeps bounded maps in the host's state: the creator of each workload
/// it saw created, the controller owning each object, the workloads already
/// reported, and the audit ids of requests already reported.
#[derive(Debug, Clone)]
pub struct K8sEvasion {
    config: Config,
    /// `namespace/Kind/name` → the user who created it.
    creators: BoundedMap,
    /// `namespace/Kind/name` → `Kind/name` of its controlling owner.
    owners: BoundedMap,
    /// `namespace/Kind/name` of workloads already reported by `system-namespace-pod`.
    reported: BoundedMap,
    /// Audit ids of requests already reported (at-least-once delivery, and a
    /// streaming request's `ResponseStarted` then `ResponseComplete`).
    requests: BoundedMap,
}

impl Default for K8sEvasion {
    fn default() -> Self {
        let cap = DEFAULT_MAX_TRACKED_OBJECTS;
        Self {
            config: Config::default(),
            creators: BoundedMap::new("creator/", cap),
            owners: BoundedMap::new("owner/", cap),
            reported: BoundedMap::new("reported/", cap),
            requests: BoundedMap::new("request/", cap),
        }
    }
}

impl K8sEvasion {
    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Detector for K8sEvasion {
    fn describe() -> PluginInfo {
        PluginInfo::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .description(
                "Kubernetes API behaviours that get around pod-level controls: exec and attach into pods, \
                 ephemeral containers, port-forward; and pods created in system namespaces by non-system \
                 users, attributed through ReplicaSets and other controllers to the workload's creator. \
                 Pod-spec security settings are container-escape's.",
            )
            .subscribe(EventKind::Kubernetes)
            .setting(
                "protected_namespaces",
                "list of strings",
                json_list(DEFAULT_PROTECTED_NAMESPACES),
                "Namespaces where `system-namespace-pod` reports pods of non-system users, and where the \
                 other rules are raised to high. Replaces the default.",
            )
            .setting(
                "system_users",
                "list of user names (`prefix*` allowed)",
                json_list(DEFAULT_SYSTEM_USERS),
                "Control-plane and node identities: their pods are the cluster's own, or a controller's \
                 on behalf of the workload's creator. Replaces the default.",
            )
            .setting(
                "trusted_images",
                "list of image references (`repo/name`, `repo/name:tag`, `prefix/`, `prefix*`)",
                json_list(DEFAULT_TRUSTED_IMAGES),
                "Pods whose every image is one of these are not reported by `system-namespace-pod`. \
                 Replaces the default.",
            )
            .setting(
                "allowlist.users",
                "list of user names (`prefix*` allowed)",
                "[]",
                "Users never reported (as requester, or as the attributed creator).",
            )
            .setting("allowlist.namespaces", "list of strings", "[]", "Namespaces never reported.")
            .setting(
                "max_tracked_objects",
                "integer, 16 to 100000",
                DEFAULT_MAX_TRACKED_OBJECTS.to_string(),
                "Cap of each map kept in state (workload creators, owners, reported workloads, reported \
                 request ids); the oldest entries go first.",
            )
            .disabled_rules_setting::<Rule>()
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        self.config = Config::from_json(settings)?;
        let cap = self.config.max_tracked_objects;
        for map in [
            &mut self.creators,
            &mut self.owners,
            &mut self.reported,
            &mut self.requests,
        ] {
            map.set_cap(cap);
        }
        Ok(())
    }

    /// Pods and the workload resources that own them; the rest of the audit
    /// stream is never encoded for this plugin.
    fn subscriptions(&self) -> SubscriptionSet {
        SubscriptionSet::everything()
            .kubernetes(KubernetesFilter::any().resources(pods::WORKLOAD_RESOURCES))
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        self.on_event_views(&views_of(batch))
    }

    fn on_event_views(&mut self, batch: &[EventView<'_>]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for event in batch {
            let EventBodyView::Kubernetes(request) = &event.body else {
                continue;
            };
            // Only pods and workloads matter; skip the rest of the audit stream early.
            if pods::kind_of(request.resource).is_none() {
                continue;
            }
            self.load();
            api::findings(self, event, request, &mut findings);
            pods::findings(self, event, request, &mut findings);
            pods::learn(self, request);
        }
        findings
    }
}

export_detector!(K8sEvasion);

impl K8sEvasion {
    /// Reads the persisted maps (once; inside a host call).
    fn load(&mut self) {
        self.creators.load();
        self.owners.load();
        self.reported.load();
        self.requests.load();
    }

    /// True the first time an audit request is reported (whatever its stage,
    /// and however often it is delivered); an empty id is always new.
    fn first_report(&mut self, audit_id: &str, stage: &str) -> bool {
        if audit_id.is_empty() {
            return true;
        }
        if self.requests.contains(audit_id) {
            return false;
        }
        self.requests.insert(audit_id, stage);
        true
    }
}

/// The audit stage, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// `RequestReceived`: the outcome is not known yet.
    Received,
    /// `ResponseStarted`: a long-running request (exec, attach, port-forward) was accepted.
    Started,
    /// `ResponseComplete`, or no stage (not an audit event).
    Final,
    /// `Panic` or anything else.
    Other,
}

pub(crate) fn stage(request: &KubernetesEventView<'_>) -> Stage {
    match request.stage {
        "" | "ResponseComplete" => Stage::Final,
        "ResponseStarted" => Stage::Started,
        "RequestReceived" => Stage::Received,
        _ => Stage::Other,
    }
}

/// The API server refused the request.
pub(crate) fn refused(request: &KubernetesEventView<'_>) -> bool {
    request.response_code.is_some_and(|code| code >= 400)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
