use super::*;

/// Each (entry, image, selected) of a table.
fn check(cases: &[(&str, &str, bool)]) {
    for (entry, image, selected) in cases {
        let pattern = ImagePattern::new(entry);
        assert_eq!(
            pattern.matches(normalize_image(image)),
            *selected,
            "{entry} ({pattern:?}) ~ {image}"
        );
    }
}

#[test]
fn docker_hub_prefixes_are_implicit() {
    for (image, normalized) in [
        (" docker.io/library/nginx:1.25 ", "nginx:1.25"),
        ("index.docker.io/library/nginx", "nginx"),
        ("docker.io/falcosecurity/falco", "falcosecurity/falco"),
        ("index.docker.io/bitnami/redis", "bitnami/redis"),
        ("quay.io/calico/node", "quay.io/calico/node"),
    ] {
        assert_eq!(normalize_image(image), normalized, "{image}");
    }
}

#[test]
fn repositories() {
    assert_eq!(repository("nginx:1.25"), "nginx");
    assert_eq!(repository("docker.io/library/nginx@sha256:abc"), "nginx");
    assert_eq!(
        repository("registry:5000/shop/web:1.4"),
        "registry:5000/shop/web"
    );
    assert_eq!(
        repository("registry:5000/shop/web"),
        "registry:5000/shop/web"
    );
}

#[test]
fn exact_references_and_repositories() {
    assert_eq!(
        ImagePattern::new("docker.io/library/nginx:1.25"),
        ImagePattern::Exact("nginx:1.25".into())
    );
    check(&[
        ("nginx:1.25", "docker.io/library/nginx:1.25", true),
        ("nginx:1.25", "nginx:1.26", false),
        ("docker.io/library/nginx", "nginx", true),
        ("nginx", "nginx:1.26", true),
        ("nginx", "nginx@sha256:abc", true),
        ("nginx", "nginx-exporter:1", false),
        ("shop/web", "shop/web/admin:1", false),
    ]);
}

#[test]
fn prefixes_end_in_a_slash_or_a_star() {
    assert_eq!(
        ImagePattern::new("quay.io/calico/*"),
        ImagePattern::Prefix("quay.io/calico/".into())
    );
    check(&[
        ("registry.k8s.io/", "registry.k8s.io/pause:3.9", true),
        ("registry.k8s.io/", "registry.k8s.io.evil/pause", false),
        ("quay.io/calico/*", "quay.io/calico/node:v3.27", true),
        ("bitnami/redis*", "docker.io/bitnami/redis-cluster:7", true),
        ("quay.io/calico/*", "quay.io/cilium/cilium", false),
    ]);
}
