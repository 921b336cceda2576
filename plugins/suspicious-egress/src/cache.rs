//! A bounded map that forgets the least recently used entries in bulk.

use std::collections::HashMap;
use std::hash::Hash;

/// Two generations: lookups promote entries from the old generation to the
/// new one; when the new one reaches half the capacity, the old one is
/// dropped and the new one becomes old. So at most `capacity` entries are
/// kept, every operation is O(1), and what was not used during a whole
/// generation is forgotten.
#[derive(Debug, Clone)]
pub(crate) struct Bounded<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    half: usize,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    /// A map of at most `capacity` entries (at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
            half: (capacity / 2).max(1),
        }
    }

    /// The entry for `key`, if any, marked as recently used.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.young.contains_key(key) {
            let (key, value) = self.old.remove_entry(key)?;
            self.insert(key, value);
        }
        self.young.get_mut(key)
    }

    /// Inserts or replaces `key`.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.old.remove(&key);
        if !self.young.contains_key(&key) && self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    /// Number of entries kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
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
}
