//! Docker Swarm service events (a manager's): every task replica a service
//! creation or a scale-up asks for counts as one creation in the service's
//! scope of its own stream, learned and checked like container churn. The
//! task containers that land on this node are counted apart, in the Docker
//! stream (see `docker.rs`), so a single-node swarm is not counted twice
//! in one series.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::view::View;

use crate::baseline::Action;
use crate::{ContainerChurn, ScopeKind, Stream};

/// Replicas counted for one event at most: a scale to a million is still
/// one burst, and the count must stay cheap.
const MAX_REPLICAS_PER_EVENT: u64 = 10_000;

impl ContainerChurn {
    pub(crate) fn on_service(&mut self, event: &ServiceEvent, out: &mut Vec<Finding>) {
        if event.object != SwarmObject::Service || event.name.is_empty() {
            return;
        }
        if let Some(spec) = &event.service
            && self.config.image_allowed(&spec.image)
        {
            return;
        }
        let number = |key: &str| event.change(key).and_then(|v| v.parse::<u64>().ok());
        let added = match event.action.as_str() {
            "create" => event.service.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            "update" => match (number("replicas.old"), number("replicas.new")) {
                (Some(old), Some(new)) => new.saturating_sub(old),
                _ => 0,
            },
            _ => 0,
        };
        // The counter's event: the service event's id, time and node.
        let counted = Event {
            id: event.id.clone(),
            time: event.time,
            node: event.node.clone(),
            source: event.source.clone(),
            body: EventBody::Container(ContainerEvent {
                name: event.name.clone(),
                ..ContainerEvent::default()
            }),
        };
        let scopes = [(ScopeKind::Service, event.name.as_str())];
        for _ in 0..added.min(MAX_REPLICAS_PER_EVENT) {
            self.count(
                Stream::Swarm,
                Action::Create,
                &EventView::of(&counted),
                &scopes,
                out,
            );
        }
    }
}
