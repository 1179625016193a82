//! A deliberately plain model of what a pod's [`SeriesStore`] must answer, for the property
//! tests (`store_property_tests.rs`): every series in a `BTreeMap` keyed by its label set,
//! its points in plain vectors, the whole store copied before a scrape and swapped in only
//! when the scrape succeeds. It applies the rules of `store.rs` and `docs/query.md` (scrape
//! times, staleness, lookback, retention beyond the longest range, the per-series point cap,
//! the series, label and bucket limits, atomic ingestion) without any of the store's
//! bookkeeping, and evaluates a fixed set of query shapes by selecting points itself. The
//! arithmetic on selected points (rate, quantiles) is the crate's own: what is compared is
//! which points every query sees.

use std::collections::BTreeMap;

use super::catalog::Func;
use super::classic::{Bucket, bucket_quantile, parse_bound};
use super::float_range;
use super::outcome::NoData;
use super::store::Point;
use super::{Interest, QueryValue, ScrapedSample, StoreLimits};
use crate::histogram::{FloatHistogram, HistogramPoint, MIN_SCHEMA, RateWindow, histogram_rate};

/// A generated sample's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GenValue {
    Float(f64),
    Histogram(FloatHistogram),
}

/// One generated sample, labels in the order the body gives them (empty values allowed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GenSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: GenValue,
}

impl ScrapedSample for &GenSample {
    fn metric_name(&self) -> &str {
        &self.name
    }

    fn value(&self) -> f64 {
        match &self.value {
            GenValue::Float(v) => *v,
            GenValue::Histogram(_) => f64::NAN,
        }
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (k, v) in &self.labels {
            visit(k, v);
        }
    }

    fn histogram(&self) -> Option<&FloatHistogram> {
        match &self.value {
            GenValue::Float(_) => None,
            GenValue::Histogram(h) => Some(h),
        }
    }
}

/// Which error a failed ingest reported (the store's messages are not modelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefError {
    Source,
    TooManySeries,
    OutOfOrder,
    TooManyBuckets,
    DuplicateLabel,
    LabelTooLong,
}

impl<E> From<&super::IngestError<E>> for RefError {
    fn from(e: &super::IngestError<E>) -> RefError {
        use super::IngestError as I;
        match e {
            I::Source(_) => RefError::Source,
            I::TooManySeries { .. } => RefError::TooManySeries,
            I::OutOfOrder { .. } => RefError::OutOfOrder,
            I::TooManyBuckets { .. } => RefError::TooManyBuckets,
            I::DuplicateLabel { .. } => RefError::DuplicateLabel,
            I::LabelTooLong { .. } => RefError::LabelTooLong,
        }
    }
}

/// A series' identity: its name, then its non-empty labels sorted by name.
pub(crate) type Key = (String, Vec<(String, String)>);

#[derive(Debug, Clone, Default)]
pub(crate) struct RefSeries {
    pub floats: Vec<(i64, f64)>,
    pub histograms: Vec<(i64, FloatHistogram)>,
    /// Newest time dropped by the point cap.
    pub evicted_until: Option<i64>,
}

impl RefSeries {
    fn has_point_at(&self, t: i64) -> bool {
        self.floats.iter().any(|p| p.0 == t) || self.histograms.iter().any(|p| p.0 == t)
    }
}

/// A key seen as a sample, for [`Interest::wants`].
struct KeySample<'a>(&'a Key);

