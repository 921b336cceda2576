//! The watchers' internal events: each logs with structured fields and
//! bumps its counter together.

use vigil_core::metrics::{PluginMetrics, SourceMetrics};

/// No client could be built (no usable kubeconfig or service account).
pub struct WatchClientFailed<'a> {
    pub error: &'a kube::Error,
}

impl WatchClientFailed<'_> {
    pub fn emit(&self, _m: &SourceMetrics) {
        tracing::error!(
            source = super::SOURCE,
            error = %vigil_core::error::chain(self.error),
            "k8s-watch: no Kubernetes client; source stopped"
        );
    }
}

/// A watch or list failed; the watcher retries with backoff.
pub struct WatchFailed<'a> {
    pub resource: &'a str,
    pub error: &'a kube::runtime::watcher::Error,
}

impl WatchFailed<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.reconnects, 1);
        tracing::warn!(
            source = super::SOURCE,
            resource = self.resource,
            error = %vigil_core::error::chain(self.error),
            "k8s-watch: watch failed; retrying with backoff"
        );
    }
}

/// An object could not be normalised: skipped.
pub struct WatchObjectRejected<'a> {
    pub resource: &'a str,
    pub name: &'a str,
    pub reason: &'a str,
}

impl WatchObjectRejected<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.rejected, 1);
        tracing::warn!(
            source = super::SOURCE,
            resource = self.resource,
            name = self.name,
            reason = self.reason,
            "k8s-watch: object rejected"
        );
    }
}
