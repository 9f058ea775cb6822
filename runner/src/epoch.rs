//! The engine's epoch: the thread that advances it, and how long the last tick was.
//!
//! Every tick that finds a guest running calls the VU's epoch callback
//! (`host::sandbox::on_tick`), which counts the guest's compute and yields its worker thread
//! to the other VUs there. The ticker advances every `EPOCH_TICK` (10 ms, so that idle and
//! paced runs pay for only 100 wake-ups a second) and every `BUSY_EPOCH_TICK` (1 ms) while
//! some guest has computed for longer than a tick without waiting on the host: a VU sharing
//! a worker thread with such a guest then waits at most about 1 ms for its turn whenever a
//! timer or a socket wakes it, instead of 10 ms, which would be added to the response times
//! it records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::limits::{BUSY_EPOCH_TICK, EPOCH_TICK};
use crate::output::console;

/// Set by a VU whose guest computed through a whole tick; read and cleared at each tick.
static BUSY_GUEST: AtomicBool = AtomicBool::new(false);

/// The length of the tick that just ended, in microseconds.
static LAST_TICK_MICROS: AtomicU64 = AtomicU64::new(EPOCH_TICK.as_micros() as u64);

/// Asks for short ticks until the next one: a guest has computed for longer than a tick.
pub fn guest_is_busy() {
    BUSY_GUEST.store(true, Ordering::Relaxed);
}

/// How long the tick that just ended was: the compute it stands for in a guest it found
/// running.
pub fn last_tick() -> Duration {
    Duration::from_micros(LAST_TICK_MICROS.load(Ordering::Relaxed))
}

/// Short ticks the ticker keeps to after a busy guest's report. A report can come a tick
/// late (its worker thread preempted, or running the VUs that share it); one short tick per
/// report made a looping guest's neighbours wait a 10 ms tick every 20 or so
/// (`tests/bench/busy_guest.sh`). Ten cost 10 wake-ups once the guest stops.
const SHORT_TICKS_PER_REPORT: u32 = 10;

/// The length of the next tick: short while some guest is busy, and for a few ticks after.
fn next_tick(short_left: &mut u32) -> Duration {
    if BUSY_GUEST.swap(false, Ordering::Relaxed) {
        *short_left = SHORT_TICKS_PER_REPORT;
    }
    if *short_left > 0 {
        *short_left -= 1;
        BUSY_EPOCH_TICK
    } else {
        EPOCH_TICK
    }
}

/// Advances the engine's epoch on a thread of its own, until dropped.
pub(crate) struct EpochTicker {
    running: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: wasmtime::Engine) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                let mut short_left = 0;
                while flag.load(Ordering::Relaxed) {
                    let tick = next_tick(&mut short_left);
                    std::thread::sleep(tick);
                    // Published before the epoch moves, so the callbacks it triggers see it.
                    LAST_TICK_MICROS.store(tick.as_micros() as u64, Ordering::Relaxed);
                    engine.increment_epoch();
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| {
                console::line(&format!("Warning: no epoch ticker ({e}); busy guests cannot be interrupted"))
            });
        Self { running }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}
