//! The runner watching itself: its CPU use and memory, every second. When the runner keeps
//! above [`BUSY`] of the CPU it may use (its worker threads, one per core), response times
//! include time requests spent waiting for the load generator, so it says so (as Locust
//! does), on the terminal and on the web page; the peaks go into the summary and reports
//! so a reader can judge the figures.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;

/// The share of its CPU above which the runner warns.
const BUSY: f64 = 0.9;
/// Seconds the share must stay above `BUSY` before the warning.
const SUSTAINED: usize = 3;

/// What the runner used, for the reports.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RunnerUsage {
    /// The highest CPU use over one second, in percent of one core (200 = two cores busy).
    pub peak_cpu_percent: f64,
    /// CPU cores the runner's workers may use.
    pub cores: usize,
    /// User + system CPU seconds over the whole run.
    pub cpu_seconds: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
}

#[derive(Debug)]
pub struct Monitor {
    cores: usize,
    last: (Instant, f64),
    recent: VecDeque<f64>,
    usage: RunnerUsage,
    warned: bool,
}

/// CPU seconds (user + system) and peak RSS in KiB of this process (`RUSAGE_SELF`) or of the
/// calling thread (`RUSAGE_THREAD`).
fn rusage(who: libc::c_int) -> (f64, u64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    #[allow(unsafe_code)]
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which is valid and
    // large enough; the callers pass RUSAGE_SELF or RUSAGE_THREAD, always valid targets.
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime) + secs(usage.ru_stime), u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let usage = RunnerUsage { cores, ..RunnerUsage::default() };
        Self {
            cores,
            last: (Instant::now(), rusage(libc::RUSAGE_SELF).0),
            recent: VecDeque::new(),
            usage,
            warned: false,
        }
    }

    /// Takes a sample; returns the warning to show when the runner has just become busy.
    pub fn sample(&mut self) -> Option<String> {
        let (cpu, peak_kib) = rusage(libc::RUSAGE_SELF);
        let now = Instant::now();
        let wall = now.duration_since(self.last.0).as_secs_f64();
        if wall < 0.2 {
            return None;
        }
        let share = (cpu - self.last.1) / wall / self.cores as f64;
        self.last = (now, cpu);
        self.usage.peak_cpu_percent = self.usage.peak_cpu_percent.max(share * self.cores as f64 * 100.0);
        self.usage.cpu_seconds = cpu;
        self.usage.peak_rss_mib = peak_kib as f64 / 1024.0;
        self.observe(share)
    }

    /// Takes one second's CPU share (0..=1 of the cores); returns the warning when the runner
    /// has just become busy. It stays busy until the share falls below 80 % of `BUSY`.
    fn observe(&mut self, share: f64) -> Option<String> {
        self.recent.push_back(share);
        if self.recent.len() > SUSTAINED {
            self.recent.pop_front();
        }
        let busy = self.recent.len() == SUSTAINED && self.recent.iter().all(|&s| s > BUSY);
        let news = busy && !self.warned;
        self.warned = busy || (self.warned && share > BUSY * 0.8);
        news.then(|| self.warning().unwrap_or_default())
    }

    /// The warning while the runner is busy.
    pub fn warning(&self) -> Option<String> {
        self.warned.then(|| {
            format!(
                "The runner is using over {:.0}% of its {} CPU core(s): response times may be inflated by the load \
                 generator itself; use fewer users, a lighter scenario or more cores",
                BUSY * 100.0,
                self.cores
            )
        })
    }

    pub fn usage(&mut self) -> RunnerUsage {
        let (cpu, peak_kib) = rusage(libc::RUSAGE_SELF);
        self.usage.cpu_seconds = cpu;
        self.usage.peak_rss_mib = peak_kib as f64 / 1024.0;
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_runner_warns_once_it_stays_busy_and_again_after_it_recovered() {
        let mut monitor = Monitor::new();
        assert_eq!(monitor.observe(0.95), None);
        assert_eq!(monitor.observe(0.95), None, "two busy seconds are not yet sustained");
        let warning = monitor.observe(0.95).expect("the third busy second warns");
        assert!(warning.contains("inflated by the load generator"), "{warning}");
        assert_eq!(monitor.observe(0.99), None, "once");
        assert!(monitor.warning().is_some(), "the page keeps showing it");
        assert_eq!(monitor.observe(0.8), None, "still above 80 % of the threshold");
        assert!(monitor.warning().is_some());
        assert_eq!(monitor.observe(0.3), None);
        assert!(monitor.warning().is_none(), "recovered");
        for _ in 0..2 {
            assert_eq!(monitor.observe(0.95), None);
        }
        assert!(monitor.observe(0.95).is_some(), "busy again: warns again");
        assert_eq!(monitor.observe(0.5), None);
        assert_eq!(monitor.observe(0.95), None, "a dip resets the count");
    }

    #[test]
    fn the_runners_own_cpu_and_memory_are_measured() {
        let mut monitor = Monitor::new();
        // Spin until this thread has had 300 ms of CPU, however many others share the cores.
        let started = Instant::now();
        let thread_cpu = || rusage(libc::RUSAGE_THREAD).0;
        let from = thread_cpu();
        while thread_cpu() - from < 0.3 {
            for _ in 0..10_000 {
                std::hint::black_box(0u64.wrapping_add(1));
            }
        }
        let had = 0.3 / started.elapsed().as_secs_f64() * 100.0;
        let _ = monitor.sample();
        let usage = monitor.usage();
        assert!(usage.peak_cpu_percent > had * 0.9, "this thread alone had {had:.0} % of a core: {usage:?}");
        assert!(usage.cpu_seconds > 0.3, "{usage:?}");
        assert!(usage.peak_rss_mib > 1.0, "{usage:?}");
    }
}
