//! Everything the user sees: the console (status line and log lines), the end-of-test
//! summary in Locust's layout, and the JSON report.

pub mod console;
pub mod json;
pub mod summary;