impl ScrapedSample for KeySample<'_> {
    fn metric_name(&self) -> &str {
        &self.0.0
    }

    fn value(&self) -> f64 {
        f64::NAN
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (k, v) in &self.0.1 {
            visit(k, v);
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RefStore {
    pub interest: Interest,
    pub limits: StoreLimits,
    pub series: BTreeMap<Key, RefSeries>,
    /// Scrape times kept, oldest first.
    pub scrapes: Vec<i64>,
    pub first_scrape: Option<i64>,
}

impl RefStore {
    pub fn new(interest: Interest, limits: StoreLimits) -> RefStore {
        RefStore {
            interest,
            limits,
            series: BTreeMap::new(),
            scrapes: Vec::new(),
            first_scrape: None,
        }
    }

    pub fn last_scrape(&self) -> Option<i64> {
        self.scrapes.last().copied()
    }

    /// Ingests a scrape whose source fails before sample `fail_at` (if given).
    pub fn ingest(
        &mut self,
        t: i64,
        samples: &[GenSample],
        fail_at: Option<usize>,
    ) -> Result<super::IngestStats, RefError> {
        if self.last_scrape().is_some_and(|last| t <= last) {
            return Err(RefError::OutOfOrder);
        }
        // Work on a copy: an error leaves `self` untouched.
        let mut next = self.clone();
        let mut stats = super::IngestStats::default();
        for i in 0..=samples.len() {
            if fail_at == Some(i) {
                return Err(RefError::Source);
            }
            let Some(sample) = samples.get(i) else {
                break;
            };
            stats.samples += 1;
            if !next.interest.wants(&sample) {
                continue;
            }
            let histogram = match &sample.value {
                GenValue::Histogram(h) => Some(
                    reduce_resolution(h, next.limits.max_histogram_buckets)
                        .ok_or(RefError::TooManyBuckets)?,
                ),
                GenValue::Float(_) => None,
            };
            let mut labels: Vec<(String, String)> = sample
                .labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .cloned()
                .collect();
            labels.sort();
            let twice = labels.windows(2).any(|w| w[0].0 == w[1].0);
            let key = (sample.name.clone(), labels);
            let known = !twice && next.series.contains_key(&key);
            if !known {
                let limit = next.limits.max_label_bytes;
                if sample.name.len() > limit
                    || sample
                        .labels
                        .iter()
                        .any(|(k, v)| k.len() > limit || v.len() > limit)
                {
                    return Err(RefError::LabelTooLong);
                }
                if next.series.len() >= next.limits.max_series {
                    return Err(RefError::TooManySeries);
                }
                if twice {
                    return Err(RefError::DuplicateLabel);
                }
            }
            let series = next.series.entry(key).or_default();
            if series.has_point_at(t) {
                stats.duplicates += 1;
                continue;
            }
            stats.kept += 1;
            match (histogram, &sample.value) {
                (Some(h), _) => series.histograms.push((t, h)),
                (None, GenValue::Float(v)) => series.floats.push((t, *v)),
                (None, GenValue::Histogram(_)) => {}
            }
        }
        next.scrapes.push(t);
        next.first_scrape.get_or_insert(t);
        let cap = next.limits.max_points_per_series.max(1);
        let keep_after = next.keep_after(t);
        for series in next.series.values_mut() {
            series.floats.retain(|p| p.0 > keep_after);
            series.histograms.retain(|p| p.0 > keep_after);
            if series.floats.len() > cap {
                let cut = series.floats.len() - cap;
                let newest = series.floats.get(cut - 1).map(|p| p.0);
                series.evicted_until = series.evicted_until.max(newest);
                series.floats.drain(..cut);
            }
            if series.histograms.len() > cap {
                let cut = series.histograms.len() - cap;
                let newest = series.histograms.get(cut - 1).map(|p| p.0);
                series.evicted_until = series.evicted_until.max(newest);
                series.histograms.drain(..cut);
            }
        }
        next.retain();
        *self = next;
        Ok(stats)
    }

    /// The rule reload: series no query reads are forgotten, history trimmed to the new
    /// longest range.
    pub fn set_interest(&mut self, interest: Interest) {
        self.interest = interest;
        let interest = &self.interest;
        self.series.retain(|key, _| interest.wants(&KeySample(key)));
        if let Some(last) = self.last_scrape() {
            let keep_after = self.keep_after(last);
            for series in self.series.values_mut() {
                series.floats.retain(|p| p.0 > keep_after);
                series.histograms.retain(|p| p.0 > keep_after);
            }
            self.retain();
        }
    }

    /// Points at or before this time are of no use: older than the longest range plus the
    /// margin, or, for instant queries only, older than the latest scrape.
    fn keep_after(&self, last: i64) -> i64 {
        match self.interest.longest_range_ms() {
            0 => last - 1,
            range => last - range - self.limits.retention_margin_ms,
        }
    }

    /// Scrape times trimmed like points (the latest always kept), empty series dropped.
    fn retain(&mut self) {
        let Some(last) = self.last_scrape() else {
            return;
        };
        let keep_after = self.keep_after(last);
        let old = self.scrapes.iter().filter(|&&s| s <= keep_after).count();
        self.scrapes.drain(..old.min(self.scrapes.len() - 1));
        self.series
            .retain(|_, s| !s.floats.is_empty() || !s.histograms.is_empty());
    }

    fn scrape_at_or_before(&self, t: i64) -> Option<i64> {
        self.scrapes.iter().rev().find(|&&s| s <= t).copied()
    }
}

/// `h` at the highest resolution that fits `limit` buckets.
fn reduce_resolution(h: &FloatHistogram, limit: usize) -> Option<FloatHistogram> {
    let mut h = h.clone();
    while h.bucket_count() > limit {
        if h.schema <= MIN_SCHEMA {
            return None;
        }
        h = h.copy_to_schema(h.schema - 1);
    }
    Some(h)
}

/// A selector of equality matchers; `name` may be left to a `__name__` matcher.
#[derive(Debug, Clone)]
pub(crate) struct Sel {
    pub name: Option<&'static str>,
    pub matchers: Vec<(&'static str, &'static str)>,
}

impl Sel {
    pub fn text(&self) -> String {
        let matchers: Vec<String> = self
            .matchers
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        match (self.name, matchers.is_empty()) {
            (Some(name), true) => name.to_string(),
            (name, _) => format!("{}{{{}}}", name.unwrap_or(""), matchers.join(", ")),
        }
    }

    fn matches(&self, key: &Key) -> bool {
        let label = |name: &str| -> &str {
            if name == "__name__" {
                return &key.0;
            }
            key.1.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v)
        };
        self.name.is_none_or(|n| n == key.0) && self.matchers.iter().all(|(k, v)| label(k) == *v)
    }
}

/// What a query computes over its selector.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Instant,
    Range(Func, i64, &'static str),
    /// `histogram_quantile(q, rate(sel[range]))`, or of `sel` itself without a range.
    Quantile(f64, Option<(i64, &'static str)>),
}

#[derive(Debug, Clone)]
pub(crate) struct RefQuery {
    pub sel: Sel,
    pub offset: Option<(i64, &'static str)>,
    pub shape: Shape,
}

impl RefQuery {
    pub fn text(&self) -> String {
        let offset = self
            .offset
            .map(|(_, text)| format!(" offset {text}"))
            .unwrap_or_default();
        let sel = self.sel.text();
        match &self.shape {
            Shape::Instant => format!("{sel}{offset}"),
            Shape::Range(f, _, r) => format!("{}({sel}[{r}]{offset})", f.name()),
            Shape::Quantile(q, Some((_, r))) => {
                format!("histogram_quantile({q}, rate({sel}[{r}]{offset}))")
            }
            Shape::Quantile(q, None) => format!("histogram_quantile({q}, {sel}{offset})"),
        }
    }
}

/// An element's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RefValue {
    Float(f64),
    Histogram(FloatHistogram),
}

/// What a query yields: its elements (labels as PromQL writes them, sorted), and when there
/// are none, why; `Err` for an evaluation error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub elements: Vec<(String, RefValue)>,
    pub why: Option<NoData>,
}

/// Labels as `name{a="1", b="2"}` (the form the real evaluation's test helper writes).
fn describe(name: Option<&str>, labels: &[(String, String)]) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", name.unwrap_or(""), pairs.join(", "))
}

/// One element before it is described: the series' key and a value.
type Raw<'a> = (&'a Key, RefValue);

