//! The OCI runtime bundle's `config.json` that containerd (runtime v2
//! shim) and CRI-O write for every running container: the runtime spec, with
//! the engine's annotations naming the container, its image and its pod.
//!
//! Annotation keys are those the engines set (containerd's CRI plugin,
//! `pkg/cri/annotations`; CRI-O's `pkg/annotations`, and the kubelet's
//! labels CRI-O copies into the spec). `process.terminal` is the runtime
//! spec's own field: absent means no terminal.

use std::collections::HashMap;

use serde::Deserialize;
use vigil_core::model::ContainerRef;

use super::{Identity, pod_of};

/// The part of the runtime spec read here.
#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    annotations: HashMap<String, String>,
    process: Option<Process>,
}

#[derive(Deserialize)]
struct Process {
    #[serde(default)]
    terminal: bool,
}

impl Spec {
    fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The first of `keys` with a non-empty value.
    fn annotation(&self, keys: &[&str]) -> Option<&String> {
        keys.iter()
            .find_map(|k| self.annotations.get(*k).filter(|v| !v.is_empty()))
    }

    fn identity(&self, id: &str, keys: &Keys) -> Identity {
        let text = |keys: &[&str]| self.annotation(keys).cloned().unwrap_or_default();
        Identity {
            container: ContainerRef {
                id: id.to_owned(),
                name: text(keys.name),
                image: text(keys.image),
                pod: pod_of(
                    self.annotation(keys.pod_namespace),
                    self.annotation(keys.pod_name),
                ),
            },
            // A spec without a process cannot have been started: it says nothing.
            tty: self.process.as_ref().map(|p| p.terminal),
        }
    }
}

/// Where an engine writes each part of a container's identity, in order
/// of preference.
struct Keys {
    name: &'static [&'static str],
    image: &'static [&'static str],
    pod_namespace: &'static [&'static str],
    pod_name: &'static [&'static str],
}

const CONTAINERD: Keys = Keys {
    name: &["io.kubernetes.cri.container-name"],
    image: &["io.kubernetes.cri.image-name"],
    pod_namespace: &["io.kubernetes.cri.sandbox-namespace"],
    pod_name: &["io.kubernetes.cri.sandbox-name"],
};

/// The kubelet's labels first: CRI-O's own `ContainerName` is the
/// kubelet's long `k8s_<container>_<pod>_…` form.
const CRIO: Keys = Keys {
    name: &[
        "io.kubernetes.container.name",
        "io.kubernetes.cri-o.ContainerName",
    ],
    image: &["io.kubernetes.cri-o.ImageName"],
    pod_namespace: &["io.kubernetes.pod.namespace"],
    pod_name: &["io.kubernetes.pod.name"],
};

/// Container `id` as containerd's bundle
/// (`io.containerd.runtime.v2.task/<namespace>/<id>/config.json`) describes it.
pub fn containerd(id: &str, bytes: &[u8]) -> Result<Identity, serde_json::Error> {
    Ok(Spec::parse(bytes)?.identity(id, &CONTAINERD))
}

/// Container `id` as CRI-O's bundle
/// (`overlay-containers/<id>/userdata/config.json`) describes it.
pub fn crio(id: &str, bytes: &[u8]) -> Result<Identity, serde_json::Error> {
    Ok(Spec::parse(bytes)?.identity(id, &CRIO))
}
