//! One statistics row: counts, sizes and the latency histogram of one (method, name).

use hdrhistogram::Histogram;

use super::Sample;

/// Significant digits kept by every latency histogram of the run's totals (0.1 % precision).
const SIGNIFICANT_DIGITS: u8 = 3;

/// Significant digits of the histograms behind the live figures only (the recent window's
/// percentiles: status line, web UI, charts): 1 % precision, as Locust's percentiles (it
/// rounds response times to two significant figures), at an eighth of the memory. The window
/// keeps a histogram per second for 10 s: with 3 digits, 50 VUs' anonymous memory grew by
/// 692 KiB from a run's first second to its eleventh (flat from about 20 s), with 2 by 184
/// KiB (`tests/bench/results/2026-12-01-live-window.txt`), which the benchmark's RSS after
/// 1,000,000 against 100,000 requests (a 9 s run against 1 s) had counted as growth.
const WINDOW_SIGNIFICANT_DIGITS: u8 = 2;

/// Counters and latency histogram for one request name, or for the aggregate of all.
#[derive(Clone, Debug)]
pub struct Entry {
    pub requests: u64,
    pub failures: u64,
    /// Sum of latencies, for an exact average (the histogram's mean is bucketed).
    pub total_us: u64,
    pub min_us: u64,
    pub max_us: u64,
    pub bytes: u64,
    /// Latencies in microseconds. Auto-resizing, so memory follows the observed range.
    pub histogram: Histogram<u64>,
    /// Latencies corrected for coordinated omission (open-model runs only): each request's
    /// latency plus how late its iteration started against its schedule.
    pub corrected: Option<Histogram<u64>>,
    /// New connections opened, and how long opening them took (microseconds).
    pub connecting: Histogram<u64>,
    /// Time to first byte of each response (microseconds).
    pub waiting: Histogram<u64>,
    /// Time from first to last byte of each response (microseconds).
    pub receiving: Histogram<u64>,
    /// Requests per response status (0: no response), in the order first seen.
    pub statuses: Vec<(u16, u64)>,
}

impl Default for Entry {
    fn default() -> Self {
        Self {
            requests: 0,
            failures: 0,
            total_us: 0,
            min_us: u64::MAX,
            max_us: 0,
            bytes: 0,
            histogram: new_histogram(),
            corrected: None,
            connecting: new_histogram(),
            waiting: new_histogram(),
            receiving: new_histogram(),
            statuses: Vec::new(),
        }
    }
}

/// An empty auto-resizing latency histogram.
pub fn new_histogram() -> Histogram<u64> {
    // 3 significant digits is within the range the constructor accepts (0..=5).
    Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits is a valid histogram precision")
}

/// An empty auto-resizing latency histogram for the recent window's live figures.
pub fn new_window_histogram() -> Histogram<u64> {
    // 2 significant digits is within the range the constructor accepts (0..=5).
    Histogram::new(WINDOW_SIGNIFICANT_DIGITS).expect("2 significant digits is a valid histogram precision")
}

impl Entry {
    /// Adds one request with its corrected latency (open models) and its phases.
    pub fn record_sample(&mut self, sample: &Sample<'_>, failed: bool) {
        self.record(sample.elapsed_us, sample.bytes, failed);
        self.count_status(sample.status, 1);
        if let Some(corrected) = sample.corrected_us {
            let _ = self.corrected.get_or_insert_with(new_histogram).record(corrected.max(1));
        }
        if let Some(phases) = sample.phases {
            if let Some(connect) = phases.connect_us {
                let _ = self.connecting.record(connect.max(1));
            }
            let _ = self.waiting.record(phases.waiting_us.max(1));
            let _ = self.receiving.record(phases.receiving_us.max(1));
        }
    }

    /// Adds one request.
    pub fn record(&mut self, elapsed_us: u64, bytes: u64, failed: bool) {
        self.requests += 1;
        self.failures += u64::from(failed);
        self.total_us += elapsed_us;
        self.min_us = self.min_us.min(elapsed_us);
        self.max_us = self.max_us.max(elapsed_us);
        self.bytes += bytes;
        // Auto-resizing: recording only fails for values no u64 histogram can hold.
        let _ = self.histogram.record(elapsed_us.max(1));
    }