impl RefStore {
    /// Evaluates `query` at `now`.
    pub fn eval(&self, query: &RefQuery, now: i64) -> Result<Outcome, ()> {
        let (raw, why) = match query.shape {
            Shape::Instant => self.instant(query, now)?,
            Shape::Range(func, range_ms, range_text) => {
                self.range(query, func, range_ms, range_text, now)?
            }
            Shape::Quantile(q, range) => return self.quantile(query, q, range, now),
        };
        let keeps_name = match query.shape {
            Shape::Range(func, ..) => func.keeps_name(),
            _ => true,
        };
        let mut elements: Vec<(String, RefValue)> = raw
            .into_iter()
            .map(|(key, v)| (describe(keeps_name.then_some(&*key.0), &key.1), v))
            .collect();
        elements.sort_by(|a, b| a.0.cmp(&b.0));
        let why = if elements.is_empty() {
            // No scrape at all before `now`: nothing else is looked at.
            Some(match self.scrape_at_or_before(now) {
                None => NoData::NoScrape,
                Some(_) => why,
            })
        } else {
            None
        };
        Ok(Outcome { elements, why })
    }

    fn matching(&self, sel: &Sel) -> impl Iterator<Item = (&Key, &RefSeries)> {
        let sel = sel.clone();
        self.series.iter().filter(move |(key, _)| sel.matches(key))
    }

