//! The `[response]` section: the mode (`off`, `dry-run`, `enforce`), the
//! rules that select which findings trigger a quarantine, and the settings
//! of the Docker and Kubernetes actions. Raw serde structs (every field
//! documented, unknown fields refused) checked by [`Validate`], then
//! compiled into the [`Policy`] the responder asks.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use vigil_core::glob::matches as glob;
use vigil_core::model::Severity;
use vigil_core::validate::{Problems, Validate, join};

/// What the responder does with a finding that matches a rule.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Nothing: findings are only reported (the default).
    #[default]
    Off,
    /// The actions that would be taken are logged and recorded; nothing is touched.
    DryRun,
    /// The target is quarantined.
    Enforce,
}

impl Mode {
    /// The mode as written in config and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::DryRun => "dry-run",
            Self::Enforce => "enforce",
        }
    }

    /// Parses `off`, `dry-run` or `enforce`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "dry-run" => Some(Self::DryRun),
            "enforce" => Some(Self::Enforce),
            _ => None,
        }
    }
}

/// The default minimum severity of a rule.
pub const DEFAULT_MIN_SEVERITY: Severity = Severity::High;
/// Log lines kept in an evidence bundle by default.
pub const DEFAULT_LOG_LINES: u32 = 1000;
/// Largest log excerpt kept in an evidence bundle by default (bytes).
pub const DEFAULT_LOG_MAX_BYTES: u64 = 4 << 20;

fn default_min_severity() -> Severity {
    DEFAULT_MIN_SEVERITY
}
fn yes() -> bool {
    true
}

/// `[response]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// `off` (default), `dry-run` or `enforce`. A ceiling: a rule's own mode
    /// never goes above it, so `dry-run` here is a kill switch for every rule.
    #[serde(default)]
    pub mode: Mode,
    /// Minimum severity of a rule that does not set its own.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Which findings trigger a response; the first rule whose pattern
    /// matches the finding's rule id decides (its severity floor and mode).
    /// A finding matching no rule triggers nothing.
    #[serde(default)]
    pub rules: Vec<ResponseRule>,
    /// Docker quarantine.
    #[serde(default)]
    pub docker: DockerResponseConfig,
    /// Kubernetes quarantine.
    #[serde(default)]
    pub kubernetes: KubernetesResponseConfig,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Off,
            min_severity: DEFAULT_MIN_SEVERITY,
            rules: Vec::new(),
            docker: DockerResponseConfig::default(),
            kubernetes: KubernetesResponseConfig::default(),
        }
    }
}

/// `[[response.rules]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseRule {
    /// A rule id (`container-escape/privileged`) or a glob over rule ids
    /// (`container-escape/*`, `*`): `*` any run of characters, `?` one.
    pub rule: String,
    /// Findings below this severity trigger nothing (default: `response.min_severity`).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// This rule's mode (default: `response.mode`); capped by `response.mode`.
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// `[response.docker]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerResponseConfig {
    /// Quarantine containers named by findings (`container` entities).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The Engine API socket (absolute path).
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Disconnect the container from every network it is attached to.
    #[serde(default = "yes")]
    pub disconnect: bool,
    /// Pause the container (its processes are frozen; memory is kept).
    #[serde(default = "yes")]
    pub pause: bool,
    /// Mark the container in `docker ps` by renaming it to
    /// `<name>.vigil-quarantine.<id>` (Docker cannot relabel a container).
    /// Never done for Kubernetes-managed containers: the kubelet parses their names.
    #[serde(default = "yes")]
    pub rename: bool,
    /// Last log lines kept in the evidence bundle.
    #[serde(default = "default_log_lines")]
    pub log_lines: u32,
    /// Cap of the log excerpt in the evidence bundle, in bytes.
    #[serde(default = "default_log_max_bytes")]
    pub log_max_bytes: u64,
    /// Containers never quarantined: globs over the container name (without
    /// the leading `/`) or id. Vigil's own container is always exempt.
    #[serde(default)]
    pub exempt: Vec<String>,
    /// When not empty, only containers matching one of these globs (name or
    /// id) are quarantined: a staged rollout of `enforce` to some workloads.
    #[serde(default)]
    pub include: Vec<String>,
}

fn default_socket() -> PathBuf {
    PathBuf::from(vigil_core::docker::DEFAULT_SOCKET)
}
fn default_log_lines() -> u32 {
    DEFAULT_LOG_LINES
}
fn default_log_max_bytes() -> u64 {
    DEFAULT_LOG_MAX_BYTES
}

