//! The learned baseline: per scope and action, the count of events per
//! window, summarised as a mean and variance overall and per hour-of-week
//! bucket, with a compact binary encoding for the plugin's state.

use crate::time::{WEEK_HOURS, hour_of_week};

/// The overall statistics remember about this many windows (a week of
/// 5-minute windows); older ones fade out exponentially.
pub(crate) const OVERALL_CAP: u16 = 2_016;
/// Each hour-of-week bucket remembers about this many windows (four weeks
/// of 5-minute windows).
pub(crate) const BUCKET_CAP: u16 = 48;
/// Quiet windows filled in at most at once (a week of 5-minute windows).
const MAX_ZERO_FILL: u32 = 2_016;
/// Event ids kept per series and window, for the findings.
pub(crate) const RECENT_IDS: usize = 5;
/// The encoding's version byte.
const VERSION: u8 = 1;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Action {
    /// A container created, a pod created.
    Create,
    /// A container started (or restarted).
    Start,
    /// A container removed, a pod deleted.
    Destroy,
}

impl Action {
    pub(crate) const fn index(self) -> usize {
        match self {
            Action::Create => 0,
            Action::Start => 1,
            Action::Destroy => 2,
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Start => "start",
            Action::Destroy => "destroy",
        }
    }
}

/// A running mean and (population) variance. Exact, like Welford's
/// algorithm, for the first `cap` samples; then an exponentially weighted
/// average with weight `1/cap`, so the baseline follows slow change.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stat {
    pub(crate) n: u16,
    pub(crate) mean: f32,
    pub(crate) var: f32,
}

impl Stat {
    pub(crate) fn update(&mut self, x: f64, cap: u16) {
        let n = self.n.saturating_add(1).min(cap.max(1));
        let alpha = 1.0 / f64::from(n);
        let mean = f64::from(self.mean);
        let delta = x - mean;
        let var = (1.0 - alpha) * (f64::from(self.var) + alpha * delta * delta);
        self.n = n;
        #[allow(
            clippy::cast_possible_truncation,
            reason = "f32 is plenty for event counts"
        )]
        {
            self.mean = (mean + alpha * delta) as f32;
            self.var = var.max(0.0) as f32;
        }
    }
}

/// The baseline a count is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Baseline {
    pub(crate) mean: f64,
    /// The standard deviation used: at least √mean (Poisson) and at least 1.
    pub(crate) sd: f64,
    pub(crate) samples: u16,
    /// The hour-of-week bucket, or `None` for the overall baseline.
    pub(crate) bucket: Option<usize>,
}

impl Baseline {
    pub(crate) fn z(&self, count: u32) -> f64 {
        (f64::from(count) - self.mean) / self.sd
    }
}

/// One scope's counts of one action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// Windows learned so far.
    pub(crate) learned: u32,
    /// The window being counted (seconds / window length).
    pub(crate) cur_window: u32,
    /// Events counted in it.
    pub(crate) cur_count: u32,
    /// The last window that gave (or would have given) a finding; 0 when none.
    pub(crate) alerted: u32,
    pub(crate) overall: Stat,
    pub(crate) buckets: Box<[Stat; WEEK_HOURS]>,
    /// Ids of the first events of the current window (not persisted).
    pub(crate) recent: Vec<String>,
}

impl Series {
    pub(crate) fn new(window: u32) -> Self {
        Self {
            learned: 0,
            cur_window: window,
            cur_count: 0,
            alerted: 0,
            overall: Stat::default(),
            buckets: Box::new([Stat::default(); WEEK_HOURS]),
            recent: Vec::new(),
        }
    }

    /// A new series in a scope that already has `sibling`: the windows the
    /// scope was observed had none of this action, so it starts with the
    /// sibling's history as zeros (and is as warm as the scope).
    pub(crate) fn zeros_like(sibling: &Series, window: u32) -> Self {
        let zero = |stat: &Stat| Stat {
            n: stat.n,
            mean: 0.0,
            var: 0.0,
        };
        let mut series = Self::new(window);
        series.learned = sibling.learned;
        series.overall = zero(&sibling.overall);
        for (mine, theirs) in series.buckets.iter_mut().zip(sibling.buckets.iter()) {
            *mine = zero(theirs);
        }
        series
    }

    /// Moves the series to window `target`: the current window is learned,
    /// then every quiet window in between as a zero — but only windows from
    /// `alive_from` on (before it the plugin was not running: no data, not
    /// "no events") and only windows `learnable` says are (not in
    /// maintenance). Returns whether anything changed.
    pub(crate) fn advance(
        &mut self,
        target: u32,
        alive_from: u32,
        window_secs: u64,
        learnable: &dyn Fn(u32) -> bool,
    ) -> bool {
        if target <= self.cur_window {
            return false;
        }
        if self.cur_window >= alive_from && learnable(self.cur_window) {
            self.learn(self.cur_window, f64::from(self.cur_count), window_secs);
        }
        let first_zero = (self.cur_window + 1)
            .max(alive_from)
            .max(target.saturating_sub(MAX_ZERO_FILL));
        for window in first_zero..target {
            if learnable(window) {
                self.learn(window, 0.0, window_secs);
            }
        }
        self.cur_window = target;
        self.cur_count = 0;
        self.recent.clear();
        true
    }

    fn learn(&mut self, window: u32, count: f64, window_secs: u64) {
        let bucket = hour_of_week(u64::from(window) * window_secs);
        self.overall.update(count, OVERALL_CAP);
        self.buckets[bucket].update(count, BUCKET_CAP);
        self.learned = self.learned.saturating_add(1);
    }

