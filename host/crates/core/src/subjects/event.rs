//! Which containers, pods and services an event is about: the one mapping
//! from an event to its subjects, shared by the subject window (what a
//! plugin was shown) and the timeline (what happened to each entity), so a
//! new kind of event or subject is one match arm here.

use crate::model::{Event, EventBody, KeyValue};

/// One entity an event is about, borrowed from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A container: its full id and its name (without Docker's leading `/`;
    /// empty when the event did not carry it).
    Container { id: &'a str, name: &'a str },
    /// A pod: namespace, name and uid (empty unless the event carried the
    /// pod's own uid).
    Pod {
        namespace: &'a str,
        name: &'a str,
        uid: &'a str,
    },
    /// A Docker Swarm service: its id and name (empty when not carried).
    /// The service of a task container, from the labels the Engine puts on
    /// it (the service's own events, from a manager's Swarm source, are
    /// `ServiceEvent`s: [`crate::timeline::Timeline::record_services`]).
    Service { id: &'a str, name: &'a str },
}

/// Calls `f` with each subject of `e`, in a fixed order (container, then
/// its pod or its Swarm service). Subjects without an id are skipped. No
/// allocation.
pub fn for_each_subject<'a>(e: &'a Event, mut f: impl FnMut(Subject<'a>)) {
    match &e.body {
        EventBody::Container(c) => {
            container(&mut f, &c.id, &c.name);
            if let Some((namespace, name, uid)) = kubelet_labels(&c.labels) {
                pod(&mut f, namespace, name, uid);
            }
            if let Some((id, name)) = swarm_labels(&c.labels) {
                f(Subject::Service { id, name });
            }
        }
        EventBody::Network(n) => {
            if let Some(c) = &n.container {
                container(&mut f, &c.id, &c.name);
                if let Some((namespace, name)) = c.pod.split_once('/') {
                    pod(&mut f, namespace, name, "");
                }
            }
        }
        EventBody::Kubernetes(k) if k.resource == "pods" => {
            // Only the pod watcher puts the pod's uid in `audit-id`; an
            // audit event's is the request's.
            let uid = if e.source == "k8s-watch" && k.subresource.is_empty() {
                k.audit_id.as_str()
            } else {
                ""
            };
            pod(&mut f, &k.namespace, &k.name, uid);
        }
        EventBody::Kubernetes(_) | EventBody::File(_) => {}
    }
}

fn container<'a>(f: &mut impl FnMut(Subject<'a>), id: &'a str, name: &'a str) {
    if !id.is_empty() {
        f(Subject::Container {
            id,
            name: name.trim_start_matches('/'),
        });
    }
}

fn pod<'a>(f: &mut impl FnMut(Subject<'a>), namespace: &'a str, name: &'a str, uid: &'a str) {
    if !namespace.is_empty() && !name.is_empty() {
        f(Subject::Pod {
            namespace,
            name,
            uid,
        });
    }
}

/// The pod of a kubelet-managed container, from the labels the kubelet sets.
fn kubelet_labels(labels: &[KeyValue]) -> Option<(&str, &str, &str)> {
    let (mut ns, mut name, mut uid) = (None, None, "");
    for kv in labels {
        match kv.key.as_str() {
            "io.kubernetes.pod.namespace" => ns = Some(kv.value.as_str()),
            "io.kubernetes.pod.name" => name = Some(kv.value.as_str()),
            "io.kubernetes.pod.uid" => uid = kv.value.as_str(),
            _ => {}
        }
    }
    Some((ns?, name?, uid))
}

/// The service of a Swarm task container, from the labels the Engine sets
/// (like a pod's Deployment: the container is one task of it). The id is
/// required: service names are reused after `docker service rm`.
fn swarm_labels(labels: &[KeyValue]) -> Option<(&str, &str)> {
    let (mut id, mut name) = (None, "");
    for kv in labels {
        match kv.key.as_str() {
            "com.docker.swarm.service.id" => id = Some(kv.value.as_str()),
            "com.docker.swarm.service.name" => name = kv.value.as_str(),
            _ => {}
        }
    }
    id.filter(|id| !id.is_empty()).map(|id| (id, name))
}
