//! What evaluating a query yields: one number, no data and why, or an error the user must
//! fix.

use std::fmt;

use crate::expr::format_value;

/// The result of a query: one number, or no data and why.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Number(f64),
    NoData(NoData),
}

impl QueryValue {
    /// The number, or NaN for no data.
    pub fn as_f64(&self) -> f64 {
        match self {
            QueryValue::Number(v) => *v,
            QueryValue::NoData(_) => f64::NAN,
        }
    }
}

impl fmt::Display for QueryValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryValue::Number(v) => f.write_str(&format_value(*v)),
            QueryValue::NoData(reason) => write!(f, "no data: {reason}"),
        }
    }
}

/// Why a query has no value.
#[derive(Debug, Clone, PartialEq)]
pub enum NoData {
    /// The pod has not been scraped successfully yet.
    NoScrape,
    /// The latest scrape is older than the lookback window.
    ScrapeTooOld { age_ms: i64 },
    /// No series matched. `stale` counts matching series absent from the latest scrape.
    NoSeries { selector: String, stale: usize },
    /// Matching series exist but none has the two points in the window a rate needs.
    NotEnoughHistory {
        function: &'static str,
        range: String,
        points: usize,
    },
    /// The buckets have no `le="+Inf"` bucket.
    NoInfBucket,
    /// Fewer than two distinct bucket bounds.
    TooFewBuckets,
    /// The histogram counted no observations (in the window, for rate/increase).
    NoObservations,
    /// An offset reaches back before the pod's first scrape.
    NoHistoryYet { offset: String },
    /// Both sides of a vector operation had series, but none matched the other side.
    NoMatch { expr: String },
    /// A comparison, `unless` or `clamp` removed every series.
    Filtered { expr: String },
    /// `scalar(...)` needs exactly one series.
    NotOneSeries { expr: String, count: usize },
    /// A function or aggregation that reads floats found only native histograms (which
    /// Prometheus skips).
    HistogramIgnored { expr: String },
    /// An operator that does not apply to a native histogram (`h + 1`, `h > 0.5`) found
    /// only such pairs.
    HistogramOperand { expr: String },
    /// A histogram function found only float samples.
    NotNativeHistogram { expr: String },
    /// Floats and native histograms where they cannot be combined: one aggregation group,
    /// one range window.
    MixedFloatsAndHistograms { expr: String },
    /// A native histogram and classic buckets with the same labels, which
    /// `histogram_quantile` and `histogram_fraction` leave out, as Prometheus does.
    NativeAndClassic { expr: String, labels: String },
}

impl fmt::Display for NoData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoData::NoScrape => f.write_str("no successful scrape yet"),
            NoData::ScrapeTooOld { age_ms } => write!(
                f,
                "the latest successful scrape is {} old",
                format_duration(*age_ms)
            ),
            NoData::NoSeries { selector, stale } => {
                write!(f, "no series matched {selector}")?;
                match stale {
                    0 => Ok(()),
                    1 => f.write_str(" (1 series went stale: absent from the latest scrape)"),
                    n => write!(f, " ({n} series went stale: absent from the latest scrape)"),
                }
            }
            NoData::NotEnoughHistory {
                function,
                range,
                points,
            } => write!(
                f,
                "not enough history for {function} over {range} ({points} point{})",
                if *points == 1 { "" } else { "s" }
            ),
            NoData::NoInfBucket => f.write_str("histogram has no le=\"+Inf\" bucket"),
            NoData::TooFewBuckets => f.write_str("histogram has fewer than 2 buckets"),
            NoData::NoObservations => f.write_str("histogram has no observations"),
            NoData::NoHistoryYet { offset } => {
                write!(f, "no scrape from {offset} ago yet (offset {offset})")
            }
            NoData::NoMatch { expr } => write!(
                f,
                "no series on one side of {expr} matched a series on the other side \
                 (compare their labels, or use on (...) / ignoring (...))"
            ),
            NoData::Filtered { expr } => write!(f, "{expr} filtered out every series"),
            NoData::NotOneSeries { expr, count } => {
                write!(f, "{expr} needs exactly one series, found {count}")
            }
            NoData::HistogramIgnored { expr } => write!(
                f,
                "{expr} reads float samples, but found only native histograms; read them with \
                 histogram_quantile, histogram_count, histogram_sum, histogram_fraction or \
                 histogram_avg"
            ),
            NoData::HistogramOperand { expr } => write!(
                f,
                "{expr} does not apply to native histograms (they take * and / by a number, \
                 and +, -, == and != with another histogram); compare a number taken from \
                 them, e.g. histogram_quantile(0.9, x) > 0.5"
            ),
            NoData::NotNativeHistogram { expr } => write!(
                f,
                "{expr} reads native histograms, but found only float samples; for a classic \
                 histogram use its _count and _sum series, or histogram_quantile over its \
                 _bucket series"
            ),
            NoData::MixedFloatsAndHistograms { expr } => write!(
                f,
                "{expr} mixes float samples and native histograms, which cannot be combined; \
                 select one kind with matchers"
            ),
            NoData::NativeAndClassic { expr, labels } => write!(
                f,
                "{expr}: {labels} is both a native histogram and classic buckets, so neither \
                 is used; select one of them"
            ),
        }
    }
}

/// A query that cannot yield a number for reasons the user must fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(message: impl Into<String>) -> EvalError {
        EvalError {
            message: message.into(),
        }
    }
}

/// An age as a scrape message gives it: `850ms`, `1m30s`.
fn format_duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}
