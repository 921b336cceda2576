//! The plugin's settings: the raw JSON shape (whose field docs are the user
//! docs) and the validated [`Config`] the rules run on.

use serde::Deserialize;
use vigil_plugin_sdk::settings::{self, Problems};
use vigil_plugin_sdk::util::image::{ImagePattern, normalize_image};
use vigil_plugin_sdk::util::lists::non_empty;
use vigil_plugin_sdk::util::rules::parse_disabled;
use vigil_plugin_sdk::{ConfigError, Severity};

use crate::net::{Cidr, PortRange, PortSet};
use crate::rules::Rule;

/// Ports any container may reach anywhere: DNS, HTTP, NTP, HTTPS, DNS over TLS.
pub const DEFAULT_STANDARD_PORTS: &[&str] = &["53", "80", "123/udp", "443", "853/tcp"];

/// Ports any container may reach on another container: common service ports
/// (web, gRPC, databases, caches, brokers, metrics).
pub const DEFAULT_INTERNAL_PORTS: &[&str] = &[
    "3000", "5000", "8000", "8080", "8443", "9000", "9090", "50051", "5432", "3306", "6379",
    "27017", "9200", "9092", "5672", "4222", "11211",
];

/// Address blocks holding containers: Docker's default bridge pools.
pub const DEFAULT_CONTAINER_NETWORKS: &[&str] = &["172.16.0.0/12"];

/// The settings as the operator writes them (JSON). Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    /// Replaces the ports any container may reach anywhere.
    standard_ports: Option<Vec<RawPort>>,
    /// Replaces the ports any container may reach on another container.
    internal_ports: Option<Vec<RawPort>>,
    /// Replaces the address blocks that hold containers.
    container_networks: Option<Vec<String>>,
    /// Seconds an image's port profile learns before it is trusted.
    warmup_secs: Option<u64>,
    /// Outbound connections an image's profile must have seen before it is trusted.
    warmup_min_connections: Option<u32>,
    /// What a port outside the profile gives while the profile learns.
    warmup_severity: Option<String>,
    /// Seconds before the same container, address and port is reported again.
    realert_secs: Option<u64>,
    /// Ports kept per image profile (each of external and internal).
    max_profile_ports: Option<usize>,
    /// Image profiles kept.
    max_images: Option<usize>,
    /// Also check the host's own sockets against threat intel.
    include_host: Option<bool>,
    /// Exceptions.
    allowlist: RawAllowlist,
    /// Rules turned off.
    disabled_rules: Vec<String>,
}

/// `allowlist.*`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAllowlist {
    /// Images whose connections are never reported.
    images: Vec<String>,
    /// Destinations (addresses or CIDR blocks) never reported.
    destinations: Vec<String>,
}

/// A port: a number, or text (`"123/udp"`, `"8000-8099"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPort {
    Number(u64),
    Text(String),
}

/// What a port outside a still-learning profile gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmupSeverity {
    /// Nothing.
    Off,
    /// A finding at this severity.
    Report(Severity),
}

impl WarmupSeverity {
    /// The setting's spellings.
    pub const NAMES: [&str; 3] = ["off", "info", "low"];

    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" => Some(Self::Off),
            "info" => Some(Self::Report(Severity::Info)),
            "low" => Some(Self::Report(Severity::Low)),
            _ => None,
        }
    }
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub(crate) standard_ports: PortSet,
    pub(crate) internal_ports: PortSet,
    pub(crate) container_networks: Vec<Cidr>,
    pub(crate) warmup_secs: u64,
    pub(crate) warmup_min_connections: u32,
    pub(crate) warmup_severity: WarmupSeverity,
    pub(crate) realert_secs: u64,
    pub(crate) max_profile_ports: usize,
    pub(crate) max_images: usize,
    pub(crate) include_host: bool,
    pub(crate) allowed_images: Vec<ImagePattern>,
    pub(crate) allowed_destinations: Vec<Cidr>,
    pub(crate) disabled_rules: Vec<Rule>,
}

/// Default of `warmup_secs`: a day.
pub const DEFAULT_WARMUP_SECS: u64 = 86_400;
/// Default of `warmup_min_connections`.
pub const DEFAULT_WARMUP_MIN_CONNECTIONS: u32 = 20;
/// Default of `realert_secs`: an hour.
pub const DEFAULT_REALERT_SECS: u64 = 3_600;
/// Default of `max_profile_ports`.
pub const DEFAULT_MAX_PROFILE_PORTS: usize = 64;
/// Default of `max_images`.
pub const DEFAULT_MAX_IMAGES: usize = 512;

