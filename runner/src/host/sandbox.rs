//! What one VU may consume, enforced while its guest runs: linear memory and table size (a
//! `ResourceLimiter`), and CPU time spent computing without waiting on the host (the epoch
//! callback). Each limit stops only the VU that exceeds it, with a message that names the
//! limit and the flag that changes it; the VU then starts again from a fresh instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::{ResourceLimiter, UpdateDeadline};

use crate::limits::{EPOCH_TICK, MAX_GUEST_CPU, MAX_TABLE_ELEMENTS, MAX_VU_MEMORY};

/// Per-run limits on each VU (`--max-vu-memory`, `--max-guest-cpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestLimits {
    /// Bytes of linear memory per memory of the instance.
    pub memory: usize,
    /// Guest compute between two waits on the host (a request, a sleep).
    pub cpu: Duration,
    /// What the guest can make the host allocate (`--limit`).
    pub host: crate::limits::HostLimits,
}

impl Default for GuestLimits {
    fn default() -> Self {
        Self { memory: MAX_VU_MEMORY, cpu: MAX_GUEST_CPU, host: crate::limits::HostLimits::default() }
    }
}

/// Refuses memory and table growth past the limits, as a trap with a clear message.
impl ResourceLimiter for GuestLimits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory {
            wasmtime::bail!(
                "the guest's memory would grow to {}, past its limit of {} (--max-vu-memory)",
                show_bytes(desired),
                show_bytes(self.memory)
            );
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!(
                "the guest's table would grow to {desired} elements, past its limit of {MAX_TABLE_ELEMENTS}"
            );
        }
        Ok(true)
    }
}

/// Guest compute since the VU last waited on the host, sampled at the engine's epoch ticks:
/// each tick that finds this VU's guest running calls `on_tick`, which adds the tick's length
/// (`epoch`: 10 ms, or 1 ms while a guest is busy). That samples compute time without reading
/// the clock around every guest call (two clock reads per poll cost about 1 % of requests per
/// CPU-second); the sum is at most one tick above the time spent, as the first check after a
/// wait on the host may see a tick that passed during the wait. A request or a sleep resets it.
#[derive(Debug, Clone, Default)]
pub struct GuestClock(Arc<AtomicU64>);

impl GuestClock {
    /// Counts a tick of `length` that found the guest running; returns the compute so far.
    pub fn tick(&self, length: Duration) -> Duration {
        let micros = u64::try_from(length.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.0.fetch_add(micros, Ordering::Relaxed).saturating_add(micros))
    }

    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Decides at each epoch tick that finds the guest running (`tick` long): yield to the other
/// VUs, or stop a guest that has computed for longer than `limit` without waiting on the host.
/// A guest that has computed through a whole 10 ms tick asks for 1 ms ticks, so that the VUs
/// sharing its thread get their turns sooner.
///
/// The yield is tokio's `yield_now`, not wasmtime's plain `Yield`: the plain one wakes the
/// task at once, so a guest that never waits stays runnable and its worker's runtime polls
/// its timers and sockets only every 61 tasks (tokio's `event_interval`), that is every
/// 0.6 s of 10 ms slices. The VUs sharing the worker then missed their wake-ups and had
/// 0.5 s of the busy guest's compute counted in their response times. `yield_now` defers
/// the wake-up until the runtime has polled its driver.
pub fn on_tick(clock: &GuestClock, limit: Duration, tick: Duration) -> wasmtime::Result<UpdateDeadline> {
    let busy = clock.tick(tick);
    if busy > limit {
        wasmtime::bail!(
            "the guest computed for {:.1} s without sending a request or sleeping, past its limit of {} \
             (--max-guest-cpu)",
            busy.as_secs_f64(),
            humantime::format_duration(limit)
        );
    }
    if busy > EPOCH_TICK {
        crate::epoch::guest_is_busy();
    }
    Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
}

/// `64 MiB`, `512 KiB`, `100 B`.
pub fn show_bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    const GIB: usize = 1024 * MIB;
    match n {
        n if n >= GIB && n % GIB == 0 => format!("{} GiB", n / GIB),
        n if n >= MIB => format!("{:.0} MiB", n as f64 / MIB as f64),
        n if n >= KIB => format!("{:.0} KiB", n as f64 / KIB as f64),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_growth_past_the_limit_fails_with_the_flag_named() {
        let mut limiter = GuestLimits { memory: 2 << 20, cpu: Duration::from_secs(1), ..GuestLimits::default() };
        assert!(limiter.memory_growing(0, 2 << 20, None).expect("within the limit"));
        let e = limiter.memory_growing(2 << 20, 3 << 20, None).expect_err("past the limit");
        assert_eq!(e.to_string(), "the guest's memory would grow to 3 MiB, past its limit of 2 MiB (--max-vu-memory)");
    }

    #[test]
    fn the_clock_stops_a_guest_only_past_its_limit() {
        let clock = GuestClock::default();
        let limit = EPOCH_TICK * 100;
        for _ in 0..50 {
            assert!(matches!(on_tick(&clock, limit, EPOCH_TICK), Ok(UpdateDeadline::YieldCustom(1, _))));
        }
        // Short ticks count for what they last.
        for _ in 0..500 {
            assert!(on_tick(&clock, limit, EPOCH_TICK / 10).is_ok());
        }
        let Err(e) = on_tick(&clock, limit, EPOCH_TICK / 10) else { panic!("past the limit") };
        assert!(e.to_string().contains("computed for 1.0 s"), "{e}");
        clock.reset();
        assert!(on_tick(&clock, limit, EPOCH_TICK).is_ok());
    }
}
