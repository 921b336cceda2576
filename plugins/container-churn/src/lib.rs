#![doc = include_str!("../README.md")]

mod baseline;
mod config;
mod docker;
mod kubernetes;
mod maintenance;
mod rules;
mod short_lived;
mod spike;
mod store;
mod swarm;
mod time;

use std::collections::HashMap;

pub use config::{
    Config, DEFAULT_MAX_SCOPES, DEFAULT_MIN_BUCKET_SAMPLES, DEFAULT_MIN_COUNT,
    DEFAULT_PERSIST_EVERY_EVENTS, DEFAULT_SHORT_LIVED_SECS, DEFAULT_WARMUP_HOURS,
    DEFAULT_WINDOW_SECS, DEFAULT_Z_THRESHOLD, MaintenanceWindow, ScopeSetting, WindowAction,
};
pub use rules::Rule;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::cache::Bounded;

use baseline::{Baseline, ScopeStats};

/// State keys of scopes start with this.
const KEY_PREFIX: &str = "s/";
/// Longest scope value kept in a state key (the host refuses keys over 512 bytes).
const MAX_KEY_VALUE: usize = 400;
/// Containers and pods whose creation is remembered, for their lifetime.
const MAX_BORN: usize = 16_384;
/// (stream, image) → window of the last short-lived finding.
const MAX_SHORT_REPORTED: usize = 4_096;
/// Seconds between two persists from `on-tick`.
const PERSIST_INTERVAL_SECS: u64 = 60;
/// Kubernetes' label naming a container's pod namespace.
const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// The label the Engine puts on a Swarm task container: its service's name.
const SWARM_SERVICE_LABEL: &str = "com.docker.swarm.service.name";
/// Docker Compose's project label.
const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
const NANOS: u64 = 1_000_000_000;

/// Where events come from: each stream has its own scopes and its own idea
/// of "now" (replay hands each event kind over in its own batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Docker,
    Kubernetes,
    /// Docker Swarm service events of a manager: replicas added by scale-ups.
    Swarm,
}

impl Stream {
    const fn index(self) -> usize {
        match self {
            Stream::Docker => 0,
            Stream::Kubernetes => 1,
            Stream::Swarm => 2,
        }
    }

    const fn letter(self) -> char {
        match self {
            Stream::Docker => 'd',
            Stream::Kubernetes => 'k',
            Stream::Swarm => 'w',
        }
    }
}

/// What a scope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeKind {
    /// A node, for container-engine events.
    Node,
    /// The cluster, for Kubernetes events (seen from this node).
    Cluster,
    Namespace,
    /// A Docker Compose project.
    Project,
    Image,
    Actor,
    /// A Docker Swarm service (its task containers, or its replicas).
    Service,
}

impl ScopeKind {
    const fn word(self) -> &'static str {
        match self {
            ScopeKind::Node => "node",
            ScopeKind::Cluster => "cluster",
            ScopeKind::Namespace => "namespace",
            ScopeKind::Project => "project",
            ScopeKind::Image => "image",
            ScopeKind::Actor => "actor",
            ScopeKind::Service => "service",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [
            ScopeKind::Node,
            ScopeKind::Cluster,
            ScopeKind::Namespace,
            ScopeKind::Project,
            ScopeKind::Image,
            ScopeKind::Actor,
            ScopeKind::Service,
        ]
        .into_iter()
        .find(|k| k.word() == word)
    }

    const fn setting(self) -> ScopeSetting {
        match self {
            ScopeKind::Node | ScopeKind::Cluster => ScopeSetting::Node,
            ScopeKind::Namespace | ScopeKind::Project | ScopeKind::Service => {
                ScopeSetting::Namespace
            }
            ScopeKind::Image => ScopeSetting::Image,
            ScopeKind::Actor => ScopeSetting::Actor,
        }
    }

