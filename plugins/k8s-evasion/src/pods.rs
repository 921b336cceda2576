//! Pods in protected namespaces, and what the plugin learns about who
//! created which workload and which controller owns which object.
//!
//! Attribution: a pod created by a controller (the ReplicaSet controller,
//! on behalf of a ReplicaSet, on behalf of a Deployment) is attributed to
//! the user who created the top of that chain, when the plugin saw it:
//! audit creations of workloads record their creator, or their owner when
//! a system identity created them for one; watched pods record their owner
//! (the watcher resolves ReplicaSets to their Deployment) and, for a
//! Deployment's pod `web-7d9f8-x2x4q`, its ReplicaSet `web-7d9f8`.

use vigil_plugin_sdk::view::{EventView, KubernetesEventView, OwnerRefView};
use vigil_plugin_sdk::{EntityKind, Finding};

use crate::rules::Rule;
use crate::{K8sEvasion, Stage, refused, stage};

/// How far up an owner chain attribution looks (Pod → Job → CronJob, Pod →
/// ReplicaSet → Deployment need two steps).
const MAX_CHAIN: usize = 6;

/// The resources [`kind_of`] knows: what the plugin subscribes to.
pub(crate) const WORKLOAD_RESOURCES: [&str; 8] = [
    "pods",
    "deployments",
    "replicasets",
    "daemonsets",
    "statefulsets",
    "jobs",
    "cronjobs",
    "replicationcontrollers",
];

/// The kind of the objects of a workload resource.
pub(crate) fn kind_of(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "pods" => "Pod",
        "deployments" => "Deployment",
        "replicasets" => "ReplicaSet",
        "daemonsets" => "DaemonSet",
        "statefulsets" => "StatefulSet",
        "jobs" => "Job",
        "cronjobs" => "CronJob",
        "replicationcontrollers" => "ReplicationController",
        _ => return None,
    })
}

/// Who is behind an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attribution {
    /// `Kind/name` from the object up through its known owners.
    pub(crate) chain: Vec<String>,
    /// The user who created the last object of the chain, when seen.
    pub(crate) creator: Option<String>,
}

/// Follows the known owners of `namespace/kind/name` up to a recorded creator.
pub(crate) fn resolve(plugin: &K8sEvasion, namespace: &str, kind: &str, name: &str) -> Attribution {
    let mut attribution = Attribution {
        chain: vec![[kind, "/", name].concat()],
        creator: None,
    };
    for _ in 0..MAX_CHAIN {
        let Some(current) = attribution.chain.last() else {
            break;
        };
        let key = [namespace, "/", current.as_str()].concat();
        if let Some(creator) = plugin.creators.get(&key) {
            attribution.creator = Some(creator.to_owned());
            break;
        }
        match plugin.owners.get(&key) {
            Some(owner) if !attribution.chain.iter().any(|c| c == owner) => {
                attribution.chain.push(owner.to_owned());
            }
            _ => break,
        }
    }
    attribution
}

/// A name the API server really gave (not empty, not a `generateName` prefix).
fn real_name(name: &str) -> bool {
    !name.is_empty() && !name.ends_with('-')
}

/// Records creators and owners from audit creations and watched pods.
pub(crate) fn learn(plugin: &mut K8sEvasion, request: &KubernetesEventView<'_>) {
    let Some(kind) = kind_of(request.resource) else {
        return;
    };
    if !request.subresource.is_empty()
        || !real_name(request.name)
        || !matches!(request.verb, "create" | "added" | "modified")
    {
        return;
    }
    // `concat`, not `format!`, here and in `resolve` and `findings`: these
    // run for every pod and workload write, where the formatting machinery
    // cost several times the copies.
    let key = [request.namespace, "/", kind, "/", request.name].concat();
    let owner = request
        .owner
        .as_ref()
        .map(|o: &OwnerRefView<'_>| [o.kind, "/", o.name].concat());
    if request.verb == "create" {
        if stage(request) != Stage::Final || refused(request) || request.user.is_empty() {
            return;
        }
        match owner {
            // A controller acting for its owner: the owner's creator is the actor.
            Some(owner) if plugin.config.is_system(request.user) => {
                plugin.owners.insert(&key, &owner);
            }
            _ => plugin.creators.insert(&key, request.user),
        }
    } else if kind == "Pod" && matches!(request.verb, "added" | "modified") {
        // A watched pod: its owner, already resolved through its ReplicaSet.
        let Some(owner_ref) = &request.owner else {
            return;
        };
        if let Some(owner) = owner {
            plugin.owners.insert(&key, &owner);
        }
        // `web-7d9f8-x2x4q` of Deployment `web` comes from ReplicaSet `web-7d9f8`.
        if owner_ref.kind == "Deployment"
            && let Some((replica_set, _)) = request.name.rsplit_once('-')
            && replica_set.len() > owner_ref.name.len()
            && replica_set.starts_with(&format!("{}-", owner_ref.name))
        {
            plugin.owners.insert(
                &format!("{}/ReplicaSet/{replica_set}", request.namespace),
                &format!("Deployment/{}", owner_ref.name),
            );
        }
    }
}

/// How the creator of a pod was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// The requester created the pod themselves.
    Direct,
    /// Through the owner chain, to a recorded creator.
    Attributed,
    /// A controller created it for an owner whose creator was not seen.
    Unknown,
}

