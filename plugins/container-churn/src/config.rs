//! The plugin's settings: the raw JSON shape (whose field docs are the user
//! docs) and the validated [`Config`] the detector runs on.

use core::fmt;

use serde::Deserialize;
use vigil_plugin_sdk::ConfigError;
use vigil_plugin_sdk::settings::{self, Problems};

use crate::rules::Rule;
use crate::time::{DAY, DAY_NAMES, weekday};

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

/// One `maintenance_windows[]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    /// A label for evidence (default: the window's own text).
    #[serde(default)]
    name: Option<String>,
    /// Days the window starts on (`mon` … `sun`, or full names); empty: every day.
    #[serde(default)]
    days: Vec<String>,
    /// Start, `HH:MM` local to `tz_offset`.
    start: String,
    /// End, `HH:MM`; earlier than `start` means the next day.
    end: String,
    /// The offset from UTC of `start` and `end` (`+02:00`, `-05:00`, `Z`).
    #[serde(default)]
    tz_offset: Option<String>,
    /// `suppress` (default) or `downgrade`.
    #[serde(default)]
    action: Option<String>,
}

/// What a maintenance window does to findings inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowAction {
    /// Nothing is reported.
    Suppress,
    /// Findings are reported at `info`.
    Downgrade,
}

/// A validated maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// The label used in evidence.
    pub name: String,
    /// Bit `d` set: the window starts on weekday `d` (Monday = 0).
    days: u8,
    /// Minutes after local midnight.
    start: u32,
    /// Minutes after local midnight; `<= start` means the next day.
    end: u32,
    /// Seconds east of UTC.
    offset: i64,
    /// What it does.
    pub action: WindowAction,
}

impl MaintenanceWindow {
    /// True when `secs` (UTC) falls inside the window.
    pub fn contains(&self, secs: u64) -> bool {
        let local = i64::try_from(secs).unwrap_or(i64::MAX) + self.offset;
        let day = local.div_euclid(DAY);
        let minute = u32::try_from(local.rem_euclid(DAY) / 60).unwrap_or(0);
        let starts_on = |d: i64| self.days & (1 << weekday(d)) != 0;
        if self.start < self.end {
            starts_on(day) && (self.start..self.end).contains(&minute)
        } else {
            (starts_on(day) && minute >= self.start) || (starts_on(day - 1) && minute < self.end)
        }
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
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
        for (i, image) in raw.allowlist.images.iter().enumerate() {
            if image.trim().is_empty() {
                problems.push(format!("allowlist.images[{i}]"), "must not be empty");
            } else {
                config.allowed_images.push(ImagePattern::new(image));
            }
        }
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
        for (i, namespace) in raw.allowlist.namespaces.iter().enumerate() {
            if namespace.trim().is_empty() {
                problems.push(format!("allowlist.namespaces[{i}]"), "must not be empty");
            } else {
                config.allowed_namespaces.push(namespace.trim().to_owned());
            }
        }
        for (i, id) in raw.disabled_rules.iter().enumerate() {
            match Rule::from_id(id) {
                Some(rule) => config.disabled_rules.push(rule),
                None => problems.push(
                    format!("disabled_rules[{i}]"),
                    format!(
                        "unknown rule `{id}`; known rules: {}",
                        Rule::ALL.map(Rule::name).join(", ")
                    ),
                ),
            }
        }

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

fn parse_window(raw: &RawWindow, path: &str, problems: &mut Problems) -> Option<MaintenanceWindow> {
    let before = problems.clone();
    let mut days = 0u8;
    for (i, day) in raw.days.iter().enumerate() {
        let lower = day.trim().to_ascii_lowercase();
        match DAY_NAMES
            .iter()
            .position(|name| lower.len() >= 3 && full_day(name).starts_with(&lower))
        {
            Some(d) => days |= 1 << d,
            None => problems.push(
                format!("{path}.days[{i}]"),
                format!("`{day}` is not a day (`mon` … `sun`, or `monday` …)"),
            ),
        }
    }
    if raw.days.is_empty() {
        days = 0x7f;
    }
    let start = parse_hhmm(&raw.start);
    if start.is_none() {
        problems.push(
            format!("{path}.start"),
            format!("`{}` is not a time `HH:MM`", raw.start),
        );
    }
    let end = parse_hhmm(&raw.end);
    if end.is_none() {
        problems.push(
            format!("{path}.end"),
            format!("`{}` is not a time `HH:MM` (24:00 allowed)", raw.end),
        );
    }
    if let (Some(start), Some(end)) = (start, end)
        && start == end % (24 * 60)
    {
        problems.push(
            format!("{path}.end"),
            "the window is empty: `end` equals `start`",
        );
    }
    let tz = raw.tz_offset.as_deref().unwrap_or("+00:00");
    let offset = parse_offset(tz);
    if offset.is_none() {
        problems.push(
            format!("{path}.tz_offset"),
            format!("`{tz}` is not an offset (`+02:00`, `-05:30`, `Z`)"),
        );
    }
    let action = match raw.action.as_deref().map(|a| a.trim().to_ascii_lowercase()) {
        None => Some(WindowAction::Suppress),
        Some(a) if a == "suppress" => Some(WindowAction::Suppress),
        Some(a) if a == "downgrade" => Some(WindowAction::Downgrade),
        Some(a) => {
            problems.push(
                format!("{path}.action"),
                format!("unknown action `{a}`; expected `suppress` or `downgrade`"),
            );
            None
        }
    };
    if *problems != before {
        return None;
    }
    let (start, end, offset, action) = (start?, end?, offset?, action?);
    let day_text = if raw.days.is_empty() {
        "daily".to_owned()
    } else {
        DAY_NAMES
            .iter()
            .enumerate()
            .filter(|(d, _)| days & (1 << d) != 0)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(",")
    };
    let name = raw
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            format!(
                "{day_text} {}-{} {}",
                raw.start.trim(),
                raw.end.trim(),
                tz.trim()
            )
        });
    Some(MaintenanceWindow {
        name,
        days,
        start,
        end: end % (24 * 60),
        offset,
        action,
    })
}

