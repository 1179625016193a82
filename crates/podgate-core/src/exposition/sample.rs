//! What the parser yields: samples, their exemplars, and metric family types.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::float::PromValue;
use super::labels::{Labels, write_series};

/// One sample: a series (name and labels) with its value and optional timestamp, borrowed
/// from the exposition body.
#[derive(Debug, Clone)]
pub struct Sample<'a> {
    /// The metric name, borrowed from the body; copied only when it was written quoted with
    /// an escape sequence (`{"a\"b"}`).
    pub name: Cow<'a, str>,
    pub labels: Labels<'a>,
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the body gave one. OpenMetrics timestamps
    /// (seconds, possibly fractional) are converted as Prometheus does: `trunc(s * 1000)`.
    pub timestamp_ms: Option<i64>,
}

impl Sample<'_> {
    /// True when both are the same series with the same value (NaN equal to NaN, compared
    /// bit for bit otherwise) and timestamp.
    pub fn same_as(&self, other: &Sample<'_>) -> bool {
        self.name == other.name
            && self.labels == other.labels
            && self.timestamp_ms == other.timestamp_ms
            && (self.value.to_bits() == other.value.to_bits()
                || (self.value.is_nan() && other.value.is_nan()))
    }
}

/// The sample in Prometheus text exposition syntax, the way a `/metrics` line looks:
/// `name{label="value",...} value [timestamp_ms]`, label values re-escaped, the value as
/// the Prometheus API prints it. A metric name or label name outside the legacy character
/// set is quoted as Prometheus 3 writes it: `{"http.server.duration","service.name"="x"} 1`. Reading the line back with [`Format::Text`] gives the same
/// sample, except that the text format has no spelling for a negative timestamp.
///
/// [`Format::Text`]: super::Format::Text
impl fmt::Display for Sample<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_series(f, &self.name, self.labels.iter(), false)?;
        write!(f, " {}", PromValue(self.value))?;
        if let Some(ts) = self.timestamp_ms {
            write!(f, " {ts}")?;
        }
        Ok(())
    }
}

/// The JSON form: `{"name": ..., "labels": {...}, "value": "...", "timestamp_ms": n|null}`,
/// labels sorted by name, the value a string as the Prometheus API prints it (`"NaN"`,
/// `"+Inf"`, `"1042"`).
impl Serialize for Sample<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("name", &*self.name)?;
        map.serialize_entry("labels", &SortedLabels(self.labels))?;
        map.serialize_entry("value", &PromValue(self.value).to_string())?;
        map.serialize_entry("timestamp_ms", &self.timestamp_ms)?;
        map.end()
    }
}

/// Labels as a JSON object (sorted by name).
impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SortedLabels(*self).serialize(serializer)
    }
}

struct SortedLabels<'a>(Labels<'a>);

impl Serialize for SortedLabels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut pairs: Vec<_> = self.0.iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut map = serializer.serialize_map(Some(pairs.len()))?;
        for (name, value) in &pairs {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// An OpenMetrics exemplar (`# {labels} value [timestamp]` after a sample).
#[derive(Debug, Clone, Copy)]
pub struct Exemplar<'a> {
    pub labels: Labels<'a>,
    pub value: f64,
    /// Milliseconds since the Unix epoch, when given.
    pub timestamp_ms: Option<i64>,
}

/// The type a `# TYPE` line declares for a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    /// OpenMetrics only.
    GaugeHistogram,
    Summary,
    /// OpenMetrics only.
    Info,
    /// OpenMetrics only.
    StateSet,
    /// `untyped` in the text format, `unknown` in OpenMetrics, or no `# TYPE` line.
    Unknown,
}

impl MetricType {
    /// The type keyword as the text format spells it (`untyped` for [`MetricType::Unknown`]),
    /// or as OpenMetrics spells it for the OpenMetrics-only types.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "untyped",
        }
    }

    /// The sample-name suffixes a family of this type uses besides the bare family name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            MetricType::Summary => &["_count", "_sum", "_created"],
            MetricType::Info => &["_info"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[],
        }
    }

    /// True when a sample called `sample_name` belongs to family `family` of this type.
    pub(crate) fn family_has(self, family: &str, sample_name: &str) -> bool {
        match sample_name.strip_prefix(family) {
            Some("") => true,
            Some(suffix) => self.suffixes().contains(&suffix),
            None => false,
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(labels: Labels<'a>, value: f64, ts: Option<i64>) -> Sample<'a> {
        Sample {
            name: Cow::Borrowed("job:http_requests:rate5m"),
            labels,
            value,
            timestamp_ms: ts,
        }
    }

    #[test]
    fn display_is_exposition_syntax() {
        let l = Labels::from_validated(r#"path="/api,v1",msg="a\nb""#, 2);
        assert_eq!(
            sample(l, 12.5, None).to_string(),
            r#"job:http_requests:rate5m{path="/api,v1",msg="a\nb"} 12.5"#
        );
        assert_eq!(
            sample(Labels::EMPTY, f64::NEG_INFINITY, Some(1_700_000_000_000)).to_string(),
            "job:http_requests:rate5m -Inf 1700000000000"
        );
        assert_eq!(
            sample(Labels::EMPTY, f64::NAN, None).to_string(),
            "job:http_requests:rate5m NaN"
        );
    }

    #[test]
    fn json_form() {
        let l = Labels::from_validated(r#"z="1",a="say \"hi\"""#, 2);
        let json = serde_json::to_value(sample(l, f64::INFINITY, Some(5))).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "name": "job:http_requests:rate5m",
                "labels": {"a": "say \"hi\"", "z": "1"},
                "value": "+Inf",
                "timestamp_ms": 5
            })
        );
        let text = serde_json::to_string(&sample(Labels::EMPTY, 1e21, None)).expect("serializes");
        assert_eq!(
            text,
            r#"{"name":"job:http_requests:rate5m","labels":{},"value":"1000000000000000000000","timestamp_ms":null}"#
        );
    }

    #[test]
    fn same_as_treats_nan_as_equal_and_checks_everything_else() {
        let a = sample(Labels::EMPTY, f64::NAN, None);
        assert!(a.same_as(&sample(Labels::EMPTY, f64::NAN, None)));
        assert!(!a.same_as(&sample(Labels::EMPTY, 1.0, None)));
        assert!(!a.same_as(&sample(Labels::EMPTY, f64::NAN, Some(1))));
        let l = Labels::from_validated(r#"a="1""#, 1);
        assert!(!a.same_as(&sample(l, f64::NAN, None)));
        assert!(!sample(Labels::EMPTY, 0.0, None).same_as(&sample(Labels::EMPTY, -0.0, None)));
    }

    #[test]
    fn family_membership_by_type() {
        assert!(MetricType::Histogram.family_has("h", "h_bucket"));
        assert!(MetricType::Histogram.family_has("h", "h"));
        assert!(!MetricType::Histogram.family_has("h", "h_total"));
        assert!(!MetricType::Histogram.family_has("h", "hx_bucket"));
        assert!(MetricType::Counter.family_has("c", "c_total"));
        assert!(!MetricType::Gauge.family_has("g", "g_sum"));
        assert_eq!(MetricType::Unknown.to_string(), "untyped");
    }
}
