//! Which container a process belongs to, from its cgroup path, and the
//! container's name and image, from Docker's data root.
//!
//! The cgroup path is the one place every engine writes the container id,
//! for cgroup v1 and v2 and whatever the driver: `/docker/<id>`,
//! `/system.slice/docker-<id>.scope`, `/kubepods/burstable/pod<uid>/<id>`,
//! `…/cri-containerd-<id>.scope`, `…/crio-<id>.scope`, `…/libpod-<id>.scope`.
//! Paths are read as the host's cgroup namespace shows them: Vigil must
//! run in it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::NetworkError;
use vigil_core::model::ContainerRef;

/// The container id in a `/proc/<pid>/cgroup` file: the first path segment
/// (over every hierarchy line) that holds a 64-hex id. The first, so that
/// for nested containers (Docker in Docker) the one this host's engine
/// knows is named.
pub fn container_id(cgroup: &str) -> Option<&str> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').find_map(id_in_segment)
    })
}

/// `<64 hex>`, or `<prefix>-<64 hex>[.scope]`, except the monitor of
/// CRI-O (`crio-conmon-<id>.scope`), which is not the container.
fn id_in_segment(segment: &str) -> Option<&str> {
    let s = segment.strip_suffix(".scope").unwrap_or(segment);
    if s.contains("conmon") {
        return None;
    }
    let id = s.rsplit_once('-').map_or(s, |(_, id)| id);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The part of Docker's `config.v2.json` this source reads.
#[derive(Deserialize)]
struct ConfigV2 {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config", default)]
    config: ConfigV2Inner,
}

#[derive(Deserialize, Default)]
struct ConfigV2Inner {
    #[serde(rename = "Image", default)]
    image: String,
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
    /// Whether the container was created with a terminal (`docker run -t`).
    #[serde(rename = "Tty", default)]
    tty: Option<bool>,
}

/// Names and images of containers, read once per container and kept while
/// it has processes; bounded.
#[derive(Debug)]
pub struct ContainerNames {
    docker_root: PathBuf,
    /// Each container's reference and whether it has a terminal.
    cache: HashMap<String, (ContainerRef, Option<bool>)>,
    cap: usize,
}

impl ContainerNames {
    /// A cache of at most `cap` containers, reading `<docker_root>/containers`.
    pub fn new(docker_root: &Path, cap: usize) -> Self {
        Self {
            docker_root: docker_root.to_owned(),
            cache: HashMap::new(),
            cap,
        }
    }

    /// The reference of container `id` (a 64-hex id from [`container_id`],
    /// so it cannot escape the data root); name and image stay empty when
    /// the container is not Docker's or its config cannot be read.
    pub fn get(&mut self, id: &str) -> ContainerRef {
        self.get_with_tty(id).0
    }

    /// [`get`](Self::get), and whether the container was created with a
    /// terminal (`None` when its config does not say or cannot be read).
    pub fn get_with_tty(&mut self, id: &str) -> (ContainerRef, Option<bool>) {
        if let Some(known) = self.cache.get(id) {
            return known.clone();
        }
        match self.read(id) {
            Ok(found) => {
                if self.cache.len() < self.cap {
                    self.cache.insert(id.to_owned(), found.clone());
                }
                found
            }
            Err(e) => {
                // Not cached: the config may appear, and other engines'
                // containers cost one failed open per new socket only.
                tracing::debug!(source = super::SOURCE, container = id, error = %vigil_core::error::chain(&e), "network: container name unknown");
                let unknown = ContainerRef {
                    id: id.to_owned(),
                    ..ContainerRef::default()
                };
                (unknown, None)
            }
        }
    }

    /// Forgets containers that no longer have processes.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        self.cache.retain(|id, _| live.contains(id.as_str()));
    }

    fn read(&self, id: &str) -> Result<(ContainerRef, Option<bool>), NetworkError> {
        let path = self
            .docker_root
            .join("containers")
            .join(id)
            .join("config.v2.json");
        let bytes = std::fs::read(&path).map_err(|source| NetworkError::ReadContainerConfig {
            path: path.clone(),
            source,
        })?;
        let config: ConfigV2 = serde_json::from_slice(&bytes)
            .map_err(|source| NetworkError::DecodeContainerConfig { path, source })?;
        let labels = config.config.labels.unwrap_or_default();
        let container = ContainerRef {
            id: id.to_owned(),
            name: config.name.trim_start_matches('/').to_owned(),
            image: config.config.image,
            pod: pod(&labels),
        };
        Ok((container, config.config.tty))
    }
}

/// `namespace/name` of the pod a container belongs to, from the labels the
/// kubelet sets; empty for other containers.
pub fn pod(labels: &HashMap<String, String>) -> String {
    match (
        labels.get("io.kubernetes.pod.namespace"),
        labels.get("io.kubernetes.pod.name"),
    ) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        _ => String::new(),
    }
}
