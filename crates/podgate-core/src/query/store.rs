//! The per-pod series store: the recent history of the series that the pod's scrape queries
//! need, fed after every successful scrape.
//!
//! Points carry the scrape time (the moment podgate scraped the pod), never a timestamp the
//! exposition carried: every sample of one scrape shares one time, which keeps rate windows
//! and staleness consistent with what podgate actually observed. Only series whose metric
//! name some query reads are kept (see [`Interest`]), and only points recent enough for the
//! longest range any query uses. A scrape is ingested atomically: when the sample source
//! fails half-way, or a limit is exceeded, the store is left as it was.
//!
//! A series holds float points, native histogram points (from the protobuf exposition), or
//! both when its kind changed over time; each kind is bounded the same way.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::hash::BuildHasher;
use std::sync::Arc;

use super::Query;
use super::selector::Selector;
use crate::exposition;
use crate::exposition::protobuf::ProtoSample;
use crate::histogram::{FloatHistogram, HistogramPoint};

/// One sample of a scrape, as the store needs it. Implemented for the exposition parser's
/// [`exposition::Sample`]; tests and tools can implement it for their own types.
pub trait ScrapedSample {
    fn metric_name(&self) -> &str;
    fn value(&self) -> f64;
    /// Calls `visit` with every label (name, value) of the sample, `__name__` excluded.
    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str));
    /// The native histogram this sample holds instead of a float value.
    fn histogram(&self) -> Option<&FloatHistogram> {
        None
    }
}

impl ScrapedSample for exposition::Sample<'_> {
    fn metric_name(&self) -> &str {
        &self.name
    }

    fn value(&self) -> f64 {
        self.value
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.labels.iter() {
            visit(&name, &value);
        }
    }
}

/// A sample of the protobuf exposition: a float, or a native histogram (its float value is
/// then NaN and unused).
impl ScrapedSample for ProtoSample<'_> {
    fn metric_name(&self) -> &str {
        self.name
    }

    fn value(&self) -> f64 {
        self.float().unwrap_or(f64::NAN)
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.labels() {
            visit(name, value);
        }
    }

    fn histogram(&self) -> Option<&FloatHistogram> {
        ProtoSample::histogram(self)
    }
}

/// A borrowed native histogram sample: `(metric name, labels, histogram)`.
impl ScrapedSample for (&str, &[(&str, &str)], &FloatHistogram) {
    fn metric_name(&self) -> &str {
        self.0
    }

    fn value(&self) -> f64 {
        f64::NAN
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.1 {
            visit(name, value);
        }
    }

    fn histogram(&self) -> Option<&FloatHistogram> {
        Some(self.2)
    }
}

/// A sample's value, float or native histogram, for samples of both kinds in one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleValue<'a> {
    Float(f64),
    Histogram(&'a FloatHistogram),
}

/// A borrowed sample of either kind: `(metric name, labels, value)`.
impl ScrapedSample for (&str, &[(&str, &str)], SampleValue<'_>) {
    fn metric_name(&self) -> &str {
        self.0
    }

    fn value(&self) -> f64 {
        match self.2 {
            SampleValue::Float(v) => v,
            SampleValue::Histogram(_) => f64::NAN,
        }
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.1 {
            visit(name, value);
        }
    }

    fn histogram(&self) -> Option<&FloatHistogram> {
        match self.2 {
            SampleValue::Float(_) => None,
            SampleValue::Histogram(h) => Some(h),
        }
    }
}

/// A borrowed sample: `(metric name, labels, value)`.
impl ScrapedSample for (&str, &[(&str, &str)], f64) {
    fn metric_name(&self) -> &str {
        self.0
    }

    fn value(&self) -> f64 {
        self.2
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.1 {
            visit(name, value);
        }
    }
}

/// What a set of compiled queries needs from a scrape: metric names (plus the selectors that
/// name no metric) of every selector, and the longest range plus offset.
#[derive(Debug, Clone, Default)]
pub struct Interest {
    names: HashSet<Box<str>>,
    /// Selectors without a metric name (`{__name__=~"http_.*"}`): a series is kept when it
    /// matches one of them.
    nameless: Vec<Selector>,
    longest_range_ms: i64,
}

