//! Which container a process belongs to, from its cgroup path, and the
//! container's name, image, pod and terminal setting, from the files its
//! engine writes: Docker's `config.v2.json` first, else the OCI runtime
//! bundle containerd or CRI-O writes for every running container.
//!
//! The cgroup path is the one place every engine writes the container id,
//! for cgroup v1 and v2 and whatever the driver: `/docker/<id>`,
//! `/system.slice/docker-<id>.scope`, `/kubepods/burstable/pod<uid>/<id>`,
//! `…/cri-containerd-<id>.scope`, `…/crio-<id>.scope`, `…/libpod-<id>.scope`.
//! Paths are read as the host's cgroup namespace shows them: Vigil must
//! run in it.
//!
//! One implementation for every source that names containers (the procfs
//! poller, the eBPF source, the file-integrity writers): each gives its
//! [`ContainerRoots`] and gets the same answer for the same container.

mod bundle;
mod docker;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use vigil_core::model::ContainerRef;

/// Largest engine file read for one container. A bundle's `config.json`
/// carries the pod's annotations (the API server caps those at 256 KiB)
/// and the container's environment, both chosen by whoever creates the
/// pod: a larger file is refused, not read.
pub const CONFIG_MAX_BYTES: u64 = 1024 * 1024;

/// Namespaces (containerd) or storage drivers (CRI-O) looked in at most for
/// one container: these directories are the engines', not the containers',
/// and a node has a handful.
const MAX_SUBDIRS: usize = 64;

/// Why a container's engine file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    /// No engine has a file for the container (another engine's, or gone).
    #[error("no configuration of the container under {searched}")]
    NotFound { searched: String },
    /// The file exists but could not be read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`CONFIG_MAX_BYTES`]: refused unread.
    #[error("{path} is larger than {cap} bytes")]
    TooLarge { path: PathBuf, cap: u64 },
    /// The file is not the expected JSON (or was cut short).
    #[error("cannot decode {path}")]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl AttributionError {
    /// Whether the container's file exists but cannot be used: it will
    /// not become usable, and it may be someone's doing.
    fn rejected(&self) -> bool {
        matches!(self, Self::TooLarge { .. } | Self::Decode { .. })
    }
}

/// Where each engine keeps its containers' files. Validated: every path
/// absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRoots {
    /// Docker's data root (`<docker>/containers/<id>/config.v2.json`).
    pub docker: PathBuf,
    /// containerd's state directory
    /// (`<containerd>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`);
    /// `None`: not looked at.
    pub containerd: Option<PathBuf>,
    /// CRI-O's storage run root
    /// (`<crio>/<driver>-containers/<id>/userdata/config.json`); `None`:
    /// not looked at.
    pub crio: Option<PathBuf>,
}

impl ContainerRoots {
    /// Checks the three keys of a source's configuration: `docker_root`
    /// must be absolute, `containerd_state` and `crio_runroot` absolute or
    /// empty (off). Each problem is given to `bad` with its key.
    pub fn check(
        docker_root: &Path,
        containerd_state: &Path,
        crio_runroot: &Path,
        bad: &mut impl FnMut(&str, &str),
    ) -> Self {
        if !docker_root.is_absolute() {
            bad("docker_root", "must be an absolute path");
        }
        Self {
            docker: docker_root.to_owned(),
            containerd: optional_root("containerd_state", containerd_state, bad),
            crio: optional_root("crio_runroot", crio_runroot, bad),
        }
    }
}

/// `path`, `None` when empty (off); a relative one is a problem.
fn optional_root(key: &str, path: &Path, bad: &mut impl FnMut(&str, &str)) -> Option<PathBuf> {
    if path.as_os_str().is_empty() {
        return None;
    }
    if !path.is_absolute() {
        bad(key, "must be an absolute path (or empty: not looked at)");
    }
    Some(path.to_owned())
}

/// What the engine says of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Id, name, image and pod (`namespace/name`); empty when unknown.
    pub container: ContainerRef,
    /// Whether the container was created with a terminal; `None` when
    /// its engine's file does not say or was not found.
    pub tty: Option<bool>,
}

/// Names and images of containers, read once per container and kept while
/// it has processes; bounded.
#[derive(Debug)]
pub struct ContainerNames {
    roots: ContainerRoots,
    /// Each container's reference and whether it has a terminal.
    cache: HashMap<String, (ContainerRef, Option<bool>)>,
    cap: usize,
    /// The source whose logs name the misses.
    source: &'static str,
}

impl ContainerNames {
    /// A cache of at most `cap` containers, reading under `roots`; misses
    /// are logged as `source`'s.
    pub fn new(roots: &ContainerRoots, cap: usize, source: &'static str) -> Self {
        Self {
            roots: roots.clone(),
            cache: HashMap::new(),
            cap,
            source,
        }
    }

    /// The reference of container `id` (a 64-hex id from [`container_id`],
    /// so it cannot escape the roots); name and image stay empty when no
    /// engine's file for it can be read.
    pub fn get(&mut self, id: &str) -> ContainerRef {
        self.get_with_tty(id).0
    }

