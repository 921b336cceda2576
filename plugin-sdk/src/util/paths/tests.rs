use super::*;

fn pattern(raw: &str) -> PathPattern {
    PathPattern::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
}

#[test]
fn file_dir_and_glob() {
    let file = pattern("/etc/docker/daemon.json");
    assert!(file.matches("/etc/docker/daemon.json"));
    assert!(!file.matches("/etc/docker/daemon.json.bak"));
    assert!(!file.is_dir());

    let dir = pattern("/etc/cni/net.d/");
    assert!(dir.matches("/etc/cni/net.d"));
    assert!(dir.matches("/etc/cni/net.d/10-calico.conflist"));
    assert!(!dir.matches("/etc/cni/net.d/sub/x.conf"));
    assert!(!dir.matches("/etc/cni/net.dx"));
    assert!(dir.is_the_dir("/etc/cni/net.d"));
    assert!(!dir.is_the_dir("/etc/cni/net.d/x"));

    let glob = pattern("/usr/bin/containerd-shim*");
    assert!(glob.matches("/usr/bin/containerd-shim-runc-v2"));
    assert!(glob.matches("/usr/bin/containerd-shim"));
    assert!(!glob.matches("/usr/bin/containerd"));
    assert!(!glob.matches("/usr/local/bin/containerd-shim"));

    let root_glob = pattern("/run?");
    assert!(root_glob.matches("/runc"));
}

#[test]
fn keeps_what_was_written() {
    assert_eq!(pattern("  /etc/cni/net.d/ ").raw(), "/etc/cni/net.d/");
}

#[test]
fn bad_patterns() {
    for bad in ["etc/x", "/a/../b", "/", "/a*/b", "/a/b*/"] {
        assert!(PathPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn errors_name_the_pattern() {
    let message = |raw: &str| PathPattern::parse(raw).map(|_| ()).unwrap_err().to_string();
    assert_eq!(message("etc/x"), "`etc/x` is not an absolute path");
    assert_eq!(message("/a/../b"), "`/a/../b` must not contain `..`");
    assert_eq!(message("//"), "`/` is too broad");
    assert_eq!(
        message("/a*/b"),
        "`/a*/b`: wildcards are only allowed in the last component"
    );
    assert_eq!(
        message("/a/b*/"),
        "`/a/b*/`: a pattern cannot name a directory"
    );
}

#[test]
fn wildcards() {
    assert!(wildcard("*", ""));
    assert!(wildcard("a*c", "abbbc"));
    assert!(wildcard("a?c", "abc"));
    assert!(!wildcard("a?c", "ac"));
    assert!(wildcard("*.y*ml", "kube-apiserver.yaml"));
    assert_eq!(file_name("/etc/kubernetes/manifests/x.yaml"), "x.yaml");
}

#[test]
fn every_selected_path_starts_with_the_prefix() {
    let cases = [
        (
            "/etc/docker/daemon.json",
            "/etc/docker/daemon.json",
            "/etc/docker/daemon.json",
        ),
        (
            "/etc/cni/net.d/",
            "/etc/cni/net.d/10-bridge.conf",
            "/etc/cni/net.d",
        ),
        ("/etc/cni/net.d/", "/etc/cni/net.d", "/etc/cni/net.d"),
        (
            "/usr/bin/containerd-shim*",
            "/usr/bin/containerd-shim-runc-v2",
            "/usr/bin/containerd-shim",
        ),
        ("/usr/bin/*", "/usr/bin/runc", "/usr/bin/"),
        ("/r?nc", "/runc", "/r"),
    ];
    for (pattern, path, prefix) in cases {
        let p = PathPattern::parse(pattern).unwrap();
        assert!(p.matches(path), "{pattern} selects {path}");
        assert_eq!(p.prefix(), prefix, "{pattern}");
        assert!(path.starts_with(&p.prefix()));
    }
}
