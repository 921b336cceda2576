//! Subscriptions evaluated by the host: a plugin's [`SubscriptionSet`]
//! (its optional `subscriptions` export, WIT 0.1.2) validated once at load
//! into a [`Subscription`], then matched natively against every event
//! before anything is encoded for the plugin.
//!
//! Why here and not in the plugin: a plugin that drops an event it did not
//! want has already paid for its encoding, its copy into the guest and its
//! decoding, about 3 µs per event and plugin. Matching a few strings costs
//! nanoseconds, and a batch of which a plugin wants nothing is not handed
//! to it at all.
//!
//! A subscription only narrows: it is checked against the kinds the plugin
//! subscribes to (a filter for another kind is refused) and applied within
//! the kinds its policy grants.

use crate::model::{
    Event, EventBody, EventKind, FileFilter, KubernetesFilter, NetworkFilter, PodSpecUse,
    ProcessEvent, ProcessFilter, ServiceEvent, ServiceFilter, SubscriptionSet,
};
use crate::text::escape_control;

/// What one plugin gets of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing: not of its kinds, or filtered out.
    Skip,
    /// The event as it is.
    Whole,
    /// The event with its pod spec left out (`pod-spec: unused`).
    WithoutPod,
}

/// A subscription the host refused, with every problem found. Each problem
/// names the field (`kubernetes.verbs[2]`) and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subscriptions: {}", problems.join("; "))]
pub struct SubscriptionError {
    /// The problems, at least one.
    pub problems: Vec<String>,
}

/// At most this many entries in one list of a filter.
pub const MAX_ENTRIES: usize = 256;
/// At most this many bytes in one name (a DNS subdomain).
const MAX_NAME_BYTES: usize = 253;
/// At most this many bytes in one path prefix.
const MAX_PATH_BYTES: usize = 4096;

/// Audit verbs of resource requests, and the verbs of watch events.
pub const KNOWN_VERBS: [&str; 12] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "added",
    "modified",
    "deleted",
];

/// Audit stages, and `""` for watch events (which have none).
pub const KNOWN_STAGES: [&str; 5] = [
    "",
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];

/// The actions of Swarm events: the Engine's (`create`, `update`,
/// `remove`) and `running`, the source's inventory at start.
pub const KNOWN_SERVICE_ACTIONS: [&str; 4] = ["create", "update", "remove", "running"];

/// Built-in resources whose singular is a likely mistake (`pod` for
/// `pods`): refused with the plural named. Other well-formed names are
/// accepted, since custom resources have any plural.
const BUILTIN_PLURALS: [&str; 20] = [
    "pods",
    "deployments",
    "replicasets",
    "daemonsets",
    "statefulsets",
    "jobs",
    "cronjobs",
    "services",
    "secrets",
    "configmaps",
    "namespaces",
    "nodes",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
    "persistentvolumes",
    "persistentvolumeclaims",
    "replicationcontrollers",
];

/// A validated subscription, ready to match events. Kubernetes names are
/// kept lower case (stages in their canonical case) so that matching is a
/// case-insensitive comparison with no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    kinds: Vec<EventKind>,
    set: SubscriptionSet,
    declared: bool,
    /// Docker Swarm events (WIT 0.1.3, `services`): `Some` only for a plugin
    /// that exports them and is granted `container` events.
    services: Option<ServiceFilter>,
    /// Process events (WIT 0.1.3, `processes`): `Some` only for a plugin
    /// that exports them and is granted `container` events.
    processes: Option<ProcessFilter>,
}

impl Subscription {
    /// Every event of `kinds`: a plugin without the `subscriptions` export.
    pub fn everything(kinds: &[EventKind]) -> Self {
        Self {
            kinds: kinds.to_vec(),
            set: SubscriptionSet::default(),
            declared: false,
            services: None,
            processes: None,
        }
    }