/// `system-namespace-pod`: a pod created in a protected namespace by a
/// non-system user, directly or through a controller; once per workload.
pub(crate) fn findings(
    plugin: &mut K8sEvasion,
    event: &EventView<'_>,
    request: &KubernetesEventView<'_>,
    out: &mut Vec<Finding>,
) {
    let namespace = request.namespace;
    if !plugin.config.enabled(Rule::SystemNamespacePod)
        || request.resource != "pods"
        || !request.subresource.is_empty()
        || !plugin.config.protected(namespace)
    {
        return;
    }
    let audit = request.verb == "create" && stage(request) == Stage::Final && !refused(request);
    // A watched pod has no requester: it is only reported when attribution
    // names a creator (the watcher also lists every existing pod at start).
    let watched = request.verb == "added" && request.stage.is_empty() && request.user.is_empty();
    if !(audit || watched) || plugin.config.allowed(request.user, namespace) {
        return;
    }
    let images: Vec<&str> = request
        .pod
        .iter()
        .flat_map(|pod| &pod.containers)
        .map(|c| c.image)
        .filter(|i| !i.is_empty())
        .collect();
    if !images.is_empty() && images.iter().all(|i| plugin.config.image_trusted(i)) {
        return;
    }

    let attribution = match &request.owner {
        Some(owner) => resolve(plugin, namespace, owner.kind, owner.name),
        None => Attribution::default(),
    };
    let (how, creator) = if audit && !plugin.config.is_system(request.user) {
        (How::Direct, Some(request.user.to_owned()))
    } else if request.owner.is_some() {
        match &attribution.creator {
            Some(creator) if plugin.config.is_system(creator) => return,
            Some(creator) if plugin.config.allowed(creator, namespace) => return,
            Some(creator) => (How::Attributed, Some(creator.clone())),
            None if audit => (How::Unknown, None),
            None => return,
        }
    } else {
        // A system identity's own pod (a static pod's mirror, …), or a
        // watched pod without an owner.
        return;
    };

    // Once per workload: the top of the owner chain, or the pod itself.
    let workload = attribution
        .chain
        .last()
        .cloned()
        .unwrap_or_else(|| ["Pod/", request.name].concat());
    let key = [namespace, "/", workload.as_str()].concat();
    if plugin.reported.contains(&key) {
        return;
    }
    plugin.reported.insert(&key, event.id);

    let (pod_id, pod_name) = if request.name.is_empty() {
        match &request.owner {
            Some(owner) => (
                format!("{namespace}/{}", owner.name),
                format!("unnamed pod of {} {}", owner.kind, owner.name),
            ),
            None => (format!("{namespace}/(unnamed)"), String::new()),
        }
    } else {
        (format!("{namespace}/{}", request.name), String::new())
    };
    let pod_label = if request.name.is_empty() {
        format!("A pod of {workload} in {namespace}")
    } else {
        format!("Pod {namespace}/{}", request.name)
    };
    let why = "workloads among the cluster's own components are easily mistaken for them, and system \
               namespaces hold the cluster's most privileged service accounts and secrets";
    let chain = attribution.chain.join(" → ");
    let summary = match how {
        How::Direct => format!(
            "{pod_label} was created by {} in protected namespace {namespace}: {why}.",
            request.user
        ),
        How::Attributed => format!(
            "{pod_label} was created in protected namespace {namespace} {} on behalf of {}, who created \
             {workload} ({chain}): {why}.",
            if request.user.is_empty() {
                "(seen by the pod watch)".to_owned()
            } else {
                format!("by {}", request.user)
            },
            creator.as_deref().unwrap_or_default()
        ),
        How::Unknown => format!(
            "{pod_label} was created in protected namespace {namespace} by {} for {chain}, whose creator \
             is unknown (its creation was not seen): {why}.",
            request.user
        ),
    };
    let severity = match how {
        How::Unknown => vigil_plugin_sdk::Severity::Medium,
        How::Direct | How::Attributed => Rule::SystemNamespacePod.severity(),
    };
    let rule = Rule::SystemNamespacePod;
    let mut finding = Finding::builder(rule.id(), severity)
        .title(rule.title())
        .summary(summary)
        .entity(EntityKind::Pod, pod_id, pod_name);
    for technique in rule.techniques() {
        finding = finding.technique(*technique);
    }
    if let Some(creator) = &creator {
        finding = finding.entity(EntityKind::User, creator.clone(), "");
    }
    for image in &images {
        finding = finding.entity(EntityKind::Image, *image, "");
    }
    if let Some(node) = request.pod.map(|p| p.node_name).filter(|n| !n.is_empty()) {
        finding = finding.entity(EntityKind::Node, node, "");
    }
    finding = finding
        .evidence("verb", request.verb)
        .evidence("namespace", namespace)
        .evidence("pod", request.name);
    if !request.user.is_empty() {
        finding = finding.evidence("user", request.user);
    }
    finding = finding
        .evidence("creator", creator.unwrap_or_else(|| "unknown".to_owned()))
        .evidence(
            "creator.source",
            match how {
                How::Direct => "request",
                How::Attributed => "owner chain",
                How::Unknown => "unknown",
            },
        );
    if let Some(owner) = &request.owner {
        finding = finding
            .evidence("owner", format!("{}/{}", owner.kind, owner.name))
            .evidence("owners", chain);
    }
    for image in images {
        finding = finding.evidence("image", image);
    }
    finding = finding.evidence("source", event.source);
    out.push(finding.event(event.id).build());
}
