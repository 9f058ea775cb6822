//! Wait time between tasks, with Locust's semantics.

use std::time::Duration;

use crate::bindings::WaitTime;

/// How long a VU waits after a task that took `task_took`.
pub fn wait_after(wait: WaitTime, task_took: Duration, rng: &mut fastrand::Rng) -> Duration {
    match wait {
        WaitTime::None => Duration::ZERO,
        WaitTime::Constant(ms) => ms_to_duration(ms),
        WaitTime::Between((low, high)) => {
            let (low, high) = (low.min(high), low.max(high));
            Duration::from_micros(rng.u64(u64::from(low) * 1000..=u64::from(high) * 1000))
        }
        // Task starts are `ms` apart; a task longer than that is followed by no wait.
        WaitTime::ConstantPacing(ms) => ms_to_duration(ms).saturating_sub(task_took),
    }
}

fn ms_to_duration(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_stays_within_bounds_and_spreads() {
        let mut rng = fastrand::Rng::with_seed(7);
        let waits: Vec<_> =
            (0..1000).map(|_| wait_after(WaitTime::Between((1000, 3000)), Duration::ZERO, &mut rng)).collect();
        assert!(waits.iter().all(|w| (Duration::from_secs(1)..=Duration::from_secs(3)).contains(w)));
        let mean = waits.iter().sum::<Duration>().as_secs_f64() / 1000.0;
        assert!((mean - 2.0).abs() < 0.1, "mean {mean}");
    }

    #[test]
    fn constant_pacing_subtracts_the_task_time() {
        let mut rng = fastrand::Rng::with_seed(1);
        let pacing = WaitTime::ConstantPacing(1000);
        assert_eq!(wait_after(pacing, Duration::from_millis(300), &mut rng), Duration::from_millis(700));
        assert_eq!(wait_after(pacing, Duration::from_secs(2), &mut rng), Duration::ZERO);
        assert_eq!(wait_after(WaitTime::Constant(5), Duration::from_secs(2), &mut rng), Duration::from_millis(5));
        assert_eq!(wait_after(WaitTime::None, Duration::ZERO, &mut rng), Duration::ZERO);
    }
}
