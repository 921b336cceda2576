//! What is watched: one [`PathSpec`] per configured path, and the built-in
//! list of container-runtime paths.
//!
//! A spec is written as a path string: `/etc/docker/daemon.json` is one
//! file, `/etc/cni/net.d/` (trailing slash) is a directory and the files
//! directly inside it (not recursive: the directories we watch are flat,
//! and a recursive watch of an attacker-writable tree could exhaust the
//! inotify watch budget), and `/usr/bin/containerd-shim*` is every file of
//! `/usr/bin` whose name matches the pattern (`*` and `?`, last component
//! only).

use std::path::{Path, PathBuf};

/// Directories searched for the runtime binaries.
const BIN_DIRS: [&str; 3] = ["/usr/bin", "/usr/local/bin", "/usr/sbin"];

/// Runtime binaries looked for in each of [`BIN_DIRS`]. The shims run every
/// container's process tree, so any of them being swapped is a full host
/// compromise; `containerd-shim*` covers the v1, v2 and runc-v2 shims.
const BINARIES: [&str; 6] = [
    "dockerd",
    "containerd",
    "containerd-shim*",
    "runc",
    "docker-proxy",
    "ctr",
];

/// Configuration files, unit files and directories whose change alters how
/// containers are run. Static pod manifests are included because the
/// kubelet runs them without the API server (and its admission control)
/// ever seeing them; the audit policy and webhook because weakening them
/// blinds the cluster's audit trail.
const CONFIG_PATHS: [&str; 19] = [
    "/etc/docker/daemon.json",
    "/etc/containerd/config.toml",
    "/etc/default/docker",
    "/lib/systemd/system/docker.service",
    "/lib/systemd/system/docker.socket",
    "/lib/systemd/system/containerd.service",
    // Units in /etc override the packaged ones in /lib.
    "/etc/systemd/system/docker.service",
    "/etc/systemd/system/docker.socket",
    "/etc/systemd/system/containerd.service",
    "/etc/systemd/system/docker.service.d/",
    "/etc/systemd/system/docker.socket.d/",
    "/etc/systemd/system/containerd.service.d/",
    "/etc/cni/net.d/",
    "/var/lib/kubelet/config.yaml",
    "/etc/kubernetes/manifests/",
    "/etc/kubernetes/audit-policy.yaml",
    "/etc/kubernetes/audit-webhook.yaml",
    "/etc/kubernetes/audit-webhook-config.yaml",
    "/etc/kubernetes/audit/",
];

/// The built-in watch list, each path prefixed with `root` (`/` on a real
/// host; a temporary directory in tests).
pub fn defaults(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in BIN_DIRS {
        for bin in BINARIES {
            out.push(format!("{dir}/{bin}"));
        }
    }
    out.extend(CONFIG_PATHS.iter().map(|p| (*p).to_owned()));
    out.into_iter().map(|p| prefixed(root, &p)).collect()
}

/// `path` (absolute) under `root`, keeping a trailing slash.
pub fn prefixed(root: &Path, path: &str) -> String {
    let root = root.to_string_lossy();
    let root = root.trim_end_matches('/');
    format!("{root}{path}")
}

/// How a spec selects paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecKind {
    /// Exactly `path`.
    File,
    /// `path` itself and its direct children.
    Dir,
    /// The direct children of `path` whose name matches the pattern.
    Glob(String),
}

/// One watched path, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSpec {
    /// As configured; the baseline remembers specs by this string.
    pub raw: String,
    /// The file, the directory, or the directory a glob looks in.
    pub path: PathBuf,
    /// What it selects.
    pub kind: SpecKind,
}

impl PathSpec {
    /// Parses a spec; the reason on error. Relative paths and `..` are
    /// refused: a spec must name one place regardless of the working dir.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !raw.starts_with('/') {
            return Err("must be an absolute path".into());
        }
        if raw.split('/').any(|c| c == "..") {
            return Err("must not contain `..`".into());
        }
        let trimmed = raw.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("must not be `/` (too broad)".into());
        }
        let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        if parent.contains(['*', '?']) {
            return Err("wildcards are only allowed in the last component".into());
        }
        let kind = if name.contains(['*', '?']) {
            if raw.ends_with('/') {
                return Err("a pattern cannot name a directory".into());
            }
            SpecKind::Glob(name.to_owned())
        } else if raw.ends_with('/') {
            SpecKind::Dir
        } else {
            SpecKind::File
        };
        let path = match kind {
            SpecKind::Glob(_) => PathBuf::from(if parent.is_empty() { "/" } else { parent }),
            _ => PathBuf::from(trimmed),
        };
        Ok(Self {
            raw: raw.to_owned(),
            path,
            kind,
        })
    }

    /// Whether `p` is one of the paths this spec selects.
    pub fn selects(&self, p: &Path) -> bool {
        match &self.kind {
            SpecKind::File => p == self.path,
            SpecKind::Dir => p == self.path || p.parent() == Some(self.path.as_path()),
            SpecKind::Glob(pattern) => {
                p.parent() == Some(self.path.as_path())
                    && p.file_name()
                        .is_some_and(|n| vigil_core::glob::matches(pattern, &n.to_string_lossy()))
            }
        }
    }

    /// Whether a change at `p` may change what this spec selects: `p` is
    /// selected, or `p` is a directory on the way to the spec (created,
    /// removed or renamed along with everything below it).
    pub fn affected_by(&self, p: &Path) -> bool {
        self.selects(p) || self.path.starts_with(p)
    }

    /// The directories whose inotify events matter: a file's parent (a
    /// watch on the file itself would follow the old inode after a
    /// replace-by-rename), a directory and its parent (so its own removal or
    /// rename is seen), a glob's directory.
    pub fn anchors(&self) -> Vec<PathBuf> {
        let parent = self.path.parent().map(Path::to_path_buf);
        match self.kind {
            SpecKind::File => parent.into_iter().collect(),
            SpecKind::Dir => std::iter::once(self.path.clone()).chain(parent).collect(),
            SpecKind::Glob(_) => vec![self.path.clone()],
        }
    }

    /// The paths that currently exist and are selected (a missing file is
    /// simply absent). Errors listing a directory count as "no children":
    /// the directory itself is still stat'ed, and unreadable files are
    /// reported by the scan.
    pub fn existing(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if !matches!(self.kind, SpecKind::Glob(_)) && self.path.symlink_metadata().is_ok() {
            out.push(self.path.clone());
        }
        if !matches!(self.kind, SpecKind::File)
            && let Ok(dir) = std::fs::read_dir(&self.path)
        {
            for entry in dir.flatten() {
                let p = entry.path();
                if self.selects(&p) {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }
}