impl Default for Config {
    fn default() -> Self {
        let ports = |list: &[&str]| {
            PortSet(
                list.iter()
                    .filter_map(|p| PortRange::parse(p).ok())
                    .collect(),
            )
        };
        Self {
            standard_ports: ports(DEFAULT_STANDARD_PORTS),
            internal_ports: ports(DEFAULT_INTERNAL_PORTS),
            container_networks: DEFAULT_CONTAINER_NETWORKS
                .iter()
                .filter_map(|c| Cidr::parse(c))
                .collect(),
            warmup_secs: DEFAULT_WARMUP_SECS,
            warmup_min_connections: DEFAULT_WARMUP_MIN_CONNECTIONS,
            warmup_severity: WarmupSeverity::Report(Severity::Low),
            realert_secs: DEFAULT_REALERT_SECS,
            max_profile_ports: DEFAULT_MAX_PROFILE_PORTS,
            max_images: DEFAULT_MAX_IMAGES,
            include_host: false,
            allowed_images: Vec::new(),
            allowed_destinations: Vec::new(),
            disabled_rules: Vec::new(),
        }
    }
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

        if let Some(ports) = &raw.standard_ports {
            config.standard_ports = port_set(ports, "standard_ports", &mut problems);
        }
        if let Some(ports) = &raw.internal_ports {
            config.internal_ports = port_set(ports, "internal_ports", &mut problems);
        }
        if let Some(networks) = &raw.container_networks {
            config.container_networks = cidrs(networks, "container_networks", &mut problems);
        }
        config.allowed_destinations = cidrs(
            &raw.allowlist.destinations,
            "allowlist.destinations",
            &mut problems,
        );
        config.allowed_images = non_empty(&raw.allowlist.images, "allowlist.images", &mut problems)
            .map(ImagePattern::new)
            .collect();

        if let Some(secs) = raw.warmup_secs {
            config.warmup_secs = secs;
        }
        if let Some(n) = raw.warmup_min_connections {
            config.warmup_min_connections = n;
        }
        if let Some(severity) = &raw.warmup_severity {
            match WarmupSeverity::parse(severity) {
                Some(severity) => config.warmup_severity = severity,
                None => problems.push(
                    "warmup_severity",
                    format!(
                        "unknown value `{severity}`; expected one of: {}",
                        WarmupSeverity::NAMES.join(", ")
                    ),
                ),
            }
        }
        if let Some(secs) = raw.realert_secs {
            config.realert_secs = secs;
        }
        if let Some(n) = raw.max_profile_ports {
            if (1..=1024).contains(&n) {
                config.max_profile_ports = n;
            } else {
                problems.push("max_profile_ports", "must be between 1 and 1024");
            }
        }
        if let Some(n) = raw.max_images {
            if (1..=4096).contains(&n) {
                config.max_images = n;
            } else {
                problems.push("max_images", "must be between 1 and 4096");
            }
        }
        if let Some(include) = raw.include_host {
            config.include_host = include;
        }
        config.disabled_rules = parse_disabled(&raw.disabled_rules, &mut problems);

        problems.into_result()?;
        Ok(config)
    }

    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        !self.disabled_rules.contains(&rule)
    }

    pub(crate) fn image_allowed(&self, image: &str) -> bool {
        let image = normalize_image(image);
        !image.is_empty()
            && self
                .allowed_images
                .iter()
                .any(|pattern| pattern.matches(image))
    }

    pub(crate) fn destination_allowed(&self, addr: std::net::IpAddr) -> bool {
        self.allowed_destinations
            .iter()
            .any(|cidr| cidr.contains(addr))
    }

    pub(crate) fn in_container_network(&self, addr: std::net::IpAddr) -> bool {
        self.container_networks
            .iter()
            .any(|cidr| cidr.contains(addr))
    }
}

fn port_set(ports: &[RawPort], path: &str, problems: &mut Problems) -> PortSet {
    let mut set = PortSet::default();
    for (i, port) in ports.iter().enumerate() {
        let parsed = match port {
            RawPort::Number(n) => u16::try_from(*n)
                .ok()
                .filter(|p| *p > 0)
                .map(PortRange::port)
                .ok_or_else(|| format!("`{n}` is not a port (1-65535)")),
            RawPort::Text(text) => PortRange::parse(text),
        };
        match parsed {
            Ok(range) => set.0.push(range),
            Err(message) => problems.push(format!("{path}[{i}]"), message),
        }
    }
    set
}

fn cidrs(entries: &[String], path: &str, problems: &mut Problems) -> Vec<Cidr> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match Cidr::parse(entry) {
            Some(cidr) => out.push(cidr),
            None => problems.push(
                format!("{path}[{i}]"),
                format!("`{entry}` is not an address or a CIDR block (`10.0.0.0/8`, `fd00::/8`)"),
            ),
        }
    }
    out
}
