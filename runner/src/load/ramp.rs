//! k6's `ramping-vus` and Locust's load shapes: the number of VUs follows linear stages (or
//! a shape's steps at their spawn rates). VUs are started in the
//! lowest free seats (so VU ids stay between 1 and the peak); when the target falls, the
//! VUs in the highest seats are asked to leave, and each finishes its current iteration
//! and runs `on_stop` first (a graceful ramp-down).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::executor::{LiveLevel, Ramp, ShapeLevel};
use super::vu::Work;
use super::{Phase, Spawner};

/// How often the target number of VUs is recomputed.
const RAMP_TICK: Duration = Duration::from_millis(20);

/// A VU's place in a ramping run, shared between the controller and the VU.
#[derive(Debug, Default)]
pub struct Seat {
    leaving: AtomicBool,
    left: AtomicBool,
    wake: Notify,
}

impl Seat {
    /// Whether the VU was asked to leave.
    pub fn leaving(&self) -> bool {
        self.leaving.load(Ordering::Relaxed)
    }

    /// Resolves once the VU is asked to leave.
    pub async fn asked_to_leave(&self) {
        while !self.leaving() {
            self.wake.notified().await;
        }
    }

    /// Called by the VU when it has stopped.
    pub fn leave(&self) {
        self.left.store(true, Ordering::Relaxed);
    }

    fn ask_to_leave(&self) {
        self.leaving.store(true, Ordering::Relaxed);
        // `notify_one` keeps a permit if the VU is not waiting right now.
        self.wake.notify_one();
    }

    /// Whether a VU may be started in this seat.
    fn free(seat: &Option<Arc<Seat>>) -> bool {
        seat.as_ref().is_none_or(|s| s.left.load(Ordering::Relaxed))
    }

    fn active(seat: &Option<Arc<Seat>>) -> bool {
        seat.as_ref().is_some_and(|s| !s.leaving())
    }
}

/// What the VU count follows.
pub enum Course {
    Ramp(Ramp),
    Shape(ShapeLevel),
    /// Users set from the web page while the run goes on.
    Live(LiveLevel),
}

/// Follows `course` until the phase leaves `Running`.
pub async fn run(spawner: &mut Spawner, mut course: Course, mut phase: watch::Receiver<Phase>) {
    let mut seats: Vec<Option<Arc<Seat>>> = Vec::new();
    let start = Instant::now();
    let mut last = start;
    let mut tick = tokio::time::interval(RAMP_TICK);
    loop {
        tokio::select! {
            biased;
            _ = phase.wait_for(|p| *p != Phase::Running) => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let level = match &mut course {
            Course::Ramp(ramp) => ramp.at(now - start),
            Course::Shape(shape) => shape.advance(now - start, now - last),
            Course::Live(live) => live.advance(now - last),
        };
        last = now;
        let target = level.round() as usize;
        let mut active = seats.iter().filter(|s| Seat::active(s)).count();
        let mut i = 0;
        while active < target {
            if i == seats.len() {
                seats.push(None);
            }
            if Seat::free(&seats[i]) {
                let seat = Arc::new(Seat::default());
                seats[i] = Some(seat.clone());
                spawner.spawn(i as u32 + 1, Work::Loop { limit: None, seat: Some(seat) });
                active += 1;
            }
            i += 1;
        }
        for seat in seats.iter().rev().flatten() {
            if active <= target {
                break;
            }
            if !seat.leaving() {
                seat.ask_to_leave();
                active -= 1;
            }
        }
    }
}
