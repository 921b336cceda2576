#![doc = include_str!("../README.md")]

mod config;
mod docker;
mod kubernetes;
mod rules;
mod swarm;

pub use config::{
    Config, DEFAULT_DANGEROUS_CAPABILITIES, DEFAULT_SENSITIVE_PATHS, DEFAULT_SERVICE_TASK_WAIT_MS,
    HostCgroupns,
};
pub use rules::Rule;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::lists::json_list;

/// The detector: reports containers and pods configured so that they can
/// escape to the host.
///
/// Stateless apart from its configuration and free of host calls, so the
/// host can also run it natively (`<ContainerEscape as Detector>::configure`
/// then `on_events`) and get exactly what the component returns.
#[derive(Debug, Clone, Default)]
pub struct ContainerEscape {
    config: Config,
    seen: docker::Seen,
    services: swarm::Services,
}

impl ContainerEscape {
    /// A detector with an already validated configuration.
    #[must_use]
    pub fn with_config(config: Config) -> Self {
        Self {
            config,
            seen: docker::Seen::default(),
            services: swarm::Services::default(),
        }
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Detector for ContainerEscape {
    fn describe() -> PluginInfo {
        PluginInfo::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .description(
                "Containers and pods configured so that they can escape to the host: privileged, host \
                 namespaces, dangerous capabilities, sensitive host mounts, host devices, no seccomp or \
                 AppArmor confinement; Docker containers whose logs are discarded; and Docker Swarm \
                 services whose spec does any of this (or adds capabilities), once per service and spec.",
            )
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .setting(
                "allowlist.images",
                "list of strings",
                "[]",
                "Images never reported: `repo/name:tag` or `repo/name@digest` exactly, `repo/name` with any \
                 tag or digest, or a prefix ending in `/` or `*`.",
            )
            .setting("allowlist.namespaces", "list of strings", "[]", "Kubernetes namespaces never reported.")
            .setting("allowlist.containers", "list of strings", "[]", "Docker container names never reported.")
            .setting(
                "dangerous_capabilities",
                "list of strings",
                json_list(DEFAULT_DANGEROUS_CAPABILITIES),
                "Added capabilities reported by `dangerous-capability` (replaces the default; `ALL` always counts).",
            )
            .setting(
                "sensitive_paths",
                "list of absolute paths",
                json_list(DEFAULT_SENSITIVE_PATHS),
                "Host paths reported by `sensitive-mount` when a bind or hostPath mount is, is under or \
                 contains one (`/` only when mounted itself); `.sock` paths are critical. Replaces the default.",
            )
            .setting(
                "host_cgroupns",
                "`with-privilege` or `always`",
                "\"with-privilege\"",
                "When `host-cgroupns` reports a container in the host's cgroup namespace: only when it is \
                 also privileged or has `SYS_ADMIN`/`ALL` added (`with-privilege`; cgroup v1 Docker daemons \
                 put every container there), or always (`always`; for cgroup v2 hosts).",
            )
            .setting(
                "service_task_wait_ms",
                "integer milliseconds (at most 60000)",
                DEFAULT_SERVICE_TASK_WAIT_MS.to_string(),
                "How long a `swarm-service` finding waits for the service's task containers on this node \
                 (named as its entities); it goes out earlier once all desired replicas were seen.",
            )
            .disabled_rules_setting::<Rule>()
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        self.config = Config::from_json(settings)?;
        Ok(())
    }

    /// Only what the rules look at: the container actions that carry a
    /// configuration (and `destroy`, which forgets a container), and pod
    /// writes at their final stage with the pod spec.
    fn subscriptions(&self) -> SubscriptionSet {
        SubscriptionSet::everything()
            .containers([
                ContainerAction::Create,
                ContainerAction::Start,
                ContainerAction::Running,
                ContainerAction::Destroy,
            ])
            .kubernetes(
                KubernetesFilter::any()
                    .subresources(["", "ephemeralcontainers"])
                    .verbs(kubernetes::WRITE_VERBS.iter().copied())
                    .stages(["", kubernetes::FINAL_STAGE])
                    .pod_spec(PodSpecUse::Required),
            )
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        self.on_event_views(&views_of(batch))
    }

    fn on_event_views(&mut self, batch: &[EventView<'_>]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for event in batch {
            match &event.body {
                EventBodyView::Container(container) => {
                    // A task of a service known from its spec: the service's
                    // finding covers it.
                    if self.config.enabled(Rule::SwarmService)
                        && self.services.claims(event.id, container, &mut findings)
                    {
                        continue;
                    }
                    docker::findings(
                        event,
                        container,
                        &self.config,
                        &mut self.seen,
                        &mut findings,
                    );
                }
                EventBodyView::Kubernetes(request) => {
                    kubernetes::findings(event, request, &self.config, &mut findings)
                }
                EventBodyView::Network(_) | EventBodyView::File(_) => {}
            }
        }
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
            self.services.observe(event, &self.config, &mut findings);
        }
        findings
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let mut findings = Vec::new();
        self.services
            .due(now, self.config.service_task_wait_ns, &mut findings);
        findings
    }
}

export_detector!(ContainerEscape, services);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
