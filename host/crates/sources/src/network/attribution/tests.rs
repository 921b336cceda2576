//! The engines' files: Docker's `config.v2.json` and the OCI bundles of
//! containerd and CRI-O, well-formed, cut short, oversized and garbage;
//! the order the engines are asked in.

use std::path::{Path, PathBuf};

use super::{AttributionError, CONFIG_MAX_BYTES, ContainerNames, ContainerRoots, bundle, identify};

const ID: &str = "4f1c7a9be2d3c0a18e5b6d7f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b";

/// A trimmed bundle as containerd's CRI plugin writes it for a pod's container.
const CONTAINERD_BUNDLE: &str = r#"{
  "ociVersion": "1.1.0",
  "process": {"user": {"uid": 0, "gid": 0}, "args": ["nginx", "-g", "daemon off;"], "cwd": "/"},
  "root": {"path": "rootfs"},
  "annotations": {
    "io.kubernetes.cri.container-type": "container",
    "io.kubernetes.cri.container-name": "web",
    "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.27",
    "io.kubernetes.cri.sandbox-id": "9f2e",
    "io.kubernetes.cri.sandbox-name": "web-7d9c5b8f6-x2x4q",
    "io.kubernetes.cri.sandbox-namespace": "shop",
    "io.kubernetes.cri.sandbox-uid": "5e1a"
  }
}"#;

/// A trimmed bundle as CRI-O writes it (its own annotations and the kubelet's labels).
const CRIO_BUNDLE: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "process": {"terminal": true, "args": ["/bin/sh"], "cwd": "/"},
  "annotations": {
    "io.container.manager": "cri-o",
    "io.kubernetes.cri-o.ContainerType": "container",
    "io.kubernetes.cri-o.ContainerName": "k8s_debug_toolbox_ops_5e1a_0",
    "io.kubernetes.cri-o.ImageName": "quay.io/example/toolbox:2",
    "io.kubernetes.container.name": "debug",
    "io.kubernetes.pod.name": "toolbox",
    "io.kubernetes.pod.namespace": "ops"
  }
}"#;

#[test]
fn containerd_bundle_names_the_container_and_its_pod() {
    let found = bundle::containerd(ID, CONTAINERD_BUNDLE.as_bytes()).unwrap();
    assert_eq!(found.container.id, ID);
    assert_eq!(found.container.name, "web");
    assert_eq!(found.container.image, "docker.io/library/nginx:1.27");
    assert_eq!(found.container.pod, "shop/web-7d9c5b8f6-x2x4q");
    // `process.terminal` absent: the runtime spec's default, no terminal.
    assert_eq!(found.tty, Some(false));
}

#[test]
fn crio_bundle_prefers_the_kubelet_container_name() {
    let found = bundle::crio(ID, CRIO_BUNDLE.as_bytes()).unwrap();
    assert_eq!(found.container.name, "debug");
    assert_eq!(found.container.image, "quay.io/example/toolbox:2");
    assert_eq!(found.container.pod, "ops/toolbox");
    assert_eq!(found.tty, Some(true));
    // Without the kubelet's label, CRI-O's own (long) name.
    let own = CRIO_BUNDLE.replace("io.kubernetes.container.name", "x");
    let found = bundle::crio(ID, own.as_bytes()).unwrap();
    assert_eq!(found.container.name, "k8s_debug_toolbox_ops_5e1a_0");
}

