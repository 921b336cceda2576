//! Container-engine (Docker) events: what is counted, in which scopes, and
//! the lifetime of containers for the short-lived rule.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::image::repository;
use vigil_plugin_sdk::view::*;

use crate::baseline::Action;
use crate::short_lived::Subject;
use crate::{
    Born, COMPOSE_PROJECT_LABEL, ContainerChurn, POD_NAMESPACE_LABEL, SWARM_SERVICE_LABEL,
    ScopeKind, Stream,
};

impl ContainerChurn {
    pub(crate) fn on_container(
        &mut self,
        event: &EventView<'_>,
        c: &ContainerEventView<'_>,
        out: &mut Vec<Finding>,
    ) {
        let label = |key: &str| {
            c.labels
                .iter()
                .find(|l| l.key == key)
                .map_or("", |l| l.value)
        };
        let allowed = self.config.image_allowed(c.image)
            || self.config.actor_allowed(c.actor)
            || self.config.namespace_allowed(label(POD_NAMESPACE_LABEL))
            || c.labels
                .iter()
                .any(|l| self.config.label_allowed(l.key, l.value));
        let action = match c.action {
            ContainerAction::Create => {
                self.born.insert(
                    c.id.to_owned(),
                    Born {
                        time: event.time,
                        name: c.name.to_owned(),
                        image: c.image.to_owned(),
                        repos: Vec::new(),
                        risky: c.security.as_ref().map(risky_container).unwrap_or_default(),
                        exit_code: None,
                    },
                );
                Action::Create
            }
            ContainerAction::Start => {
                if let Some(born) = self.born.get_mut(c.id)
                    && let Some(security) = &c.security
                {
                    for flag in risky_container(security) {
                        if !born.risky.contains(&flag) {
                            born.risky.push(flag);
                        }
                    }
                }
                Action::Start
            }
            ContainerAction::Die => {
                if let Some(born) = self.born.get_mut(c.id) {
                    born.exit_code = c.exit_code;
                }
                return;
            }
            ContainerAction::Destroy => {
                let born = self.born.remove(c.id);
                let lifetime = match &born {
                    Some(b) => Some((event.time.saturating_sub(b.time) / 1_000_000, "create")),
                    None => c.lifetime_ms.map(|ms| (ms, "start")),
                };
                if !allowed && let Some((ms, from)) = lifetime {
                    let image = if c.image.is_empty() {
                        born.as_ref().map_or("", |b| b.image.as_str())
                    } else {
                        c.image
                    };
                    let name = if c.name.is_empty() {
                        born.as_ref().map_or("", |b| b.name.as_str())
                    } else {
                        c.name
                    };
                    let subject = Subject {
                        stream: Stream::Docker,
                        id: c.id,
                        name,
                        image,
                        namespace: label(POD_NAMESPACE_LABEL),
                        actor: c.actor,
                    };
                    self.short_lived(event, &subject, ms, from, born.as_ref(), out);
                }
                Action::Destroy
            }
            _ => return,
        };
        if allowed {
            return;
        }
        let mut scopes: Vec<(ScopeKind, &str)> = Vec::with_capacity(4);
        if !event.node.is_empty() {
            scopes.push((ScopeKind::Node, event.node));
        }
        let namespace = label(POD_NAMESPACE_LABEL);
        let project = label(COMPOSE_PROJECT_LABEL);
        let service = label(SWARM_SERVICE_LABEL);
        if !namespace.is_empty() {
            scopes.push((ScopeKind::Namespace, namespace));
        } else if !service.is_empty() {
            // Task churn per Swarm service (a stack's services share the
            // Compose-style project label too; the service is finer).
            scopes.push((ScopeKind::Service, service));
        } else if !project.is_empty() {
            scopes.push((ScopeKind::Project, project));
        }
        let repo = repository(c.image);
        if !repo.is_empty() {
            scopes.push((ScopeKind::Image, repo));
        }
        if !c.actor.is_empty() {
            scopes.push((ScopeKind::Actor, c.actor));
        }
        self.count(Stream::Docker, action, event, &scopes, out);
    }
}

fn risky_container(security: &ContainerSecurityView<'_>) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if security.privileged {
        flags.push("privileged");
    }
    if security.network_mode == "host" {
        flags.push("host-network");
    }
    if security.pid_mode == "host" {
        flags.push("host-pid");
    }
    if security.ipc_mode == "host" {
        flags.push("host-ipc");
    }
    if security
        .mounts
        .iter()
        .any(|m| m.source.ends_with("/docker.sock") || m.source.ends_with("/containerd.sock"))
    {
        flags.push("runtime-socket");
    }
    flags
}