impl Interest {
    pub fn new<'q>(queries: impl IntoIterator<Item = &'q Query>) -> Interest {
        let mut interest = Interest::default();
        for query in queries {
            query.expr.selectors(&mut |selector, reach_ms| {
                match &selector.name {
                    Some(name) => {
                        interest.names.insert(name.clone());
                    }
                    None => interest.nameless.push(selector.clone()),
                }
                interest.longest_range_ms = interest.longest_range_ms.max(reach_ms);
            });
        }
        interest
    }

    /// The longest range (ms) any query uses; 0 when all are instant.
    pub fn longest_range_ms(&self) -> i64 {
        self.longest_range_ms
    }

    /// Metric names the queries read (selectors without a fixed name are not listed).
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// Whether a sample belongs to a series some query reads. Allocation-free.
    pub fn wants<S: ScrapedSample + ?Sized>(&self, sample: &S) -> bool {
        self.names.contains(sample.metric_name())
            || self
                .nameless
                .iter()
                .any(|selector| selector_matches_sample(selector, sample))
    }
}

fn selector_matches_sample<S: ScrapedSample + ?Sized>(selector: &Selector, sample: &S) -> bool {
    if let Some(name) = &selector.name
        && **name != *sample.metric_name()
    {
        return false;
    }
    selector.matchers.iter().all(|matcher| {
        if &*matcher.label == "__name__" {
            return matcher.matches(sample.metric_name());
        }
        let mut found: Option<bool> = None;
        sample.visit_labels(&mut |name, value| {
            if found.is_none() && name == &*matcher.label {
                found = Some(matcher.matches(value));
            }
        });
        // An absent label has the empty value, as in Prometheus.
        found.unwrap_or_else(|| matcher.matches(""))
    })
}

/// The default [`StoreLimits::max_label_bytes`] (4 KiB).
pub const DEFAULT_MAX_LABEL_BYTES: usize = 4096;

/// The default [`StoreLimits::max_histogram_buckets`].
pub const DEFAULT_MAX_HISTOGRAM_BUCKETS: usize = 160;

/// Bounds on what one pod's store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Series kept per pod; a scrape that would exceed it is rejected with an error.
    pub max_series: usize,
    /// Points kept per series; older points are dropped first. A range function whose
    /// window reaches back past a dropped point reports an error rather than a wrong rate.
    pub max_points_per_series: usize,
    /// Extra history kept beyond the longest range, so an evaluation a little after the
    /// scrape still sees a full window. podgate evaluates at the time of the scrape it just
    /// ingested, so a few seconds cover clock steps; every point kept costs memory on every
    /// series of every pod (16 bytes; 10,000 pods × 70 series × one point = 11 MB).
    pub retention_margin_ms: i64,
    /// How old the latest scrape may be for instant selectors to use it (Prometheus's
    /// lookback delta).
    pub lookback_ms: i64,
    /// Longest metric name, label name or label value of a series kept, in bytes. The body
    /// limit bounds one scrape; this bounds what the history holds over many of them.
    pub max_label_bytes: usize,
    /// Buckets kept per native histogram point. A histogram with more has its resolution
    /// reduced (neighbouring buckets merged) until it fits, as Prometheus's
    /// `native_histogram_bucket_limit` does; one that does not fit at the lowest schema
    /// rejects the scrape.
    pub max_histogram_buckets: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_series: 10_000,
            max_points_per_series: 64,
            retention_margin_ms: 5_000,
            lookback_ms: 300_000,
            max_label_bytes: DEFAULT_MAX_LABEL_BYTES,
            max_histogram_buckets: DEFAULT_MAX_HISTOGRAM_BUCKETS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub t: i64,
    pub v: f64,
}

/// A native histogram point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistPoint {
    pub t: i64,
    pub h: FloatHistogram,
}

