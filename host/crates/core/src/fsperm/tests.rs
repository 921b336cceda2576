use std::os::unix::fs::PermissionsExt;

use super::*;

fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("vigil-fsperm-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    p
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn a_missing_directory_is_created_private() {
    let root = scratch("create");
    let dir = root.join("a/b");
    let t = private_tree(&dir).unwrap();
    assert!(t.created);
    assert_eq!(mode(&dir), DIR_MODE);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn an_open_tree_is_tightened_and_symlinks_left_alone() {
    let dir = scratch("tighten");
    fs::create_dir_all(dir.join("state")).unwrap();
    fs::write(dir.join("spool.sqlite"), b"").unwrap();
    fs::write(dir.join("state/p.json"), b"{}").unwrap();
    chmod(&dir, 0o755);
    chmod(&dir.join("state"), 0o777);
    chmod(&dir.join("spool.sqlite"), 0o644);
    chmod(&dir.join("state/p.json"), 0o666);
    // A symlink to a file elsewhere: not followed, its target untouched.
    let target = scratch("tighten-target");
    fs::write(&target, b"").unwrap();
    chmod(&target, 0o644);
    std::os::unix::fs::symlink(&target, dir.join("state/link")).unwrap();

    let t = private_tree(&dir).unwrap();
    assert!(!t.created);
    assert_eq!(t.tightened.len(), 4, "{t:?}");
    assert!(t.tightened.iter().any(|x| x.path == dir && x.was == 0o755));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("state")), 0o700);
    assert_eq!(mode(&dir.join("spool.sqlite")), 0o600);
    assert_eq!(mode(&dir.join("state/p.json")), 0o600);
    assert_eq!(mode(&target), 0o644, "symlink followed");
    // A second pass has nothing left to do.
    assert!(private_tree(&dir).unwrap().tightened.is_empty());
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_file(&target).unwrap();
}

#[test]
fn files_are_created_and_reopened_private() {
    let dir = scratch("files");
    private_dir(&dir).unwrap();
    let db = dir.join("x.sqlite");
    assert!(private_sqlite(&db).unwrap().is_empty());
    assert_eq!(mode(&db), 0o600);
    chmod(&db, 0o644);
    fs::write(dir.join("x.sqlite-wal"), b"").unwrap();
    chmod(&dir.join("x.sqlite-wal"), 0o644);
    assert_eq!(private_sqlite(&db).unwrap().len(), 2);
    assert_eq!(mode(&dir.join("x.sqlite-wal")), 0o600);

    let tmp = dir.join("t.tmp");
    fs::write(&tmp, b"old").unwrap();
    chmod(&tmp, 0o644);
    drop(create_private(&tmp).unwrap());
    assert_eq!(mode(&tmp), 0o600);
    assert_eq!(fs::read(&tmp).unwrap(), b"");
    let log = dir.join("a.log");
    drop(append_private(&log).unwrap());
    assert_eq!(mode(&log), 0o600);
    // Not a regular file: refused, named.
    let not_file = dir.join("f.sqlite");
    fs::create_dir(&not_file).unwrap();
    let e = private_file(&not_file).unwrap_err();
    assert!(matches!(e, FsPermError::NotRegularFile { .. }), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_of_another_user_is_refused() {
    if effective_uid() != 0 {
        // Only root can give a directory away.
        return;
    }
    let dir = scratch("foreign");
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
    chmod(&dir, 0o755);
    let e = private_tree(&dir).unwrap_err();
    assert!(
        e.to_string()
            .contains("owned by uid 65534, not by Vigil's user (uid 0)"),
        "{e}"
    );
    assert_eq!(mode(&dir), 0o755, "left as it was");
    fs::remove_dir_all(&dir).unwrap();
}
