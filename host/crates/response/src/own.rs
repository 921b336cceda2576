//! Vigil's own container and pod, which are never quarantined: pausing the
//! agent would blind it, and an attacker who can make Vigil report its own
//! container must not be able to switch it off that way.
//!
//! The container is recognised from what the Engine returns for the target's
//! full id, never from a name or a label (whoever starts a container chooses
//! those):
//! - by process: the container's init process (`State.Pid` of the inspect)
//!   lives in Vigil's own mount namespace. Docker gives every container a
//!   mount namespace of its own (even with `--pid host`, `--network host` or
//!   `--privileged`), so on the host no container matches, and inside a
//!   container only Vigil's does. This needs the container's pid to be
//!   visible in Vigil's `/proc` (Vigil on the host, or with `hostPID`);
//! - by id: the full ids in `/proc/self/mountinfo` (Docker bind-mounts
//!   `/var/lib/docker/containers/<id>/{hostname,hosts,resolv.conf}` into every
//!   container, cgroup v1 or v2) and `/proc/self/cgroup` (cgroup v1 paths and
//!   systemd scopes such as `docker-<id>.scope`, `cri-containerd-<id>.scope`),
//!   compared whole, which covers a Vigil container without `hostPID`.
//!
//! The pod comes from `VIGIL_POD_NAMESPACE`/`VIGIL_POD_NAME` (the
//! DaemonSet sets them through the downward API).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Who Vigil is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Own {
    /// Full (64 hex digit) ids of the container(s) Vigil runs in.
    pub containers: BTreeSet<String>,
    /// `namespace/name` of Vigil's pod.
    pub pod: Option<String>,
    /// Vigil's mount namespace (`readlink /proc/self/ns/mnt`), if readable.
    pub mount_ns: Option<PathBuf>,
    /// Where `/proc` is (tests point it elsewhere).
    pub proc: PathBuf,
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
        let proc = PathBuf::from("/proc");
        Self {
            containers,
            pod,
            mount_ns: mount_ns(&proc, "self"),
            proc,
        }
    }

    /// Whether the container of full id `id`, whose init process is `pid`
    /// (the Engine's `State.Pid`; 0 when it is not running), is Vigil's.
    pub fn is_own_container(&self, id: &str, pid: u32) -> bool {
        if self.containers.contains(&id.to_ascii_lowercase()) {
            return true;
        }
        pid > 0
            && self.mount_ns.is_some()
            && mount_ns(&self.proc, &pid.to_string()) == self.mount_ns
    }

    /// Whether `namespace/name` is Vigil's pod.
    pub fn is_own_pod(&self, pod: &str) -> bool {
        self.pod.as_deref() == Some(pod)
    }
}

/// The mount namespace of `/proc/<pid>`, as `readlink` shows it (`mnt:[4026531841]`).
fn mount_ns(proc: &Path, pid: &str) -> Option<PathBuf> {
    std::fs::read_link(proc.join(pid).join("ns/mnt")).ok()
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
            mount_ns: None,
            proc: "/nonexistent".into(),
        };
        assert!(own.is_own_container(ID, 0));
        assert!(own.is_own_container(&ID.to_uppercase(), 0));
        // Only the full id: a prefix is something a plugin could guess.
        assert!(!own.is_own_container(&ID[..12], 0));
        assert!(!own.is_own_container(&ID[..4], 0));
        assert!(!own.is_own_container("0123456789ab", 0));
        assert!(own.is_own_pod("vigil/vigil-abcde"));
        assert!(!own.is_own_pod("shop/web"));
        assert_eq!(
            kubelet_pod("/k8s_vigil_vigil-abcde_vigil_0f3c-uid_0").as_deref(),
            Some("vigil/vigil-abcde")
        );
        assert_eq!(kubelet_pod("evasive_container"), None);
    }

    /// Vigil's own processes share its mount namespace; a process in a new
    /// mount namespace (what every container's init gets) does not.
    #[test]
    fn recognises_its_own_container_by_the_mount_namespace_of_its_pid() {
        let own = Own::current();
        let other = "ab".repeat(32);
        assert!(own.mount_ns.is_some(), "/proc/self/ns/mnt readable");
        assert!(own.is_own_container(&other, std::process::id()));
        assert!(!own.is_own_container(&other, 0));
        // `unshare --mount` (root, as the tests run here) starts a process in
        // a mount namespace of its own, as Docker does for a container.
        let Ok(mut child) = std::process::Command::new("unshare")
            .args(["--mount", "sleep", "30"])
            .spawn()
        else {
            eprintln!("no unshare(1): skipping the other-namespace half");
            return;
        };
        let pid = child.id();
        // `unshare` execs `sleep` once the namespace exists.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|p| !p.to_string_lossy().contains("sleep"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let separate = !own.is_own_container(&other, pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            separate,
            "a process in its own mount namespace is not Vigil"
        );
    }
}
