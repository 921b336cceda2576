//! A bounded map kept in memory and mirrored to the host's key-value state,
//! so that what the plugin learnt (who created which workload, which
//! controller owns which object, what was already reported) survives
//! restarts without growing without bound.
//!
//! Each entry is one state key, `<prefix><key>`, whose value is
//! `<sequence>\n<value>`: the sequence orders entries by last write, and the
//! oldest are evicted past the cap (in memory and in state). The state is
//! read once, on first use, inside a host call.

use std::collections::{BTreeMap, HashMap};

use vigil_plugin_sdk::host;

/// One bounded, persisted map.
#[derive(Debug, Clone)]
pub(crate) struct BoundedMap {
    prefix: &'static str,
    cap: usize,
    entries: HashMap<String, (u64, String)>,
    order: BTreeMap<u64, String>,
    next: u64,
    loaded: bool,
}

impl BoundedMap {
    /// An empty map over state keys starting with `prefix`, holding at most `cap` entries.
    pub(crate) fn new(prefix: &'static str, cap: usize) -> Self {
        Self {
            prefix,
            cap: cap.max(1),
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            loaded: false,
        }
    }

    /// Changes the cap (evicting at the next write).
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// Reads the persisted entries, once. Must run inside a host call.
    pub(crate) fn load(&mut self) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        for full in host::state::keys(self.prefix) {
            let Some(value) = host::state::get(&full) else {
                continue;
            };
            let Ok(text) = String::from_utf8(value) else {
                host::state::delete(&full);
                continue;
            };
            let Some((seq, value)) = text
                .split_once('\n')
                .and_then(|(seq, value)| Some((seq.parse::<u64>().ok()?, value)))
            else {
                host::state::delete(&full);
                continue;
            };
            let key = full[self.prefix.len()..].to_owned();
            self.next = self.next.max(seq + 1);
            self.order.insert(seq, key.clone());
            self.entries.insert(key, (seq, value.to_owned()));
        }
        self.evict();
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Stores `value` under `key` (refreshing its age), evicting the oldest
    /// entries past the cap. A write the host refuses (quota, key size) is
    /// kept in memory only.
    pub(crate) fn insert(&mut self, key: &str, value: &str) {
        if let Some((seq, old)) = self.entries.get(key)
            && old == value
            && self.next.saturating_sub(*seq) < (self.cap as u64) / 2
        {
            // Unchanged and recent enough: spare the host a write.
            return;
        }
        let seq = self.next;
        self.next += 1;
        if let Some((old_seq, _)) = self.entries.insert(key.to_owned(), (seq, value.to_owned())) {
            self.order.remove(&old_seq);
        }
        self.order.insert(seq, key.to_owned());
        let _ = host::state::set(
            &format!("{}{key}", self.prefix),
            format!("{seq}\n{value}").as_bytes(),
        );
        self.evict();
    }

    fn evict(&mut self) {
        while self.entries.len() > self.cap {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&key);
            host::state::delete(&format!("{}{key}", self.prefix));
        }
    }

    /// How many entries it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests {
    use vigil_plugin_sdk::testing;

    use super::*;

    #[test]
    fn bounded_and_persisted() {
        let mut map = BoundedMap::new("m/", 2);
        map.load();
        map.insert("a", "1");
        map.insert("b", "2");
        map.insert("a", "1"); // refreshed: now the newest
        map.insert("c", "3"); // evicts the oldest: b
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("b"), None);
        assert_eq!(map.get("a"), Some("1"));
        assert_eq!(map.get("c"), Some("3"));
        let keys: Vec<String> = testing::state().into_keys().collect();
        assert_eq!(keys, ["m/a", "m/c"]);

        // A new instance (after a restart) finds them again, in order.
        let mut again = BoundedMap::new("m/", 2);
        again.load();
        assert_eq!(again.get("a"), Some("1"));
        again.insert("d", "4");
        assert!(!again.contains("a"));
        assert!(again.contains("c") && again.contains("d"));

        // Garbage in state is dropped.
        host::state::set("m/x", b"not a sequence").unwrap();
        let mut third = BoundedMap::new("m/", 2);
        third.load();
        assert!(!third.contains("x"));
        assert!(!testing::state().contains_key("m/x"));
    }

    #[test]
    fn a_lower_cap_evicts_on_load() {
        let mut map = BoundedMap::new("m/", 10);
        for i in 0..5 {
            map.insert(&i.to_string(), "v");
        }
        let mut small = BoundedMap::new("m/", 2);
        small.load();
        assert_eq!(small.len(), 2);
        assert!(small.contains("3") && small.contains("4"));
        assert_eq!(testing::state().len(), 2);
    }
}
