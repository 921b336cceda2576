//! Requests to the daemon besides the event stream: inspecting a container
//! or an exec, and the inventory of running containers at start (and after
//! a gap). Inspect responses go through [`event_from_inspect`], the same
//! normaliser `vigil replay` uses on recorded `docker inspect` output.

use bollard::Docker;
use bollard::query_parameters::ListContainersOptions;

use super::DockerError;
use super::tracker::Tracker;
use crate::SourceContext;
use vigil_core::model::{ContainerAction, Event, ExecInfo};
use vigil_core::time::parse_rfc3339;
use vigil_core::time::wall_now;
use vigil_normalize::Origin;
use vigil_normalize::docker_inspect::{Inspect, event_from_inspect};

/// The source name stamped on events.
pub const SOURCE: &str = "docker";

/// Inspects a container into Vigil's [`Inspect`] view. The bollard
/// response serialises with the Engine's field names, so it reads exactly
/// like recorded `docker inspect` output.
pub async fn inspect_container(docker: &Docker, id: &str) -> Result<Inspect, DockerError> {
    let resp = docker
        .inspect_container(id, None)
        .await
        .map_err(|source| DockerError::Inspect {
            id: id.to_owned(),
            source,
        })?;
    let value = serde_json::to_value(&resp).map_err(|source| DockerError::Decode {
        id: id.to_owned(),
        source,
    })?;
    serde_json::from_value(value).map_err(|source| DockerError::Decode {
        id: id.to_owned(),
        source,
    })
}

/// Inspects an exec: what runs, as whom, with which privileges.
pub async fn inspect_exec(docker: &Docker, exec_id: &str) -> Result<ExecInfo, DockerError> {
    let resp = docker
        .inspect_exec(exec_id)
        .await
        .map_err(|source| DockerError::InspectExec {
            id: exec_id.to_owned(),
            source,
        })?;
    let p = resp.process_config.unwrap_or_default();
    let command = std::iter::once(p.entrypoint.unwrap_or_default())
        .chain(p.arguments.unwrap_or_default())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(ExecInfo {
        command,
        user: p.user.unwrap_or_default(),
        privileged: p.privileged.unwrap_or(false),
        tty: p.tty.unwrap_or(false),
    })
}

/// Whether an error says the object no longer exists (a short-lived
/// container removed before it could be inspected).
pub fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::Inspect {
            source: bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            },
            ..
        } | DockerError::InspectExec {
            source: bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            },
            ..
        }
    )
}

/// Sends a `running` event for every running container. A container that
/// cannot be inspected (removed meanwhile) is skipped with a log line.
/// Returns how many were sent; `None` when the pipeline is gone.
pub async fn inventory(
    docker: &Docker,
    ctx: &SourceContext,
    tracker: &mut Tracker,
) -> Result<Option<usize>, DockerError> {
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: false,
            ..ListContainersOptions::default()
        }))
        .await
        .map_err(DockerError::List)?;
    let origin = Origin {
        node: &ctx.node,
        source: SOURCE,
    };
    let mut events = Vec::with_capacity(list.len());
    for summary in list {
        let Some(id) = summary.id.filter(|i| !i.is_empty()) else {
            ctx.rejected("container list entry without Id");
            continue;
        };
        match inspect_container(docker, &id).await {
            Ok(i) => {
                let started = parse_rfc3339(&i.state.started_at).filter(|t| *t > 0);
                // Timed at the observation: the container was seen running now.
                let event: Event = event_from_inspect(
                    &i,
                    ContainerAction::Running,
                    "inspect",
                    &origin,
                    wall_now(),
                    ctx.next_id(),
                );
                if let vigil_core::model::EventBody::Container(c) = &event.body {
                    tracker.running(&c.id, &c.name, &c.image, started);
                }
                events.push(event);
            }
            Err(e) if is_not_found(&e) => {
                tracing::debug!(source = SOURCE, container = %id, "container gone before the inventory inspected it")
            }
            Err(e) => {
                tracing::warn!(source = SOURCE, container = %id, error = %vigil_core::error::chain(&e), "cannot inspect a running container; it is left out of the inventory")
            }
        }
    }
    vigil_core::metrics::PluginMetrics::add(&ctx.metrics.counters.received, events.len() as u64);
    let n = events.len();
    Ok(ctx.send(events).await.then_some(n))
}
