//! The Prometheus protobuf exposition format (`application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`): a sequence of
//! `MetricFamily` messages, each preceded by its length as a varint.
//!
//! [`decode`] reads a whole body (decoding with prost, see `wire.rs`), checks it as
//! Prometheus 3 does and converts it to the series Prometheus ingests: counters, gauges and
//! untyped values, summaries (`_count`, `_sum`, one series per quantile), classic histograms
//! (`_count`, `_sum`, `_bucket` per `le`, `+Inf` added when missing) and native histograms
//! (one series holding a [`FloatHistogram`]), histogram series chosen by
//! [`HistogramOptions`]. [`ProtoBody::samples`] then yields them.
//!
//! Nothing in a body is skipped silently: a malformed message, an invalid name or a native
//! histogram whose spans and counts disagree is a [`ProtoError`] with the byte offset where
//! it was found, and the body is refused whole, as Prometheus fails the whole scrape.
//! `docs/exposition.md` describes what is kept and what is dropped.

mod convert;
mod float_label;
mod native;
#[cfg(test)]
pub(crate) mod test_bodies;
#[cfg(test)]
mod tests;
mod wire;

use prost::Message as _;
use prost::bytes::{Buf, Bytes};

use crate::histogram::FloatHistogram;

pub use float_label::format_openmetrics_float;

/// The media type Prometheus asks for and reads as protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.google.protobuf";

/// A body that is not a valid protobuf exposition: where (a 0-based byte offset into the
/// body) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte offset {offset}: {message}")]
pub struct ProtoError {
    pub offset: usize,
    pub message: String,
}

/// Which histogram series to yield, as Prometheus's scrape settings choose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramOptions {
    /// Yield native histograms (Prometheus: `scrape_native_histograms: true`). Off, a
    /// native histogram is read as a classic one: `_count`, `_sum` and its classic buckets,
    /// or only `+Inf` when it has none.
    pub native: bool,
    /// Also yield the classic series of a histogram that is native too (Prometheus:
    /// `always_scrape_classic_histograms: true`).
    pub classic_with_native: bool,
}

impl HistogramOptions {
    /// What podgate ingests: native histograms, and the classic series of histograms that
    /// expose both, so that a rule pasted from a dashboard works whichever form it reads.
    pub const PODGATE: HistogramOptions = HistogramOptions {
        native: true,
        classic_with_native: true,
    };
    /// Prometheus 3.16's defaults: native histograms are not scraped.
    pub const PROMETHEUS_DEFAULT: HistogramOptions = HistogramOptions {
        native: false,
        classic_with_native: false,
    };
    /// Prometheus 3.16 with `scrape_native_histograms: true` alone: a histogram exposed in
    /// both forms keeps only its native form.
    pub const PROMETHEUS_NATIVE: HistogramOptions = HistogramOptions {
        native: true,
        classic_with_native: false,
    };
}

impl Default for HistogramOptions {
    fn default() -> Self {
        HistogramOptions::PODGATE
    }
}

/// An exemplar attached to a counter, a bucket or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtoExemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when given.
    pub timestamp_ms: Option<i64>,
}

/// The value of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProtoValue<'a> {
    Float(f64),
    Histogram(&'a FloatHistogram),
}

/// One sample of a decoded body, borrowed from the [`ProtoBody`].
#[derive(Debug, Clone, Copy)]
pub struct ProtoSample<'a> {
    /// The series name: the family name, with `_count`, `_sum` or `_bucket` for the classic
    /// series of summaries and histograms.
    pub name: &'a str,
    /// The metric's labels as the body gave them.
    pub labels: &'a [(String, String)],
    /// The `le` of a bucket or `quantile` of a quantile series, formatted as Prometheus
    /// does (`le="1.0"`).
    pub extra_label: Option<(&'static str, &'a str)>,
    pub value: ProtoValue<'a>,
    /// Milliseconds since the epoch, when the metric carries one (0 means none).
    pub timestamp_ms: Option<i64>,
    /// The exemplars Prometheus would store with this sample.
    pub exemplars: &'a [ProtoExemplar],
}

impl<'a> ProtoSample<'a> {
    /// Every label, the `le`/`quantile` label last.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(self.extra_label)
    }

    /// The float value; `None` for a native histogram.
    pub fn float(&self) -> Option<f64> {
        match self.value {
            ProtoValue::Float(v) => Some(v),
            ProtoValue::Histogram(_) => None,
        }
    }

    pub fn histogram(&self) -> Option<&'a FloatHistogram> {
        match self.value {
            ProtoValue::Float(_) => None,
            ProtoValue::Histogram(h) => Some(h),
        }
    }
}

/// A decoded and checked body. See [`decode`].
#[derive(Debug, Clone, Default)]
pub struct ProtoBody {
    families: Vec<convert::Family>,
}

impl ProtoBody {
    /// The samples, family by family, in the order Prometheus reads them.
    pub fn samples(&self) -> impl Iterator<Item = ProtoSample<'_>> {
        self.families.iter().flat_map(convert::Family::samples)
    }

    /// Number of metric families with at least one metric.
    pub fn families(&self) -> usize {
        self.families.len()
    }
}

/// Longest length prefix Prometheus reads (`binary.MaxVarintLen32`).
const MAX_PREFIX_BYTES: usize = 5;

/// Decodes and checks a whole body, keeping the histogram series `options` asks for (the
/// native parts of histograms are checked only when they are kept, as in Prometheus). See
/// the module docs.
pub fn decode(body: impl Into<Bytes>, options: HistogramOptions) -> Result<ProtoBody, ProtoError> {
    let body: Bytes = body.into();
    let mut rest = body.clone();
    let mut families = Vec::new();
    let mut index = 0usize;
    while rest.has_remaining() {
        index += 1;
        let start = body.len() - rest.remaining();
        let before = rest.remaining();
        let length = prost::decode_length_delimiter(&mut rest).map_err(|_| ProtoError {
            offset: start,
            message: format!(
                "message {index}: its length prefix is not a valid varint (truncated, or \
                 longer than 10 bytes); is the body really `encoding=delimited` protobuf?"
            ),
        })?;
        let prefix_bytes = before - rest.remaining();
        if prefix_bytes > MAX_PREFIX_BYTES {
            return Err(ProtoError {
                offset: start,
                message: format!(
                    "message {index}: its length prefix takes {prefix_bytes} bytes, more \
                     than the {MAX_PREFIX_BYTES} of a 32-bit length"
                ),
            });
        }
        if length > rest.remaining() {
            return Err(ProtoError {
                offset: start,
                message: format!(
                    "message {index}: its length prefix says {length} bytes but only {} \
                     remain in the body (truncated body?)",
                    rest.remaining()
                ),
            });
        }
        let message_start = start + prefix_bytes;
        let mut message = rest.split_to(length);
        let decoded = wire::MetricFamily::decode(&mut message).map_err(|e| ProtoError {
            offset: message_start + (length - message.remaining()),
            message: format!(
                "message {index} (a MetricFamily starting at byte offset {message_start}): {}",
                describe(&e)
            ),
        })?;
        if let Some(family) = convert::family(decoded, &body, message_start, options)? {
            families.push(family);
        }
    }
    Ok(ProtoBody { families })
}

/// prost's error without its generic prefix, e.g. `Metric.histogram: Histogram.schema:
/// invalid varint`.
fn describe(e: &prost::DecodeError) -> String {
    let text = e.to_string();
    text.strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text)
        .to_string()
}
