//! The WIT in `wit/` is Vigil's public contract. This test fails when its
//! meaning changes (anything but comments and whitespace) without a version
//! bump recorded in `wit/contract.lock`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and benchmarks fail loudly on broken fixtures"
)]

use sha2::{Digest, Sha256};
use vigil_test_support::fixtures::root;

fn wit_files() -> Vec<(String, String)> {
    let dir = root().join("wit");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// The contract without comments and with whitespace collapsed.
fn fingerprint(files: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update(name.as_bytes());
        let tokens: Vec<&str> = text
            .lines()
            .flat_map(|line| {
                line.split("//")
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
            })
            .collect();
        h.update(tokens.join(" ").as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn package_version(files: &[(String, String)]) -> String {
    let mut versions: Vec<String> = files
        .iter()
        .filter_map(|(_, t)| {
            t.lines()
                .find_map(|l| l.trim().strip_prefix("package vigil:detector@"))
                .map(|v| v.trim_end_matches(';').to_owned())
        })
        .collect();
    versions.dedup();
    assert_eq!(
        versions.len(),
        1,
        "every WIT file declares the same package version: {versions:?}"
    );
    versions.remove(0)
}

#[test]
fn wit_changes_come_with_a_version_bump() {
    let files = wit_files();
    let version = package_version(&files);
    let print = fingerprint(&files);
    let lock = std::fs::read_to_string(root().join("wit/contract.lock")).unwrap();
    let recorded = lock.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (v, p) = l.split_once(' ')?;
        (v == format!("vigil:detector@{version}"))
            .then(|| p.trim().trim_start_matches("sha256:").to_owned())
    });
    match recorded {
        None => panic!(
            "WIT version {version} is not in wit/contract.lock; after reviewing the change, add:\nvigil:detector@{version} sha256:{print}"
        ),
        Some(r) => assert_eq!(
            r, print,
            "the WIT contract changed but its version ({version}) did not: bump the package version in every wit/*.wit file, \
             then record `vigil:detector@<new> sha256:<fingerprint>` in wit/contract.lock"
        ),
    }
    assert_eq!(
        vigil::WIT_PACKAGE,
        format!("vigil:detector@{version}"),
        "host's WIT_PACKAGE constant"
    );
    assert_eq!(
        vigil_runtime::COMPATIBLE_VERSIONS.last(),
        Some(&version.as_str()),
        "the host accepts plugins of the current version"
    );
    assert!(vigil_runtime::import_allowed(&format!(
        "vigil:detector/log@{version}"
    )));
}

#[test]
fn fingerprint_ignores_comments_but_not_meaning() {
    let base = vec![(
        "a.wit".to_owned(),
        "/// doc\nrecord r {\n  a: u32,\n}\n".to_owned(),
    )];
    let reworded = vec![(
        "a.wit".to_owned(),
        "/// other words\nrecord r {   a: u32,\n}\n".to_owned(),
    )];
    let changed = vec![(
        "a.wit".to_owned(),
        "/// doc\nrecord r {\n  a: u64,\n}\n".to_owned(),
    )];
    assert_eq!(fingerprint(&base), fingerprint(&reworded));
    assert_ne!(fingerprint(&base), fingerprint(&changed));
}

#[test]
fn every_wit_item_is_documented() {
    let mut missing = Vec::new();
    for (name, text) in wit_files() {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let skip = line.is_empty()
                || line.starts_with("//")
                || line.starts_with('}')
                || line.starts_with("package ")
                || line.starts_with("use ")
                || *line == "{";
            if skip {
                continue;
            }
            let documented = i > 0 && lines[i - 1].starts_with("///");
            if !documented {
                missing.push(format!("{name}:{}: {line}", i + 1));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "WIT items without a `///` doc comment:\n{}",
        missing.join("\n")
    );
}
