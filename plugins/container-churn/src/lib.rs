#![doc = include_str!("../README.md")]

mod baseline;
mod cache;
mod config;
mod rules;
mod time;

use std::collections::HashMap;

pub use config::{
    Config, DEFAULT_MAX_SCOPES, DEFAULT_MIN_BUCKET_SAMPLES, DEFAULT_MIN_COUNT,
    DEFAULT_PERSIST_EVERY_EVENTS, DEFAULT_SHORT_LIVED_SECS, DEFAULT_WARMUP_HOURS,
    DEFAULT_WINDOW_SECS, DEFAULT_Z_THRESHOLD, MaintenanceWindow, ScopeSetting, WindowAction,
};
pub use rules::Rule;
use vigil_plugin_sdk::host::{log, state};
use vigil_plugin_sdk::prelude::*;

use baseline::{Action, Baseline, RECENT_IDS, ScopeStats, Series};
use cache::Bounded;
use config::repository;
use time::{bucket_label, rfc3339};

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
/// Docker Compose's project label.
const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
const NANOS: u64 = 1_000_000_000;

/// Where events come from: each stream has its own scopes and its own idea
/// of "now" (replay hands each event kind over in its own batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Docker,
    Kubernetes,
}

impl Stream {
    const fn index(self) -> usize {
        match self {
            Stream::Docker => 0,
            Stream::Kubernetes => 1,
        }
    }

    const fn letter(self) -> char {
        match self {
            Stream::Docker => 'd',
            Stream::Kubernetes => 'k',
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
        ]
        .into_iter()
        .find(|k| k.word() == word)
    }