/// One series' identity and recent points (oldest first, strictly increasing times).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Names and label strings are shared within a store (series repeat them).
    name: Arc<str>,
    /// Sorted by label name; labels with an empty value are dropped, as Prometheus does.
    labels: Box<[(Arc<str>, Arc<str>)]>,
    pub points: VecDeque<Point>,
    /// Native histogram points (oldest first, strictly increasing times).
    pub histograms: VecDeque<HistPoint>,
    /// Time of the newest point dropped because of `max_points_per_series`.
    pub evicted_until_ms: Option<i64>,
    hash: u64,
}

impl Series {
    /// A label's value; the empty string when absent (`__name__` gives the metric name).
    pub fn label(&self, name: &str) -> &str {
        if name == "__name__" {
            return &self.name;
        }
        match self.labels.binary_search_by(|(k, _)| (**k).cmp(name)) {
            Ok(i) => self.labels.get(i).map_or("", |(_, v)| v),
            Err(_) => "",
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls `f` with every label (name, value), sorted by name, `__name__` excluded.
    pub fn each_label<'s>(&'s self, f: &mut dyn FnMut(&'s str, &'s str)) {
        for (k, v) in self.labels.iter() {
            f(k, v);
        }
    }

    pub fn matches(&self, selector: &Selector) -> bool {
        if let Some(name) = &selector.name
            && **name != *self.name
        {
            return false;
        }
        selector
            .matchers
            .iter()
            .all(|m| m.matches(self.label(&m.label)))
    }

    /// Whether `sample` is this series (same name and same non-empty labels).
    fn is<S: ScrapedSample + ?Sized>(&self, sample: &S) -> bool {
        if *self.name != *sample.metric_name() {
            return false;
        }
        let mut count = 0usize;
        let mut same = true;
        sample.visit_labels(&mut |name, value| {
            if !same || value.is_empty() {
                return;
            }
            count += 1;
            same = self
                .labels
                .binary_search_by(|(k, _)| (**k).cmp(name))
                .ok()
                .and_then(|i| self.labels.get(i))
                .is_some_and(|(_, v)| **v == *value);
        });
        same && count == self.labels.len()
    }

    /// The native histogram points in `(start_ms, end_ms]`, oldest first: the input of
    /// [`crate::histogram::histogram_rate`] for `rate()`/`increase()` over a native histogram.
    pub fn histogram_points(
        &self,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Iterator<Item = HistogramPoint<'_>> {
        let lo = self.histograms.partition_point(|p| p.t <= start_ms);
        let hi = self.histograms.partition_point(|p| p.t <= end_ms);
        self.histograms
            .range(lo..hi.max(lo))
            .map(|p| HistogramPoint { t: p.t, h: &p.h })
    }

    /// The native histogram scraped at exactly `t_ms` (an instant selector reads the
    /// latest scrape, [`SeriesStore::scrape_at_or_before`]).
    pub fn histogram_at(&self, t_ms: i64) -> Option<&FloatHistogram> {
        let i = self.histograms.partition_point(|p| p.t < t_ms);
        self.histograms.get(i).filter(|p| p.t == t_ms).map(|p| &p.h)
    }

    /// Whether the series holds a point of either kind at `t_ms`.
    fn has_point_at(&self, t_ms: i64) -> bool {
        self.points.back().is_some_and(|p| p.t == t_ms)
            || self.histograms.back().is_some_and(|p| p.t == t_ms)
    }

    /// The series as `name{a="1", b="2"}`, for messages; a name outside the legacy character
    /// set is quoted inside the braces, as PromQL 3 writes it
    /// (`{"http.server.duration", "service.name"="x"}`).
    pub fn describe(&self) -> String {
        let legacy_name = exposition::is_legacy_metric_name(&self.name);
        let mut out = String::new();
        if legacy_name {
            out.push_str(&self.name);
            out.push('{');
        } else {
            out.push_str(&format!("{{{:?}", &*self.name));
        }
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 || !legacy_name {
                out.push_str(", ");
            }
            if exposition::is_legacy_label_name(k) {
                out.push_str(&format!("{k}={v:?}"));
            } else {
                out.push_str(&format!("{:?}={v:?}", &**k));
            }
        }
        out.push('}');
        out
    }
}

