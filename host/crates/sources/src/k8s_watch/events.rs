//! core/v1 Events (scheduling, image pulls, kills, back-offs) into Vigil
//! events: the verb is the event's reason, the name its involved object.

use k8s_openapi::api::core::v1::Event as CoreEvent;

use vigil_core::model::{EventBody, KubernetesEvent};

/// A core/v1 Event as a Kubernetes event.
pub fn event_body(e: &CoreEvent) -> EventBody {
    let involved = &e.involved_object;
    let namespace = involved
        .namespace
        .clone()
        .or_else(|| e.metadata.namespace.clone())
        .unwrap_or_default();
    let user_agent = e
        .reporting_component
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()))
        .unwrap_or_default();
    EventBody::Kubernetes(KubernetesEvent {
        verb: e.reason.clone().unwrap_or_else(|| "event".to_owned()),
        resource: "events".to_owned(),
        namespace,
        name: involved.name.clone().unwrap_or_default(),
        user_agent,
        audit_id: e.metadata.uid.clone().unwrap_or_default(),
        ..KubernetesEvent::default()
    })
}
