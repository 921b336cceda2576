//! Kubernetes events: pod creations and deletions from the audit log (and
//! optionally the pod watcher), their scopes, and pod lifetimes.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::image::repository;
use vigil_plugin_sdk::view::*;

use crate::baseline::Action;
use crate::short_lived::Subject;
use crate::{Born, ContainerChurn, ScopeKind, Stream};

impl ContainerChurn {
    pub(crate) fn on_kubernetes(
        &mut self,
        event: &EventView<'_>,
        k: &KubernetesEventView<'_>,
        out: &mut Vec<Finding>,
    ) {
        if k.resource != "pods" || !k.subresource.is_empty() || !k.api_group.is_empty() {
            return;
        }
        let audit = !k.stage.is_empty();
        let action = match (audit, k.verb) {
            (true, "create") | (false, "added") => Action::Create,
            (true, "delete") | (false, "deleted") => Action::Destroy,
            _ => return,
        };
        if audit {
            // One event per request (not its RequestReceived echo), and only
            // requests that succeeded.
            if !self.config.audit
                || k.stage != "ResponseComplete"
                || k.response_code.is_some_and(|code| code >= 400)
            {
                return;
            }
            // The kubelet's final delete of a pod someone else deleted is the
            // same removal twice.
            if action == Action::Destroy && k.user.starts_with("system:node:") {
                return;
            }
        } else if !self.config.watch {
            return;
        }
        // `concat`, not `format!`: this runs for every pod write the plugin
        // is shown, and the formatting machinery costs several times the copy.
        let key = ["k/", k.namespace, "/", k.name].concat();
        let mut repos: Vec<String> = Vec::new();
        let mut images: Vec<&str> = Vec::new();
        if let Some(pod) = &k.pod {
            for container in pod
                .containers
                .iter()
                .filter(|c| c.role != ContainerRole::Ephemeral)
            {
                images.push(container.image);
                let repo = repository(container.image);
                if !repo.is_empty() && !repos.iter().any(|r| r == repo) {
                    repos.push(repo.to_owned());
                }
            }
        }
        let born = if action == Action::Destroy && !k.name.is_empty() {
            self.born.remove(key.as_str())
        } else {
            None
        };
        if repos.is_empty()
            && let Some(b) = &born
        {
            repos.clone_from(&b.repos);
        }
        let allowed = self.config.actor_allowed(k.user)
            || self.config.namespace_allowed(k.namespace)
            || (!repos.is_empty() && repos.iter().all(|r| self.config.image_allowed(r)))
            || (!images.is_empty() && images.iter().all(|i| self.config.image_allowed(i)));
        if allowed {
            return;
        }
        let pod_id = [k.namespace, "/", k.name].concat();
        match action {
            Action::Create if !k.name.is_empty() => {
                let risky = k.pod.as_ref().map(risky_pod).unwrap_or_default();
                self.born.insert(
                    key,
                    Born {
                        time: event.time,
                        name: pod_id,
                        image: images.first().map(|i| (*i).to_owned()).unwrap_or_default(),
                        repos: repos.clone(),
                        risky,
                        exit_code: None,
                    },
                );
            }
            Action::Destroy => {
                if let Some(b) = &born {
                    let ms = event.time.saturating_sub(b.time) / 1_000_000;
                    let subject = Subject {
                        stream: Stream::Kubernetes,
                        id: &pod_id,
                        name: &pod_id,
                        image: &b.image,
                        namespace: k.namespace,
                        actor: k.user,
                    };
                    self.short_lived(event, &subject, ms, "create", Some(b), out);
                }
            }
            _ => {}
        }
        let mut scopes: Vec<(ScopeKind, &str)> = Vec::with_capacity(4);
        if !event.node.is_empty() {
            scopes.push((ScopeKind::Cluster, event.node));
        }
        if !k.namespace.is_empty() {
            scopes.push((ScopeKind::Namespace, k.namespace));
        }
        for repo in &repos {
            scopes.push((ScopeKind::Image, repo));
        }
        if !k.user.is_empty() {
            scopes.push((ScopeKind::Actor, k.user));
        }
        self.count(Stream::Kubernetes, action, event, &scopes, out);
    }
}

fn risky_pod(pod: &PodSpecView<'_>) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if pod.containers.iter().any(|c| c.security.privileged) {
        flags.push("privileged");
    }
    if pod.host_network {
        flags.push("host-network");
    }
    if pod.host_pid {
        flags.push("host-pid");
    }
    if pod.host_ipc {
        flags.push("host-ipc");
    }
    flags
}
