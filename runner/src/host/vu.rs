//! `wasmload:scenario/vu`: identity, host-side sleep and logging.

use std::time::Duration;

use super::VuState;
use crate::bindings::vu::{Host, LogLevel};

impl Host for VuState {
    fn id(&mut self) -> u32 {
        self.id
    }

    fn iteration(&mut self) -> u64 {
        self.iteration
    }

    async fn sleep(&mut self, ms: u32) {
        // Suspends this VU's fiber; the worker thread runs other VUs meanwhile.
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
        self.clock.reset();
    }

    fn setup_data(&mut self) -> Option<String> {
        self.setup_data.as_deref().map(str::to_owned)
    }

    fn env_vars(&mut self) -> Vec<(String, String)> {
        self.env.to_vec()
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        };
        let message = truncate(&message, self.log.max_line());
        self.log.line(&format!("{level} {message}"));
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