    /// The baseline for the current window: its hour-of-week bucket once it
    /// has `min_bucket_samples`, else the overall statistics.
    pub(crate) fn baseline(&self, window_secs: u64, min_bucket_samples: u32) -> Baseline {
        let bucket = hour_of_week(u64::from(self.cur_window) * window_secs);
        let (stat, which) = if u32::from(self.buckets[bucket].n) >= min_bucket_samples {
            (self.buckets[bucket], Some(bucket))
        } else {
            (self.overall, None)
        };
        let mean = f64::from(stat.mean);
        Baseline {
            mean,
            sd: f64::from(stat.var).max(mean).max(1.0).sqrt(),
            samples: stat.n,
            bucket: which,
        }
    }
}

/// Everything learned about one scope.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ScopeStats {
    /// When it last counted an event (seconds), for eviction.
    pub(crate) last_active: u64,
    /// Per action (see [`Action::index`]).
    pub(crate) series: [Option<Series>; 3],
}

impl ScopeStats {
    /// The compact encoding: version, last activity, then per series its
    /// counters, the overall statistics and the non-empty buckets (11 bytes
    /// each: at most ~1.8 KiB per series).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        out.extend_from_slice(&self.last_active.to_le_bytes());
        for (action, series) in self.series.iter().enumerate() {
            let Some(series) = series else { continue };
            #[allow(clippy::cast_possible_truncation, reason = "three actions")]
            out.push(action as u8);
            for value in [
                series.learned,
                series.cur_window,
                series.cur_count,
                series.alerted,
            ] {
                out.extend_from_slice(&value.to_le_bytes());
            }
            put_stat(&mut out, series.overall);
            let filled: Vec<(usize, &Stat)> = series
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, s)| s.n > 0)
                .collect();
            #[allow(clippy::cast_possible_truncation, reason = "at most 168 buckets")]
            out.push(filled.len() as u8);
            for (bucket, stat) in filled {
                #[allow(clippy::cast_possible_truncation, reason = "bucket < 168")]
                out.push(bucket as u8);
                put_stat(&mut out, *stat);
            }
        }
        out
    }

    /// Decodes [`Self::encode`]'s output; `None` when it is not that.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.u8()? != VERSION {
            return None;
        }
        let mut scope = Self {
            last_active: r.u64()?,
            series: [None, None, None],
        };
        while !r.0.is_empty() {
            let action = usize::from(r.u8()?);
            if action >= 3 || scope.series[action].is_some() {
                return None;
            }
            let mut series = Series::new(0);
            series.learned = r.u32()?;
            series.cur_window = r.u32()?;
            series.cur_count = r.u32()?;
            series.alerted = r.u32()?;
            series.overall = r.stat()?;
            for _ in 0..r.u8()? {
                let bucket = usize::from(r.u8()?);
                let stat = r.stat()?;
                *series.buckets.get_mut(bucket)? = stat;
            }
            scope.series[action] = Some(series);
        }
        Some(scope)
    }
}

fn put_stat(out: &mut Vec<u8>, stat: Stat) {
    out.extend_from_slice(&stat.n.to_le_bytes());
    out.extend_from_slice(&stat.mean.to_le_bytes());
    out.extend_from_slice(&stat.var.to_le_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn stat(&mut self) -> Option<Stat> {
        let n = u16::from_le_bytes(self.take()?);
        let mean = f32::from_le_bytes(self.take()?);
        let var = f32::from_le_bytes(self.take()?);
        (mean.is_finite() && var.is_finite() && var >= 0.0).then_some(Stat { n, mean, var })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_exact_then_exponential() {
        let mut stat = Stat::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            stat.update(x, 100);
        }
        assert_eq!(stat.n, 8);
        assert!((stat.mean - 5.0).abs() < 1e-6);
        assert!((stat.var - 4.0).abs() < 1e-5); // population variance
        let mut capped = Stat::default();
        for _ in 0..10 {
            capped.update(0.0, 4);
        }
        capped.update(8.0, 4);
        assert_eq!(capped.n, 4);
        assert!((capped.mean - 2.0).abs() < 1e-6);
    }

    #[test]
    fn advance_learns_quiet_windows_only_while_alive() {
        let mut series = Series::new(100);
        series.cur_count = 6;
        // Alive from window 103: 100 (before), 101, 102 are not learned; 103, 104 are zeros.
        assert!(series.advance(105, 103, 300, &|_| true));
        assert_eq!(series.learned, 2);
        assert_eq!((series.cur_window, series.cur_count), (105, 0));
        assert_eq!(series.overall.mean, 0.0);
        // Maintenance windows are skipped.
        series.cur_count = 4;
        assert!(series.advance(108, 0, 300, &|w| w != 105));
        assert_eq!(series.learned, 4); // 106, 107
        assert!(!series.advance(108, 0, 300, &|_| true));
    }

    #[test]
    fn encoding_round_trips_and_is_compact() {
        let mut series = Series::new(5_000_000);
        series.cur_count = 3;
        series.alerted = 4_999_999;
        series.advance(5_000_000 + 2_016, 0, 300, &|_| true);
        let scope = ScopeStats {
            last_active: 1_764_151_200,
            series: [Some(series), None, Some(Series::new(7))],
        };
        let bytes = scope.encode();
        assert!(bytes.len() < 2 * (27 + 168 * 11), "{}", bytes.len());
        let mut decoded = ScopeStats::decode(&bytes).unwrap();
        assert_eq!(decoded, scope);
        decoded.series[0].as_mut().unwrap().recent.push("x".into());
        assert!(ScopeStats::decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(ScopeStats::decode(b"garbage").is_none());
        assert!(ScopeStats::decode(&[]).is_none());
    }
}
