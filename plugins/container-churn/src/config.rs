//! The plugin's settings: the raw JSON shape (whose field docs are the user
//! docs) and the validated [`Config`] the detector runs on.

use serde::Deserialize;
use vigil_plugin_sdk::ConfigError;
use vigil_plugin_sdk::settings::{self, Problems};
use vigil_plugin_sdk::util::image::{ImagePattern, normalize_image};
use vigil_plugin_sdk::util::lists::{non_empty, non_empty_owned};
use vigil_plugin_sdk::util::rules::parse_disabled;

pub use crate::maintenance::{MaintenanceWindow, WindowAction};
use crate::maintenance::{RawWindow, parse_window};
use crate::rules::Rule;

/// Default of `window_secs`: counts are kept per 5-minute window.
pub const DEFAULT_WINDOW_SECS: u64 = 300;
/// Default of `warmup_hours`: a scope alerts after a day of observation.
pub const DEFAULT_WARMUP_HOURS: u64 = 24;
/// Default of `z_threshold`.
pub const DEFAULT_Z_THRESHOLD: f64 = 4.0;
/// Default of `min_count`.
pub const DEFAULT_MIN_COUNT: u32 = 10;
/// Default of `min_bucket_samples`.
pub const DEFAULT_MIN_BUCKET_SAMPLES: u32 = 3;
/// Default of `short_lived_secs`.
pub const DEFAULT_SHORT_LIVED_SECS: u64 = 60;
/// Default of `max_scopes`.
pub const DEFAULT_MAX_SCOPES: usize = 256;
/// Default of `persist_every_events`.
pub const DEFAULT_PERSIST_EVERY_EVENTS: u32 = 1_000;

/// The settings as the operator writes them (JSON). Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    /// Length of a counting window, in seconds (divides an hour).
    window_secs: Option<u64>,
    /// Hours of observation before a scope's spikes are reported.
    warmup_hours: Option<u64>,
    /// How many standard deviations above the mean a count must be.
    z_threshold: Option<f64>,
    /// The smallest count in a window that can be a spike.
    min_count: Option<u32>,
    /// Samples an hour-of-week bucket needs before it is used as the baseline.
    min_bucket_samples: Option<u32>,
    /// Which scopes are learned: `node`, `namespace`, `image`, `actor`.
    scopes: Option<Vec<String>>,
    /// A container or pod removed within this many seconds of its creation is short-lived.
    short_lived_secs: Option<u64>,
    /// Kubernetes events counted: `audit` and/or `watch`.
    kubernetes_sources: Option<Vec<String>>,
    /// Scopes kept (least recently active forgotten).
    max_scopes: Option<usize>,
    /// Counted events between two writes of the baseline to state.
    persist_every_events: Option<u32>,
    /// Recurring maintenance windows.
    maintenance_windows: Vec<RawWindow>,
    /// Exceptions.
    allowlist: RawAllowlist,
    /// Rules turned off.
    disabled_rules: Vec<String>,
}

/// `allowlist.*`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAllowlist {
    /// Actors (Kubernetes users and service accounts, engine actors); `*` at the end is a prefix.
    actors: Vec<String>,
    /// Images (repository, reference, or prefix ending in `/` or `*`).
    images: Vec<String>,
    /// Container labels, `key` or `key=value`.
    labels: Vec<String>,
    /// Kubernetes namespaces (pods, and containers with the pod-namespace label).
    namespaces: Vec<String>,
}

/// The scope kinds that can be learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeSetting {
    /// The node (Docker), or the cluster as seen from this node (Kubernetes).
    Node,
    /// The Kubernetes namespace, or the Compose project.
    Namespace,
    /// The image repository.
    Image,
    /// Who did it.
    Actor,
}

impl ScopeSetting {
    /// The setting's spellings.
    pub const NAMES: [&str; 4] = ["node", "namespace", "image", "actor"];
    const ALL: [Self; 4] = [Self::Node, Self::Namespace, Self::Image, Self::Actor];

    fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        Self::NAMES
            .iter()
            .position(|name| *name == text)
            .map(|i| Self::ALL[i])
    }
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub(crate) window_secs: u64,
    pub(crate) warmup_windows: u32,
    pub(crate) z_threshold: f64,
    pub(crate) min_count: u32,
    pub(crate) min_bucket_samples: u32,
    pub(crate) scopes: Vec<ScopeSetting>,
    pub(crate) short_lived_secs: u64,
    pub(crate) audit: bool,
    pub(crate) watch: bool,
    pub(crate) max_scopes: usize,
    pub(crate) persist_every_events: u32,
    pub(crate) maintenance: Vec<MaintenanceWindow>,
    pub(crate) allowed_actors: Vec<String>,
    pub(crate) allowed_images: Vec<ImagePattern>,
    pub(crate) allowed_labels: Vec<(String, Option<String>)>,
    pub(crate) allowed_namespaces: Vec<String>,
    pub(crate) disabled_rules: Vec<Rule>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_secs: DEFAULT_WINDOW_SECS,
            warmup_windows: warmup_windows(DEFAULT_WARMUP_HOURS, DEFAULT_WINDOW_SECS),
            z_threshold: DEFAULT_Z_THRESHOLD,
            min_count: DEFAULT_MIN_COUNT,
            min_bucket_samples: DEFAULT_MIN_BUCKET_SAMPLES,
            scopes: ScopeSetting::ALL.to_vec(),
            short_lived_secs: DEFAULT_SHORT_LIVED_SECS,
            audit: true,
            watch: false,
            max_scopes: DEFAULT_MAX_SCOPES,
            persist_every_events: DEFAULT_PERSIST_EVERY_EVENTS,
            maintenance: Vec::new(),
            allowed_actors: Vec::new(),
            allowed_images: Vec::new(),
            allowed_labels: Vec::new(),
            allowed_namespaces: Vec::new(),
            disabled_rules: Vec::new(),
        }
    }
}

fn warmup_windows(hours: u64, window_secs: u64) -> u32 {
    u32::try_from(hours * 3_600 / window_secs.max(1)).unwrap_or(u32::MAX)
}

impl Config {
    /// Parses and validates the settings JSON, reporting every problem.
    ///
    /// # Errors
    /// Every problem found, each with its JSON path.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let raw: RawSettings = settings::parse(json)?;
        let mut problems = Problems::new();
        let mut config = Self::default();

        if let Some(secs) = raw.window_secs {
            if (60..=3_600).contains(&secs) && 3_600 % secs == 0 {
                config.window_secs = secs;
            } else {
                problems.push(
                    "window_secs",
                    format!("`{secs}` must be between 60 and 3600 and divide an hour (60, 300, 600, 900 …)"),
                );
            }
        }
        let warmup_hours = raw.warmup_hours.unwrap_or(DEFAULT_WARMUP_HOURS);
        if warmup_hours > 24 * 7 * 8 {
            problems.push("warmup_hours", "must be at most 1344 (eight weeks)");
        }
        config.warmup_windows = warmup_windows(warmup_hours, config.window_secs);
        if let Some(z) = raw.z_threshold {
            if z.is_finite() && z > 0.0 {
                config.z_threshold = z;
            } else {
                problems.push("z_threshold", "must be a positive number");
            }
        }
        if let Some(n) = raw.min_count {
            if n >= 1 {
                config.min_count = n;
            } else {
                problems.push("min_count", "must be at least 1");
            }
        }
        if let Some(n) = raw.min_bucket_samples {
            if n >= 1 {
                config.min_bucket_samples = n;
            } else {
                problems.push("min_bucket_samples", "must be at least 1");
            }
        }
        if let Some(scopes) = &raw.scopes {
            config.scopes.clear();
            for (i, scope) in scopes.iter().enumerate() {
                match ScopeSetting::parse(scope) {
                    Some(scope) if !config.scopes.contains(&scope) => config.scopes.push(scope),
                    Some(_) => {}
                    None => problems.push(
                        format!("scopes[{i}]"),
                        format!(
                            "unknown scope `{scope}`; expected one of: {}",
                            ScopeSetting::NAMES.join(", ")
                        ),
                    ),
                }
            }
        }
        if let Some(secs) = raw.short_lived_secs {
            if secs >= 1 {
                config.short_lived_secs = secs;
            } else {
                problems.push(
                    "short_lived_secs",
                    "must be at least 1 (disable the rule with `disabled_rules`)",
                );
            }
        }
        if let Some(sources) = &raw.kubernetes_sources {
            config.audit = false;
            config.watch = false;
            for (i, source) in sources.iter().enumerate() {
                match source.trim().to_ascii_lowercase().as_str() {
                    "audit" => config.audit = true,
                    "watch" => config.watch = true,
                    _ => problems.push(
                        format!("kubernetes_sources[{i}]"),
                        format!("unknown source `{source}`; expected `audit` or `watch`"),
                    ),
                }
            }
        }
        if let Some(n) = raw.max_scopes {
            if (1..=4_096).contains(&n) {
                config.max_scopes = n;
            } else {
                problems.push("max_scopes", "must be between 1 and 4096");
            }
        }
        if let Some(n) = raw.persist_every_events {
            if n >= 1 {
                config.persist_every_events = n;
            } else {
                problems.push("persist_every_events", "must be at least 1");
            }
        }
        for (i, window) in raw.maintenance_windows.iter().enumerate() {
            if let Some(window) =
                parse_window(window, &format!("maintenance_windows[{i}]"), &mut problems)
            {
                config.maintenance.push(window);
            }
        }

