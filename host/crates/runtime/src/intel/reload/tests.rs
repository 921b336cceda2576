//! The reloader against real files: a change is picked up once it settled,
//! a rename over the file counts, a broken feed keeps the previous one (and
//! is reported once), a fixed feed is picked up again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::*;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vigil-intel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn feeds(files: &[&Path]) -> Vec<FeedConfig> {
    files
        .iter()
        .map(|f| FeedConfig {
            path: f.to_path_buf(),
            category: "intel".into(),
        })
        .collect()
}

fn shared_for(feeds: &[FeedConfig]) -> SharedIntel {
    let intel = ThreatIntel::load_feeds(
        feeds
            .iter()
            .map(|f| (f.path.as_path(), f.category.as_str())),
    )
    .unwrap();
    Arc::new(RwLock::new(Arc::new(intel)))
}

fn reloader(files: &[&Path]) -> (Reloader, SharedIntel, Arc<IntelMetrics>) {
    let feeds = feeds(files);
    let shared = shared_for(&feeds);
    let metrics = Arc::new(IntelMetrics::default());
    (
        Reloader::new(feeds, shared.clone(), metrics.clone()),
        shared,
        metrics,
    )
}

fn lookup(shared: &SharedIntel, ip: &str) -> Vec<String> {
    shared
        .read()
        .unwrap()
        .lookup(ip)
        .into_iter()
        .map(|m| format!("{}:{}", m.feed, m.entry))
        .collect()
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[test]
fn a_changed_feed_is_reloaded_once_it_settles() {
    let dir = Dir::new("settle");
    let c2 = dir.write("c2.txt", "198.51.100.7\n");
    let csv = dir.write(
        "feodo.csv",
        "# ip,port,malware\n\"192.0.2.9\",\"443\",\"QakBot\"\n",
    );
    let (mut reloader, shared, metrics) = reloader(&[&c2, &csv]);
    assert_eq!(count(&metrics.entries), 2);
    assert!(matches!(reloader.poll(), Poll::Unchanged));
    assert!(lookup(&shared, "203.0.113.9").is_empty());

    dir.write("c2.txt", "198.51.100.7\n203.0.113.0/24\n");
    assert!(matches!(reloader.poll(), Poll::Settling));
    assert!(
        lookup(&shared, "203.0.113.9").is_empty(),
        "not before it settled"
    );
    assert!(matches!(reloader.poll(), Poll::Reloaded { entries: 3 }));
    assert_eq!(lookup(&shared, "203.0.113.9"), ["c2.txt:203.0.113.0/24"]);
    assert_eq!(
        lookup(&shared, "192.0.2.9"),
        ["feodo.csv:192.0.2.9"],
        "other feeds kept"
    );
    assert_eq!(count(&metrics.counters.reloads), 1);
    assert_eq!(count(&metrics.entries), 3);
    assert!(matches!(reloader.poll(), Poll::Unchanged));
}

#[test]
fn a_feed_renamed_over_the_old_one_is_reloaded() {
    let dir = Dir::new("rename");
    let c2 = dir.write("c2.txt", "198.51.100.7\n");
    let (mut reloader, shared, _) = reloader(&[&c2]);
    let next = dir.write("c2.txt.new", "198.51.100.8\n");
    std::fs::rename(&next, &c2).unwrap();
    assert!(matches!(reloader.poll(), Poll::Settling));
    assert!(matches!(reloader.poll(), Poll::Reloaded { entries: 1 }));
    assert!(lookup(&shared, "198.51.100.7").is_empty());
    assert_eq!(lookup(&shared, "198.51.100.8"), ["c2.txt:198.51.100.8"]);
}

#[test]
fn a_broken_feed_keeps_the_previous_one_loudly() {
    let dir = Dir::new("broken");
    let c2 = dir.write("c2.txt", "198.51.100.7\n");
    let (mut reloader, shared, metrics) = reloader(&[&c2]);

    dir.write("c2.txt", "<html>502 Bad Gateway</html>\n");
    assert!(matches!(reloader.poll(), Poll::Settling));
    assert!(matches!(
        reloader.poll(),
        Poll::Failed(IntelError::NoEntries { skipped: 1, .. })
    ));
    assert_eq!(lookup(&shared, "198.51.100.7"), ["c2.txt:198.51.100.7"]);
    assert_eq!(count(&metrics.counters.reload_failures), 1);
    assert_eq!(count(&metrics.counters.reloads), 0);
    // Reported once, not at every poll.
    assert!(matches!(reloader.poll(), Poll::Unchanged));

    std::fs::remove_file(&c2).unwrap();
    reloader.poll();
    assert!(matches!(
        reloader.poll(),
        Poll::Failed(IntelError::Read { .. })
    ));
    assert_eq!(lookup(&shared, "198.51.100.7"), ["c2.txt:198.51.100.7"]);

    dir.write("c2.txt", "# fixed\n198.51.100.9\n");
    reloader.poll();
    assert!(matches!(reloader.poll(), Poll::Reloaded { entries: 1 }));
    assert_eq!(lookup(&shared, "198.51.100.9"), ["c2.txt:198.51.100.9"]);
    assert_eq!(count(&metrics.counters.reload_failures), 2);
}

#[test]
fn an_empty_feed_is_valid() {
    let dir = Dir::new("empty");
    let c2 = dir.write("c2.txt", "198.51.100.7\n");
    let (mut reloader, shared, _) = reloader(&[&c2]);
    dir.write("c2.txt", "# nothing today\n");
    reloader.poll();
    assert!(matches!(reloader.poll(), Poll::Reloaded { entries: 0 }));
    assert!(lookup(&shared, "198.51.100.7").is_empty());
}

#[test]
fn each_feed_keeps_its_category_across_a_reload() {
    let dir = Dir::new("category");
    let c2 = dir.write("c2.txt", "198.51.100.7\n");
    let tor = dir.write("tor.txt", "192.0.2.1\n");
    let feeds = vec![
        FeedConfig {
            path: c2.clone(),
            category: "c2".into(),
        },
        FeedConfig {
            path: tor,
            category: "tor-exit".into(),
        },
    ];
    let shared = shared_for(&feeds);
    let mut reloader = Reloader::new(feeds, shared.clone(), Arc::default());
    dir.write("c2.txt", "198.51.100.7\n192.0.2.1\n");
    assert!(matches!(reloader.poll(), Poll::Settling));
    assert!(matches!(reloader.poll(), Poll::Reloaded { entries: 3 }));
    let categories: Vec<String> = shared
        .read()
        .unwrap()
        .lookup("192.0.2.1")
        .into_iter()
        .map(|m| m.category)
        .collect();
    assert_eq!(categories.len(), 2, "{categories:?}");
    assert!(categories.contains(&"c2".to_owned()), "{categories:?}");
    assert!(
        categories.contains(&"tor-exit".to_owned()),
        "{categories:?}"
    );
}

#[test]
fn a_started_reloader_polls_until_stopped() {
    let dir = Dir::new("handle");
    let c2 = dir.write("c2.txt", "198.51.100.7\n");
    let config = IntelConfig {
        feeds: feeds(&[&c2]),
        poll_interval_ms: 10,
    };
    let shared = shared_for(&config.feeds);
    let metrics = Arc::new(IntelMetrics::default());
    let handle = ReloaderHandle::start(&config, &shared, &metrics)
        .unwrap()
        .expect("a feed and an interval: polling");

    dir.write("c2.txt", "198.51.100.7\n203.0.113.0/24\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&metrics.counters.reloads) == 0 {
        assert!(std::time::Instant::now() < deadline, "never reloaded");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(lookup(&shared, "203.0.113.9"), ["c2.txt:203.0.113.0/24"]);

    // Stopped: a later change is not picked up any more.
    handle.stop();
    dir.write("c2.txt", "198.51.100.7\n");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(count(&metrics.counters.reloads), 1);
    assert_eq!(lookup(&shared, "203.0.113.9"), ["c2.txt:203.0.113.0/24"]);
}

#[test]
fn nothing_to_poll_starts_nothing() {
    let dir = Dir::new("off");
    let c2 = dir.write("c2.txt", "198.51.100.7\n");
    let shared = shared_for(&[]);
    let metrics = Arc::new(IntelMetrics::default());
    let off = IntelConfig {
        feeds: feeds(&[&c2]),
        poll_interval_ms: 0,
    };
    assert!(
        ReloaderHandle::start(&off, &shared, &metrics)
            .unwrap()
            .is_none()
    );
    let no_feed = IntelConfig::default();
    assert!(
        ReloaderHandle::start(&no_feed, &shared, &metrics)
            .unwrap()
            .is_none()
    );
}
