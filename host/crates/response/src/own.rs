//! Vigil's own container and pod, which are never quarantined: pausing the
//! agent would blind it, and an attacker who can make Vigil report its own
//! container must not be able to switch it off that way.
//!
//! The container is found from `/proc/self/mountinfo` (Docker bind-mounts
//! `/var/lib/docker/containers/<id>/{hostname,hosts,resolv.conf}` into every
//! container, cgroup v1 or v2) and `/proc/self/cgroup` (cgroup v1 paths and
//! systemd scopes such as `docker-<id>.scope`, `cri-containerd-<id>.scope`).
//! The pod comes from `VIGIL_POD_NAMESPACE`/`VIGIL_POD_NAME` (the
//! DaemonSet sets them through the downward API).

use std::collections::BTreeSet;

/// Who Vigil is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Own {
    /// Full (64 hex digit) ids of the container(s) Vigil runs in.
    pub containers: BTreeSet<String>,
    /// `namespace/name` of Vigil's pod.
    pub pod: Option<String>,
}

impl Own {
    /// Reads this process's identity.
    pub fn current() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let mut containers = container_ids(&read("/proc/self/mountinfo"));
        containers.extend(container_ids(&read("/proc/self/cgroup")));
        let pod = match (
            std::env::var("VIGIL_POD_NAMESPACE"),
            std::env::var("VIGIL_POD_NAME"),
        ) {
            (Ok(ns), Ok(name)) if !ns.is_empty() && !name.is_empty() => {
                Some(format!("{ns}/{name}"))
            }
            _ => None,
        };
        Self { containers, pod }
    }

    /// Whether `id` (full or abbreviated, at least 12 digits) is Vigil's container.
    pub fn is_own_container(&self, id: &str) -> bool {
        id.len() >= 12 && self.containers.iter().any(|c| c.starts_with(id))
    }

    /// Whether `namespace/name` is Vigil's pod.
    pub fn is_own_pod(&self, pod: &str) -> bool {
        self.pod.as_deref() == Some(pod)
    }
}

/// The `namespace/name` of the pod a Docker container belongs to, from the
/// name the kubelet gives it (`k8s_<container>_<pod>_<namespace>_<uid>_<n>`);
/// inside a pod, cgroup namespaces hide the container id from Vigil itself.
pub fn kubelet_pod(container_name: &str) -> Option<String> {
    let parts: Vec<&str> = container_name
        .trim_start_matches('/')
        .strip_prefix("k8s_")?
        .split('_')
        .collect();
    match parts.as_slice() {
        [_, pod, ns, _, _] if !pod.is_empty() && !ns.is_empty() => Some(format!("{ns}/{pod}")),
        _ => None,
    }
}

/// Every 64-hex-digit container id in mountinfo or cgroup text, found after
/// `containers/`, `docker/`, `docker-`, `cri-containerd-`, `crio-` or
/// `libpod-` (the layouts of Docker, containerd, CRI-O and Podman).
pub fn container_ids(text: &str) -> BTreeSet<String> {
    const MARKERS: [&str; 7] = [
        "/containers/",
        "/docker/",
        "docker-",
        "cri-containerd-",
        "crio-",
        "libpod-",
        "/kubepods/",
    ];
    let mut out = BTreeSet::new();
    for line in text.lines() {
        for marker in MARKERS {
            let mut rest = line;
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
                if id.len() == 64 {
                    out.insert(id.to_ascii_lowercase());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9002afd52e26f00c16761b0b702d2d25c95bd7c59c33b57eab67f8dda56cfaaa";

    #[test]
    fn finds_the_container_in_mountinfo_and_cgroup() {
        let mountinfo = format!(
            "612 590 254:1 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw\n\
             613 590 254:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n\
             614 590 0:52 / /proc rw - proc proc rw\n"
        );
        assert_eq!(
            container_ids(&mountinfo).into_iter().collect::<Vec<_>>(),
            [ID]
        );
        let v1 = format!("12:memory:/docker/{ID}\n11:cpu:/docker/{ID}\n");
        assert!(container_ids(&v1).contains(ID));
        let scope = format!("0::/system.slice/docker-{ID}.scope\n");
        assert!(container_ids(&scope).contains(ID));
        let k8s =
            format!("0::/kubepods.slice/kubepods-besteffort.slice/cri-containerd-{ID}.scope\n");
        assert!(container_ids(&k8s).contains(ID));
        assert!(container_ids("0::/user.slice/user-0.slice/session-1.scope\n").is_empty());

        let own = Own {
            containers: container_ids(&scope),
            pod: Some("vigil/vigil-abcde".into()),
        };
        assert!(own.is_own_container(ID));
        assert!(own.is_own_container(&ID[..12]));
        assert!(!own.is_own_container(&ID[..4]));
        assert!(!own.is_own_container("0123456789ab"));
        assert!(own.is_own_pod("vigil/vigil-abcde"));
        assert!(!own.is_own_pod("shop/web"));
        assert_eq!(
            kubelet_pod("/k8s_vigil_vigil-abcde_vigil_0f3c-uid_0").as_deref(),
            Some("vigil/vigil-abcde")
        );
        assert_eq!(kubelet_pod("evasive_container"), None);
    }
}
