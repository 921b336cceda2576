//! Counting events per scope and window, and the spike findings.

use vigil_plugin_sdk::host::{log, state};
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::timefmt::rfc3339_secs;

use crate::baseline::{Action, Baseline, RECENT_IDS, ScopeStats, Series};
use crate::config::WindowAction;
use crate::store::scope_key;
use crate::time::bucket_label;
use crate::{ContainerChurn, Crossing, NANOS, Rule, Scope, ScopeKind, Stream};

impl ContainerChurn {
    pub(crate) fn count(
        &mut self,
        stream: Stream,
        action: Action,
        event: &EventView<'_>,
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
                series.recent.push(event.id.to_owned());
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
    pub(crate) fn make_room(&mut self) {
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
        event: &EventView<'_>,
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
            (Stream::Swarm, _) => (
                "Burst of Swarm service scale-ups",
                "task replicas added by service creations and scale-ups",
            ),
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
            rfc3339_secs(window_start),
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
                ScopeKind::Cluster
                | ScopeKind::Namespace
                | ScopeKind::Project
                | ScopeKind::Service => finding,
            };
        }
        if !event.node.is_empty() {
            finding = finding.entity(EntityKind::Node, event.node, "");
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
                    rfc3339_secs(u64::from(crossing.window) * window_secs),
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
        finding.event(event.id).build()
    }
}

fn scope_text(kind: ScopeKind, value: &str) -> String {
    match kind {
        ScopeKind::Node => format!("node {value}"),
        ScopeKind::Cluster => format!("the cluster (as seen from {value})"),
        ScopeKind::Namespace => format!("namespace {value}"),
        ScopeKind::Project => format!("Compose project {value}"),
        ScopeKind::Image => format!("image {value}"),
        ScopeKind::Actor => format!("actor {value}"),
        ScopeKind::Service => format!("Swarm service {value}"),
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