/// A stored series, seen as a sample: lets [`Interest::wants`] re-check kept series.
impl ScrapedSample for Series {
    fn metric_name(&self) -> &str {
        &self.name
    }

    fn value(&self) -> f64 {
        self.points.back().map_or(f64::NAN, |p| p.v)
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (k, v) in self.labels.iter() {
            visit(k, v);
        }
    }
}

/// Counts from one ingested scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Samples the scrape held.
    pub samples: usize,
    /// Samples stored (their series is read by some query).
    pub kept: usize,
    /// Samples whose series already had a sample in this scrape; the first one is kept, as
    /// Prometheus does.
    pub duplicates: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError<E> {
    /// The sample source (usually the exposition parser) failed; nothing was stored.
    #[error("{0}")]
    Source(E),
    #[error(
        "the pod exposes more than {limit} series that scrape queries read; \
         narrow the selectors or raise the per-pod series limit (`podgate run --series-limit`)"
    )]
    TooManySeries { limit: usize },
    #[error("scrape time {scrape_ms} is not after the previous scrape at {previous_ms}")]
    OutOfOrder { scrape_ms: i64, previous_ms: i64 },
    #[error(
        "native histogram {series} has {buckets} buckets, more than the {limit} bucket limit \
         even at the lowest resolution"
    )]
    TooManyBuckets {
        series: String,
        buckets: usize,
        limit: usize,
    },
    #[error("sample {series} has the label `{label}` twice")]
    DuplicateLabel { series: String, label: String },
    #[error(
        "series {series}: {what} is {bytes} bytes, over the {limit} byte label length limit (`podgate run --label-limit`)"
    )]
    LabelTooLong {
        /// The metric name, shortened for the message.
        series: String,
        /// `the metric name`, `label name ...` or `the value of label ...`.
        what: String,
        bytes: usize,
        limit: usize,
    },
}

/// At most `max` bytes of `s` (on a character boundary), marked when cut: names quoted in
/// messages stay short however long the input was.
fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or(""))
}

/// The first name or value of `sample` longer than `limit` bytes, as an error.
fn label_too_long<S: ScrapedSample + ?Sized, E>(
    sample: &S,
    limit: usize,
) -> Option<IngestError<E>> {
    let name = sample.metric_name();
    let error = |what: String, bytes: usize| IngestError::LabelTooLong {
        series: shorten(name, 64),
        what,
        bytes,
        limit,
    };
    if name.len() > limit {
        return Some(error("the metric name".to_string(), name.len()));
    }
    let mut found = None;
    sample.visit_labels(&mut |label, value| {
        if found.is_some() {
            return;
        }
        if label.len() > limit {
            found = Some(error(
                format!("label name `{}`", shorten(label, 64)),
                label.len(),
            ));
        } else if value.len() > limit {
            found = Some(error(
                format!("the value of label `{}`", shorten(label, 64)),
                value.len(),
            ));
        }
    });
    found
}

/// The recent history of one pod's series. See the module docs.
#[derive(Debug)]
pub struct SeriesStore {
    interest: Interest,
    limits: StoreLimits,
    hasher: RandomState,
    series: Vec<Series>,
    /// Identity hash → index into `series` of the first series with that hash.
    index: HashMap<u64, usize>,
    /// Series whose hash another series already holds in `index` (rare: 64-bit hashes).
    collided: Vec<usize>,
    /// The names and label strings of the series, each held once.
    strings: HashSet<Arc<str>>,
    /// Times of recent successful scrapes, oldest first.
    scrapes: VecDeque<i64>,
    /// Time of the first successful scrape: where this store's history begins, so where a
    /// range function's window can first be full (the warm-up).
    first_scrape: Option<i64>,
    /// Series given a point in the scrape being ingested (reused between scrapes).
    touched: Vec<usize>,
    /// Points dropped early during the scrape being ingested, put back on rollback.
    dropped: Vec<(usize, Point)>,
    /// The same for histogram points.
    dropped_histograms: Vec<(usize, HistPoint)>,
}