impl Default for DockerResponseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: default_socket(),
            disconnect: true,
            pause: true,
            rename: true,
            log_lines: DEFAULT_LOG_LINES,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            exempt: Vec::new(),
            include: Vec::new(),
        }
    }
}

/// `[response.kubernetes]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesResponseConfig {
    /// Quarantine pods named by findings (`pod` entities, `namespace/name`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Namespaces whose pods are never quarantined (default: `kube-system`,
    /// whose privileged pods — kube-proxy, CNI agents — are the cluster itself).
    #[serde(default = "default_exempt_namespaces")]
    pub exempt_namespaces: Vec<String>,
}

fn default_exempt_namespaces() -> Vec<String> {
    vec!["kube-system".to_owned()]
}

impl Default for KubernetesResponseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            exempt_namespaces: default_exempt_namespaces(),
        }
    }
}

impl Validate for ResponseConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.mode != Mode::Off && self.rules.is_empty() {
            problems.push(
                join(path, "rules"),
                format!(
                    "mode is {} but no rule selects a finding; add one ([[response.rules]] rule = \"container-escape/*\", or --response-rule 'container-escape/*')",
                    self.mode.as_str()
                ),
            );
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate(&join(path, &format!("rules[{i}]")), problems);
        }
        self.docker.validate(&join(path, "docker"), problems);
        self.kubernetes
            .validate(&join(path, "kubernetes"), problems);
    }
}

impl Validate for ResponseRule {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.rule.trim().is_empty() {
            problems.push(join(path, "rule"), "must not be empty");
        } else if self.rule.chars().any(char::is_whitespace) {
            problems.push(
                join(path, "rule"),
                "must not contain white space (rule ids are `plugin/rule`)",
            );
        }
    }
}

impl Validate for DockerResponseConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if !self.socket.is_absolute() {
            problems.push(join(path, "socket"), "must be an absolute path");
        }
        if self.log_lines == 0 || self.log_lines > 100_000 {
            problems.push(join(path, "log_lines"), "must be between 1 and 100000");
        }
        if self.log_max_bytes < 1024 {
            problems.push(join(path, "log_max_bytes"), "must be at least 1024");
        }
        for (key, list) in [("exempt", &self.exempt), ("include", &self.include)] {
            for (i, e) in list.iter().enumerate() {
                if e.trim().is_empty() {
                    problems.push(join(path, &format!("{key}[{i}]")), "must not be empty");
                }
            }
        }
        if self.enabled && !self.disconnect && !self.pause {
            problems.push(
                join(path, "pause"),
                "disconnect and pause are both off: a quarantine would isolate nothing",
            );
        }
    }
}

impl Validate for KubernetesResponseConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        for (i, ns) in self.exempt_namespaces.iter().enumerate() {
            if !is_dns_label(ns) {
                problems.push(
                    join(path, &format!("exempt_namespaces[{i}]")),
                    format!("{ns:?} is not a namespace name (RFC 1123 label)"),
                );
            }
        }
    }
}

/// An RFC 1123 label: lower-case alphanumerics and `-`, 1 to 63 characters,
/// alphanumeric at both ends.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// What to do about one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `DryRun` or `Enforce` (never `Off`).
    pub mode: Mode,
    /// The rule pattern that matched.
    pub matched: String,
}

/// Why a finding triggers nothing (for the debug log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoResponse {
    /// `response.mode = off`, or the matching rule's mode is `off`.
    Off,
    /// No rule pattern matches the rule id.
    NoRule,
    /// The matching rule wants a higher severity.
    BelowSeverity { matched: String, min: Severity },
}

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: Mode,
    rules: Vec<(String, Severity, Mode)>,
}

impl Policy {
    /// Compiles a validated config.
    pub fn new(c: &ResponseConfig) -> Self {
        Self {
            mode: c.mode,
            rules: c
                .rules
                .iter()
                .map(|r| {
                    (
                        r.rule.clone(),
                        r.min_severity.unwrap_or(c.min_severity),
                        r.mode.unwrap_or(c.mode).min(c.mode),
                    )
                })
                .collect(),
        }
    }

