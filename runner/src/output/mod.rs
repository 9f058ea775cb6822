//! Everything the user sees: the console (status line and log lines), what a run is about
//! to do (`starting`), the end-of-test summary in Locust's layout, the run over time
//! (`history`), and the JSON, CSV and HTML reports.

pub mod console;
pub mod csv;
pub mod history;
pub mod html;
pub mod json;
pub mod k6;
pub mod monitor;
pub mod prometheus;
pub mod starting;
pub mod summary;
