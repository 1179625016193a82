//! Decoded `MetricFamily` messages as the series Prometheus 3 ingests from them
//! (`model/textparse/protobufparse.go`).

use prost::Message as _;
use prost::bytes::Bytes;

use super::float_label::format_openmetrics_float;
use super::{HistogramOptions, ProtoError, ProtoExemplar, ProtoSample, ProtoValue, native, wire};
use crate::histogram::FloatHistogram;

/// A family with at least one metric, its series names and its metrics converted.
#[derive(Debug, Clone)]
pub(super) struct Family {
    name: String,
    count_name: String,
    sum_name: String,
    bucket_name: String,
    metrics: Vec<Metric>,
}

#[derive(Debug, Clone)]
struct Metric {
    labels: Vec<(String, String)>,
    timestamp_ms: Option<i64>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Counter (with its exemplar), gauge or untyped.
    Float {
        value: f64,
        exemplars: Vec<ProtoExemplar>,
    },
    Summary {
        count: f64,
        sum: f64,
        /// `(quantile label value, value)`.
        quantiles: Vec<(String, f64)>,
    },
    Histogram {
        native: Option<Native>,
        classic: Option<Classic>,
    },
}

#[derive(Debug, Clone)]
struct Native {
    histogram: FloatHistogram,
    exemplars: Vec<ProtoExemplar>,
}

#[derive(Debug, Clone)]
struct Classic {
    count: f64,
    sum: f64,
    buckets: Vec<ClassicBucket>,
}

#[derive(Debug, Clone)]
struct ClassicBucket {
    le: String,
    count: f64,
    exemplars: Vec<ProtoExemplar>,
}

/// Converts one decoded family; `None` for a family without metrics, which Prometheus skips
/// before looking at its name or type. `body` is the whole body and `offset` where the
/// family's message starts, for error offsets.
pub(super) fn family(
    decoded: wire::MetricFamily,
    body: &Bytes,
    offset: usize,
    options: HistogramOptions,
) -> Result<Option<Family>, ProtoError> {
    if decoded.metric.is_empty() {
        return Ok(None);
    }
    let name = decoded.name;
    if name.is_empty() {
        return Err(ProtoError {
            offset,
            message: "a metric family has an empty name".to_string(),
        });
    }
    let kind = decoded.r#type;
    if !(wire::COUNTER..=wire::GAUGE_HISTOGRAM).contains(&kind) {
        return Err(ProtoError {
            offset,
            message: format!("unknown metric type {kind} for metric {name:?}"),
        });
    }
    let mut metrics = Vec::with_capacity(decoded.metric.len());
    for (n, raw) in decoded.metric.iter().enumerate() {
        // The metric's bytes are a slice of the body: its offset is the pointer distance.
        let start = (raw.as_ptr() as usize)
            .checked_sub(body.as_ptr() as usize)
            .filter(|&o| o <= body.len())
            .unwrap_or(offset);
        let context = |what: String| format!("metric {} of {name:?}: {what}", n + 1);
        let mut cursor = raw.clone();
        let m = wire::Metric::decode(&mut cursor).map_err(|e| ProtoError {
            offset: start + (raw.len() - prost::bytes::Buf::remaining(&cursor)),
            message: context(super::describe(&e)),
        })?;
        let converted = metric(m, kind, options).map_err(|what| ProtoError {
            offset: start,
            message: context(what),
        })?;
        metrics.push(converted);
    }
    Ok(Some(Family {
        count_name: format!("{name}_count"),
        sum_name: format!("{name}_sum"),
        bucket_name: format!("{name}_bucket"),
        name,
        metrics,
    }))
}

fn metric(m: wire::Metric, kind: i32, options: HistogramOptions) -> Result<Metric, String> {
    let mut labels = Vec::with_capacity(m.label.len());
    for pair in m.label {
        if pair.name.is_empty() {
            return Err("a label has an empty name".to_string());
        }
        if pair.name == "__name__" {
            return Err("a label is named `__name__`, which the family name sets".to_string());
        }
        labels.push((pair.name, pair.value));
    }
    let kind = match kind {
        wire::COUNTER => {
            let counter = m.counter.unwrap_or_default();
            Kind::Float {
                value: counter.value,
                exemplars: counter.exemplar.map(exemplar).into_iter().collect(),
            }
        }
        wire::GAUGE => Kind::Float {
            value: m.gauge.unwrap_or_default().value,
            exemplars: Vec::new(),
        },
        wire::UNTYPED => Kind::Float {
            value: m.untyped.unwrap_or_default().value,
            exemplars: Vec::new(),
        },
        wire::SUMMARY => {
            let s = m.summary.unwrap_or_default();
            Kind::Summary {
                count: s.sample_count as f64,
                sum: s.sample_sum,
                quantiles: s
                    .quantile
                    .iter()
                    .map(|q| (format_openmetrics_float(q.quantile), q.value))
                    .collect(),
            }
        }
        wire::HISTOGRAM | wire::GAUGE_HISTOGRAM => histogram(
            m.histogram.unwrap_or_default(),
            kind == wire::GAUGE_HISTOGRAM,
            options,
        )?,
        other => return Err(format!("unknown metric type {other}")),
    };
    Ok(Metric {
        labels,
        // 0 is "no timestamp": proto3 cannot tell it from an unset field.
        timestamp_ms: (m.timestamp_ms != 0).then_some(m.timestamp_ms),
        kind,
    })
}

