//! The responder's internal events: each logs with structured fields and
//! bumps its counter together (`vigil_response_*`), and every action is
//! also a row of the quarantine database.

use vigil_core::metrics::{PluginMetrics, ResponseCounters};

use super::policy::Mode;
use super::store::{Outcome, Quarantine, State};

/// One action taken, skipped, failed or planned.
pub struct ResponseAction<'a> {
    pub q: &'a Quarantine,
    pub action: &'a str,
    pub outcome: Outcome,
    pub detail: &'a str,
}

impl ResponseAction<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        let q = self.q;
        let (kind, target, name) = (q.kind.as_str(), q.target.as_str(), q.target_name.as_str());
        match self.outcome {
            Outcome::Ok => {
                PluginMetrics::add(&m.actions_ok, 1);
                tracing::warn!(quarantine = %q.id, kind, target, name, rule = %q.rule, action = self.action, detail = self.detail, "response: {} done", self.action);
            }
            Outcome::Skipped => {
                PluginMetrics::add(&m.actions_skipped, 1);
                tracing::info!(quarantine = %q.id, kind, target, name, rule = %q.rule, action = self.action, detail = self.detail, "response: {} skipped", self.action);
            }
            Outcome::Failed => {
                PluginMetrics::add(&m.actions_failed, 1);
                tracing::error!(quarantine = %q.id, kind, target, name, rule = %q.rule, action = self.action, detail = self.detail, "response: {} FAILED", self.action);
            }
            Outcome::Planned => {
                PluginMetrics::add(&m.actions_planned, 1);
                tracing::warn!(quarantine = %q.id, kind, target, name, rule = %q.rule, action = self.action, detail = self.detail, "response (dry-run): would {}", self.action);
            }
        }
    }
}

/// A quarantine (or a dry run) was started for a target.
pub struct QuarantineStarted<'a> {
    pub q: &'a Quarantine,
}

impl QuarantineStarted<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        let q = self.q;
        if q.mode == Mode::Enforce {
            PluginMetrics::add(&m.quarantines, 1);
            tracing::warn!(quarantine = %q.id, kind = q.kind.as_str(), target = %q.target, name = %q.target_name, rule = %q.rule, severity = q.severity.as_str(), finding = %q.finding_id, "response: QUARANTINING {} {}", q.kind.as_str(), display_name(q));
        } else {
            PluginMetrics::add(&m.dry_runs, 1);
            tracing::warn!(quarantine = %q.id, kind = q.kind.as_str(), target = %q.target, name = %q.target_name, rule = %q.rule, severity = q.severity.as_str(), finding = %q.finding_id, "response (dry-run): would quarantine {} {}; nothing is touched", q.kind.as_str(), display_name(q));
        }
    }
}

/// A quarantine's actions ended (for now).
pub struct QuarantineEnded<'a> {
    pub q: &'a Quarantine,
    pub state: State,
}

impl QuarantineEnded<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        let q = self.q;
        let (kind, state) = (q.kind.as_str(), self.state.as_str());
        match self.state {
            State::Quarantined => {
                PluginMetrics::add(&m.quarantined, 1);
                tracing::warn!(quarantine = %q.id, kind, target = %q.target, state, evidence = %q.evidence_dir, "response: {kind} {} quarantined", display_name(q));
            }
            State::Partial => {
                PluginMetrics::add(&m.partial, 1);
                tracing::error!(quarantine = %q.id, kind, target = %q.target, state, evidence = %q.evidence_dir, "response: {kind} {} only PARTIALLY quarantined (see `vigil quarantine list`); the next finding for it retries", display_name(q));
            }
            State::Failed => {
                PluginMetrics::add(&m.failed, 1);
                tracing::error!(quarantine = %q.id, kind, target = %q.target, state, "response: quarantine of {kind} {} FAILED", display_name(q));
            }
            _ => {
                tracing::info!(quarantine = %q.id, kind, target = %q.target, state, "response: {kind} {} recorded", display_name(q));
            }
        }
    }
}

/// A finding for a target that already has a record in this mode.
pub struct AlreadyHandled<'a> {
    pub q: &'a Quarantine,
    pub finding: &'a str,
    pub rule: &'a str,
}

