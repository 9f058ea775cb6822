//! Everything the user sees: the console (status line and log lines), what a run is about
//! to do (`starting`), the end-of-test summary in Locust's layout, and the JSON and CSV
//! reports.

pub mod console;
pub mod csv;
pub mod json;
pub mod starting;
pub mod summary;