    /// Node and cluster scopes are never evicted: they are the safety net.
    const fn pinned(self) -> bool {
        matches!(self, ScopeKind::Node | ScopeKind::Cluster)
    }
}

/// One scope in memory.
#[derive(Debug, Clone)]
struct Scope {
    stream: Stream,
    kind: ScopeKind,
    stats: ScopeStats,
    dirty: bool,
}

/// A container or pod whose creation was seen.
#[derive(Debug, Clone)]
struct Born {
    /// Creation time, nanoseconds.
    time: u64,
    name: String,
    image: String,
    /// Image repositories (the pod's containers).
    repos: Vec<String>,
    /// Why it was risky: `privileged`, `host-network` …
    risky: Vec<&'static str>,
    exit_code: Option<i32>,
}

/// A scope whose count crossed the threshold.
#[derive(Debug, Clone)]
struct Crossing {
    kind: ScopeKind,
    value: String,
    count: u32,
    window: u32,
    baseline: Baseline,
    recent: Vec<String>,
}

/// The detector: bursts of container and pod churn against a learned
/// seasonal baseline, and run-and-remove containers.
#[derive(Debug, Clone)]
pub struct ContainerChurn {
    config: Config,
    scopes: HashMap<String, Scope>,
    loaded: bool,
    /// Per stream: the first window this instance saw (earlier windows were
    /// not observed by it and are never learned as quiet).
    alive_from: [Option<u32>; 3],
    /// The last window the tick moved every series to.
    swept: u32,
    born: Bounded<String, Born>,
    short_reported: Bounded<String, u32>,
    counted: u32,
    last_persist: u64,
    warned_state: bool,
    warned_full: bool,
}

impl Default for ContainerChurn {
    fn default() -> Self {
        Self::with_config(Config::default())
    }
}

impl ContainerChurn {
    /// A detector with an already validated configuration.
    #[must_use]
    pub fn with_config(config: Config) -> Self {
        Self {
            config,
            scopes: HashMap::new(),
            loaded: false,
            alive_from: [None; 3],
            swept: 0,
            born: Bounded::new(MAX_BORN),
            short_reported: Bounded::new(MAX_SHORT_REPORTED),
            counted: 0,
            last_persist: 0,
            warned_state: false,
            warned_full: false,
        }
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn window_of(&self, secs: u64) -> u32 {
        u32::try_from(secs / self.config.window_secs).unwrap_or(u32::MAX)
    }
}
impl Detector for ContainerChurn {
    fn describe() -> PluginInfo {
        PluginInfo::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .description(
                "Learns how many containers and pods are created, started and removed per node, namespace \
                 (or Compose project), image and actor, per hour of the week, and reports bursts beyond that \
                 baseline (and per Docker Swarm service: its task containers, and the replicas its scale-ups \
                 add); and containers or pods removed within seconds of their creation (run-and-remove).",
            )
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .setting("window_secs", "integer seconds", DEFAULT_WINDOW_SECS.to_string(), "Counting window (60 … 3600, dividing an hour).")
            .setting(
                "warmup_hours",
                "integer hours",
                DEFAULT_WARMUP_HOURS.to_string(),
                "Observation a scope needs before its spikes are reported.",
            )
            .setting("z_threshold", "number", format!("{DEFAULT_Z_THRESHOLD:.1}"), "Standard deviations above the baseline mean for a spike.")
            .setting("min_count", "integer", DEFAULT_MIN_COUNT.to_string(), "Smallest count in a window that can be a spike.")
            .setting(
                "min_bucket_samples",
                "integer",
                DEFAULT_MIN_BUCKET_SAMPLES.to_string(),
                "Windows an hour-of-week bucket needs before it is the baseline (else all hours are).",
            )
            .setting(
                "scopes",
                "list of `node`, `namespace` (also Compose projects and Swarm services), `image`, `actor`",
                "[\"node\",\"namespace\",\"image\",\"actor\"]",
                "Scopes learned and checked.",
            )
            .setting(
                "short_lived_secs",
                "integer seconds",
                DEFAULT_SHORT_LIVED_SECS.to_string(),
                "A container or pod removed within this time of its creation is short-lived.",
            )
            .setting(
                "kubernetes_sources",
                "list of `audit`, `watch`",
                "[\"audit\"]",
                "Kubernetes events counted: audit events (ResponseComplete) and/or pod watch events.",
            )
            .setting("max_scopes", "integer", DEFAULT_MAX_SCOPES.to_string(), "Scopes kept (least recently active forgotten; nodes kept).")
            .setting(
                "persist_every_events",
                "integer",
                DEFAULT_PERSIST_EVERY_EVENTS.to_string(),
                "Counted events between two writes of the baseline to state (besides once a minute).",
            )
            .setting(
                "maintenance_windows",
                "list of {days, start, end, tz_offset, action, name}",
                "[]",
                "Recurring windows (e.g. {\"days\": [\"sat\"], \"start\": \"02:00\", \"end\": \"04:00\", \
                 \"tz_offset\": \"+00:00\"}) where findings are suppressed (default) or downgraded to info \
                 (`\"action\": \"downgrade\"`), and counts are not learned.",
            )
            .setting("allowlist.actors", "list of strings", "[]", "Actors whose events are ignored (`*` at the end: prefix).")
            .setting("allowlist.images", "list of image patterns", "[]", "Images whose containers (and pods made only of them) are ignored.")
            .setting("allowlist.labels", "list of `key` or `key=value`", "[]", "Containers with one of these labels are ignored.")
            .setting("allowlist.namespaces", "list of strings", "[]", "Kubernetes namespaces whose pods and containers are ignored.")
            .disabled_rules_setting::<Rule>()
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        *self = Self::with_config(Config::from_json(settings)?);
        Ok(())
    }