impl AlreadyHandled<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        PluginMetrics::add(&m.already, 1);
        tracing::info!(quarantine = %self.q.id, kind = self.q.kind.as_str(), target = %self.q.target, state = self.q.state.as_str(), finding = self.finding, rule = self.rule, "response: target already handled; finding attached, nothing new done");
    }
}

/// A finding for a target that is never quarantined.
pub struct TargetExempt<'a> {
    pub kind: &'a str,
    pub target: &'a str,
    pub rule: &'a str,
    pub reason: &'a str,
    /// Vigil's own container or pod (logged louder: someone may be targeting the agent).
    pub own: bool,
}

impl TargetExempt<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        PluginMetrics::add(&m.exempt, 1);
        if self.own {
            tracing::warn!(
                kind = self.kind,
                target = self.target,
                rule = self.rule,
                reason = self.reason,
                "response: finding about Vigil's own {}; never quarantined",
                // The target kind names the API (`docker`, `kubernetes`).
                if self.kind == "kubernetes" {
                    "pod"
                } else {
                    "container"
                }
            );
        } else {
            tracing::info!(
                kind = self.kind,
                target = self.target,
                rule = self.rule,
                reason = self.reason,
                "response: target exempt; not quarantined"
            );
        }
    }
}

/// A target the host could not verify: never acted on. Not an error of
/// Vigil: the plugin named something it was not shown (a bug of the plugin,
/// or a plugin trying to turn the response against another container).
pub struct TargetUnverified<'a> {
    pub kind: &'a str,
    pub target: &'a str,
    pub rule: &'a str,
    pub reason: &'a str,
}

impl TargetUnverified<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        PluginMetrics::add(&m.unverified, 1);
        tracing::warn!(
            kind = self.kind,
            // As the plugin gave it: Debug-escaped, it is untrusted text.
            target = ?self.target,
            rule = self.rule,
            reason = self.reason,
            "response: target NOT verified; not acted on"
        );
    }
}

/// A finding for a target an operator released for this rule.
pub struct ReleasedBefore<'a> {
    pub q: &'a Quarantine,
    pub rule: &'a str,
}

impl ReleasedBefore<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        PluginMetrics::add(&m.released_before, 1);
        tracing::info!(quarantine = %self.q.id, kind = self.q.kind.as_str(), target = %self.q.target, rule = self.rule, "response: target was released by an operator for this rule; not quarantined again");
    }
}

/// The responder's queue was full: a finding got no response.
pub struct ResponseQueueFull<'a> {
    pub rule: &'a str,
}

impl ResponseQueueFull<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        PluginMetrics::add(&m.queue_full, 1);
        tracing::error!(
            rule = self.rule,
            "response: queue full; a finding was NOT considered for quarantine"
        );
    }
}

/// The quarantine database failed; the finding got no response.
pub struct ResponseStoreFailed<'a> {
    pub error: &'a dyn std::error::Error,
    pub rule: &'a str,
}

impl ResponseStoreFailed<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        PluginMetrics::add(&m.store_errors, 1);
        tracing::error!(rule = self.rule, error = %vigil_core::error::chain(self.error), "response: quarantine database error; the finding got NO response");
    }
}

fn display_name(q: &Quarantine) -> &str {
    if q.target_name.is_empty() {
        &q.target
    } else {
        &q.target_name
    }
}

/// A finding that matched a response rule, from a plugin the operator has
/// not allowed to trigger a response (`[plugins.policy.<name>] response`):
/// delivered as usual, never acted on.
pub struct ResponseNotPermitted<'a> {
    pub plugin: &'a str,
    pub rule: &'a str,
    pub finding: &'a str,
}

impl ResponseNotPermitted<'_> {
    pub fn emit(&self, m: &ResponseCounters) {
        PluginMetrics::add(&m.not_permitted, 1);
        tracing::debug!(
            plugin = self.plugin,
            rule = self.rule,
            finding = self.finding,
            "response: not acted on: plugin {} may not trigger a response (plugins.policy.{}.response)",
            self.plugin,
            self.plugin
        );
    }
}