    const fn setting(self) -> ScopeSetting {
        match self {
            ScopeKind::Node | ScopeKind::Cluster => ScopeSetting::Node,
            ScopeKind::Namespace | ScopeKind::Project => ScopeSetting::Namespace,
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
    alive_from: [Option<u32>; 2],
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
            alive_from: [None, None],
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

    // ---- container-engine events ------------------------------------------

    fn on_container(&mut self, event: &Event, c: &ContainerEvent, out: &mut Vec<Finding>) {
        let label = |key: &str| {
            c.labels
                .iter()
                .find(|l| l.key == key)
                .map_or("", |l| l.value.as_str())
        };
        let allowed = self.config.image_allowed(&c.image)
            || self.config.actor_allowed(&c.actor)
            || self.config.namespace_allowed(label(POD_NAMESPACE_LABEL))
            || c.labels
                .iter()
                .any(|l| self.config.label_allowed(&l.key, &l.value));
        let action = match c.action {
            ContainerAction::Create => {
                self.born.insert(
                    c.id.clone(),
                    Born {
                        time: event.time,
                        name: c.name.clone(),
                        image: c.image.clone(),
                        repos: Vec::new(),
                        risky: c.security.as_ref().map(risky_container).unwrap_or_default(),
                        exit_code: None,
                    },
                );
                Action::Create
            }
            ContainerAction::Start => {
                if let Some(born) = self.born.get_mut(c.id.as_str())
                    && let Some(security) = &c.security
                {
                    for flag in risky_container(security) {
                        if !born.risky.contains(&flag) {
                            born.risky.push(flag);
                        }
                    }
                }
                Action::Start
            }
            ContainerAction::Die => {
                if let Some(born) = self.born.get_mut(c.id.as_str()) {
                    born.exit_code = c.exit_code;
                }
                return;
            }
            ContainerAction::Destroy => {
                let born = self.born.remove(c.id.as_str());
                let lifetime = match &born {
                    Some(b) => Some((event.time.saturating_sub(b.time) / 1_000_000, "create")),
                    None => c.lifetime_ms.map(|ms| (ms, "start")),
                };
                if !allowed && let Some((ms, from)) = lifetime {
                    let image = if c.image.is_empty() {
                        born.as_ref().map_or("", |b| b.image.as_str())
                    } else {
                        c.image.as_str()
                    };
                    let name = if c.name.is_empty() {
                        born.as_ref().map_or("", |b| b.name.as_str())
                    } else {
                        c.name.as_str()
                    };
                    let subject = Subject {
                        stream: Stream::Docker,
                        id: &c.id,
                        name,
                        image,
                        namespace: label(POD_NAMESPACE_LABEL),
                        actor: &c.actor,
                    };
                    self.short_lived(event, &subject, ms, from, born.as_ref(), out);
                }
                Action::Destroy
            }
            _ => return,
        };
        if allowed {
            return;
        }
        let mut scopes: Vec<(ScopeKind, &str)> = Vec::with_capacity(4);
        if !event.node.is_empty() {
            scopes.push((ScopeKind::Node, &event.node));
        }
        let namespace = label(POD_NAMESPACE_LABEL);
        let project = label(COMPOSE_PROJECT_LABEL);
        if !namespace.is_empty() {
            scopes.push((ScopeKind::Namespace, namespace));
        } else if !project.is_empty() {
            scopes.push((ScopeKind::Project, project));
        }
        let repo = repository(&c.image);
        if !repo.is_empty() {
            scopes.push((ScopeKind::Image, repo));
        }
        if !c.actor.is_empty() {
            scopes.push((ScopeKind::Actor, &c.actor));
        }
        self.count(Stream::Docker, action, event, &scopes, out);
    }

    // ---- Kubernetes events ---------------------------------------------------

    fn on_kubernetes(&mut self, event: &Event, k: &KubernetesEvent, out: &mut Vec<Finding>) {
        if k.resource != "pods" || !k.subresource.is_empty() || !k.api_group.is_empty() {
            return;
        }
        let audit = !k.stage.is_empty();
        let action = match (audit, k.verb.as_str()) {
            (true, "create") | (false, "added") => Action::Create,
            (true, "delete") | (false, "deleted") => Action::Destroy,
            _ => return,
        };
        if audit {
            // One event per request (not its RequestReceived echo), and only
            // requests that succeeded.
            if !self.config.audit
                || k.stage != "ResponseComplete"
                || k.response_code.is_some_and(|code| code >= 400)
            {
                return;
            }
            // The kubelet's final delete of a pod someone else deleted is the
            // same removal twice.
            if action == Action::Destroy && k.user.starts_with("system:node:") {
                return;
            }
        } else if !self.config.watch {
            return;
        }
        let key = format!("k/{}/{}", k.namespace, k.name);
        let mut repos: Vec<String> = Vec::new();
        let mut images: Vec<&str> = Vec::new();
        if let Some(pod) = &k.pod {
            for container in pod
                .containers
                .iter()
                .filter(|c| c.role != ContainerRole::Ephemeral)
            {
                images.push(&container.image);
                let repo = repository(&container.image);
                if !repo.is_empty() && !repos.iter().any(|r| r == repo) {
                    repos.push(repo.to_owned());
                }
            }
        }
        let born = if action == Action::Destroy && !k.name.is_empty() {
            self.born.remove(key.as_str())
        } else {
            None
        };
        if repos.is_empty()
            && let Some(b) = &born
        {
            repos.clone_from(&b.repos);
        }
        let allowed = self.config.actor_allowed(&k.user)
            || self.config.namespace_allowed(&k.namespace)
            || (!repos.is_empty() && repos.iter().all(|r| self.config.image_allowed(r)))
            || (!images.is_empty() && images.iter().all(|i| self.config.image_allowed(i)));
        if allowed {
            return;
        }
        let pod_id = format!("{}/{}", k.namespace, k.name);
        match action {
            Action::Create if !k.name.is_empty() => {
                let risky = k.pod.as_ref().map(risky_pod).unwrap_or_default();
                self.born.insert(
                    key,
                    Born {
                        time: event.time,
                        name: pod_id,
                        image: images.first().map(|i| (*i).to_owned()).unwrap_or_default(),
                        repos: repos.clone(),
                        risky,
                        exit_code: None,
                    },
                );
            }
            Action::Destroy => {
                if let Some(b) = &born {
                    let ms = event.time.saturating_sub(b.time) / 1_000_000;
                    let subject = Subject {
                        stream: Stream::Kubernetes,
                        id: &pod_id,
                        name: &pod_id,
                        image: &b.image,
                        namespace: &k.namespace,
                        actor: &k.user,
                    };
                    self.short_lived(event, &subject, ms, "create", Some(b), out);
                }
            }
            _ => {}
        }
        let mut scopes: Vec<(ScopeKind, &str)> = Vec::with_capacity(4);
        if !event.node.is_empty() {
            scopes.push((ScopeKind::Cluster, &event.node));
        }
        if !k.namespace.is_empty() {
            scopes.push((ScopeKind::Namespace, &k.namespace));
        }
        for repo in &repos {
            scopes.push((ScopeKind::Image, repo));
        }
        if !k.user.is_empty() {
            scopes.push((ScopeKind::Actor, &k.user));
        }
        self.count(Stream::Kubernetes, action, event, &scopes, out);
    }

    // ---- counting and spikes -------------------------------------------------

    fn count(
        &mut self,
        stream: Stream,
        action: Action,
        event: &Event,
        scopes: &[(ScopeKind, &str)],
        out: &mut Vec<Finding>,
    ) {
        self.ensure_loaded();
        let secs = event.time / NANOS;
        let window = self.window_of(secs);
        let alive = *self.alive_from[stream.index()].get_or_insert(window);
        let window_secs = self.config.window_secs;
        let mut crossings = Vec::new();
        for (kind, value) in scopes {
            if !self.config.scope_on(kind.setting()) {
                continue;
            }
            let key = scope_key(stream, *kind, value);
            if !self.scopes.contains_key(&key) {
                self.make_room();
                self.scopes.insert(
                    key.clone(),
                    Scope {
                        stream,
                        kind: *kind,
                        stats: ScopeStats::default(),
                        dirty: true,
                    },
                );
            }
            let config = &self.config;
            let Some(scope) = self.scopes.get_mut(&key) else {
                continue;
            };
            scope.dirty = true;
            scope.stats.last_active = scope.stats.last_active.max(secs);
            if scope.stats.series[action.index()].is_none() {
                let sibling = scope
                    .stats
                    .series
                    .iter()
                    .flatten()
                    .max_by_key(|s| s.learned);
                let series =
                    sibling.map_or_else(|| Series::new(window), |s| Series::zeros_like(s, window));
                scope.stats.series[action.index()] = Some(series);
            }
            let Some(series) = scope.stats.series[action.index()].as_mut() else {
                continue;
            };
            let learnable = |w: u32| config.maintenance_at(u64::from(w) * window_secs).is_none();
            series.advance(window, alive, window_secs, &learnable);
            series.cur_count = series.cur_count.saturating_add(1);
            if series.recent.len() < RECENT_IDS {
                series.recent.push(event.id.clone());
            }
            if series.alerted == series.cur_window || series.learned < config.warmup_windows {
                continue;
            }
            let baseline = series.baseline(window_secs, config.min_bucket_samples);
            if series.cur_count >= config.min_count
                && baseline.z(series.cur_count) >= config.z_threshold
            {
                series.alerted = series.cur_window;
                crossings.push(Crossing {
                    kind: *kind,
                    value: (*value).to_owned(),
                    count: series.cur_count,
                    window: series.cur_window,
                    baseline,
                    recent: series.recent.clone(),
                });
            }
        }
        self.counted = self.counted.saturating_add(1);
        if crossings.is_empty() || !self.config.enabled(Rule::Spike) {
            return;
        }
        let (severity, maintenance) = match self.config.maintenance_at(secs) {
            Some(w) if w.action == WindowAction::Suppress => return,
            Some(w) => (Severity::Info, Some(w.name.clone())),
            None => (Rule::Spike.severity(), None),
        };
        out.push(self.spike_finding(
            stream,
            action,
            event,
            &crossings,
            severity,
            maintenance.as_deref(),
        ));
    }

    /// Evicts the least recently active scope (never a node or cluster
    /// scope while others exist) when the table is full.
    fn make_room(&mut self) {
        if self.scopes.len() < self.config.max_scopes {
            return;
        }
        if !self.warned_full {
            self.warned_full = true;
            log::warn(
                "too many churn scopes: the least recently active are forgotten",
                &[("max_scopes", &self.config.max_scopes.to_string())],
            );
        }
        let victim = self
            .scopes
            .iter()
            .min_by_key(|(key, s)| (s.kind.pinned(), s.stats.last_active, (*key).clone()))
            .map(|(key, _)| key.clone());
        if let Some(key) = victim {
            self.scopes.remove(&key);
            state::delete(&key);
        }
    }

    fn spike_finding(
        &self,
        stream: Stream,
        action: Action,
        event: &Event,
        crossings: &[Crossing],
        severity: Severity,
        maintenance: Option<&str>,
    ) -> Finding {
        let (title, noun) = match (stream, action) {
            (Stream::Docker, Action::Create) => {
                ("Burst of container creations", "container creations")
            }
            (Stream::Docker, Action::Start) => ("Burst of container starts", "container starts"),
            (Stream::Docker, Action::Destroy) => {
                ("Burst of container removals", "container removals")
            }
            (Stream::Kubernetes, Action::Destroy) => ("Burst of pod deletions", "pod deletions"),
            (Stream::Kubernetes, _) => ("Burst of pod creations", "pod creations"),
        };
        let window_secs = self.config.window_secs;
        let first = &crossings[0];
        let window_start = u64::from(first.window) * window_secs;
        let mut summary = format!(
            "{} {noun} in {} within the {}-minute window from {}, against a baseline of {} ({}): \
             z = {:.1}, over the threshold of {} with at least {}.",
            first.count,
            scope_text(first.kind, &first.value),
            window_secs / 60,
            rfc3339(window_start),
            mean_sd(&first.baseline),
            bucket_text(&first.baseline),
            first.baseline.z(first.count),
            self.config.z_threshold,
            self.config.min_count,
        );
        for other in &crossings[1..] {
            summary.push_str(&format!(
                " Also {}: {} against {}.",
                scope_text(other.kind, &other.value),
                other.count,
                mean_sd(&other.baseline)
            ));
        }
        if let Some(window) = maintenance {
            summary.push_str(&format!(
                " Inside maintenance window `{window}`: downgraded to info."
            ));
        }
        let mut finding = Finding::builder(Rule::Spike.id(), severity)
            .title(title)
            .summary(summary);
        let techniques: &[&str] = match action {
            // Deploy Container.
            Action::Create | Action::Start => &["T1610"],
            // Service Stop; Indicator Removal.
            Action::Destroy => &["T1489", "T1070"],
        };
        for technique in techniques {
            finding = finding.technique(*technique);
        }
        for crossing in crossings {
            finding = match crossing.kind {
                ScopeKind::Node => finding.entity(EntityKind::Node, crossing.value.clone(), ""),
                ScopeKind::Image => finding.entity(EntityKind::Image, crossing.value.clone(), ""),
                ScopeKind::Actor => finding.entity(EntityKind::User, crossing.value.clone(), ""),
                ScopeKind::Cluster | ScopeKind::Namespace | ScopeKind::Project => finding,
            };
        }
        if !event.node.is_empty() {
            finding = finding.entity(EntityKind::Node, event.node.clone(), "");
        }
        for crossing in crossings {
            let b = &crossing.baseline;
            finding = finding
                .evidence(
                    "scope",
                    format!("{}:{}", crossing.kind.word(), crossing.value),
                )
                .evidence("action", action.name())
                .evidence(
                    "window-start",
                    rfc3339(u64::from(crossing.window) * window_secs),
                )
                .evidence("window-secs", window_secs.to_string())
                .evidence("observed", crossing.count.to_string())
                .evidence("baseline-mean", format!("{:.2}", b.mean))
                .evidence("baseline-sd", format!("{:.2}", b.sd))
                .evidence("baseline-samples", b.samples.to_string())
                .evidence("baseline-bucket", bucket_text(b))
                .evidence("z-score", format!("{:.2}", b.z(crossing.count)))
                .evidence(
                    "threshold",
                    format!(
                        "z >= {} and count >= {}",
                        self.config.z_threshold, self.config.min_count
                    ),
                );
        }
        if let Some(window) = maintenance {
            finding = finding.evidence("maintenance-window", window.to_owned());
        }
        for id in &first.recent {
            finding = finding.event(id.clone());
        }
        finding.event(event.id.clone()).build()
    }

    // ---- short-lived -----------------------------------------------------------

    fn short_lived(
        &mut self,
        event: &Event,
        subject: &Subject<'_>,
        lifetime_ms: u64,
        measured_from: &str,
        born: Option<&Born>,
        out: &mut Vec<Finding>,
    ) {
        let limit_ms = self.config.short_lived_secs.saturating_mul(1_000);
        if !self.config.enabled(Rule::ShortLived) || lifetime_ms > limit_ms {
            return;
        }
        let secs = event.time / NANOS;
        let maintenance = match self.config.maintenance_at(secs) {
            Some(w) if w.action == WindowAction::Suppress => return,
            Some(w) => Some(w.name.clone()),
            None => None,
        };
        let risky: &[&str] = born.map_or(&[], |b| b.risky.as_slice());
        let severity = if maintenance.is_some() {
            Severity::Info
        } else if risky.is_empty() {
            Rule::ShortLived.severity()
        } else {
            Severity::Medium
        };
        // Many harmless run-and-remove containers of one image: report the
        // first of each window; risky ones are always reported.
        if risky.is_empty() {
            let key = format!("{}/{}", subject.stream.letter(), repository(subject.image));
            let window = self.window_of(secs);
            if self
                .short_reported
                .get_mut(key.as_str())
                .is_some_and(|w| *w == window)
            {
                return;
            }
            self.short_reported.insert(key, window);
        }
        let (what, entity) = match subject.stream {
            Stream::Docker => ("Container", EntityKind::Container),
            Stream::Kubernetes => ("Pod", EntityKind::Pod),
        };
        let shown = if subject.name.is_empty() {
            subject.id.get(..12).unwrap_or(subject.id)
        } else {
            subject.name
        };
        let mut summary = format!(
            "{what} {shown}{} was removed {:.1} s after it was {} (threshold {} s): run-and-remove leaves \
             little to inspect.",
            if subject.image.is_empty() {
                String::new()
            } else {
                format!(" ({})", subject.image)
            },
            lifetime_ms as f64 / 1_000.0,
            if measured_from == "create" {
                "created"
            } else {
                "started"
            },
            self.config.short_lived_secs,
        );
        if !risky.is_empty() {
            summary.push_str(&format!(" It ran with {}.", risky.join(", ")));
        }
        if let Some(window) = &maintenance {
            summary.push_str(&format!(
                " Inside maintenance window `{window}`: downgraded to info."
            ));
        }
        let mut finding = Finding::builder(Rule::ShortLived.id(), severity)
            .title(format!("Short-lived {}", what.to_ascii_lowercase()))
            .summary(summary)
            // Deploy Container; Indicator Removal.
            .technique("T1610")
            .technique("T1070")
            .entity(entity, subject.id.to_owned(), subject.name.to_owned());
        if !subject.image.is_empty() {
            finding = finding.entity(EntityKind::Image, subject.image.to_owned(), "");
        }
        if !event.node.is_empty() {
            finding = finding.entity(EntityKind::Node, event.node.clone(), "");
        }
        if !subject.actor.is_empty() {
            finding = finding.entity(EntityKind::User, subject.actor.to_owned(), "");
        }
        finding = finding
            .evidence(what.to_ascii_lowercase(), shown.to_owned())
            .evidence("image", subject.image.to_owned())
            .evidence("lifetime-ms", lifetime_ms.to_string())
            .evidence("lifetime-from", measured_from.to_owned())
            .evidence("threshold-secs", self.config.short_lived_secs.to_string())
            .evidence("removed", rfc3339(secs));
        if let Some(b) = born {
            finding = finding.evidence("created", rfc3339(b.time / NANOS));
            if let Some(code) = b.exit_code {
                finding = finding.evidence("exit-code", code.to_string());
            }
        }
        if !subject.namespace.is_empty() {
            finding = finding.evidence("namespace", subject.namespace.to_owned());
        }
        if !subject.actor.is_empty() {
            finding = finding.evidence("actor", subject.actor.to_owned());
        }
        for flag in risky {
            finding = finding.evidence("risky", (*flag).to_owned());
        }
        if let Some(window) = maintenance {
            finding = finding.evidence("maintenance-window", window);
        }
        out.push(finding.event(event.id.clone()).build());
    }

    // ---- state ------------------------------------------------------------------

    /// Loads the persisted baseline once.
    fn ensure_loaded(&mut self) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let mut dropped = 0usize;
        for key in state::keys(KEY_PREFIX) {
            match state::get(&key).and_then(|bytes| parse_scope(&key, &bytes)) {
                Some(scope) => {
                    self.scopes.insert(key, scope);
                }
                None => {
                    dropped += 1;
                    state::delete(&key);
                }
            }
        }
        while self.scopes.len() > self.config.max_scopes {
            let before = self.scopes.len();
            self.make_room();
            if self.scopes.len() == before {
                break;
            }
        }
        if dropped > 0 {
            log::warn(
                "unreadable churn baselines dropped",
                &[("scopes", &dropped.to_string())],
            );
        }
    }

    /// Writes every changed scope to state.
    fn persist(&mut self) {
        self.counted = 0;
        let mut failed = None;
        for (key, scope) in &mut self.scopes {
            if !scope.dirty {
                continue;
            }
            scope.dirty = false;
            if let Err(error) = state::set(key, &scope.stats.encode()) {
                failed = Some(format!("{error:?}"));
            }
        }
        if let Some(error) = failed
            && !self.warned_state
        {
            self.warned_state = true;
            log::warn(
                "churn baselines could not all be persisted; they are kept in memory (lower max_scopes?)",
                &[("error", &error)],
            );
        }
    }
}

/// What a short-lived finding is about.
struct Subject<'a> {
    stream: Stream,
    id: &'a str,
    name: &'a str,
    image: &'a str,
    namespace: &'a str,
    actor: &'a str,
}

