//! Builders for [`SubscriptionSet`]: what a plugin reads of its event kinds
//! (WIT 0.1.2), returned from [`crate::Detector::subscriptions`].
//!
//! ```
//! use vigil_plugin_sdk::prelude::*;
//!
//! let set = SubscriptionSet::everything()
//!     .containers([ContainerAction::Create, ContainerAction::Start])
//!     .kubernetes(
//!         KubernetesFilter::any()
//!             .resources(["pods"])
//!             .verbs(["create", "added"])
//!             .pod_spec(PodSpecUse::Required),
//!     );
//! assert!(set.network.is_none());
//! ```

use crate::types::{
    ContainerAction, ContainerFilter, Direction, FileFilter, KubernetesFilter, NetworkFilter,
    PodSpecUse, ProcessFilter, ServiceFilter, SubscriptionSet, SwarmObject,
};

fn strings(items: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl Default for SubscriptionSet {
    fn default() -> Self {
        Self::everything()
    }
}

impl SubscriptionSet {
    /// Every event of the plugin's kinds: no filter (what a plugin without
    /// the `subscriptions` export gets).
    #[must_use]
    pub fn everything() -> Self {
        Self {
            container: None,
            kubernetes: None,
            network: None,
            file: None,
        }
    }

    /// Container events with one of these actions only.
    #[must_use]
    pub fn containers(mut self, actions: impl IntoIterator<Item = ContainerAction>) -> Self {
        self.container = Some(ContainerFilter {
            actions: actions.into_iter().collect(),
        });
        self
    }

    /// Kubernetes events matching `filter` only.
    #[must_use]
    pub fn kubernetes(mut self, filter: KubernetesFilter) -> Self {
        self.kubernetes = Some(filter);
        self
    }

    /// Network events matching `filter` only.
    #[must_use]
    pub fn network(mut self, filter: NetworkFilter) -> Self {
        self.network = Some(filter);
        self
    }

    /// File events under one of these absolute path prefixes only.
    #[must_use]
    pub fn files_under(mut self, prefixes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.file = Some(FileFilter {
            path_prefixes: strings(prefixes),
        });
        self
    }
}

impl Default for KubernetesFilter {
    fn default() -> Self {
        Self::any()
    }
}

impl KubernetesFilter {
    /// Every Kubernetes event, pod spec included; narrow it with the methods.
    #[must_use]
    pub fn any() -> Self {
        Self {
            resources: Vec::new(),
            subresources: Vec::new(),
            verbs: Vec::new(),
            stages: Vec::new(),
            pod_spec: PodSpecUse::WhenPresent,
        }
    }

    /// Only these resources (`pods`, `deployments` …).
    #[must_use]
    pub fn resources(mut self, resources: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.resources = strings(resources);
        self
    }

    /// Only these subresources; `""` for the resource itself.
    #[must_use]
    pub fn subresources(mut self, subs: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.subresources = strings(subs);
        self
    }

    /// Only these verbs (audit verbs, and `added`/`modified`/`deleted` of watch events).
    #[must_use]
    pub fn verbs(mut self, verbs: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.verbs = strings(verbs);
        self
    }

    /// Only these audit stages; `""` for watch events.
    #[must_use]
    pub fn stages(mut self, stages: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.stages = strings(stages);
        self
    }

    /// Whether the plugin reads the pod spec (default: when present).
    #[must_use]
    pub fn pod_spec(mut self, pod_spec: PodSpecUse) -> Self {
        self.pod_spec = pod_spec;
        self
    }
}

impl Default for NetworkFilter {
    fn default() -> Self {
        Self::any()
    }
}

impl NetworkFilter {
    /// Every network event; narrow it with the methods.
    #[must_use]
    pub fn any() -> Self {
        Self {
            directions: Vec::new(),
            ports: Vec::new(),
        }
    }

    /// Only these directions.
    #[must_use]
    pub fn directions(mut self, directions: impl IntoIterator<Item = Direction>) -> Self {
        self.directions = directions.into_iter().collect();
        self
    }

    /// Only events whose local or remote port is one of these.
    #[must_use]
    pub fn ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.ports = ports.into_iter().collect();
        self
    }
}

impl Default for ServiceFilter {
    fn default() -> Self {
        Self::everything()
    }
}

impl ServiceFilter {
    /// Every Docker Swarm event (WIT 0.1.3): no filter.
    #[must_use]
    pub fn everything() -> Self {
        Self {
            objects: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Events about these kinds of Swarm object only.
    #[must_use]
    pub fn objects(mut self, objects: impl IntoIterator<Item = SwarmObject>) -> Self {
        self.objects = objects.into_iter().collect();
        self
    }

    /// Events with one of these actions only (`create`, `update`,
    /// `remove`, `running`; any other refuses the plugin at load).
    #[must_use]
    pub fn actions(mut self, actions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.actions = strings(actions);
        self
    }
}

impl Default for ProcessFilter {
    fn default() -> Self {
        Self::everything()
    }
}

impl ProcessFilter {
    /// Every `exec` event (WIT 0.1.3): no filter; writes to watched files
    /// only with [`writes`](Self::writes).
    #[must_use]
    pub fn everything() -> Self {
        Self {
            binaries: Vec::new(),
            containers_only: false,
            writes: false,
        }
    }

    /// Programs with one of these names only (file names: `sh`, `curl`; a
    /// name with `/` refuses the plugin at load), compared with each of the
    /// names the program goes by ([`crate::types::ProcessEvent::program_names`]:
    /// the executed file's, `argv[0]`'s, and a multi-call binary's applet).
    #[must_use]
    pub fn binaries(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.binaries = strings(names);
        self
    }

    /// Processes of containers only (the host's own left out).
    #[must_use]
    pub fn containers_only(mut self) -> Self {
        self.containers_only = true;
        self
    }

    /// Also the `write` events: a named process wrote to a watched file
    /// (every one, whatever [`binaries`](Self::binaries) says, subject to
    /// [`containers_only`](Self::containers_only)). Without it a plugin
    /// receives `exec` events only.
    #[must_use]
    pub fn writes(mut self) -> Self {
        self.writes = true;
        self
    }
}
