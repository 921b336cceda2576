//! A fixed-bucket latency histogram on atomics. It is observed once per
//! plugin call and per delivered batch, so an observation is three relaxed
//! `fetch_add`s: `prometheus-client`'s own histogram takes a mutex per
//! observation, which this hot path must not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (50 µs to 250 ms); slower
/// observations count only in the implicit `+Inf` bucket.
const BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];

/// A latency histogram, exported in seconds.
///
/// `buckets[i]` counts the observations that fell in bucket `i` alone (not
/// cumulative); the exposition accumulates them.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// The values of a [`Histogram`] read at one scrape.
pub(crate) struct Snapshot {
    /// `(upper bound in seconds, observations in this bucket alone)`.
    pub(crate) buckets: [(f64, u64); BUCKETS_US.len()],
    pub(crate) count: u64,
    /// Sum of the observations, in seconds.
    pub(crate) sum: f64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Reads every value for the exposition.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut buckets = [(0.0, 0); BUCKETS_US.len()];
        let mut in_buckets = 0;
        for ((out, bound), n) in buckets.iter_mut().zip(BUCKETS_US).zip(&self.buckets) {
            let n = n.load(Ordering::Relaxed);
            in_buckets += n;
            *out = (Duration::from_micros(bound).as_secs_f64(), n);
        }
        // The reads are not one atomic snapshot: an observation racing this
        // scrape may be in its bucket but not yet in `count`. `+Inf` (the
        // count) must never be below a finite bucket, or the scraper sees a
        // histogram that is not cumulative.
        let count = self.count().max(in_buckets);
        let sum = Duration::from_micros(self.sum_us.load(Ordering::Relaxed)).as_secs_f64();
        Snapshot {
            buckets,
            count,
            sum,
        }
    }
}
