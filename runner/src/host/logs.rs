//! Rate limits on what guests print (`vu.log`, stdout and stderr): each VU may print
//! `GUEST_LOG_LINES_PER_SEC` lines a second (bursts of twice that), and all VUs together
//! `ALL_GUESTS_LOG_LINES_PER_SEC`, so a flooding guest can neither bury the runner's own
//! output nor slow every VU down on the terminal's lock. Lines over the limit are counted
//! and the count is printed with the VU's next admitted line.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::limits::ALL_GUESTS_LOG_LINES_PER_SEC;
use crate::output::console;

/// A token bucket: `rate` tokens a second, holding at most `2 × rate`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self { rate, tokens: 2.0 * rate, at: Instant::now() }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(2.0 * self.rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn all_guests() -> &'static Mutex<Bucket> {
    static ALL: std::sync::OnceLock<Mutex<Bucket>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| Mutex::new(Bucket::new(ALL_GUESTS_LOG_LINES_PER_SEC)))
}

#[derive(Debug)]
struct VuLogState {
    bucket: Bucket,
    dropped: u64,
}

/// One VU's log budget, shared by its `vu.log`, stdout and stderr.
#[derive(Debug, Clone)]
pub struct GuestLog {
    vu: u32,
    state: Arc<Mutex<VuLogState>>,
    per_second: usize,
    max_line: usize,
}

impl GuestLog {
    /// A VU's log: at most `per_second` lines a second (bursts of twice that), each cut to
    /// `max_line` bytes.
    pub fn new(vu: u32, per_second: usize, max_line: usize) -> Self {
        let rate = u32::try_from(per_second).unwrap_or(u32::MAX);
        let state = VuLogState { bucket: Bucket::new(rate), dropped: 0 };
        Self { vu, state: Arc::new(Mutex::new(state)), per_second, max_line }
    }

    /// The longest line kept, in bytes.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Prints `text` as this VU's line, if both budgets allow.
    pub fn line(&self, text: &str) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let admitted = state.bucket.take(now) && all_guests().lock().unwrap_or_else(|p| p.into_inner()).take(now);
        if !admitted {
            state.dropped += 1;
            return;
        }
        let dropped = std::mem::take(&mut state.dropped);
        drop(state);
        if dropped > 0 {
            console::line(&format!(
                "[vu {}] ({dropped} log lines dropped: at most {} a second per VU and \
                 {ALL_GUESTS_LOG_LINES_PER_SEC} for all)",
                self.vu, self.per_second
            ));
        }
        console::line(&format!("[vu {}] {text}", self.vu));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_bursts_then_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket { rate: 10.0, tokens: 20.0, at: start };
        assert_eq!((0..30).filter(|_| bucket.take(start)).count(), 20, "a burst of twice the rate");
        let later = start + Duration::from_millis(500);
        assert_eq!((0..30).filter(|_| bucket.take(later)).count(), 5, "then the rate");
    }
}
