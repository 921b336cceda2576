use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use super::*;

/// A fresh directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-plugin-file-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn regular(dir: &Path, bytes: &[u8]) -> PathBuf {
    let p = dir.join("ok.wasm");
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

#[test]
fn a_regular_file_is_read_whole() {
    let dir = scratch("regular");
    let p = regular(&dir, b"\0asm-bytes");
    assert_eq!(read(&p, 1024).unwrap(), b"\0asm-bytes");
    // A symlink to a regular file is judged by the file.
    let link = dir.join("link.wasm");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    assert_eq!(read(&link, 1024).unwrap(), b"\0asm-bytes");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = scratch("fifo");
    let p = dir.join("x.wasm");
    let ok = std::process::Command::new("mkfifo")
        .arg(&p)
        .status()
        .unwrap();
    assert!(ok.success());
    let started = Instant::now();
    let e = read(&p, 1024).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(e, PluginFileError::NotRegular { kind: "a FIFO", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("x.wasm"), "{e}");
}

#[test]
fn a_symlink_to_a_device_or_a_directory_is_refused() {
    let dir = scratch("device");
    let p = dir.join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
    let e = read(&p, 1024).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("zero.wasm refused: it is a character device, not a regular file"),
        "{e}"
    );
    let d = dir.join("dir.wasm");
    std::fs::create_dir(&d).unwrap();
    assert!(matches!(
        read(&d, 1024),
        Err(PluginFileError::NotRegular {
            kind: "a directory",
            ..
        })
    ));
}

#[test]
fn a_file_over_the_cap_is_refused() {
    let dir = scratch("large");
    let p = regular(&dir, &[0; 100]);
    assert_eq!(read(&p, 100).unwrap().len(), 100);
    let e = read(&p, 99).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "plugin file {} refused: it is larger than plugins.max_file_bytes (99 bytes): 100 bytes",
            p.display()
        )
    );
}

#[test]
fn as_root_the_file_must_be_roots_and_not_writable_by_others() {
    if !running_as_root() {
        return;
    }
    let dir = scratch("owner");
    let p = regular(&dir, b"x");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o664)).unwrap();
    let e = read(&p, 10).unwrap_err();
    assert!(
        matches!(e, PluginFileError::Writable { mode: 0o664, .. }),
        "{e}"
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
    let e = read(&p, 10).unwrap_err();
    assert!(
        matches!(e, PluginFileError::NotRootOwned { uid: 65534, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("not root"), "{e}");
}
