//! Watched pods into Vigil events, through the pod-spec normaliser shared
//! with audit events.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;

use super::owners::resolve_owner;
use vigil_core::model::{EventBody, KubernetesEvent, OwnerRef};
use vigil_normalize::pod::{Object, pod_of};

/// Turns watcher events into verbs: the watcher says "applied", the
/// tracker knows whether the pod is new (by uid and resourceVersion, so
/// that a re-list does not repeat unchanged pods).
#[derive(Default)]
pub struct Tracker {
    seen: HashMap<String, String>,
}

impl Tracker {
    /// The verb for a watcher event and its pod, or `None` to skip it.
    pub fn verb<'e>(&mut self, event: &'e watcher::Event<Pod>) -> Option<(&'static str, &'e Pod)> {
        let (pod, deleted) = match event {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, false),
            watcher::Event::Delete(p) => (p, true),
            watcher::Event::Init | watcher::Event::InitDone => return None,
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let version = pod.metadata.resource_version.clone().unwrap_or_default();
        if deleted {
            self.seen.remove(&uid);
            return Some(("deleted", pod));
        }
        match self.seen.insert(uid, version.clone()) {
            None => Some(("added", pod)),
            Some(old) if old == version && !version.is_empty() => None,
            Some(_) => Some(("modified", pod)),
        }
    }
}

/// A pod as a Kubernetes event: its normalised spec and owner.
pub fn pod_event(
    verb: &str,
    pod: &Pod,
    lookup: &dyn Fn(&str, &str) -> Option<OwnerRef>,
) -> Result<EventBody, serde_json::Error> {
    // Watch events are rare: one JSON round trip reuses the audit path's
    // normaliser rather than a second one over k8s-openapi types.
    let json = serde_json::to_string(pod)?;
    let mut obj: Object<'_> = serde_json::from_str(&json)?;
    obj.kind = "Pod".into();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let (spec, owner) = match pod_of(&obj)? {
        Some((spec, owner)) => (Some(spec), owner),
        None => (None, None),
    };
    Ok(EventBody::Kubernetes(KubernetesEvent {
        verb: verb.to_owned(),
        resource: "pods".to_owned(),
        owner: resolve_owner(&namespace, owner, lookup),
        name: pod.metadata.name.clone().unwrap_or_default(),
        audit_id: pod.metadata.uid.clone().unwrap_or_default(),
        namespace,
        pod: spec,
        ..KubernetesEvent::default()
    }))
}