impl SeriesStore {
    pub fn new(interest: Interest, limits: StoreLimits) -> SeriesStore {
        SeriesStore {
            interest,
            limits,
            hasher: RandomState::new(),
            series: Vec::new(),
            index: HashMap::new(),
            collided: Vec::new(),
            strings: HashSet::new(),
            scrapes: VecDeque::new(),
            first_scrape: None,
            touched: Vec::new(),
            dropped: Vec::new(),
            dropped_histograms: Vec::new(),
        }
    }

    pub fn interest(&self) -> &Interest {
        &self.interest
    }

    pub fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Time of the latest ingested scrape.
    pub fn last_scrape_ms(&self) -> Option<i64> {
        self.scrapes.back().copied()
    }

    /// Time of the first successful scrape, kept however old it gets.
    pub fn first_scrape_ms(&self) -> Option<i64> {
        self.first_scrape
    }

    /// The latest scrape at or before `now_ms`.
    pub(crate) fn scrape_at_or_before(&self, now_ms: i64) -> Option<i64> {
        let i = self.scrapes.partition_point(|&t| t <= now_ms);
        i.checked_sub(1).and_then(|i| self.scrapes.get(i)).copied()
    }

    /// Every stored series (for tests).
    #[cfg(test)]
    pub(crate) fn series(&self) -> &[Series] {
        &self.series
    }

