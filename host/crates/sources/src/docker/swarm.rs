//! Docker Swarm on the Docker source: whether this node is in a swarm and a
//! manager (only a manager's event stream carries service, node, secret and
//! config events, and only a manager can inspect services), the service
//! inventory at start, and a service event completed with the service's
//! inspected spec ([`vigil_normalize::swarm_service`]).
//!
//! Task containers are ordinary container events: the Engine labels them
//! `com.docker.swarm.service.id`, `com.docker.swarm.service.name` and
//! `com.docker.swarm.task.id`, which name their service for the plugins
//! (as the `io.kubernetes.*` labels name a pod).

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::LocalNodeState;
use bollard::query_parameters::{ListNetworksOptions, ListServicesOptions};

use super::internal_events::DockerServiceSpecUnreadable;
use super::inventory::SOURCE;
use crate::SourceContext;
use vigil_core::model::{KeyValue, ServiceEvent, ServiceSpec, SwarmObject};
use vigil_core::time::wall_now;
use vigil_normalize::swarm_service::service_from_inspect;

use super::events::SwarmChange;

/// The label the Engine puts on a task container: its service's id.
pub const SERVICE_ID_LABEL: &str = "com.docker.swarm.service.id";
/// The label the Engine puts on a task container: its service's name.
pub const SERVICE_NAME_LABEL: &str = "com.docker.swarm.service.name";

/// This node's place in a swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwarmRole {
    /// Not in a swarm (or the daemon would not say).
    Inactive,
    /// A worker: its task containers are seen, service events are not.
    Worker,
    /// A manager: service, node, secret and config events too.
    Manager,
}

impl SwarmRole {
    /// For the log line.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Inactive => "swarm inactive",
            Self::Worker => {
                "swarm active, this node is a worker (task containers are attributed to their service by label; service events need a manager)"
            }
            Self::Manager => "swarm active, this node is a manager (service events followed)",
        }
    }
}

/// Asks the daemon (`GET /info`) whether this node is in a swarm, and a manager.
pub async fn role(docker: &Docker) -> Result<SwarmRole, bollard::errors::Error> {
    let info = docker.info().await?;
    let swarm = info.swarm.unwrap_or_default();
    Ok(match swarm.local_node_state {
        Some(LocalNodeState::ACTIVE) if swarm.control_available == Some(true) => SwarmRole::Manager,
        Some(LocalNodeState::ACTIVE) => SwarmRole::Worker,
        _ => SwarmRole::Inactive,
    })
}

/// Network ids to names, for the networks of service specs.
async fn network_names(docker: &Docker) -> HashMap<String, String> {
    match docker.list_networks(None::<ListNetworksOptions>).await {
        Ok(list) => list
            .into_iter()
            .filter_map(|n| Some((n.id?, n.name?)))
            .collect(),
        Err(e) => {
            tracing::warn!(source = SOURCE, error = %vigil_core::error::chain(&e), "docker: cannot list networks; service networks are named by id");
            HashMap::new()
        }
    }
}

/// Inspects a service into its spec; a spec that cannot be fetched or read
/// is one log line (and a rejected record), and `None`.
pub async fn inspect_service(
    docker: &Docker,
    ctx: &SourceContext,
    id: &str,
    names: Option<&HashMap<String, String>>,
) -> Option<ServiceSpec> {
    let service = docker.inspect_service(id, None).await;
    let mut names = match names {
        Some(n) => n.clone(),
        None => network_names(docker).await,
    };
    // A swarm-scoped network (the swarm's `host` network among them) has an
    // id of the swarm's, not the local one `GET /networks` lists: ask for it.
    if let Ok(service) = &service {
        let targets = service
            .spec
            .as_ref()
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.networks.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|n| n.target.clone());
        for target in targets {
            if !names.contains_key(&target)
                && let Ok(net) = docker.inspect_network(&target, None).await
                && let Some(name) = net.name
            {
                names.insert(target, name);
            }
        }
    }
    let doc = match service {
        Ok(service) => serde_json::to_string(&service).map_err(|e| e.to_string()),
        Err(e) => Err(vigil_core::error::chain(&e)),
    };
    let result = doc.and_then(|doc| {
        service_from_inspect(&doc, &|net| names.get(net).cloned()).map_err(|e| e.to_string())
    });
    match result {
        Ok(spec) => Some(spec),
        Err(error) => {
            DockerServiceSpecUnreadable {
                service: id,
                error: &error,
            }
            .emit(&ctx.metrics);
            None
        }
    }
}

/// The service event of one Engine event, its spec inspected when the
/// service still exists.
pub async fn service_event(
    docker: &Docker,
    ctx: &SourceContext,
    change: SwarmChange,
    time: u64,
) -> ServiceEvent {
    let service = if change.wants_spec() {
        inspect_service(docker, ctx, &change.id, None).await
    } else {
        None
    };
    tracing::debug!(
        source = SOURCE,
        object = change.object.as_str(),
        action = %change.action,
        name = %change.name,
        version = service.as_ref().map_or(0, |s| s.version),
        changes = ?change.changes,
        "docker: swarm event"
    );
    ServiceEvent {
        id: ctx.next_id(),
        time,
        node: ctx.node.to_string(),
        source: SOURCE.to_owned(),
        object: change.object,
        action: change.action,
        object_id: change.id,
        name: change.name,
        service,
        changes: change.changes,
        actor: String::new(),
    }
}

/// Sends a `running` service event for every service of the swarm (on a
/// manager, at start and after a gap). Returns how many were sent; `None`
/// when the pipeline is gone.
pub async fn inventory(
    docker: &Docker,
    ctx: &SourceContext,
) -> Result<Option<usize>, bollard::errors::Error> {
    let list = docker.list_services(None::<ListServicesOptions>).await?;
    let names = network_names(docker).await;
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let Some(id) = s.id.filter(|i| !i.is_empty()) else {
            ctx.rejected("service list entry without ID");
            continue;
        };
        let Some(spec) = inspect_service(docker, ctx, &id, Some(&names)).await else {
            continue;
        };
        out.push(ServiceEvent {
            id: ctx.next_id(),
            time: wall_now(),
            node: ctx.node.to_string(),
            source: SOURCE.to_owned(),
            object: SwarmObject::Service,
            action: "running".to_owned(),
            object_id: id,
            name: spec.name.clone(),
            service: Some(spec),
            changes: Vec::<KeyValue>::new(),
            actor: String::new(),
        });
    }
    vigil_core::metrics::PluginMetrics::add(&ctx.metrics.counters.received, out.len() as u64);
    let n = out.len();
    Ok(ctx.send_services(out).await.then_some(n))
}