impl Detector for ContainerChurn {
    fn describe() -> PluginInfo {
        PluginInfo::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .description(
                "Learns how many containers and pods are created, started and removed per node, namespace \
                 (or Compose project), image and actor, per hour of the week, and reports bursts beyond that \
                 baseline; and containers or pods removed within seconds of their creation (run-and-remove).",
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
                "list of `node`, `namespace`, `image`, `actor`",
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
            .setting(
                "disabled_rules",
                "list of rule ids",
                "[]",
                "Rules turned off: `container-churn/<rule>` or `<rule>`.",
            )
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        *self = Self::with_config(Config::from_json(settings)?);
        Ok(())
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for event in batch {
            match &event.body {
                EventBody::Container(container) => {
                    self.on_container(event, container, &mut findings)
                }
                EventBody::Kubernetes(request) => self.on_kubernetes(event, request, &mut findings),
                EventBody::Network(_) | EventBody::File(_) => {}
            }
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

export_detector!(ContainerChurn);

/// `s/d/image/nginx` (the value cut to fit the host's key limit).
fn scope_key(stream: Stream, kind: ScopeKind, value: &str) -> String {
    let mut end = value.len().min(MAX_KEY_VALUE);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{KEY_PREFIX}{}/{}/{}",
        stream.letter(),
        kind.word(),
        &value[..end]
    )
}

/// A persisted scope from its key and value.
fn parse_scope(key: &str, bytes: &[u8]) -> Option<Scope> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (stream, rest) = rest.split_once('/')?;
    let (kind, _value) = rest.split_once('/')?;
    let stream = match stream {
        "d" => Stream::Docker,
        "k" => Stream::Kubernetes,
        _ => return None,
    };
    Some(Scope {
        stream,
        kind: ScopeKind::parse(kind)?,
        stats: ScopeStats::decode(bytes)?,
        dirty: false,
    })
}

fn risky_container(security: &ContainerSecurity) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if security.privileged {
        flags.push("privileged");
    }
    if security.network_mode == "host" {
        flags.push("host-network");
    }
    if security.pid_mode == "host" {
        flags.push("host-pid");
    }
    if security.ipc_mode == "host" {
        flags.push("host-ipc");
    }
    if security
        .mounts
        .iter()
        .any(|m| m.source.ends_with("/docker.sock") || m.source.ends_with("/containerd.sock"))
    {
        flags.push("runtime-socket");
    }
    flags
}

fn risky_pod(pod: &PodSpec) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if pod.containers.iter().any(|c| c.security.privileged) {
        flags.push("privileged");
    }
    if pod.host_network {
        flags.push("host-network");
    }
    if pod.host_pid {
        flags.push("host-pid");
    }
    if pod.host_ipc {
        flags.push("host-ipc");
    }
    flags
}

fn scope_text(kind: ScopeKind, value: &str) -> String {
    match kind {
        ScopeKind::Node => format!("node {value}"),
        ScopeKind::Cluster => format!("the cluster (as seen from {value})"),
        ScopeKind::Namespace => format!("namespace {value}"),
        ScopeKind::Project => format!("Compose project {value}"),
        ScopeKind::Image => format!("image {value}"),
        ScopeKind::Actor => format!("actor {value}"),
    }
}

fn mean_sd(b: &Baseline) -> String {
    format!("{:.1} ± {:.1}", b.mean, b.sd)
}

fn bucket_text(b: &Baseline) -> String {
    match b.bucket {
        Some(bucket) => bucket_label(bucket),
        None => format!("all hours, {} windows", b.samples),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