    /// The global mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether a finding of this rule and severity triggers a response.
    pub fn decide(&self, rule_id: &str, severity: Severity) -> Result<Decision, NoResponse> {
        if self.mode == Mode::Off {
            return Err(NoResponse::Off);
        }
        let Some((pattern, min, mode)) = self
            .rules
            .iter()
            .find(|(pattern, _, _)| glob(pattern, rule_id))
        else {
            return Err(NoResponse::NoRule);
        };
        if severity < *min {
            return Err(NoResponse::BelowSeverity {
                matched: pattern.clone(),
                min: *min,
            });
        }
        if *mode == Mode::Off {
            return Err(NoResponse::Off);
        }
        Ok(Decision {
            mode: *mode,
            matched: pattern.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rule: &str, min: Option<Severity>, mode: Option<Mode>) -> ResponseRule {
        ResponseRule {
            rule: rule.into(),
            min_severity: min,
            mode,
        }
    }

    #[test]
    fn first_matching_rule_decides_and_the_global_mode_caps() {
        let c = ResponseConfig {
            mode: Mode::Enforce,
            rules: vec![
                rule("container-escape/host-network", None, Some(Mode::DryRun)),
                rule("container-escape/*", Some(Severity::Critical), None),
                rule("*", Some(Severity::Info), Some(Mode::Off)),
            ],
            ..ResponseConfig::default()
        };
        let p = Policy::new(&c);
        assert_eq!(
            p.decide("container-escape/host-network", Severity::High)
                .map(|d| d.mode),
            Ok(Mode::DryRun)
        );
        assert_eq!(
            p.decide("container-escape/privileged", Severity::Critical)
                .map(|d| d.mode),
            Ok(Mode::Enforce)
        );
        assert!(matches!(
            p.decide("container-escape/host-pid", Severity::High),
            Err(NoResponse::BelowSeverity { .. })
        ));
        assert_eq!(
            p.decide("other/x", Severity::Critical),
            Err(NoResponse::Off)
        );

        let capped = Policy::new(&ResponseConfig {
            mode: Mode::DryRun,
            rules: vec![rule("*", None, Some(Mode::Enforce))],
            ..ResponseConfig::default()
        });
        assert_eq!(
            capped.decide("a/b", Severity::Critical).map(|d| d.mode),
            Ok(Mode::DryRun)
        );
        let none = Policy::new(&ResponseConfig {
            mode: Mode::Enforce,
            rules: vec![rule("a/*", None, None)],
            ..ResponseConfig::default()
        });
        assert_eq!(
            none.decide("b/c", Severity::Critical),
            Err(NoResponse::NoRule)
        );
        assert_eq!(
            Policy::new(&ResponseConfig::default()).decide("a/b", Severity::Critical),
            Err(NoResponse::Off)
        );
    }

    #[test]
    fn config_parses_with_defaults_and_refuses_unknown_fields() {
        let c: ResponseConfig = serde_json::from_value(serde_json::json!({
            "mode": "dry-run",
            "rules": [{"rule": "container-escape/*", "min_severity": "critical"}],
            "docker": {"exempt": ["registry"]}
        }))
        .unwrap();
        assert_eq!(c.mode, Mode::DryRun);
        assert_eq!(c.min_severity, Severity::High);
        assert_eq!(c.rules[0].min_severity, Some(Severity::Critical));
        assert!(c.docker.pause && c.docker.disconnect && c.kubernetes.enabled);
        assert_eq!(c.kubernetes.exempt_namespaces, ["kube-system"]);
        let err = serde_json::from_value::<ResponseConfig>(
            serde_json::json!({"mode": "enforce", "rulez": []}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let err = serde_json::from_value::<ResponseConfig>(serde_json::json!({"mode": "on"}))
            .unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let c = ResponseConfig {
            mode: Mode::Enforce,
            rules: vec![rule("", None, None), rule("a b", None, None)],
            docker: DockerResponseConfig {
                socket: "docker.sock".into(),
                log_lines: 0,
                disconnect: false,
                pause: false,
                ..DockerResponseConfig::default()
            },
            kubernetes: KubernetesResponseConfig {
                enabled: true,
                exempt_namespaces: vec!["Kube_System".into()],
            },
            ..ResponseConfig::default()
        };
        let mut p = Problems::default();
        c.validate("response", &mut p);
        let paths: Vec<&str> = p.list().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "response.rules[0].rule",
                "response.rules[1].rule",
                "response.docker.socket",
                "response.docker.log_lines",
                "response.docker.pause",
                "response.kubernetes.exempt_namespaces[0]",
            ]
        );
        let mut p = Problems::default();
        ResponseConfig {
            mode: Mode::DryRun,
            ..ResponseConfig::default()
        }
        .validate("response", &mut p);
        assert_eq!(p.list()[0].path, "response.rules");
        let mut p = Problems::default();
        ResponseConfig::default().validate("response", &mut p);
        assert!(p.is_empty());
    }
}
