//! A scratch directory leaves nothing behind.

use super::TempDir;

#[test]
fn removed_with_its_contents_when_dropped() {
    let dir = TempDir::new("temp-test");
    std::fs::create_dir_all(dir.join("a/b")).expect("create");
    std::fs::write(dir.join("a/b/c"), "x").expect("write");
    let path = dir.path().to_owned();
    assert!(path.is_dir());
    drop(dir);
    assert!(!path.exists());
}
