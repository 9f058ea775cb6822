//! CSV reports (`--csv PREFIX`) with Locust's file names and columns, so tooling written
//! for Locust's CSV keeps working: `PREFIX_stats.csv` (written at the end, Ctrl-C
//! included), `PREFIX_stats_history.csv` (a row appended every second; every request name
//! too with `--csv-full-history`) and `PREFIX_failures.csv`. Cells a guest controls (names,
//! error messages) cannot start a spreadsheet formula: one starting with `=`, `+`, `-`, `@`,
//! a tab or a carriage return gets a leading `'` (OWASP's advice for CSV injection).

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use super::summary::num;
use crate::stats::{PERCENTILES, Snapshot, StatsRow};

/// The columns of `_stats.csv` before the percentiles (Locust's).
const STATS_COLUMNS: [&str; 11] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
];

/// The columns of `_stats_history.csv` around the percentiles (Locust's).
const HISTORY_COLUMNS: [&str; 6] = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s"];
const HISTORY_TOTALS: [&str; 7] = [
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];

/// The CSV reports of one run.
pub struct CsvReports {
    prefix: PathBuf,
    history: csv::Writer<File>,
    full_history: bool,
}

impl std::fmt::Debug for CsvReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvReports").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl CsvReports {
    /// Creates the history file (with its header) at once, so a bad prefix fails the run
    /// before it starts.
    pub fn create(prefix: &Path, full_history: bool) -> anyhow::Result<Self> {
        let path = with_suffix(prefix, "_stats_history.csv");
        let mut history = csv::Writer::from_path(&path)
            .with_context(|| format!("cannot create the CSV report `{}`", path.display()))?;
        let header: Vec<&str> = HISTORY_COLUMNS
            .iter()
            .copied()
            .chain(PERCENTILES.iter().map(|(_, label)| *label))
            .chain(HISTORY_TOTALS.iter().copied())
            .collect();
        history.write_record(&header)?;
        history.flush()?;
        Ok(Self { prefix: prefix.to_owned(), history, full_history })
    }

    /// Appends this second's rows: the aggregate (with the percentiles of the last few
    /// seconds, as Locust) and, with full history, each request name (with its percentiles
    /// over the whole run).
    pub fn append_history(&mut self, s: &Snapshot) -> anyhow::Result<()> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).to_string();
        let users = s.users.to_string();
        if self.full_history {
            for row in &s.rows {
                let mut record =
                    vec![now.clone(), users.clone(), cell(&row.method).into_owned(), cell(&row.name).into_owned()];
                record.push(num(row.rps));
                record.push(num(row.failures_per_s));
                record.extend(row.percentiles.iter().map(|(_, v)| num(*v)));
                record.extend(totals(row));
                self.history.write_record(&record)?;
            }
        }
        let a = &s.aggregated;
        let mut record = vec![now, users, String::new(), "Aggregated".to_owned()];
        record.push(num(s.current_rps));
        record.push(num(s.current_failures_per_s));
        record.extend(s.current_percentiles.iter().map(|(_, v)| num(*v)));
        record.extend(totals(a));
        self.history.write_record(&record)?;
        self.history.flush()?;
        Ok(())
    }

    /// Writes `_stats.csv` and `_failures.csv` from the final snapshot.
    pub fn finish(&mut self, s: &Snapshot) -> anyhow::Result<()> {
        self.history.flush()?;
        let path = with_suffix(&self.prefix, "_stats.csv");
        let file = File::create(&path).with_context(|| format!("cannot create the CSV report `{}`", path.display()))?;
        write_stats(file, s)?;
        let path = with_suffix(&self.prefix, "_failures.csv");
        let file = File::create(&path).with_context(|| format!("cannot create the CSV report `{}`", path.display()))?;
        write_failures(file, s)
    }
}

/// Locust's `_stats.csv`: a row per request name, then `Aggregated`.
pub fn write_stats(out: impl std::io::Write, s: &Snapshot) -> anyhow::Result<()> {
    let mut stats = csv::Writer::from_writer(out);
    let header: Vec<&str> = STATS_COLUMNS.iter().copied().chain(PERCENTILES.iter().map(|(_, label)| *label)).collect();
    stats.write_record(&header)?;
    for row in s.rows.iter().chain(std::iter::once(&s.aggregated)) {
        // Locust's stats columns are the history's totals, then the rates.
        let mut record = vec![cell(&row.method).into_owned(), cell(&row.name).into_owned()];
        record.extend(totals(row));
        record.push(num(row.rps));
        record.push(num(row.failures_per_s));
        record.extend(row.percentiles.iter().map(|(_, v)| num(*v)));
        stats.write_record(&record)?;
    }
    stats.flush()?;
    Ok(())
}

/// Locust's `_failures.csv`: method, name, error and occurrences.
pub fn write_failures(out: impl std::io::Write, s: &Snapshot) -> anyhow::Result<()> {
    let mut failures = csv::Writer::from_writer(out);
    failures.write_record(["Method", "Name", "Error", "Occurrences"])?;
    for e in &s.errors {
        failures.write_record([&*cell(&e.method), &*cell(&e.name), &*cell(&e.error), &e.occurrences.to_string()])?;
    }
    failures.flush()?;
    Ok(())
}

/// Request and failure counts, then median, average, min and max times and average size.
fn totals(row: &StatsRow) -> Vec<String> {
    vec![
        row.requests.to_string(),
        row.failures.to_string(),
        num(row.median_ms),
        num(row.avg_ms),
        num(row.min_ms),
        num(row.max_ms),
        num(row.avg_size_bytes),
    ]
}

/// `PREFIX` + `suffix`, keeping the prefix's directory.
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A cell that a spreadsheet will not read as a formula.
fn cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("/concert/<id>"), "/concert/<id>");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.1234), "0.123");
    }
}
