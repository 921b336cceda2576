//! The plugin's settings: the raw JSON shape (whose field docs are the user
//! docs) and the validated [`Config`] the rules run on.

use serde::Deserialize;
use vigil_plugin_sdk::ConfigError;
use vigil_plugin_sdk::settings::{self, Problems};
use vigil_plugin_sdk::util::image::{ImagePattern, normalize_image};
use vigil_plugin_sdk::util::lists::{non_empty, non_empty_owned};
use vigil_plugin_sdk::util::rules::parse_disabled;

use crate::rules::Rule;

/// Capabilities that open a path out of the container when added, in the
/// engines' spelling (upper case, no `CAP_`). `ALL` always counts, whatever
/// the list says.
pub const DEFAULT_DANGEROUS_CAPABILITIES: &[&str] = &[
    "SYS_ADMIN",       // mount, cgroups release_agent, most kernel interfaces
    "SYS_PTRACE",      // inject into host processes when the PID namespace is shared
    "SYS_MODULE",      // load a kernel module
    "SYS_RAWIO",       // raw I/O ports and /dev/mem
    "SYS_BOOT",        // kexec a new kernel
    "DAC_READ_SEARCH", // open_by_handle_at: read any host file ("shocker")
    "NET_ADMIN",       // rewrite the host's firewall and routes when on the host network
    "BPF",             // load eBPF programs
    "PERFMON",         // perf/eBPF tracing of the whole host
    "MAC_ADMIN",       // change the AppArmor/SELinux policy that confines it
    "SYSLOG",          // read kernel addresses from the kernel log
];

/// Host paths whose mount into a container hands it the host (see
/// [`SensitivePath`] for how they match). Entries ending in `.sock` are
/// container-runtime sockets: exposing one is critical.
pub const DEFAULT_SENSITIVE_PATHS: &[&str] = &[
    "/",
    "/etc",
    "/root",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/var/lib/kubelet",
    "/etc/kubernetes",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
];

/// The settings as the operator writes them (JSON). Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    /// What is never reported.
    allowlist: RawAllowlist,
    /// Replaces the default list of dangerous added capabilities.
    dangerous_capabilities: Option<Vec<String>>,
    /// Replaces the default list of sensitive host paths.
    sensitive_paths: Option<Vec<String>>,
    /// Rules turned off, by id (`container-escape/host-network` or `host-network`).
    disabled_rules: Vec<String>,
    /// When `host-cgroupns` reports: `with-privilege` (default) or `always`.
    host_cgroupns: Option<String>,
    /// How long a `swarm-service` finding waits for the service's task
    /// containers on this node (its entities), in milliseconds.
    service_task_wait_ms: Option<u64>,
}

/// `allowlist.*`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAllowlist {
    /// Images never reported: see [`ImagePattern`].
    images: Vec<String>,
    /// Kubernetes namespaces never reported (pods, and Docker containers whose
    /// `io.kubernetes.pod.namespace` label names one).
    namespaces: Vec<String>,
    /// Docker container names never reported (exact, without a leading `/`).
    containers: Vec<String>,
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) allowed_images: Vec<ImagePattern>,
    pub(crate) allowed_namespaces: Vec<String>,
    pub(crate) allowed_containers: Vec<String>,
    pub(crate) dangerous_capabilities: Vec<String>,
    pub(crate) sensitive_paths: Vec<SensitivePath>,
    pub(crate) disabled_rules: Vec<Rule>,
    pub(crate) host_cgroupns: HostCgroupns,
    /// How long a `swarm-service` finding waits for task containers, ns.
    pub(crate) service_task_wait_ns: u64,
}

/// The default of `service_task_wait_ms`.
pub const DEFAULT_SERVICE_TASK_WAIT_MS: u64 = 1_000;
/// The most `service_task_wait_ms` may be: a finding must not wait long.
const MAX_SERVICE_TASK_WAIT_MS: u64 = 60_000;

/// When a container sharing the host's cgroup namespace is reported.
///
/// Docker daemons on cgroup v1 hosts put *every* container in the host's
/// cgroup namespace by default, so reporting them all would bury the one that
/// matters: a container that can also mount cgroupfs (privileged, or with
/// `SYS_ADMIN`/`ALL` added), which can then escape through cgroup v1's
/// `release_agent`. On cgroup v2 hosts the default is `private`, and `host` is
/// a deliberate choice worth reporting on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostCgroupns {
    /// Only with privilege to mount cgroupfs (`with-privilege`, the default).
    #[default]
    WithPrivilege,
    /// Every container in the host's cgroup namespace (`always`).
    Always,
}

