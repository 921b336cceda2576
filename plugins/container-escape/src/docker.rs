//! Container-engine events: one finding per rule the container matches,
//! once per container (Docker reports create, then start, both inspected).

use std::collections::{HashSet, VecDeque};

use vigil_plugin_sdk::view::{ContainerEventView, EventView};
use vigil_plugin_sdk::{ContainerAction, EntityKind, Finding};

use crate::config::Config;
use crate::rules::{Origin, inspect};

/// Kubernetes' label naming a container's pod namespace (CRI runtimes set it).
const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

/// How many container ids are remembered as already examined; the oldest is
/// forgotten first (a forgotten container that starts again is re-examined).
const SEEN_CAPACITY: usize = 16_384;

/// Containers already examined: a container's configuration cannot change
/// between its create, its starts and the inventory, so it is reported once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Records `id`; false when it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() >= SEEN_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }

    fn forget(&mut self, id: &str) {
        if self.ids.remove(id) {
            self.order.retain(|o| o != id);
        }
    }
}

/// Findings for a container that was created, started or found running with
/// an escape-prone configuration, the first time it is seen. Other actions
/// (die, exec …) say nothing new about the configuration and are ignored;
/// destroy forgets the container.
pub(crate) fn findings(
    event: &EventView<'_>,
    container: &ContainerEventView<'_>,
    config: &Config,
    seen: &mut Seen,
    out: &mut Vec<Finding>,
) {
    match container.action {
        ContainerAction::Create | ContainerAction::Start | ContainerAction::Running => {}
        ContainerAction::Destroy => return seen.forget(container.id),
        _ => return,
    }
    let Some(security) = &container.security else {
        return;
    };
    if !container.id.is_empty() && !seen.insert(container.id) {
        return;
    }
    let namespace = container
        .labels
        .iter()
        .find(|label| label.key == POD_NAMESPACE_LABEL)
        .map_or("", |label| label.value);
    if config.container_allowed(container.name)
        || config.image_allowed(container.image)
        || config.namespace_allowed(namespace)
    {
        return;
    }

    let name = if container.name.is_empty() {
        short_id(container.id)
    } else {
        container.name
    };
    let subject = if container.image.is_empty() {
        format!("Container {name}")
    } else {
        format!("Container {name} ({})", container.image)
    };
    for hit in inspect(security, config, Origin::Engine) {
        let mut finding = Finding::builder(hit.rule.id(), hit.severity)
            .title(hit.rule.title())
            .summary(format!("{subject} {}.", hit.rule.consequence()))
            .entity(EntityKind::Container, container.id, container.name);
        for technique in hit.rule.techniques() {
            finding = finding.technique(*technique);
        }
        if !container.image.is_empty() {
            finding = finding.entity(EntityKind::Image, container.image, "");
        }
        if !event.node.is_empty() {
            finding = finding.entity(EntityKind::Node, event.node, "");
        }
        finding = finding
            .evidence("action", container.action.as_str())
            .evidence("container", name)
            .evidence("image", container.image);
        if !namespace.is_empty() {
            finding = finding.evidence("namespace", namespace);
        }
        for evidence in hit.evidence {
            finding = finding.evidence(evidence.key, evidence.value);
        }
        out.push(finding.event(event.id).build());
    }
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