    /// What is counted: container creates, starts, deaths and removals, and
    /// pod creations and deletions (audit at their final stage, or watch).
    fn subscriptions(&self) -> SubscriptionSet {
        SubscriptionSet::everything()
            .containers([
                ContainerAction::Create,
                ContainerAction::Start,
                ContainerAction::Die,
                ContainerAction::Destroy,
            ])
            .kubernetes(
                KubernetesFilter::any()
                    .resources(["pods"])
                    .subresources([""])
                    .verbs(["create", "delete", "added", "deleted"])
                    .stages(["", "ResponseComplete"]),
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
                    self.on_container(event, container, &mut findings)
                }
                EventBodyView::Kubernetes(request) => {
                    self.on_kubernetes(event, request, &mut findings)
                }
                EventBodyView::Network(_) | EventBodyView::File(_) => {}
            }
        }
        if self.counted >= self.config.persist_every_events {
            self.persist();
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
            self.on_service(event, &mut findings);
        }
        if self.counted >= self.config.persist_every_events {
            self.persist();
        }
        findings
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.ensure_loaded();
        let secs = now / NANOS;
        let window = self.window_of(secs);
        for alive in &mut self.alive_from {
            alive.get_or_insert(window);
        }
        if window > self.swept {
            self.swept = window;
            let config = &self.config;
            let window_secs = config.window_secs;
            let learnable = |w: u32| config.maintenance_at(u64::from(w) * window_secs).is_none();
            for scope in self.scopes.values_mut() {
                let alive = self.alive_from[scope.stream.index()].unwrap_or(window);
                for series in scope.stats.series.iter_mut().flatten() {
                    if series.advance(window, alive, window_secs, &learnable) {
                        scope.dirty = true;
                    }
                }
            }
        }
        let dirty = self.scopes.values().any(|s| s.dirty);
        if dirty
            && (secs.saturating_sub(self.last_persist) >= PERSIST_INTERVAL_SECS
                || secs < self.last_persist)
        {
            self.persist();
            self.last_persist = secs;
        }
        Vec::new()
    }
}

export_detector!(ContainerChurn, services);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