    fn before_history(&self, query: &RefQuery) -> NoData {
        match query.offset {
            Some((ms, text)) if ms > 0 && self.first_scrape.is_some() => NoData::NoHistoryYet {
                offset: text.to_string(),
            },
            _ => NoData::NoScrape,
        }
    }

    /// Each matching series' value in the latest scrape at or before `now - offset`.
    fn instant(&self, query: &RefQuery, now: i64) -> Result<(Vec<Raw<'_>>, NoData), ()> {
        let t = now - query.offset.map_or(0, |o| o.0);
        let Some(scrape) = self.scrape_at_or_before(t) else {
            return Ok((Vec::new(), self.before_history(query)));
        };
        if t - scrape > self.limits.lookback_ms {
            return Ok((Vec::new(), NoData::ScrapeTooOld { age_ms: t - scrape }));
        }
        let (mut out, mut stale) = (Vec::new(), 0usize);
        for (key, series) in self.matching(&query.sel) {
            if series.evicted_until.is_some_and(|e| e >= scrape) {
                return Err(());
            }
            let float = series.floats.iter().find(|p| p.0 == scrape);
            let histogram = series.histograms.iter().find(|p| p.0 == scrape);
            match (float, histogram) {
                (Some(p), _) => out.push((key, RefValue::Float(p.1))),
                (None, Some(p)) => out.push((key, RefValue::Histogram(p.1.clone()))),
                (None, None) => stale += 1,
            }
        }
        let why = NoData::NoSeries {
            selector: query.sel.text(),
            stale,
        };
        Ok((out, why))
    }

    /// A range function over each matching series' points in `(t - range, t]`.
    fn range(
        &self,
        query: &RefQuery,
        func: Func,
        range_ms: i64,
        range_text: &'static str,
        now: i64,
    ) -> Result<(Vec<Raw<'_>>, NoData), ()> {
        let t = now - query.offset.map_or(0, |o| o.0);
        let start = t - range_ms;
        let inside = |pt: i64| pt > start && pt <= t;
        let (mut out, mut matched, mut max_points) = (Vec::new(), 0usize, 0usize);
        let (mut short, mut mixed, mut ignored) = (0usize, 0usize, 0usize);
        for (key, series) in self.matching(&query.sel) {
            let floats: Vec<Point> = series
                .floats
                .iter()
                .filter(|p| inside(p.0))
                .map(|&(t, v)| Point { t, v })
                .collect();
            let histograms: Vec<(i64, &FloatHistogram)> = series
                .histograms
                .iter()
                .filter(|p| inside(p.0))
                .map(|(t, h)| (*t, h))
                .collect();
            let (nf, nh) = (floats.len(), histograms.len());
            if nf + nh == 0 {
                continue;
            }
            matched += 1;
            max_points = max_points.max(nf + nh);
            if series.evicted_until.is_some_and(|e| e > start) {
                return Err(());
            }
            let float = |f: Func| {
                (nf >= f.min_points())
                    .then(|| float_range::apply(f, floats.iter().copied(), nf, start, t, range_ms))
                    .flatten()
            };
            let value = if nh == 0 {
                float(func).map(RefValue::Float).ok_or(Skip::Short)
            } else {
                match func {
                    Func::Rate | Func::Increase | Func::Delta if nf > 0 => Err(Skip::Mixed),
                    Func::Rate | Func::Increase | Func::Delta => {
                        let points: Vec<HistogramPoint<'_>> = histograms
                            .iter()
                            .map(|&(t, h)| HistogramPoint { t, h })
                            .collect();
                        let window = RateWindow {
                            end_ms: t,
                            range_ms,
                            per_second: func == Func::Rate,
                            counter: func != Func::Delta,
                        };
                        histogram_rate(&points, window)
                            .map(RefValue::Histogram)
                            .ok_or(Skip::Short)
                    }
                    Func::CountOverTime => Ok(RefValue::Float((nf + nh) as f64)),
                    Func::LastOverTime => {
                        let last_h = histograms.last();
                        match (floats.last(), last_h) {
                            (Some(p), Some(h)) if p.t > h.0 => Ok(RefValue::Float(p.v)),
                            (_, Some(h)) => Ok(RefValue::Histogram(h.1.clone())),
                            (_, None) => Err(Skip::Short),
                        }
                    }
                    _ if nf < func.min_points() => Err(Skip::Ignored),
                    _ => float(func).map(RefValue::Float).ok_or(Skip::Short),
                }
            };
            match value {
                Ok(v) => out.push((key, v)),
                Err(Skip::Short) => short += 1,
                Err(Skip::Mixed) => mixed += 1,
                Err(Skip::Ignored) => ignored += 1,
            }
        }
        let expr = || format!("{}({}[{range_text}])", func.name(), query.sel.text());
        let why = if matched > 0 {
            if short == 0 && mixed > 0 {
                NoData::MixedFloatsAndHistograms { expr: expr() }
            } else if short == 0 && ignored > 0 {
                NoData::HistogramIgnored { expr: expr() }
            } else {
                NoData::NotEnoughHistory {
                    function: func.name(),
                    range: range_text.to_string(),
                    points: max_points,
                }
            }
        } else {
            match self.scrape_at_or_before(t) {
                None => self.before_history(query),
                Some(scrape) if t - scrape >= range_ms => {
                    NoData::ScrapeTooOld { age_ms: t - scrape }
                }
                Some(_) => NoData::NoSeries {
                    selector: query.sel.text(),
                    stale: 0,
                },
            }
        };
        Ok((out, why))
    }