    fn count_status(&mut self, status: u16, n: u64) {
        // A handful of distinct statuses per name: a linear scan beats a map.
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, count)) => *count += n,
            None => self.statuses.push((status, n)),
        }
    }

    /// Adds every request of `other`.
    pub fn merge(&mut self, other: &Entry) {
        if other.requests == 0 {
            return;
        }
        self.requests += other.requests;
        self.failures += other.failures;
        self.total_us += other.total_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
        self.bytes += other.bytes;
        // Both histograms auto-resize, so adding cannot fail on range.
        let _ = self.histogram.add(&other.histogram);
        if let Some(theirs) = &other.corrected {
            let _ = self.corrected.get_or_insert_with(new_histogram).add(theirs);
        }
        let _ = self.connecting.add(&other.connecting);
        let _ = self.waiting.add(&other.waiting);
        let _ = self.receiving.add(&other.receiving);
        for &(status, n) in &other.statuses {
            self.count_status(status, n);
        }
    }

    /// Empties the entry, keeping its allocations.
    pub fn reset(&mut self) {
        self.requests = 0;
        self.failures = 0;
        self.total_us = 0;
        self.min_us = u64::MAX;
        self.max_us = 0;
        self.bytes = 0;
        self.histogram.reset();
        if let Some(corrected) = &mut self.corrected {
            corrected.reset();
        }
        self.connecting.reset();
        self.waiting.reset();
        self.receiving.reset();
        self.statuses.clear();
    }

    pub fn avg_us(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.total_us as f64 / self.requests as f64 }
    }

    pub fn min_us(&self) -> u64 {
        if self.requests == 0 { 0 } else { self.min_us }
    }

    pub fn avg_bytes(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.bytes as f64 / self.requests as f64 }
    }

    /// The latency at `quantile` (0.0..=1.0) in microseconds, 0 when empty.
    pub fn percentile_us(&self, quantile: f64) -> u64 {
        if self.requests == 0 {
            return 0;
        }
        if quantile >= 1.0 {
            return self.max_us;
        }
        self.histogram.value_at_quantile(quantile).min(self.max_us)
    }

    /// The corrected latency at `quantile` in microseconds, when corrected latencies were
    /// recorded.
    pub fn corrected_percentile_us(&self, quantile: f64) -> Option<u64> {
        let corrected = self.corrected.as_ref().filter(|h| !h.is_empty())?;
        Some(if quantile >= 1.0 { corrected.max() } else { corrected.value_at_quantile(quantile) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_merge_keep_exact_counts_and_extremes() {
        let mut a = Entry::default();
        for us in [1_000, 2_000, 3_000] {
            a.record(us, 10, false);
        }
        let mut b = Entry::default();
        b.record(10_000, 5, true);
        a.merge(&b);
        assert_eq!(a.requests, 4);
        assert_eq!(a.failures, 1);
        assert_eq!(a.min_us(), 1_000);
        assert_eq!(a.max_us, 10_000);
        assert_eq!(a.bytes, 35);
        assert!((a.avg_us() - 4_000.0).abs() < f64::EPSILON);
        assert_eq!(a.percentile_us(1.0), 10_000);
    }

    #[test]
    fn percentiles_come_from_the_histogram_within_its_precision() {
        let mut e = Entry::default();
        for us in 1..=10_000 {
            e.record(us, 0, false);
        }
        let p50 = e.percentile_us(0.5) as f64;
        let p99 = e.percentile_us(0.99) as f64;
        assert!((p50 - 5_000.0).abs() / 5_000.0 < 0.002, "p50 {p50}");
        assert!((p99 - 9_900.0).abs() / 9_900.0 < 0.002, "p99 {p99}");
    }

    #[test]
    fn empty_entry_reports_zeroes_not_sentinels() {
        let e = Entry::default();
        assert_eq!(e.min_us(), 0);
        assert_eq!(e.percentile_us(0.95), 0);
        assert_eq!(e.avg_us(), 0.0);
    }

    #[test]
    fn reset_keeps_nothing() {
        let mut e = Entry::default();
        e.record(5, 1, true);
        e.reset();
        assert_eq!(e.requests, 0);
        assert_eq!(e.histogram.len(), 0);
        assert_eq!(e.min_us(), 0);
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    /// Regression: percentiles above the histogram's initial range read as 0 after the
    /// shard entry was cloned or merged into the run totals.
    #[test]
    fn large_values_survive_clone_and_merge() {
        let mut shard = Entry::default();
        shard.record(3_300, 0, false);
        shard.record(3_500, 0, false);
        let cloned = shard.clone();
        assert!(cloned.percentile_us(0.5) >= 3_290, "clone {}", cloned.percentile_us(0.5));
        let mut total = Entry::default();
        total.merge(&shard);
        assert!(total.percentile_us(0.5) >= 3_290, "merge {}", total.percentile_us(0.5));
        // The aggregator's sequence: clone on first sight, reset, record again, merge.
        let mut total = shard.clone();
        shard.reset();
        shard.record(3_400, 0, false);
        total.merge(&shard);
        assert_eq!(total.requests, 3);
        assert!(total.percentile_us(0.5) >= 3_290, "after reset {}", total.percentile_us(0.5));
    }
}