    /// Validates `set` against the kinds the plugin subscribes to and
    /// applies it within the kinds it is granted (a subset of those).
    ///
    /// # Errors
    /// Every problem: a filter for a kind it does not subscribe to, an
    /// unknown verb or stage, a malformed resource, a relative path prefix,
    /// port 0, a list over [`MAX_ENTRIES`].
    pub fn new(
        subscribes: &[EventKind],
        granted: &[EventKind],
        mut set: SubscriptionSet,
    ) -> Result<Self, SubscriptionError> {
        let mut problems = Vec::new();
        let mut unsubscribed = |kind: EventKind, present: bool| {
            if present && !subscribes.contains(&kind) {
                problems.push(format!(
                    "{0}: a filter for {0} events, a kind it does not subscribe to",
                    kind.as_str()
                ));
            }
        };
        unsubscribed(EventKind::Container, set.container.is_some());
        unsubscribed(EventKind::Kubernetes, set.kubernetes.is_some());
        unsubscribed(EventKind::Network, set.network.is_some());
        unsubscribed(EventKind::File, set.file.is_some());
        if let Some(c) = &set.container {
            check_len(&mut problems, "container.actions", c.actions.len());
        }
        if let Some(k) = &mut set.kubernetes {
            check_kubernetes(&mut problems, k);
        }
        if let Some(n) = &set.network {
            check_network(&mut problems, n);
        }
        if let Some(f) = &set.file {
            check_file(&mut problems, f);
        }
        if !problems.is_empty() {
            return Err(SubscriptionError { problems });
        }
        Ok(Self {
            kinds: granted.to_vec(),
            set,
            declared: true,
            services: None,
            processes: None,
        })
    }

