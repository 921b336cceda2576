//! `unexpected-exec`: a shell, a package manager or a network tool run in
//! a container that was started without a terminal (process events, WIT
//! 0.1.3, from the `ebpf` source).
//!
//! Why: a container created without `-t` runs a service, not a person; a
//! shell appearing in it is someone working inside (`docker exec`, `kubectl
//! exec`, a remote code execution in the service), a package manager is
//! someone installing tools, and `curl`/`wget`/`nc` are how tools and data
//! move in and out. A container created with a terminal is meant for
//! interactive use: not judged. Neither is a container whose terminal
//! setting is unknown (no engine's file for it), nor the container's own
//! entrypoint (its PID namespace's process 1: the image's design, not an
//! intrusion).

use vigil_plugin_sdk::prelude::*;

use crate::rules::Rule;

/// What an executed program is, for the summary and the techniques.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecClass {
    /// `sh`, `bash` …
    Shell,
    /// `apt`, `pip` …
    PackageManager,
    /// `curl`, `nc` …
    NetworkTool,
}

/// Shells.
pub const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "ksh"];
/// Package managers.
pub const PACKAGE_MANAGERS: &[&str] = &[
    "apt", "apt-get", "dpkg", "yum", "dnf", "rpm", "apk", "pip", "pip3",
];
/// Network tools.
pub const NETWORK_TOOLS: &[&str] = &["curl", "wget", "nc", "ncat", "netcat", "socat", "nmap"];

impl ExecClass {
    /// The class of a binary's file name, if it has one.
    #[must_use]
    pub fn of(name: &str) -> Option<Self> {
        if SHELLS.contains(&name) {
            Some(Self::Shell)
        } else if PACKAGE_MANAGERS.contains(&name) {
            Some(Self::PackageManager)
        } else if NETWORK_TOOLS.contains(&name) {
            Some(Self::NetworkTool)
        } else {
            None
        }
    }

    /// Every binary name of every class: the plugin's process filter.
    #[must_use]
    pub fn all_names() -> Vec<&'static str> {
        [SHELLS, PACKAGE_MANAGERS, NETWORK_TOOLS].concat()
    }

    /// The name in evidence.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Shell => "shell",
            Self::PackageManager => "package-manager",
            Self::NetworkTool => "network-tool",
        }
    }

    /// MITRE ATT&CK: Command and Scripting Interpreter: Unix Shell; Ingress
    /// Tool Transfer (installing or fetching tools).
    const fn techniques(self) -> &'static [&'static str] {
        match self {
            Self::Shell => &["T1059.004"],
            Self::PackageManager | Self::NetworkTool => &["T1105"],
        }
    }

    /// Why it matters, completing the summary.
    const fn why(self) -> &'static str {
        match self {
            Self::Shell => "someone is running commands inside a service container",
            Self::PackageManager => {
                "someone is installing software inside a running service container"
            }
            Self::NetworkTool => "someone is moving tools or data in or out of a service container",
        }
    }
}

/// Names of the runtime processes a `docker exec`/`kubectl exec` process
/// starts under (its parent at exec time): the process was put into the
/// container from outside.
fn entered_from_outside(parent: &str) -> bool {
    ["runc", "crun", "containerd-shim", "conmon", "runsc"]
        .iter()
        .any(|p| parent.starts_with(p))
}

/// The finding for `e`, when it is an unexpected exec.
pub(crate) fn inspect(e: &ProcessEvent, allowed_images: &[String]) -> Option<Finding> {
    let container = e.container.as_ref()?;
    if e.container_tty != Some(false) || e.namespace_pid == 1 {
        return None;
    }
    // By any name the program goes by, as the host's filter: busybox runs
    // `sh` as `/proc/self/exe` (argv[0] `sh`) or as `busybox sh`, and the
    // file's name alone would let those through unjudged.
    let (program, class) = e
        .program_names()
        .find_map(|n| ExecClass::of(n).map(|c| (n, c)))?;
    if allowed_images
        .iter()
        .any(|p| image_matches(p, &container.image))
    {
        return None;
    }
    let outside = entered_from_outside(&e.parent_name);
    let rule = Rule::UnexpectedExec;
    let shown = if container.name.is_empty() {
        container.id.get(..12).unwrap_or(&container.id).to_owned()
    } else {
        container.name.clone()
    };
    let command = e.args.join(" ");
    let called = if program == e.binary_name() {
        format!("`{}`", e.binary)
    } else {
        format!("`{program}` (file `{}`)", e.binary)
    };
    let summary = format!(
        "{} {} ({}) ran in container {shown} (image {}), which was started without a terminal{}: {}.",
        class_noun(class),
        called,
        if command.is_empty() {
            "no arguments"
        } else {
            command.as_str()
        },
        if container.image.is_empty() {
            "unknown"
        } else {
            container.image.as_str()
        },
        if outside {
            ", put there from outside (an exec through the runtime)"
        } else {
            ""
        },
        class.why()
    );
    let mut finding = Finding::builder(rule.id(), Severity::High)
        .title(rule.title())
        .summary(summary);
    for technique in class.techniques() {
        finding = finding.technique(*technique);
    }
    if outside {
        // Container Administration Command.
        finding = finding.technique("T1609");
    }
    finding = finding.entity(
        EntityKind::Container,
        container.id.clone(),
        container.name.clone(),
    );
    if !container.pod.is_empty() {
        finding = finding.entity(EntityKind::Pod, container.pod.clone(), "");
    }
    if !e.node.is_empty() {
        finding = finding.entity(EntityKind::Node, e.node.clone(), "");
    }
    finding = finding
        .evidence("binary", e.binary.clone())
        .evidence("program", program)
        .evidence("class", class.name())
        .evidence("args", command)
        .evidence("args-truncated", e.args_truncated.to_string())
        .evidence("pid", e.pid.to_string())
        .evidence("namespace-pid", e.namespace_pid.to_string())
        .evidence("parent-pid", e.parent_pid.to_string())
        .evidence("parent", e.parent_name.clone())
        .evidence("uid", e.uid.to_string())
        .evidence("image", container.image.clone())
        .evidence("container-tty", "false");
    Some(finding.event(e.id.clone()).build())
}

fn class_noun(class: ExecClass) -> &'static str {
    match class {
        ExecClass::Shell => "Shell",
        ExecClass::PackageManager => "Package manager",
        ExecClass::NetworkTool => "Network tool",
    }
}

/// `pattern` is an image reference, or a prefix of one ending in `*`.
pub(crate) fn image_matches(pattern: &str, image: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => image.starts_with(prefix),
        None => image == pattern,
    }
}