#[test]
fn a_bundle_without_annotations_or_process_names_nothing() {
    // A container not created through CRI (`ctr run`, nerdctl without labels).
    let found = bundle::containerd(ID, br#"{"ociVersion":"1.1.0"}"#).unwrap();
    assert_eq!(found.container.name, "");
    assert_eq!(found.container.image, "");
    assert_eq!(found.container.pod, "");
    assert_eq!(found.tty, None);
    // One engine's keys mean nothing to the other's parser; a pod is both
    // halves or nothing.
    let found = bundle::crio(ID, CONTAINERD_BUNDLE.as_bytes()).unwrap();
    assert_eq!(
        (found.container.name.as_str(), found.container.pod.as_str()),
        ("", "")
    );
    let half = r#"{"annotations":{"io.kubernetes.cri.sandbox-name":"p"}}"#;
    assert_eq!(
        bundle::containerd(ID, half.as_bytes())
            .unwrap()
            .container
            .pod,
        ""
    );
}

#[test]
fn cut_short_or_garbage_bundles_are_errors() {
    for bytes in [
        &CONTAINERD_BUNDLE.as_bytes()[..CONTAINERD_BUNDLE.len() / 2],
        b"".as_slice(),
        b"\xff\xfe\x00garbage".as_slice(),
        b"[1,2,3]".as_slice(),
        br#"{"annotations":{"io.kubernetes.cri.container-name":7}}"#.as_slice(),
        br#"{"process":{"terminal":"yes"}}"#.as_slice(),
    ] {
        assert!(bundle::containerd(ID, bytes).is_err(), "{bytes:?}");
        assert!(bundle::crio(ID, bytes).is_err(), "{bytes:?}");
    }
}

/// Roots under a temporary directory, every engine's.
struct Node {
    dir: PathBuf,
}

impl Node {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("vigil-attribution-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn roots(&self) -> ContainerRoots {
        ContainerRoots {
            docker: self.dir.join("docker"),
            containerd: Some(self.dir.join("containerd")),
            crio: Some(self.dir.join("storage")),
        }
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn containerd(&self, namespace: &str, bytes: &[u8]) -> PathBuf {
        self.write(
            &format!("containerd/io.containerd.runtime.v2.task/{namespace}/{ID}/config.json"),
            bytes,
        )
    }

    fn crio(&self, bytes: &[u8]) -> PathBuf {
        self.write(
            &format!("storage/overlay-containers/{ID}/userdata/config.json"),
            bytes,
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn docker_first_then_the_bundles() {
    let node = Node::new("order");
    assert!(matches!(
        identify(&node.roots(), ID),
        Err(AttributionError::NotFound { .. })
    ));
    node.crio(CRIO_BUNDLE.as_bytes());
    assert_eq!(identify(&node.roots(), ID).unwrap().container.name, "debug");
    // containerd's bundle, in whichever namespace, before CRI-O's.
    node.containerd("k8s.io", CONTAINERD_BUNDLE.as_bytes());
    assert_eq!(identify(&node.roots(), ID).unwrap().container.name, "web");
    node.write(
        &format!("docker/containers/{ID}/config.v2.json"),
        br#"{"Name":"/api","Config":{"Image":"api:3","Tty":true,"Labels":{"io.kubernetes.pod.namespace":"a","io.kubernetes.pod.name":"b"}}}"#,
    );
    let found = identify(&node.roots(), ID).unwrap();
    assert_eq!(
        (
            found.container.name.as_str(),
            found.container.image.as_str(),
            found.container.pod.as_str(),
            found.tty
        ),
        ("api", "api:3", "a/b", Some(true))
    );
    // A root turned off is not looked at.
    std::fs::remove_dir_all(node.dir.join("docker")).unwrap();
    let roots = ContainerRoots {
        containerd: None,
        ..node.roots()
    };
    assert_eq!(identify(&roots, ID).unwrap().container.name, "debug");
}

#[test]
fn oversized_files_are_refused_unread_and_said_once() {
    let node = Node::new("oversized");
    let mut big = CONTAINERD_BUNDLE.as_bytes().to_vec();
    big.pop();
    let padding = format!(r#","x":"{}"}}"#, "a".repeat(CONFIG_MAX_BYTES as usize));
    big.extend_from_slice(padding.as_bytes());
    let path = node.containerd("k8s.io", &big);
    match identify(&node.roots(), ID) {
        Err(AttributionError::TooLarge { path: p, cap }) => {
            assert_eq!((p.as_path(), cap), (path.as_path(), CONFIG_MAX_BYTES));
        }
        other => panic!("{other:?}"),
    }
    // Refused and remembered: rewriting it does not make it read again
    // while the container lives.
    let mut names = ContainerNames::new(&node.roots(), 8, "test");
    let (unknown, tty) = names.get_with_tty(ID);
    assert_eq!(
        (unknown.id.as_str(), unknown.name.as_str(), tty),
        (ID, "", None)
    );
    node.containerd("k8s.io", CONTAINERD_BUNDLE.as_bytes());
    assert_eq!(names.get(ID).name, "");
    names.retain(&std::collections::HashSet::new());
    assert_eq!(names.get(ID).name, "web");
}

#[test]
fn a_missing_file_is_asked_again_and_garbage_is_a_decode_error() {
    let node = Node::new("missing");
    let mut names = ContainerNames::new(&node.roots(), 8, "test");
    assert_eq!(names.get(ID).name, "");
    let path = node.crio(b"{\"annotations\":");
    match identify(&node.roots(), ID) {
        Err(AttributionError::Decode { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    node.crio(CRIO_BUNDLE.as_bytes());
    // The first miss (nothing there) was not remembered.
    assert_eq!(names.get(ID).name, "debug");
}

#[test]
fn roots_are_checked_together() {
    let mut problems = Vec::new();
    let mut bad = |key: &str, reason: &str| problems.push(format!("{key}: {reason}"));
    let roots = ContainerRoots::check(
        Path::new("docker"),
        Path::new("run/containerd"),
        Path::new(""),
        &mut bad,
    );
    assert_eq!(roots.crio, None);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("docker_root:"));
    assert!(problems[1].starts_with("containerd_state:"));
}
