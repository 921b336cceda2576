//! What the operator grants one plugin (`[plugins.policy.<name>]`): the
//! event kinds it may receive, whether its findings may trigger the
//! response stage, and the digest its file must have. Nothing here comes
//! from the plugin: what it says about itself (`describe`) can only narrow
//! what it gets, never widen it.

use serde::{Deserialize, Serialize};

use vigil_core::model::EventKind;

/// One plugin's capabilities. Every field is optional; an absent policy
/// grants the defaults documented on each field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginPolicy {
    /// The event kinds the plugin may receive (`container`, `kubernetes`,
    /// `network`, `file`). A plugin subscribing to other kinds too is
    /// narrowed to these (logged as a warning); one subscribing to none of
    /// them is refused. Absent: every kind it subscribes to.
    pub kinds: Option<Vec<EventKind>>,
    /// Whether the plugin's findings may trigger the response stage
    /// (quarantine). Absent: yes for the built-in plugins, **no** for
    /// plugins loaded from files. A finding of a plugin without it is
    /// delivered as usual and never acted on (counted in
    /// `vigil_response_not_permitted_total`).
    pub response: Option<bool>,
    /// The SHA-256 of the plugin's file (64 hex digits, as `sha256sum` and
    /// `vigil plugin inspect` print it). A file with another digest is
    /// refused at load and at reload.
    pub sha256: Option<String>,
    /// Whether the plugin receives the findings of the other plugins when it
    /// exports `correlate` (WIT 0.1.2). Absent: yes, unless `kinds` is set
    /// (findings tell what the other plugins concluded from every kind of
    /// event, which a narrowed plugin was not meant to learn).
    pub findings: Option<bool>,
}

impl PluginPolicy {
    /// Whether the plugin may trigger a response, given where it came from.
    pub fn may_respond(&self, builtin: bool) -> bool {
        self.response.unwrap_or(builtin)
    }

    /// Whether the plugin may receive other plugins' findings.
    pub fn findings_granted(&self) -> bool {
        self.findings.unwrap_or(self.kinds.is_none())
    }

    /// The kinds the plugin gets: those it subscribes to that the policy
    /// allows, and those it subscribes to that the policy takes away.
    pub fn narrow(&self, subscribes: &[EventKind]) -> (Vec<EventKind>, Vec<EventKind>) {
        match &self.kinds {
            None => (subscribes.to_vec(), Vec::new()),
            Some(allowed) => subscribes.iter().partition(|k| allowed.contains(k)),
        }
    }

    /// Problems of the policy itself (not of a plugin), each as
    /// `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(kinds) = &self.kinds {
            if kinds.is_empty() {
                out.push((
                    "kinds",
                    "must name at least one event kind (remove the plugin to give it none)".into(),
                ));
            }
            let mut seen = Vec::new();
            for k in kinds {
                if seen.contains(k) {
                    out.push(("kinds", format!("{} is listed twice", kind_name(*k))));
                }
                seen.push(*k);
            }
        }
        if let Some(pin) = &self.sha256
            && !is_sha256_hex(pin)
        {
            out.push((
                "sha256",
                format!("{pin:?} is not a SHA-256 digest (64 hex digits)"),
            ));
        }
        out
    }

    /// Whether `digest` (lowercase hex) is the pinned one, when a pin is set.
    pub fn pin_matches(&self, digest: &str) -> bool {
        self.sha256
            .as_deref()
            .is_none_or(|pin| pin.eq_ignore_ascii_case(digest))
    }
}

/// The name of an event kind as written in the config.
pub fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Container => "container",
        EventKind::Kubernetes => "kubernetes",
        EventKind::Network => "network",
        EventKind::File => "file",
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_only_narrow() {
        let p = PluginPolicy {
            kinds: Some(vec![EventKind::Container, EventKind::File]),
            ..Default::default()
        };
        let (kept, dropped) = p.narrow(&[EventKind::Container, EventKind::Network]);
        assert_eq!(kept, [EventKind::Container]);
        assert_eq!(dropped, [EventKind::Network]);
        let (kept, dropped) = PluginPolicy::default().narrow(&[EventKind::Network]);
        assert_eq!((kept, dropped), (vec![EventKind::Network], vec![]));
    }

    #[test]
    fn findings_withheld_from_narrowed_plugins_unless_granted() {
        assert!(PluginPolicy::default().findings_granted());
        let narrowed = PluginPolicy {
            kinds: Some(vec![EventKind::File]),
            ..Default::default()
        };
        assert!(!narrowed.findings_granted());
        let granted = PluginPolicy {
            findings: Some(true),
            ..narrowed
        };
        assert!(granted.findings_granted());
    }

    #[test]
    fn response_defaults_by_origin() {
        assert!(PluginPolicy::default().may_respond(true));
        assert!(!PluginPolicy::default().may_respond(false));
        let yes = PluginPolicy {
            response: Some(true),
            ..Default::default()
        };
        assert!(yes.may_respond(false));
    }

    #[test]
    fn pins_and_problems() {
        let digest = "ab".repeat(32);
        let p = PluginPolicy {
            sha256: Some(digest.to_uppercase()),
            ..Default::default()
        };
        assert!(p.pin_matches(&digest));
        assert!(!p.pin_matches(&"cd".repeat(32)));
        assert!(p.problems().is_empty());
        let bad = PluginPolicy {
            kinds: Some(vec![EventKind::File, EventKind::File]),
            sha256: Some("xyz".into()),
            ..Default::default()
        };
        let fields: Vec<_> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["kinds", "sha256"]);
    }
}
