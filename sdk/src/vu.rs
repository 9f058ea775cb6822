//! This virtual user: its id, its iteration, sleeping and logging through the host.

use std::time::Duration;

use crate::__private::bindings::wasmload::scenario::vu as wit;

pub use wit::LogLevel as Level;

/// This user's number, from 1.
pub fn id() -> u32 {
    // Fixed for the life of the instance: asked of the host once, not at every request.
    static ID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *ID.get_or_init(wit::id)
}

/// The number of the task this user is running, from 0.
pub fn iteration() -> u64 {
    wit::iteration()
}

/// Sleeps without holding a host thread (Locust `gevent.sleep`, k6 `sleep`).
pub fn sleep(duration: Duration) {
    wit::sleep(u32::try_from(duration.as_millis()).unwrap_or(u32::MAX));
}

/// Writes a line to the runner's log, prefixed with this user's id.
pub fn log(level: Level, message: &str) {
    wit::log(level, message);
}

/// What the scenario's `User::setup` returned, if anything (k6's `data` argument).
pub fn setup_data() -> Option<String> {
    wit::setup_data()
}
