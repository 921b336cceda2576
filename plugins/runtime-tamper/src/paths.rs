//! Path patterns, written like the file-integrity source's `--fim-path`
//! specs so that an operator writes the same thing in both places:
//!
//! - `/etc/docker/daemon.json`: exactly that file;
//! - `/etc/cni/net.d/` (trailing slash): the directory itself and the files
//!   directly inside it (not recursive);
//! - `/usr/bin/containerd-shim*`: the files of `/usr/bin` whose name matches
//!   (`*` any run of characters, `?` one; last component only).

/// One validated path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// As written (for evidence).
    pub raw: String,
    /// The file, the directory, or the directory a glob looks in.
    dir_or_file: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Glob(String),
}

impl PathPattern {
    /// Parses a pattern; the reason on error.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !raw.starts_with('/') {
            return Err(format!("`{raw}` is not an absolute path"));
        }
        if raw.split('/').any(|c| c == "..") {
            return Err(format!("`{raw}` must not contain `..`"));
        }
        let trimmed = raw.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("`/` is too broad".to_owned());
        }
        let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        if parent.contains(['*', '?']) {
            return Err(format!(
                "`{raw}`: wildcards are only allowed in the last component"
            ));
        }
        let kind = if name.contains(['*', '?']) {
            if raw.ends_with('/') {
                return Err(format!("`{raw}`: a pattern cannot name a directory"));
            }
            Kind::Glob(name.to_owned())
        } else if raw.ends_with('/') {
            Kind::Dir
        } else {
            Kind::File
        };
        let dir_or_file = match kind {
            Kind::Glob(_) if parent.is_empty() => "/".to_owned(),
            Kind::Glob(_) => parent.to_owned(),
            _ => trimmed.to_owned(),
        };
        Ok(Self {
            raw: raw.to_owned(),
            dir_or_file,
            kind,
        })
    }

    /// Whether `path` (absolute) is selected by this pattern.
    pub fn matches(&self, path: &str) -> bool {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        match &self.kind {
            Kind::File => path == self.dir_or_file,
            Kind::Dir => path == self.dir_or_file || parent(path) == Some(&self.dir_or_file),
            Kind::Glob(pattern) => {
                parent(path) == Some(&self.dir_or_file)
                    && wildcard(pattern, path.rsplit('/').next().unwrap_or(""))
            }
        }
    }

    /// Whether this pattern names a directory (`…/`), whose direct children
    /// it selects.
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    /// Whether `path` is this directory pattern's directory itself (not one
    /// of its children).
    pub fn is_the_dir(&self, path: &str) -> bool {
        self.kind == Kind::Dir && path.trim_end_matches('/') == self.dir_or_file
    }
}

/// The parent directory of an absolute path (`/` for `/x`).
fn parent(path: &str) -> Option<&str> {
    match path.rsplit_once('/') {
        Some(("", _)) => Some("/"),
        Some((parent, _)) => Some(parent),
        None => None,
    }
}

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// Shell-style match of `name` against `pattern` (`*` any run, `?` one char).
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(raw: &str) -> PathPattern {
        PathPattern::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn file_dir_and_glob() {
        let file = pattern("/etc/docker/daemon.json");
        assert!(file.matches("/etc/docker/daemon.json"));
        assert!(!file.matches("/etc/docker/daemon.json.bak"));
        assert!(!file.is_dir());

        let dir = pattern("/etc/cni/net.d/");
        assert!(dir.matches("/etc/cni/net.d"));
        assert!(dir.matches("/etc/cni/net.d/10-calico.conflist"));
        assert!(!dir.matches("/etc/cni/net.d/sub/x.conf"));
        assert!(!dir.matches("/etc/cni/net.dx"));
        assert!(dir.is_the_dir("/etc/cni/net.d"));
        assert!(!dir.is_the_dir("/etc/cni/net.d/x"));

        let glob = pattern("/usr/bin/containerd-shim*");
        assert!(glob.matches("/usr/bin/containerd-shim-runc-v2"));
        assert!(glob.matches("/usr/bin/containerd-shim"));
        assert!(!glob.matches("/usr/bin/containerd"));
        assert!(!glob.matches("/usr/local/bin/containerd-shim"));

        let root_glob = pattern("/run?");
        assert!(root_glob.matches("/runc"));
    }

    #[test]
    fn bad_patterns() {
        for bad in ["etc/x", "/a/../b", "/", "/a*/b", "/a/b*/"] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*", ""));
        assert!(wildcard("a*c", "abbbc"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*.y*ml", "kube-apiserver.yaml"));
        assert_eq!(file_name("/etc/kubernetes/manifests/x.yaml"), "x.yaml");
    }
}
