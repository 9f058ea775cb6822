//! What scenarios record beyond requests: named checks (pass/fail counts) and custom
//! metrics of k6's four kinds, each series keyed by metric name and tags.

use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::entry::new_histogram;

/// Trend values are kept in the histogram in thousandths (3 decimal places).
const TREND_SCALE: f64 = 1000.0;

/// k6's metric kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Counter,
    Gauge,
    Rate,
    Trend,
}

/// One series: a metric name and its tags, `k:v` pairs sorted and joined by commas.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub name: String,
    pub tags: String,
}

impl SeriesKey {
    pub fn new(name: &str, tags: &[(String, String)]) -> Self {
        let mut pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        pairs.sort();
        Self { name: name.to_owned(), tags: pairs.join(",") }
    }

    /// Whether every `k:v` of `wanted` is among this series' tags.
    pub fn has_tags(&self, wanted: &[(String, String)]) -> bool {
        tags_include(&self.tags, wanted)
    }
}

/// Whether every `k:v` of `wanted` is in `tags` (`k:v` pairs joined by commas).
pub fn tags_include(tags: &str, wanted: &[(String, String)]) -> bool {
    wanted.iter().all(|(k, v)| tags.split(',').any(|pair| pair.split_once(':') == Some((k, v))))
}

impl SeriesKey {}

/// The values of one series so far.
#[derive(Debug, Clone)]
pub struct Series {
    pub kind: MetricKind,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Gauge: the last value and when it was set (merging keeps the latest).
    pub last: Option<(Instant, f64)>,
    /// Rate: values that were not zero.
    pub nonzero: u64,
    /// Trend: the distribution, in thousandths.
    pub histogram: Option<Histogram<u64>>,
}

impl Series {
    pub fn new(kind: MetricKind) -> Self {
        Self {
            kind,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: None,
            nonzero: 0,
            histogram: (kind == MetricKind::Trend).then(new_histogram),
        }
    }

    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.nonzero += u64::from(value != 0.0);
        if self.kind == MetricKind::Gauge {
            self.last = Some((Instant::now(), value));
        }
        if let Some(h) = &mut self.histogram {
            let _ = h.record((value.max(0.0) * TREND_SCALE).round() as u64);
        }
    }

    pub fn merge(&mut self, other: &Series) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.nonzero += other.nonzero;
        if let Some((at, value)) = other.last
            && self.last.is_none_or(|(mine, _)| at >= mine)
        {
            self.last = Some((at, value));
        }
        if let (Some(mine), Some(theirs)) = (&mut self.histogram, &other.histogram) {
            let _ = mine.add(theirs);
        }
    }

    /// Share of non-zero values (rates), 0..=1.
    pub fn rate(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.nonzero as f64 / self.count as f64 }
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }

    /// A trend's value at `quantile`.
    pub fn percentile(&self, quantile: f64) -> f64 {
        match &self.histogram {
            Some(h) if !h.is_empty() => {
                if quantile >= 1.0 {
                    self.max
                } else {
                    // The histogram answers with its bucket's upper edge; the true value
                    // lies within the recorded range.
                    (h.value_at_quantile(quantile) as f64 / TREND_SCALE).clamp(self.min, self.max)
                }
            }
            _ => 0.0,
        }
    }
}

/// A check's results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckCount {
    pub passes: u64,
    pub fails: u64,
}

/// One check in a snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub name: String,
    pub passes: u64,
    pub fails: u64,
}

impl CheckRow {
    /// Share of passes, 0..=1.
    pub fn pass_rate(&self) -> f64 {
        let all = self.passes + self.fails;
        if all == 0 { 0.0 } else { self.passes as f64 / all as f64 }
    }
}

/// One custom metric series in a snapshot, summarised as its kind calls for.
#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    pub name: String,
    /// `k:v` pairs, comma-separated (empty when untagged).
    pub tags: String,
    pub kind: MetricKind,
    /// How many values were added.
    pub count: u64,
    /// Counter: the sum. Gauge: the last value. Rate: the share of non-zero values.
    /// Trend: the average.
    pub value: f64,
    pub min: f64,
    pub max: f64,
    /// Trend only: p(50), p(90), p(95), p(99).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentiles: Option<Vec<(String, f64)>>,
}

impl MetricRow {
    pub fn new(key: &SeriesKey, series: &Series) -> Self {
        let value = match series.kind {
            MetricKind::Counter => series.sum,
            MetricKind::Gauge => series.last.map_or(0.0, |(_, v)| v),
            MetricKind::Rate => series.rate(),
            MetricKind::Trend => series.avg(),
        };
        let percentiles = (series.kind == MetricKind::Trend).then(|| {
            [(0.5, "p(50)"), (0.9, "p(90)"), (0.95, "p(95)"), (0.99, "p(99)")]
                .iter()
                .map(|&(q, label)| (label.to_owned(), series.percentile(q)))
                .collect()
        });
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        Self {
            name: key.name.clone(),
            tags: key.tags.clone(),
            kind: series.kind,
            count: series.count,
            value,
            min: finite(series.min),
            max: finite(series.max),
            percentiles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_summarises_as_k6_does() {
        let mut counter = Series::new(MetricKind::Counter);
        let mut rate = Series::new(MetricKind::Rate);
        let mut trend = Series::new(MetricKind::Trend);
        for v in [1.0, 0.0, 3.0, 0.0] {
            counter.add(v);
            rate.add(v);
            trend.add(v);
        }
        let key = SeriesKey::new("m", &[]);
        assert_eq!(MetricRow::new(&key, &counter).value, 4.0);
        assert_eq!(MetricRow::new(&key, &rate).value, 0.5);
        assert_eq!(MetricRow::new(&key, &trend).value, 1.0);
        assert_eq!(trend.percentile(1.0), 3.0);
        assert!((trend.percentile(0.5) - 0.0).abs() < 1e-9);

        let mut early = Series::new(MetricKind::Gauge);
        early.add(7.0);
        let mut late = Series::new(MetricKind::Gauge);
        late.add(2.0);
        let mut total = late.clone();
        total.merge(&early);
        assert_eq!(MetricRow::new(&key, &total).value, 2.0, "the latest value wins");
        assert_eq!((total.min, total.max), (2.0, 7.0));
        counter.add(f64::NAN);
        assert_eq!(counter.count, 4, "non-finite values are ignored");
    }

    #[test]
    fn series_keys_sort_their_tags_and_match_subsets() {
        let tags = vec![("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())];
        let key = SeriesKey::new("m", &tags);
        assert_eq!(key.tags, "a:1,b:2");
        assert!(key.has_tags(&[("b".to_owned(), "2".to_owned())]));
        assert!(!key.has_tags(&[("b".to_owned(), "3".to_owned())]));
        assert!(key.has_tags(&[]));
    }
}
