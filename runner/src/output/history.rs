//! The run over time: one point per second (users, request and failure rates, recent
//! response-time percentiles), for the charts of the HTML report.

use serde::Serialize;

use crate::stats::Snapshot;

/// Points kept at most; past this, every other point is dropped (a 24-hour run keeps one
/// point every 4 s), so memory stays bounded however long the run.
const MAX_POINTS: usize = 30_000;

/// Columns of the history, uPlot's data layout (one array per series, same length).
#[derive(Debug, Default, Clone, Serialize)]
pub struct History {
    /// Seconds since the run started.
    pub t: Vec<f64>,
    pub users: Vec<u64>,
    pub rps: Vec<f64>,
    pub failures_per_s: Vec<f64>,
    pub p50_ms: Vec<f64>,
    pub p95_ms: Vec<f64>,
    pub p99_ms: Vec<f64>,
}

impl History {
    pub fn record(&mut self, s: &Snapshot) {
        if self.t.len() >= MAX_POINTS {
            self.halve();
        }
        let percentile =
            |label: &str| s.current_percentiles.iter().find(|(l, _)| l == label).map_or(0.0, |(_, ms)| *ms);
        self.t.push((s.elapsed_s * 10.0).round() / 10.0);
        self.users.push(s.users);
        self.rps.push(s.current_rps);
        self.failures_per_s.push(s.current_failures_per_s);
        self.p50_ms.push(percentile("50%"));
        self.p95_ms.push(percentile("95%"));
        self.p99_ms.push(percentile("99%"));
    }

    fn halve(&mut self) {
        fn keep_even<T: Copy>(v: &mut Vec<T>) {
            *v = v.iter().step_by(2).copied().collect();
        }
        keep_even(&mut self.t);
        keep_even(&mut self.users);
        keep_even(&mut self.rps);
        keep_even(&mut self.failures_per_s);
        keep_even(&mut self.p50_ms);
        keep_even(&mut self.p95_ms);
        keep_even(&mut self.p99_ms);
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_run_keeps_a_bounded_history() {
        let mut history = History::default();
        let snapshot = crate::stats::Aggregator::new().0.snapshot(3);
        for _ in 0..MAX_POINTS + 10 {
            history.record(&snapshot);
        }
        assert_eq!(history.len(), MAX_POINTS / 2 + 10);
        assert_eq!(history.users.len(), history.len());
        assert_eq!(history.users[0], 3);
    }
}
