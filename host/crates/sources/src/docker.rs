//! The `docker` source: container lifecycle from the local Docker Engine.
//!
//! At start it inventories the running containers (`running` events), then
//! follows `GET /events` for containers and networks. `create`/`start` are
//! completed by inspecting the container (its security configuration, via
//! the same normaliser as recorded `docker inspect` output), `exec_*` by
//! inspecting the exec. When the stream breaks it reconnects with backoff and
//! resumes from the last event seen (`since`), dropping the replayed events
//! it already sent; a gap it cannot close is logged loudly, counted, and sent
//! to the plugins as a container event with action `other` and raw action
//! `vigil-events-gap` (labels `vigil.gap.since`, `vigil.gap.reason`).
//!
//! On a Docker Swarm manager it also follows service, node, secret and
//! config events, each service event completed with the service's spec
//! ([`swarm`]); they go to the plugins that export `on-service-events`.

mod config;
mod events;
mod internal_events;
mod inventory;
mod stream;
pub mod swarm;
mod tracker;

#[cfg(test)]
mod tests;

pub use config::{DEFAULT_SOCKET, DockerConfig, DockerSettings};
pub use events::{GAP_RAW_ACTION, GAP_REASON_LABEL, GAP_SINCE_LABEL};
pub use inventory::SOURCE;
pub use stream::connect;

use tokio::task::JoinHandle;

use vigil_core::validate::Problems;

use crate::{Off, Source, SourceContext, SourceTask, Starter};

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No client could be had: the socket or the version negotiation failed.
    #[error(transparent)]
    Client(#[from] vigil_core::docker::ConnectError),
    /// `GET /containers/json` failed.
    #[error("cannot list the running containers")]
    List(#[source] bollard::errors::Error),
    /// `GET /containers/{id}/json` failed.
    #[error("cannot inspect container {id}")]
    Inspect {
        id: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// `GET /exec/{id}/json` failed.
    #[error("cannot inspect exec {id}")]
    InspectExec {
        id: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// An inspect response did not have the expected shape.
    #[error("unexpected inspect response for {id}")]
    Decode {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Starts the source on the runtime; it runs until `ctx.shutdown` turns
/// true or the pipeline goes away.
pub fn start(settings: DockerSettings, ctx: SourceContext) -> JoinHandle<()> {
    tokio::spawn(stream::run(settings, ctx))
}

impl Source for DockerConfig {
    const KEY: &'static str = "docker";
    const NAME: &'static str = "docker";
    type Settings = DockerSettings;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn check(&self, at: &str, problems: &mut Problems) -> Option<DockerSettings> {
        DockerConfig::check(self, at, problems)
    }

    fn start(settings: DockerSettings, starter: &Starter<'_>) -> Result<Vec<SourceTask>, Off> {
        if !settings.socket.exists() {
            return Err(Off::Unavailable(format!(
                "no socket at {}",
                settings.socket.display()
            )));
        }
        tracing::info!(socket = %settings.socket.display(), "docker: on");
        let ctx = starter.context(SOURCE);
        Ok(vec![SourceTask::Task(start(settings, ctx))])
    }
}
