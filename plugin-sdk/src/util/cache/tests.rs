use super::*;

#[test]
fn keeps_what_is_used_and_stays_bounded() {
    let mut map = Bounded::new(4);
    map.insert(1, "a");
    map.insert(2, "b");
    map.insert(3, "c"); // 1 and 2 become old
    assert!(map.get_mut(&1).is_some()); // promoted: young 3, 1; old 2
    map.insert(4, "d"); // old 3, 1; 2 forgotten
    map.insert(5, "e");
    map.insert(6, "f"); // old 4, 5; 3 and 1 forgotten
    assert!(map.get_mut(&2).is_none());
    assert!(map.get_mut(&1).is_none());
    assert!(map.get_mut(&5).is_some());
    assert!(map.len() <= 4);
}

#[test]
fn removes_from_either_generation() {
    let mut map: Bounded<String, u32> = Bounded::new(4);
    assert!(map.is_empty());
    map.insert("a".to_owned(), 1);
    map.insert("b".to_owned(), 2);
    map.insert("c".to_owned(), 3); // a and b become old
    assert_eq!(map.remove("a"), Some(1)); // from the old generation
    assert_eq!(map.remove("c"), Some(3)); // from the young one
    assert_eq!(map.remove("c"), None);
    assert_eq!(map.len(), 1);
    if let Some(b) = map.get_mut("b") {
        *b += 40;
    }
    assert_eq!(map.remove("b"), Some(42));
    assert!(map.is_empty());
}
