//! Statistics: what is recorded per request on the hot path (`recorder`), and how the
//! per-thread shards are merged once a second into run totals (`aggregate`), and what
//! scenarios record themselves: checks and custom metrics (`custom`).
//!
//! Latencies are kept in HDR histograms in microseconds with 3 significant digits, so
//! percentiles are exact to 0.1 % and never averages of percentiles.

mod aggregate;
mod custom;
mod entry;
mod recorder;

pub use aggregate::{Aggregator, ErrorRow, PERCENTILES, ScenarioRow, Snapshot, StatsRow, TimingsRow};
pub use custom::{CheckRow, MetricKind, MetricRow, Series, SeriesKey};
pub use entry::Entry;
pub use recorder::{Outcome, Recorder, Sample};