    /// [`get`](Self::get), and whether the container was created with a
    /// terminal (`None` when its engine's file does not say or cannot be read).
    pub fn get_with_tty(&mut self, id: &str) -> (ContainerRef, Option<bool>) {
        if let Some(known) = self.cache.get(id) {
            return known.clone();
        }
        let (found, keep) = match identify(&self.roots, id) {
            Ok(found) => ((found.container, found.tty), true),
            Err(e) => {
                let unknown = ContainerRef {
                    id: id.to_owned(),
                    ..ContainerRef::default()
                };
                // A missing file is not cached: it may appear, and other
                // engines' containers cost a few failed opens per new
                // process only. A file that exists but is refused stays
                // refused: it is said once per container.
                let rejected = e.rejected();
                ContainerIdentityUnknown {
                    source: self.source,
                    container: id,
                    error: &e,
                }
                .emit();
                ((unknown, None), rejected)
            }
        };
        if keep && self.cache.len() < self.cap {
            self.cache.insert(id.to_owned(), found.clone());
        }
        found
    }

    /// Forgets containers that no longer have processes.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        self.cache.retain(|id, _| live.contains(id.as_str()));
    }
}

/// A container's name, image, pod and terminal could not be read (logged:
/// at debug level when no engine knows it, a warning when its file was refused).
struct ContainerIdentityUnknown<'a> {
    source: &'static str,
    container: &'a str,
    error: &'a AttributionError,
}

impl ContainerIdentityUnknown<'_> {
    fn emit(&self) {
        let error = vigil_core::error::chain(self.error);
        if self.error.rejected() {
            tracing::warn!(source = self.source, container = self.container, error = %error, "container name unknown: its engine's file was refused");
        } else {
            tracing::debug!(source = self.source, container = self.container, error = %error, "container name unknown");
        }
    }
}

/// What the engines' files say of container `id`: Docker's first, then
/// containerd's bundle, then CRI-O's. The first file found decides.
pub fn identify(roots: &ContainerRoots, id: &str) -> Result<Identity, AttributionError> {
    let docker = roots
        .docker
        .join("containers")
        .join(id)
        .join("config.v2.json");
    if let Some(bytes) = read_capped(&docker)? {
        return docker::identity(id, &bytes).map_err(|source| AttributionError::Decode {
            path: docker,
            source,
        });
    }
    let mut searched = vec![docker.display().to_string()];
    if let Some(state) = &roots.containerd {
        let tasks = state.join("io.containerd.runtime.v2.task");
        for namespace in subdirs(&tasks, |_| true) {
            let path = namespace.join(id).join("config.json");
            if let Some(bytes) = read_capped(&path)? {
                return bundle::containerd(id, &bytes)
                    .map_err(|source| AttributionError::Decode { path, source });
            }
        }
        searched.push(tasks.join("*").join(id).display().to_string());
    }
    if let Some(runroot) = &roots.crio {
        for driver in subdirs(runroot, |name| name.ends_with("-containers")) {
            let path = driver.join(id).join("userdata").join("config.json");
            if let Some(bytes) = read_capped(&path)? {
                return bundle::crio(id, &bytes)
                    .map_err(|source| AttributionError::Decode { path, source });
            }
        }
        searched.push(runroot.join("*-containers").join(id).display().to_string());
    }
    Err(AttributionError::NotFound {
        searched: searched.join(", "),
    })
}

/// The directories in `dir` whose names pass `keep`, at most
/// [`MAX_SUBDIRS`]; none when it cannot be listed (the engine is absent).
fn subdirs(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(&keep))
        .take(MAX_SUBDIRS)
        .map(|e| e.path())
        .collect()
}

/// The bytes of `path`, `None` when it does not exist; refused when larger
/// than [`CONFIG_MAX_BYTES`] (checked before reading, and while reading
/// in case it grows).
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, AttributionError> {
    let read_error = |source| AttributionError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let too_large = || AttributionError::TooLarge {
        path: path.to_owned(),
        cap: CONFIG_MAX_BYTES,
    };
    if file.metadata().map_err(read_error)?.len() > CONFIG_MAX_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(CONFIG_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > CONFIG_MAX_BYTES {
        return Err(too_large());
    }
    Ok(Some(bytes))
}

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

/// `namespace/name` of the pod a container belongs to, from the labels the
/// kubelet sets; empty for other containers.
pub fn pod(labels: &HashMap<String, String>) -> String {
    pod_of(
        labels.get("io.kubernetes.pod.namespace"),
        labels.get("io.kubernetes.pod.name"),
    )
}

/// `namespace/name`, empty unless both are known.
fn pod_of(namespace: Option<&String>, name: Option<&String>) -> String {
    match (namespace, name) {
        (Some(ns), Some(name)) if !ns.is_empty() && !name.is_empty() => format!("{ns}/{name}"),
        _ => String::new(),
    }
}
