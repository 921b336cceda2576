//! Builders for the events the tests feed the detector.

use vigil_plugin_sdk::prelude::*;

/// A Docker event for container `web` (id `c0ffee`, image `nginx:1.25`).
pub(crate) fn docker(id: &str, action: ContainerAction, security: ContainerSecurity) -> Event {
    Event::new(
        id,
        1,
        EventBody::Container(ContainerEvent {
            action,
            id: "c0ffee".into(),
            name: "web".into(),
            image: "nginx:1.25".into(),
            security: Some(security),
            ..Default::default()
        }),
    )
}

/// A main container with image `nginx:1.25`.
pub(crate) fn container(name: &str, security: ContainerSecurity) -> PodContainer {
    PodContainer {
        role: ContainerRole::Main,
        name: name.into(),
        image: "nginx:1.25".into(),
        security,
    }
}

/// A `pods` request by `kubernetes-admin` for pod `default/web`.
pub(crate) fn audit(id: &str, verb: &str, stage: &str, containers: Vec<PodContainer>) -> Event {
    Event::new(
        id,
        1,
        EventBody::Kubernetes(KubernetesEvent {
            verb: verb.into(),
            resource: "pods".into(),
            namespace: "default".into(),
            name: "web".into(),
            user: "kubernetes-admin".into(),
            stage: stage.into(),
            pod: Some(PodSpec {
                containers,
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
}

/// A read-write bind mount.
pub(crate) fn bind(source: &str, destination: &str) -> Mount {
    Mount {
        source: source.into(),
        destination: destination.into(),
        read_only: false,
        kind: "bind".into(),
    }
}