impl HostCgroupns {
    /// The setting's spellings.
    pub const NAMES: [&str; 2] = ["with-privilege", "always"];

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "with-privilege" => Some(Self::WithPrivilege),
            "always" => Some(Self::Always),
            _ => None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allowed_images: Vec::new(),
            allowed_namespaces: Vec::new(),
            allowed_containers: Vec::new(),
            dangerous_capabilities: DEFAULT_DANGEROUS_CAPABILITIES
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            sensitive_paths: DEFAULT_SENSITIVE_PATHS
                .iter()
                .filter_map(|p| SensitivePath::parse(p))
                .collect(),
            disabled_rules: Vec::new(),
            host_cgroupns: HostCgroupns::default(),
            service_task_wait_ns: DEFAULT_SERVICE_TASK_WAIT_MS * 1_000_000,
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
        let mut config = Self {
            allowed_images: non_empty(&raw.allowlist.images, "allowlist.images", &mut problems)
                .map(ImagePattern::new)
                .collect(),
            allowed_namespaces: non_empty_owned(
                &raw.allowlist.namespaces,
                "allowlist.namespaces",
                &mut problems,
            ),
            allowed_containers: non_empty(
                &raw.allowlist.containers,
                "allowlist.containers",
                &mut problems,
            )
            .map(|name| name.trim_start_matches('/').to_owned())
            .collect(),
            ..Self::default()
        };

        if let Some(capabilities) = &raw.dangerous_capabilities {
            config.dangerous_capabilities.clear();
            for (i, capability) in capabilities.iter().enumerate() {
                let normalized = normalize_capability(capability);
                if normalized.is_empty()
                    || !normalized
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    problems.push(
                        format!("dangerous_capabilities[{i}]"),
                        format!("`{capability}` is not a capability name (e.g. `SYS_ADMIN` or `CAP_SYS_ADMIN`)"),
                    );
                } else {
                    config.dangerous_capabilities.push(normalized);
                }
            }
        }

        if let Some(paths) = &raw.sensitive_paths {
            config.sensitive_paths.clear();
            for (i, path) in paths.iter().enumerate() {
                match SensitivePath::parse(path) {
                    Some(parsed) => config.sensitive_paths.push(parsed),
                    None => problems.push(
                        format!("sensitive_paths[{i}]"),
                        format!("`{path}` is not an absolute path"),
                    ),
                }
            }
        }

        config.disabled_rules = parse_disabled(&raw.disabled_rules, &mut problems);

        if let Some(mode) = &raw.host_cgroupns {
            match HostCgroupns::parse(mode) {
                Some(mode) => config.host_cgroupns = mode,
                None => problems.push(
                    "host_cgroupns",
                    format!(
                        "unknown mode `{mode}`; expected one of: {}",
                        HostCgroupns::NAMES.join(", ")
                    ),
                ),
            }
        }

        if let Some(ms) = raw.service_task_wait_ms {
            if ms > MAX_SERVICE_TASK_WAIT_MS {
                problems.push(
                    "service_task_wait_ms",
                    format!("{ms} is more than {MAX_SERVICE_TASK_WAIT_MS} ms"),
                );
            } else {
                config.service_task_wait_ns = ms * 1_000_000;
            }
        }

        problems.into_result()?;
        Ok(config)
    }

    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        !self.disabled_rules.contains(&rule)
    }

    pub(crate) fn image_allowed(&self, image: &str) -> bool {
        let image = normalize_image(image);
        self.allowed_images
            .iter()
            .any(|pattern| pattern.matches(image))
    }

    pub(crate) fn namespace_allowed(&self, namespace: &str) -> bool {
        !namespace.is_empty()
            && self
                .allowed_namespaces
                .iter()
                .any(|allowed| allowed == namespace)
    }

    pub(crate) fn container_allowed(&self, name: &str) -> bool {
        let name = name.trim_start_matches('/');
        self.allowed_containers
            .iter()
            .any(|allowed| allowed == name)
    }

    pub(crate) fn capability_dangerous(&self, capability: &str) -> bool {
        let capability = normalize_capability(capability);
        capability == "ALL" || self.dangerous_capabilities.contains(&capability)
    }
}

/// `cap_sys_admin` → `SYS_ADMIN`.
pub(crate) fn normalize_capability(capability: &str) -> String {
    let upper = capability.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_owned()
}

/// One sensitive host path, normalised (absolute, no `.`/`..`, no trailing `/`).
///
/// A mount source matches it when the source *is* the path, lies *under* it
/// (`/etc/ssl` under `/etc`) or lies *above* it (mounting `/var` exposes
/// `/var/lib/kubelet`; mounting `/run` exposes `/run/docker.sock`). The root
/// entry `/` matches only a mount of `/` itself. Paths ending in `.sock` are
/// runtime sockets: a mount exposing one is critical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SensitivePath {
    pub(crate) path: String,
    pub(crate) socket: bool,
}

impl SensitivePath {
    fn parse(path: &str) -> Option<Self> {
        let path = normalize_path(path)?;
        Some(Self {
            socket: path.ends_with(".sock"),
            path,
        })
    }

    /// Whether a mount of `source` (normalised) exposes this path.
    pub(crate) fn exposed_by(&self, source: &str) -> bool {
        source == self.path
            || (self.path != "/" && is_under(source, &self.path))
            || is_under(&self.path, source)
    }
}

/// Lexically normalises an absolute path; `None` when it is not absolute.
pub(crate) fn normalize_path(path: &str) -> Option<String> {
    let path = path.trim();
    if !path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// True when `child` lies strictly below `parent` (both normalised).
fn is_under(child: &str, parent: &str) -> bool {
    if parent == "/" {
        return child != "/";
    }
    child
        .strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('/'))
}