        for (i, actor) in raw.allowlist.actors.iter().enumerate() {
            if actor.trim().is_empty() || actor.trim() == "*" {
                problems.push(
                    format!("allowlist.actors[{i}]"),
                    "must name an actor or a prefix (`system:serviceaccount:ci:*`)",
                );
            } else {
                config.allowed_actors.push(actor.trim().to_owned());
            }
        }
        config.allowed_images = non_empty(&raw.allowlist.images, "allowlist.images", &mut problems)
            .map(ImagePattern::new)
            .collect();
        for (i, label) in raw.allowlist.labels.iter().enumerate() {
            let (key, value) = match label.split_once('=') {
                Some((key, value)) => (key.trim(), Some(value.trim().to_owned())),
                None => (label.trim(), None),
            };
            if key.is_empty() {
                problems.push(
                    format!("allowlist.labels[{i}]"),
                    "expected `key` or `key=value`",
                );
            } else {
                config.allowed_labels.push((key.to_owned(), value));
            }
        }
        config.allowed_namespaces = non_empty_owned(
            &raw.allowlist.namespaces,
            "allowlist.namespaces",
            &mut problems,
        );
        config.disabled_rules = parse_disabled(&raw.disabled_rules, &mut problems);

        problems.into_result()?;
        Ok(config)
    }

    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        !self.disabled_rules.contains(&rule)
    }

    pub(crate) fn scope_on(&self, scope: ScopeSetting) -> bool {
        self.scopes.contains(&scope)
    }

    pub(crate) fn actor_allowed(&self, actor: &str) -> bool {
        !actor.is_empty()
            && self
                .allowed_actors
                .iter()
                .any(|allowed| match allowed.strip_suffix('*') {
                    Some(prefix) => actor.starts_with(prefix),
                    None => actor == allowed,
                })
    }

    pub(crate) fn image_allowed(&self, image: &str) -> bool {
        let image = normalize_image(image);
        !image.is_empty() && self.allowed_images.iter().any(|p| p.matches(image))
    }

    pub(crate) fn label_allowed(&self, key: &str, value: &str) -> bool {
        self.allowed_labels
            .iter()
            .any(|(k, v)| k == key && v.as_deref().is_none_or(|v| v == value))
    }

    pub(crate) fn namespace_allowed(&self, namespace: &str) -> bool {
        !namespace.is_empty() && self.allowed_namespaces.iter().any(|n| n == namespace)
    }

    /// The maintenance window `secs` falls in, if any (the first listed).
    pub(crate) fn maintenance_at(&self, secs: u64) -> Option<&MaintenanceWindow> {
        self.maintenance.iter().find(|w| w.contains(secs))
    }
}
