//! `ENTITY` of `vigil timeline ENTITY` and of `/timeline?entity=`: which
//! entity's timeline to show, parsed strictly so that a typo is an error
//! that says what is expected, not an empty answer.

use std::fmt;
use std::str::FromStr;

/// The syntax, for error messages and help.
pub const SYNTAX: &str = "container:NAME_OR_ID, pod:NAMESPACE/NAME or service:NAME_OR_ID";

/// An entity to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityQuery {
    /// A container by full id, id prefix (12 hex digits or more) or name.
    Container(String),
    /// A pod by namespace and name.
    Pod { namespace: String, name: String },
    /// A Swarm service by id or name.
    Service(String),
}

/// Why an entity could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// No `KIND:` prefix.
    #[error("{0:?} has no kind: expected {SYNTAX}")]
    NoKind(String),
    /// A kind other than container, pod, service.
    #[error("unknown entity kind {0:?}: expected {SYNTAX}")]
    UnknownKind(String),
    /// The name or id does not have the form of one.
    #[error("{kind} {value:?}: {why}")]
    Invalid {
        kind: &'static str,
        value: String,
        why: &'static str,
    },
}

/// A Docker container or service name or id: `[A-Za-z0-9][A-Za-z0-9_.-]*`,
/// at most 128 bytes (a name's limit is Docker's; an id is 64 hex digits).
fn docker_name(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    if s.len() > 128 {
        return Err("longer than 128 bytes");
    }
    let mut chars = s.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err("only letters, digits, '_', '.' and '-' are allowed");
    }
    Ok(())
}

/// A Kubernetes namespace (DNS label) or pod name (DNS subdomain).
fn dns(s: &str, max: usize, dots: bool) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty namespace or name");
    }
    if s.len() > max {
        return Err(if dots {
            "pod name longer than 253 bytes"
        } else {
            "namespace longer than 63 bytes"
        });
    }
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !s.starts_with(ok) || !s.ends_with(ok) {
        return Err("namespace and name must start and end with a lowercase letter or digit");
    }
    if !s.chars().all(|c| ok(c) || c == '-' || (dots && c == '.')) {
        return Err("namespace and name are lowercase letters, digits and '-' ('.' in a name)");
    }
    Ok(())
}

impl FromStr for EntityQuery {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((kind, value)) = s.split_once(':') else {
            return Err(QueryError::NoKind(s.to_owned()));
        };
        let invalid = |kind: &'static str, why| QueryError::Invalid {
            kind,
            value: value.to_owned(),
            why,
        };
        match kind {
            "container" => docker_name(value)
                .map(|()| Self::Container(value.to_owned()))
                .map_err(|why| invalid("container", why)),
            "service" => docker_name(value)
                .map(|()| Self::Service(value.to_owned()))
                .map_err(|why| invalid("service", why)),
            "pod" => {
                let Some((ns, name)) = value.split_once('/') else {
                    return Err(invalid("pod", "expected NAMESPACE/NAME"));
                };
                dns(ns, 63, false)
                    .and_then(|()| dns(name, 253, true))
                    .map_err(|why| invalid("pod", why))?;
                Ok(Self::Pod {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                })
            }
            other => Err(QueryError::UnknownKind(other.to_owned())),
        }
    }
}

impl fmt::Display for EntityQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Container(c) => write!(f, "container:{c}"),
            Self::Pod { namespace, name } => write!(f, "pod:{namespace}/{name}"),
            Self::Service(s) => write!(f, "service:{s}"),
        }
    }
}