    /// `histogram_quantile` over the elements of the inner selector or `rate()`: one value
    /// per native histogram, one per group of classic buckets (labels but `le` alike).
    fn quantile(
        &self,
        query: &RefQuery,
        q: f64,
        range: Option<(i64, &'static str)>,
        now: i64,
    ) -> Result<Outcome, ()> {
        let (raw, why) = match range {
            Some((range_ms, text)) => self.range(query, Func::Rate, range_ms, text, now)?,
            None => self.instant(query, now)?,
        };
        // `rate()` drops the name; an instant selector keeps it until the quantile does.
        let mut natives = Vec::new();
        let mut groups: BTreeMap<Vec<(String, String)>, Vec<Bucket>> = BTreeMap::new();
        for (key, value) in &raw {
            match value {
                RefValue::Histogram(h) => natives.push((describe(None, &key.1), h.quantile(q))),
                RefValue::Float(count) => {
                    let le = key.1.iter().find(|(k, _)| k == "le").ok_or(())?;
                    let upper = parse_bound(&le.1).ok_or(())?;
                    let group: Vec<(String, String)> =
                        key.1.iter().filter(|(k, _)| k != "le").cloned().collect();
                    groups.entry(group).or_default().push(Bucket {
                        upper,
                        count: *count,
                    });
                }
            }
        }
        if raw.is_empty() {
            let why = match self.scrape_at_or_before(now) {
                None => NoData::NoScrape,
                Some(_) => why,
            };
            return Ok(Outcome {
                elements: Vec::new(),
                why: Some(why),
            });
        }
        // podgate's earlier form, which a top-level quantile of a selector or a rate is:
        // classic buckets alone make one histogram whatever their labels.
        if natives.is_empty() {
            let mut all: Vec<Bucket> = groups.into_values().flatten().collect();
            let value = match bucket_quantile(q, &mut all) {
                QueryValue::Number(v) => v,
                QueryValue::NoData(_) => f64::NAN,
            };
            return Ok(Outcome {
                elements: vec![("{}".to_string(), RefValue::Float(value))],
                why: None,
            });
        }
        let mut elements: Vec<(String, RefValue)> = natives
            .into_iter()
            .map(|(k, v)| (k, RefValue::Float(v)))
            .collect();
        for (labels, mut buckets) in groups {
            let value = match bucket_quantile(q, &mut buckets) {
                QueryValue::Number(v) => v,
                QueryValue::NoData(_) => f64::NAN,
            };
            elements.push((describe(None, &labels), RefValue::Float(value)));
        }
        elements.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Outcome {
            elements,
            why: None,
        })
    }
}

/// Why a series gives nothing to a range function.
#[derive(Debug, Clone, Copy)]
enum Skip {
    Short,
    Mixed,
    Ignored,
}