    /// Adds the plugin's Swarm service-event filter (its `services` export,
    /// WIT 0.1.3), validated like the other filters. Swarm activity is
    /// container orchestration, so the service kind is covered by
    /// `container`: a plugin must subscribe to `container` to export it, and
    /// a policy that withholds `container` withholds these too (then the
    /// plugin is never called with them).
    ///
    /// # Errors
    /// Every problem: no `container` subscription, an unknown action, a list
    /// over [`MAX_ENTRIES`].
    pub fn with_services(
        mut self,
        subscribes: &[EventKind],
        mut filter: ServiceFilter,
    ) -> Result<Self, SubscriptionError> {
        let mut problems = Vec::new();
        if !subscribes.contains(&EventKind::Container) {
            problems.push(
                "services: it exports Swarm service events, which need a subscription to container events"
                    .to_owned(),
            );
        }
        check_len(&mut problems, "services.objects", filter.objects.len());
        check_len(&mut problems, "services.actions", filter.actions.len());
        for (i, a) in filter.actions.iter_mut().enumerate() {
            match KNOWN_SERVICE_ACTIONS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(a))
            {
                Some(known) => *a = (*known).to_owned(),
                None => problems.push(format!(
                    "services.actions[{i}]: unknown action {} (known: {})",
                    shown(a),
                    KNOWN_SERVICE_ACTIONS.join(", ")
                )),
            }
        }
        if !problems.is_empty() {
            return Err(SubscriptionError { problems });
        }
        if self.takes(EventKind::Container) {
            self.services = Some(filter);
        }
        Ok(self)
    }

    /// Adds the plugin's process-event filter (its `processes` export, WIT
    /// 0.1.3), validated like the other filters. A process in a container
    /// is container activity, so the process kind is covered by
    /// `container`, as Swarm events are: a plugin must subscribe to
    /// `container` to export it, and a policy that withholds `container`
    /// withholds these too (then the plugin is never called with them).
    ///
    /// # Errors
    /// Every problem: no `container` subscription, a binary name that is
    /// empty, has a `/` or NUL, or is over 255 bytes, a list over
    /// [`MAX_ENTRIES`].
    pub fn with_processes(
        mut self,
        subscribes: &[EventKind],
        filter: ProcessFilter,
    ) -> Result<Self, SubscriptionError> {
        let mut problems = Vec::new();
        if !subscribes.contains(&EventKind::Container) {
            problems.push(
                "processes: it exports process events, which need a subscription to container events"
                    .to_owned(),
            );
        }
        check_len(&mut problems, "processes.binaries", filter.binaries.len());
        for (i, b) in filter.binaries.iter().enumerate() {
            if b.is_empty() || b.len() > 255 || b.contains(['/', '\0']) {
                problems.push(format!(
                    "processes.binaries[{i}]: {} is not a file name (the last component of a path, 1 to 255 bytes, without `/`: `sh`, `curl`)",
                    shown(b)
                ));
            }
        }
        if !problems.is_empty() {
            return Err(SubscriptionError { problems });
        }
        if self.takes(EventKind::Container) {
            self.processes = Some(filter);
        }
        Ok(self)
    }

    /// The process-event filter, when the plugin receives them.
    pub fn processes(&self) -> Option<&ProcessFilter> {
        self.processes.as_ref()
    }

    /// Whether the plugin gets this process event.
    pub fn wants_process(&self, event: &ProcessEvent) -> bool {
        self.processes.as_ref().is_some_and(|f| {
            // A write is about the file, not the program: `binaries` does
            // not apply, and only plugins that asked for writes get them.
            if event.action == crate::model::PROCESS_WRITE {
                return f.writes && (!f.containers_only || event.container.is_some());
            }
            (!f.containers_only || event.container.is_some())
                // Any of the names the program goes by: a multi-call
                // binary (busybox) is one file under many names, so the
                // file's name alone would hide `sh` run as `busybox sh` or
                // through `/proc/self/exe`; more names only widen what the
                // plugin is shown.
                && (f.binaries.is_empty()
                    || event
                        .program_names()
                        .any(|name| f.binaries.iter().any(|b| b == name)))
        })
    }

    /// The Swarm service-event filter, when the plugin receives them.
    pub fn services(&self) -> Option<&ServiceFilter> {
        self.services.as_ref()
    }

    /// Whether the plugin gets this Swarm event.
    pub fn wants_service(&self, event: &ServiceEvent) -> bool {
        self.services.as_ref().is_some_and(|f| {
            (f.objects.is_empty() || f.objects.contains(&event.object))
                && (f.actions.is_empty()
                    || f.actions
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(&event.action)))
        })
    }

    /// The kinds delivered.
    pub fn kinds(&self) -> &[EventKind] {
        &self.kinds
    }

    /// The filters (normalised), for `vigil plugin inspect`.
    pub fn set(&self) -> &SubscriptionSet {
        &self.set
    }

    /// Whether the plugin declared a subscription (else: everything of its kinds).
    pub fn declared(&self) -> bool {
        self.declared
    }

    /// Whether events of `kind` may reach the plugin at all.
    pub fn takes(&self, kind: EventKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// What the plugin gets of `event`.
    pub fn delivery(&self, event: &Event) -> Delivery {
        if !self.takes(event.kind()) {
            return Delivery::Skip;
        }
        let wanted = match &event.body {
            EventBody::Container(c) => self
                .set
                .container
                .as_ref()
                .is_none_or(|f| f.actions.is_empty() || f.actions.contains(&c.action)),
            EventBody::Kubernetes(k) => match &self.set.kubernetes {
                None => true,
                Some(f) => return kubernetes_delivery(f, k),
            },
            EventBody::Network(n) => self.set.network.as_ref().is_none_or(|f| {
                (f.directions.is_empty() || f.directions.contains(&n.direction))
                    && (f.ports.is_empty()
                        || f.ports.contains(&n.local_port)
                        || f.ports.contains(&n.remote_port))
            }),
            EventBody::File(e) => self.set.file.as_ref().is_none_or(|f| {
                f.path_prefixes.is_empty()
                    || f.path_prefixes
                        .iter()
                        .any(|p| e.path.starts_with(p.as_str()))
            }),
        };
        if wanted {
            Delivery::Whole
        } else {
            Delivery::Skip
        }
    }

    /// One line per kind, for `vigil plugin inspect`: `kubernetes: every event`
    /// or `kubernetes: verbs create, update; pod spec required`.
    /// A plugin receiving Swarm events has one more line, `services: …`,
    /// and one receiving process events `processes: …`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .kinds
            .iter()
            .map(|kind| format!("{}: {}", kind.as_str(), self.describe_kind(*kind)))
            .collect();
        if let Some(f) = &self.services {
            let mut parts = Vec::new();
            if !f.objects.is_empty() {
                let objects: Vec<&str> = f.objects.iter().map(|o| o.as_str()).collect();
                parts.push(format!("objects {}", objects.join(", ")));
            }
            if !f.actions.is_empty() {
                parts.push(format!("actions {}", f.actions.join(", ")));
            }
            let what = if parts.is_empty() {
                "every event".to_owned()
            } else {
                parts.join("; ")
            };
            lines.push(format!("services: {what}"));
        }
        if let Some(f) = &self.processes {
            let mut parts = Vec::new();
            if !f.binaries.is_empty() {
                parts.push(format!("binaries {}", f.binaries.join(", ")));
            }
            if f.containers_only {
                parts.push("containers only".to_owned());
            }
            if f.writes {
                parts.push("writes to watched files".to_owned());
            }
            let what = if parts.is_empty() {
                "every event".to_owned()
            } else {
                parts.join("; ")
            };
            lines.push(format!("processes: {what}"));
        }
        lines
    }

    fn describe_kind(&self, kind: EventKind) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut list = |name: &str, values: Vec<String>| {
            if !values.is_empty() {
                parts.push(format!("{name} {}", values.join(", ")));
            }
        };
        match kind {
            EventKind::Container => {
                if let Some(f) = &self.set.container {
                    list("actions", f.actions.iter().map(debug_kebab).collect());
                }
            }
            EventKind::Kubernetes => {
                if let Some(f) = &self.set.kubernetes {
                    let shown = |v: &[String]| {
                        v.iter()
                            .map(|s| {
                                if s.is_empty() {
                                    "(none)".into()
                                } else {
                                    s.clone()
                                }
                            })
                            .collect()
                    };
                    list("resources", shown(&f.resources));
                    list("subresources", shown(&f.subresources));
                    list("verbs", shown(&f.verbs));
                    list("stages", shown(&f.stages));
                    match f.pod_spec {
                        PodSpecUse::Unused => parts.push("pod spec left out".into()),
                        PodSpecUse::Required => parts.push("only with a pod spec".into()),
                        PodSpecUse::WhenPresent => {}
                    }
                }
            }
            EventKind::Network => {
                if let Some(f) = &self.set.network {
                    list("directions", f.directions.iter().map(debug_kebab).collect());
                    list("ports", f.ports.iter().map(u16::to_string).collect());
                }
            }
            EventKind::File => {
                if let Some(f) = &self.set.file {
                    list("path prefixes", f.path_prefixes.clone());
                }
            }
        }
        if parts.is_empty() {
            "every event".into()
        } else {
            parts.join("; ")
        }
    }
}