    /// The series a selector matches.
    pub(crate) fn matching<'s>(
        &'s self,
        selector: &'s Selector,
    ) -> impl Iterator<Item = &'s Series> {
        self.series.iter().filter(move |s| s.matches(selector))
    }

    /// Replaces the interest (after a rule reload) and drops series no query reads any more.
    pub fn set_interest(&mut self, interest: Interest) {
        self.interest = interest;
        let before = self.series.len();
        let interest = &self.interest;
        self.series.retain(|s| interest.wants(s));
        if self.series.len() != before {
            self.rebuild_index();
        }
        self.apply_retention();
    }

    /// Ingests a scrape whose samples cannot fail.
    pub fn ingest_samples<S: ScrapedSample>(
        &mut self,
        scrape_ms: i64,
        samples: impl IntoIterator<Item = S>,
    ) -> Result<IngestStats, IngestError<Infallible>> {
        self.ingest(scrape_ms, samples.into_iter().map(Ok))
    }

    /// Ingests one scrape taken at `scrape_ms`, atomically: on any error the store is left
    /// unchanged. Samples of series no query reads are skipped without allocating; known
    /// series are found by hashing borrowed data.
    pub fn ingest<S: ScrapedSample, E>(
        &mut self,
        scrape_ms: i64,
        samples: impl IntoIterator<Item = Result<S, E>>,
    ) -> Result<IngestStats, IngestError<E>> {
        if let Some(previous_ms) = self.last_scrape_ms()
            && scrape_ms <= previous_ms
        {
            return Err(IngestError::OutOfOrder {
                scrape_ms,
                previous_ms,
            });
        }
        let existing = self.series.len();
        self.touched.clear();
        self.dropped.clear();
        self.dropped_histograms.clear();
        let keep_after = self.keep_after(scrape_ms);
        let mut stats = IngestStats::default();
        for item in samples {
            let result = match item {
                Ok(sample) => {
                    stats.samples += 1;
                    if self.interest.wants(&sample) {
                        self.append(&sample, scrape_ms, keep_after)
                    } else {
                        continue;
                    }
                }
                Err(e) => Err(IngestError::Source(e)),
            };
            match result {
                Ok(true) => stats.kept += 1,
                Ok(false) => stats.duplicates += 1,
                Err(e) => {
                    self.rollback(existing, scrape_ms);
                    return Err(e);
                }
            }
        }
        self.scrapes.push_back(scrape_ms);
        self.first_scrape.get_or_insert(scrape_ms);
        self.commit();
        Ok(stats)
    }

    fn identity_hash<S: ScrapedSample + ?Sized>(&self, sample: &S) -> u64 {
        let hasher = &self.hasher;
        // Labels may come in any order: combine their hashes with a commutative sum.
        let mut acc = hasher.hash_one(sample.metric_name());
        sample.visit_labels(&mut |name, value| {
            if !value.is_empty() {
                acc = acc.wrapping_add(hasher.hash_one((name, value)));
            }
        });
        acc
    }

    /// Appends the sample's value; `Ok(false)` when its series already has a point at this
    /// time (a duplicate within the scrape).
    fn append<S: ScrapedSample + ?Sized, E>(
        &mut self,
        sample: &S,
        scrape_ms: i64,
        keep_after: i64,
    ) -> Result<bool, IngestError<E>> {
        let hash = self.identity_hash(sample);
        let histogram = match sample.histogram() {
            Some(h) => Some(HistPoint {
                t: scrape_ms,
                h: within_bucket_limit(h, self.limits.max_histogram_buckets).ok_or_else(|| {
                    IngestError::TooManyBuckets {
                        series: shorten(sample.metric_name(), 64),
                        buckets: h.bucket_count(),
                        limit: self.limits.max_histogram_buckets,
                    }
                })?,
            }),
            None => None,
        };
        let point = Point {
            t: scrape_ms,
            v: sample.value(),
        };
        if let Some(&first) = self.index.get(&hash) {
            let found = std::iter::once(first)
                .chain(self.collided.iter().copied())
                .find(|&id| {
                    self.series
                        .get(id)
                        .is_some_and(|s| s.hash == hash && s.is(sample))
                });
            if let (Some(id), Some(series)) = (found, found.and_then(|id| self.series.get_mut(id)))
            {
                if series.has_point_at(scrape_ms) {
                    return Ok(false);
                }
                // Drop what retention would drop at commit before pushing, so the
                // buffer never grows past what the window needs (memory per series).
                while series.points.front().is_some_and(|p| p.t <= keep_after) {
                    if let Some(p) = series.points.pop_front() {
                        self.dropped.push((id, p));
                    }
                }
                while series.histograms.front().is_some_and(|p| p.t <= keep_after) {
                    if let Some(p) = series.histograms.pop_front() {
                        self.dropped_histograms.push((id, p));
                    }
                }
                match histogram {
                    Some(h) => series.histograms.push_back(h),
                    None => series.points.push_back(point),
                }
                self.touched.push(id);
                return Ok(true);
            }
        }
        // Checked for new series only: a series already held passed it.
        if let Some(e) = label_too_long(sample, self.limits.max_label_bytes) {
            return Err(e);
        }
        if self.series.len() >= self.limits.max_series {
            return Err(IngestError::TooManySeries {
                limit: self.limits.max_series,
            });
        }
        let mut labels: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        let strings = &mut self.strings;
        sample.visit_labels(&mut |name, value| {
            if !value.is_empty() && name != "__name__" {
                labels.push((intern(strings, name), intern(strings, value)));
            }
        });
        labels.sort();
        if let Some(pair) = labels
            .windows(2)
            .find(|w| matches!(w, [a, b] if a.0 == b.0))
        {
            let label = pair.first().map(|(k, _)| k.to_string()).unwrap_or_default();
            return Err(IngestError::DuplicateLabel {
                series: sample.metric_name().to_string(),
                label,
            });
        }
        let id = self.series.len();
        let (points, histograms) = match histogram {
            Some(h) => (VecDeque::new(), VecDeque::from([h])),
            None => (VecDeque::from([point]), VecDeque::new()),
        };
        self.series.push(Series {
            name: intern(&mut self.strings, sample.metric_name()),
            labels: labels.into_boxed_slice(),
            points,
            histograms,
            evicted_until_ms: None,
            hash,
        });
        self.index_series(id, hash);
        Ok(true)
    }

    fn rollback(&mut self, existing: usize, scrape_ms: i64) {
        for &id in &self.touched {
            if let Some(series) = self.series.get_mut(id) {
                if series.points.back().is_some_and(|p| p.t == scrape_ms) {
                    series.points.pop_back();
                }
                if series.histograms.back().is_some_and(|p| p.t == scrape_ms) {
                    series.histograms.pop_back();
                }
            }
        }
        // Newest first, so each series gets its points back in order.
        for (id, p) in self.dropped.drain(..).rev() {
            if let Some(series) = self.series.get_mut(id) {
                series.points.push_front(p);
            }
        }
        for (id, p) in self.dropped_histograms.drain(..).rev() {
            if let Some(series) = self.series.get_mut(id) {
                series.histograms.push_front(p);
            }
        }
        self.touched.clear();
        if self.series.len() > existing {
            self.series.truncate(existing);
            self.rebuild_index();
        }
    }

    fn commit(&mut self) {
        let cap = self.limits.max_points_per_series.max(1);
        for series in &mut self.series {
            while series.points.len() > cap {
                if let Some(p) = series.points.pop_front() {
                    series.evicted_until_ms = series.evicted_until_ms.max(Some(p.t));
                }
            }
            while series.histograms.len() > cap {
                if let Some(p) = series.histograms.pop_front() {
                    series.evicted_until_ms = series.evicted_until_ms.max(Some(p.t));
                }
            }
        }
        self.touched.clear();
        self.dropped.clear();
        self.dropped_histograms.clear();
        self.apply_retention();
        // A store grows its series once, on the first scrapes; give back the doubling's
        // slack then (held per pod, it adds up over a fleet).
        if self.series.capacity() > self.series.len() + self.series.len() / 4 + 4 {
            self.series.shrink_to_fit();
        }
        for series in &mut self.series {
            if series.points.capacity() > 2 * series.points.len() + 4 {
                series.points.shrink_to_fit();
            }
            if series.histograms.capacity() > 2 * series.histograms.len() + 4 {
                series.histograms.shrink_to_fit();
            }
        }
    }

    /// Points at or before this time are of no use to an evaluation at `last` or later.
    fn keep_after(&self, last: i64) -> i64 {
        let range = self.interest.longest_range_ms;
        // Instant-only interest needs the latest scrape alone.
        if range == 0 {
            last - 1
        } else {
            last.saturating_sub(range)
                .saturating_sub(self.limits.retention_margin_ms)
        }
    }

    /// Drops points and scrape times older than any query can use, and series left empty.
    fn apply_retention(&mut self) {
        let Some(last) = self.last_scrape_ms() else {
            return;
        };
        let keep_after = self.keep_after(last);
        while self.scrapes.len() > 1 && self.scrapes.front().is_some_and(|&t| t <= keep_after) {
            self.scrapes.pop_front();
        }
        let before = self.series.len();
        for series in &mut self.series {
            while series.points.front().is_some_and(|p| p.t <= keep_after) {
                series.points.pop_front();
            }
            while series.histograms.front().is_some_and(|p| p.t <= keep_after) {
                series.histograms.pop_front();
            }
        }
        self.series
            .retain(|s| !s.points.is_empty() || !s.histograms.is_empty());
        if self.series.len() != before {
            self.rebuild_index();
        }
    }

    fn index_series(&mut self, id: usize, hash: u64) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.index.entry(hash) {
            e.insert(id);
        } else {
            self.collided.push(id);
        }
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        self.collided.clear();
        for id in 0..self.series.len() {
            if let Some(hash) = self.series.get(id).map(|s| s.hash) {
                self.index_series(id, hash);
            }
        }
        // Strings no series holds any more.
        self.strings.retain(|s| Arc::strong_count(s) > 1);
    }
}

/// `h`, with its resolution reduced until it has at most `limit` buckets; `None` when even
/// the lowest schema has more.
fn within_bucket_limit(h: &FloatHistogram, limit: usize) -> Option<FloatHistogram> {
    let mut h = h.clone();
    while h.bucket_count() > limit {
        if h.schema <= crate::histogram::MIN_SCHEMA {
            return None;
        }
        h = h.copy_to_schema(h.schema - 1);
    }
    Some(h)
}

/// The store's shared copy of `s`.
fn intern(strings: &mut HashSet<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(shared) = strings.get(s) {
        return shared.clone();
    }
    let shared: Arc<str> = Arc::from(s);
    strings.insert(shared.clone());
    shared
}
