//! File path patterns, written like the host's file-integrity source's
//! `--fim-path` specs so that an operator writes the same thing in both
//! places:
//!
//! - `/etc/docker/daemon.json`: exactly that file;
//! - `/etc/cni/net.d/` (trailing slash): the directory itself and the files
//!   directly inside it (not recursive);
//! - `/usr/bin/containerd-shim*`: the files of `/usr/bin` whose name matches
//!   (`*` any run of characters, `?` one; last component only).
//!
//! Patterns are checked lexically: nothing here touches a file system.

use core::fmt;

/// One validated path pattern.
///
/// Invariant: absolute, no `..` component, never `/` itself, wildcards only
/// in the last component: a pattern can never select the whole host or
/// escape the directory it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// As written, trimmed (for evidence and messages).
    raw: String,
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

/// Why a path pattern was refused. Its text is the problem to show the
/// operator, naming the pattern as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Not an absolute path (`etc/x`).
    NotAbsolute(String),
    /// A `..` component (`/a/../b`).
    ParentComponent(String),
    /// `/` itself: every file of the host.
    Root,
    /// A wildcard before the last component (`/a*/b`).
    WildcardInDirectory(String),
    /// A wildcard in a pattern naming a directory (`/a/b*/`).
    WildcardDirectory(String),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute(raw) => write!(f, "`{raw}` is not an absolute path"),
            Self::ParentComponent(raw) => write!(f, "`{raw}` must not contain `..`"),
            Self::Root => f.write_str("`/` is too broad"),
            Self::WildcardInDirectory(raw) => {
                write!(
                    f,
                    "`{raw}`: wildcards are only allowed in the last component"
                )
            }
            Self::WildcardDirectory(raw) => {
                write!(f, "`{raw}`: a pattern cannot name a directory")
            }
        }
    }
}

impl std::error::Error for PatternError {}

impl PathPattern {
    /// Parses a pattern (surrounding white space ignored).
    ///
    /// # Errors
    /// A [`PatternError`] saying why the pattern is refused.
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        let raw = raw.trim();
        if !raw.starts_with('/') {
            return Err(PatternError::NotAbsolute(raw.to_owned()));
        }
        if raw.split('/').any(|c| c == "..") {
            return Err(PatternError::ParentComponent(raw.to_owned()));
        }
        let trimmed = raw.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(PatternError::Root);
        }
        let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        if parent.contains(['*', '?']) {
            return Err(PatternError::WildcardInDirectory(raw.to_owned()));
        }
        let kind = if name.contains(['*', '?']) {
            if raw.ends_with('/') {
                return Err(PatternError::WildcardDirectory(raw.to_owned()));
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

    /// The pattern as written (trimmed), for evidence.
    #[must_use]
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether `path` (absolute; a trailing `/` is ignored) is selected by
    /// this pattern.
    #[must_use]
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

    /// A literal prefix of every path this pattern selects, for a
    /// subscription's `path-prefixes`: the file, the directory, or the
    /// glob's directory and the name up to its first wildcard.
    #[must_use]
    pub fn prefix(&self) -> String {
        match &self.kind {
            Kind::File | Kind::Dir => self.dir_or_file.clone(),
            Kind::Glob(pattern) => {
                let literal = pattern.split(['*', '?']).next().unwrap_or("");
                let dir = self.dir_or_file.trim_end_matches('/');
                format!("{dir}/{literal}")
            }
        }
    }

    /// Whether this pattern names a directory (`…/`), whose direct children
    /// it selects.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    /// Whether `path` is this directory pattern's directory itself (not one
    /// of its children).
    #[must_use]
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

/// The last component of a path (`x.yaml` for `/etc/kubernetes/manifests/x.yaml`;
/// a trailing `/` is ignored).
#[must_use]
pub fn file_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// Shell-style match of the whole of `name` against `pattern`: `*` matches
/// any run of characters (`/` included), `?` exactly one; everything else
/// matches itself. Linear backtracking, so a hostile pattern cannot make it
/// explode.
#[must_use]
pub fn wildcard(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(name)
}

#[cfg(test)]
mod tests;