/// An enum's `Debug` name in kebab case (`ExecStart` → `exec-start`), the
/// WIT spelling.
fn debug_kebab(v: &impl std::fmt::Debug) -> String {
    let mut out = String::new();
    for (i, c) in format!("{v:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn kubernetes_delivery(f: &KubernetesFilter, k: &crate::model::KubernetesEvent) -> Delivery {
    let any = |list: &[String], value: &str| {
        list.is_empty() || list.iter().any(|v| v.eq_ignore_ascii_case(value))
    };
    if !(any(&f.resources, &k.resource)
        && any(&f.subresources, &k.subresource)
        && any(&f.verbs, &k.verb)
        && any(&f.stages, &k.stage))
    {
        return Delivery::Skip;
    }
    match (f.pod_spec, k.pod.is_some()) {
        (PodSpecUse::Required, false) => Delivery::Skip,
        (PodSpecUse::Unused, true) => Delivery::WithoutPod,
        _ => Delivery::Whole,
    }
}

fn check_len(problems: &mut Vec<String>, field: &str, len: usize) {
    if len > MAX_ENTRIES {
        problems.push(format!(
            "{field}: {len} entries, over the limit of {MAX_ENTRIES}"
        ));
    }
}

fn shown(value: &str) -> String {
    format!("{:?}", escape_control(value, 80))
}

fn check_kubernetes(problems: &mut Vec<String>, f: &mut KubernetesFilter) {
    for (field, list) in [
        ("resources", &f.resources),
        ("subresources", &f.subresources),
        ("verbs", &f.verbs),
        ("stages", &f.stages),
    ] {
        check_len(problems, &format!("kubernetes.{field}"), list.len());
    }
    for (i, r) in f.resources.iter_mut().enumerate() {
        let field = format!("kubernetes.resources[{i}]");
        r.make_ascii_lowercase();
        if let Some((res, sub)) = r.split_once('/') {
            problems.push(format!(
                "{field}: {} names a subresource: write {} in resources and {} in subresources",
                shown(r),
                shown(res),
                shown(sub)
            ));
        } else if !is_name(r) {
            problems.push(format!(
                "{field}: {} is not a Kubernetes resource name (plural, lower case: `pods`)",
                shown(r)
            ));
        } else if let Some(plural) = BUILTIN_PLURALS.iter().find(|p| {
            p.strip_suffix('s') == Some(r.as_str()) || p.strip_suffix("es") == Some(r.as_str())
        }) {
            problems.push(format!(
                "{field}: unknown resource {}: resources are plural ({plural})",
                shown(r)
            ));
        }
    }
    for (i, s) in f.subresources.iter_mut().enumerate() {
        if !s.is_empty() && !is_name(s) {
            problems.push(format!(
                "kubernetes.subresources[{i}]: {} is not a subresource name (`exec`; `\"\"` for none)",
                shown(s)
            ));
        }
        s.make_ascii_lowercase();
    }
    for (i, v) in f.verbs.iter_mut().enumerate() {
        match KNOWN_VERBS.iter().find(|k| k.eq_ignore_ascii_case(v)) {
            Some(known) => *v = (*known).to_owned(),
            None => problems.push(format!(
                "kubernetes.verbs[{i}]: unknown verb {} (known: {})",
                shown(v),
                KNOWN_VERBS.join(", ")
            )),
        }
    }
    for (i, s) in f.stages.iter_mut().enumerate() {
        match KNOWN_STAGES.iter().find(|k| k.eq_ignore_ascii_case(s)) {
            Some(known) => *s = (*known).to_owned(),
            None => problems.push(format!(
                "kubernetes.stages[{i}]: unknown stage {} (known: {}, or \"\" for watch events)",
                shown(s),
                KNOWN_STAGES[1..].join(", ")
            )),
        }
    }
}

/// A DNS-subdomain-like name: what resource and subresource names are.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}

fn check_network(problems: &mut Vec<String>, f: &NetworkFilter) {
    check_len(problems, "network.directions", f.directions.len());
    check_len(problems, "network.ports", f.ports.len());
    for (i, p) in f.ports.iter().enumerate() {
        if *p == 0 {
            problems.push(format!(
                "network.ports[{i}]: port 0 matches only listening sockets' remote side; name real ports"
            ));
        }
    }
}

fn check_file(problems: &mut Vec<String>, f: &FileFilter) {
    check_len(problems, "file.path-prefixes", f.path_prefixes.len());
    for (i, p) in f.path_prefixes.iter().enumerate() {
        let field = format!("file.path-prefixes[{i}]");
        if !p.starts_with('/') {
            problems.push(format!("{field}: {} is not an absolute path", shown(p)));
        } else if p.len() > MAX_PATH_BYTES || p.contains('\0') {
            problems.push(format!(
                "{field}: {} is over {MAX_PATH_BYTES} bytes or contains NUL",
                shown(p)
            ));
        } else if p.split('/').any(|c| c == "..") {
            problems.push(format!(
                "{field}: {} has a `..` component (paths are matched as text, never resolved)",
                shown(p)
            ));
        }
    }
}

#[cfg(test)]
mod tests;
