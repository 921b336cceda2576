//! The audit webhook's internal events: each logs with structured fields
//! and bumps its counter together.

use std::net::SocketAddr;

use vigil_core::metrics::{PluginMetrics, SourceMetrics};

/// A batch of audit events was accepted and handed to the pipeline.
pub struct AuditWebhookEventsReceived {
    pub peer: SocketAddr,
    pub events: usize,
    pub bytes: usize,
}

impl AuditWebhookEventsReceived {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.received, self.events as u64);
        tracing::debug!(
            source = super::METRICS_NAME,
            peer = %self.peer,
            events = self.events,
            bytes = self.bytes,
            "k8s-audit-webhook: batch received"
        );
    }
}

/// A request was refused (bad token, too large, malformed, wrong method).
/// Counted as rejected: whatever it carried did not become events.
pub struct AuditWebhookRequestRejected<'a> {
    pub peer: SocketAddr,
    pub status: u16,
    pub reason: &'a str,
}

impl AuditWebhookRequestRejected<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.rejected, 1);
        tracing::warn!(
            source = super::METRICS_NAME,
            peer = %self.peer,
            status = self.status,
            reason = self.reason,
            "k8s-audit-webhook: request rejected"
        );
    }
}

/// A client did not send its whole request in time (a slow or stalled
/// client, e.g. slow-loris): answered 408 when the headers had arrived,
/// and its connection closed either way, freeing its slot.
pub struct AuditWebhookRequestTimedOut {
    pub peer: SocketAddr,
    /// `headers` or `body`: what was still arriving.
    pub phase: &'static str,
    pub after: std::time::Duration,
}

impl AuditWebhookRequestTimedOut {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.timeouts, 1);
        tracing::warn!(
            source = super::METRICS_NAME,
            peer = %self.peer,
            phase = self.phase,
            after_ms = u64::try_from(self.after.as_millis()).unwrap_or(u64::MAX),
            "k8s-audit-webhook: request not received in time; connection closed"
        );
    }
}

/// The pipeline is gone (shutdown): the batch was not taken, and the API
/// server is told to retry (503).
pub struct AuditWebhookEventsDropped {
    pub events: usize,
}

impl AuditWebhookEventsDropped {
    pub fn emit(&self, _m: &SourceMetrics) {
        // `SourceContext::send` already counted them in `dropped`.
        tracing::warn!(
            source = super::METRICS_NAME,
            events = self.events,
            "k8s-audit-webhook: pipeline closed; batch refused with 503 so the API server retries"
        );
    }
}

/// Accepting or serving a connection failed.
pub struct AuditWebhookConnectionFailed<'a> {
    pub peer: Option<SocketAddr>,
    pub error: &'a dyn std::error::Error,
}

impl AuditWebhookConnectionFailed<'_> {
    pub fn emit(&self, _m: &SourceMetrics) {
        // Not a record: a client hanging up is not a lost event (it retries).
        tracing::debug!(
            source = super::METRICS_NAME,
            peer = ?self.peer,
            error = %self.error,
            "k8s-audit-webhook: connection failed"
        );
    }
}