fn histogram(h: wire::Histogram, gauge: bool, options: HistogramOptions) -> Result<Kind, String> {
    let native = if options.native && native::is_native(&h) {
        let histogram = native::convert(&h, gauge).map_err(|e| format!("native histogram: {e}"))?;
        Some(Native {
            histogram,
            exemplars: native_exemplars(&h),
        })
    } else {
        None
    };
    let classic = match &native {
        None => Some(classic(&h)),
        Some(_) if options.classic_with_native && !h.bucket.is_empty() => Some(classic(&h)),
        Some(_) => None,
    };
    Ok(Kind::Histogram { native, classic })
}

/// `_count`, `_sum` and the cumulative buckets up to the first `+Inf` one, which is added
/// when missing.
fn classic(h: &wire::Histogram) -> Classic {
    let count = or_integer(h.sample_count_float, h.sample_count);
    let mut buckets = Vec::with_capacity(h.bucket.len() + 1);
    let mut has_inf = false;
    for b in &h.bucket {
        buckets.push(ClassicBucket {
            le: format_openmetrics_float(b.upper_bound),
            count: or_integer(b.cumulative_count_float, b.cumulative_count),
            exemplars: b.exemplar.clone().map(exemplar).into_iter().collect(),
        });
        if b.upper_bound == f64::INFINITY {
            has_inf = true;
            break;
        }
    }
    if !has_inf {
        buckets.push(ClassicBucket {
            le: "+Inf".to_string(),
            count,
            exemplars: Vec::new(),
        });
    }
    Classic {
        count,
        sum: h.sample_sum,
        buckets,
    }
}

/// A float field that overrides its integer twin when it is not 0.
fn or_integer(float: f64, integer: u64) -> f64 {
    if float != 0.0 { float } else { integer as f64 }
}

/// The exemplars Prometheus stores with a native histogram: those of the histogram itself
/// when it has any, else those of its buckets; only exemplars with a timestamp.
fn native_exemplars(h: &wire::Histogram) -> Vec<ProtoExemplar> {
    let from: Vec<&wire::Exemplar> = if h.exemplars.is_empty() {
        h.bucket
            .iter()
            .filter_map(|b| b.exemplar.as_ref())
            .collect()
    } else {
        h.exemplars.iter().collect()
    };
    from.into_iter()
        .filter(|e| e.timestamp.is_some())
        .cloned()
        .map(exemplar)
        .collect()
}

fn exemplar(e: wire::Exemplar) -> ProtoExemplar {
    let mut labels: Vec<(String, String)> =
        e.label.into_iter().map(|l| (l.name, l.value)).collect();
    labels.sort();
    ProtoExemplar {
        labels,
        value: e.value,
        timestamp_ms: e.timestamp.map(|t| {
            t.seconds
                .saturating_mul(1000)
                .saturating_add(i64::from(t.nanos / 1_000_000))
        }),
    }
}

impl Family {
    /// The samples of every metric, in Prometheus's order: a native histogram before its
    /// classic series; `_count`, `_sum`, then buckets or quantiles.
    pub(super) fn samples(&self) -> impl Iterator<Item = ProtoSample<'_>> {
        self.metrics
            .iter()
            .flat_map(move |m| (0..).map_while(move |n| self.sample(m, n)))
    }

    /// The `n`th sample of metric `m`, if it has that many.
    fn sample<'a>(&'a self, m: &'a Metric, n: usize) -> Option<ProtoSample<'a>> {
        let sample = |name: &'a str, extra_label, value, exemplars: &'a [ProtoExemplar]| {
            Some(ProtoSample {
                name,
                labels: &m.labels,
                extra_label,
                value,
                timestamp_ms: m.timestamp_ms,
                exemplars,
            })
        };
        match &m.kind {
            Kind::Float { value, exemplars } => match n {
                0 => sample(&self.name, None, ProtoValue::Float(*value), exemplars),
                _ => None,
            },
            Kind::Summary {
                count,
                sum,
                quantiles,
            } => match n {
                0 => sample(&self.count_name, None, ProtoValue::Float(*count), &[]),
                1 => sample(&self.sum_name, None, ProtoValue::Float(*sum), &[]),
                _ => quantiles.get(n - 2).and_then(|(q, v)| {
                    sample(
                        &self.name,
                        Some(("quantile", q.as_str())),
                        ProtoValue::Float(*v),
                        &[],
                    )
                }),
            },
            Kind::Histogram { native, classic } => {
                let n = match (native, n) {
                    (Some(h), 0) => {
                        return sample(
                            &self.name,
                            None,
                            ProtoValue::Histogram(&h.histogram),
                            &h.exemplars,
                        );
                    }
                    (Some(_), n) => n - 1,
                    (None, n) => n,
                };
                let c = classic.as_ref()?;
                match n {
                    0 => sample(&self.count_name, None, ProtoValue::Float(c.count), &[]),
                    1 => sample(&self.sum_name, None, ProtoValue::Float(c.sum), &[]),
                    _ => c.buckets.get(n - 2).and_then(|b| {
                        sample(
                            &self.bucket_name,
                            Some(("le", b.le.as_str())),
                            ProtoValue::Float(b.count),
                            &b.exemplars,
                        )
                    }),
                }
            }
        }
    }
}
