use super::*;

fn bounds() -> StateBounds {
    StateBounds {
        quota_bytes: 32,
        max_value_bytes: 16,
        max_key_bytes: 8,
    }
}

#[test]
fn enforces_key_value_and_quota_bounds() {
    let mut s = PluginState::in_memory(bounds());
    assert_eq!(
        s.set(String::new(), vec![]),
        Err(StateRefusal::KeyTooLong(8))
    );
    assert_eq!(
        s.set("k".repeat(9), vec![]),
        Err(StateRefusal::KeyTooLong(8))
    );
    assert_eq!(
        s.set("k".into(), vec![0; 17]),
        Err(StateRefusal::ValueTooLarge(16))
    );
    s.set("a".into(), vec![1; 15]).unwrap();
    s.set("b".into(), vec![2; 15]).unwrap();
    assert_eq!(
        s.set("c".into(), vec![3; 1]),
        Err(StateRefusal::QuotaExceeded(32))
    );
    // Replacing a value frees the old one's bytes first.
    s.set("a".into(), vec![4; 14]).unwrap();
    assert_eq!(s.bytes(), 31);
    s.delete("a");
    assert_eq!(s.bytes(), 16);
    assert_eq!(s.keys(""), vec!["b".to_owned()]);
}

#[test]
fn persists_across_reloads() {
    let dir = std::env::temp_dir().join(format!("vigil-state-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let mut s = PluginState::persisted(&dir, "churn", bounds()).unwrap();
    s.set("x/1".into(), vec![0, 255, 7]).unwrap();
    s.set("y".into(), b"v".to_vec()).unwrap();
    s.flush().unwrap();
    let again = PluginState::persisted(&dir, "churn", bounds()).unwrap();
    assert_eq!(again.get("x/1"), Some(vec![0, 255, 7]));
    assert_eq!(again.keys("x/"), vec!["x/1".to_owned()]);
    assert_eq!(again.bytes(), s.bytes());
    fs::write(dir.join("churn.state.json"), b"{\"k\":\"zz\"}").unwrap();
    assert!(matches!(
        PluginState::persisted(&dir, "churn", bounds()),
        Err(StateStoreError::Corrupt { .. })
    ));
    let _ = fs::remove_dir_all(&dir);
}