fn full_day(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

/// `HH:MM` → minutes after midnight (`24:00` allowed as an end).
fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// `+02:00` / `-05:30` / `Z` → seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let minutes = parse_hhmm(rest)?;
    (minutes <= 14 * 60).then_some(sign * i64::from(minutes) * 60)
}

/// Docker Hub's implicit prefixes, so `nginx` and `docker.io/library/nginx` compare equal.
pub(crate) fn normalize_image(image: &str) -> &str {
    let image = image.trim();
    [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ]
    .iter()
    .find_map(|prefix| image.strip_prefix(prefix))
    .unwrap_or(image)
}

/// An image reference without its tag or digest (`registry:5000/app:1.2` →
/// `registry:5000/app`): the image scope, so every tag shares one baseline.
pub(crate) fn repository(image: &str) -> &str {
    let image = normalize_image(image);
    let image = image.split_once('@').map_or(image, |(repo, _)| repo);
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    }
}

/// One `allowlist.images` entry: `repo/name:tag` or `repo/name@digest`
/// exactly, `repo/name` with any tag or digest, or a prefix ending in `/` or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImagePattern {
    /// A reference or a repository.
    Exact(String),
    /// A prefix.
    Prefix(String),
}

impl ImagePattern {
    fn new(entry: &str) -> Self {
        let entry = normalize_image(entry);
        if let Some(prefix) = entry.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else if entry.ends_with('/') {
            Self::Prefix(entry.to_owned())
        } else {
            Self::Exact(entry.to_owned())
        }
    }

    fn matches(&self, image: &str) -> bool {
        match self {
            Self::Prefix(prefix) => image.starts_with(prefix.as_str()),
            Self::Exact(entry) => {
                image == entry
                    || image
                        .strip_prefix(entry.as_str())
                        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
            }
        }
    }
}
