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

mod ring;
mod series;
mod strings;

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::hash::BuildHasher;

use super::Query;
use super::selector::Selector;
use crate::exposition;
use crate::exposition::protobuf::ProtoSample;
use crate::histogram::FloatHistogram;
use ring::Ring;
pub(crate) use series::{FloatWindow, HistPoint, Point, Series, SeriesRef, histogram_window};
use series::{Histograms, Slots};
use strings::Strings;

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
    /// series of every pod (8 bytes a slot; 10,000 pods × 70 series × one slot = 5.6 MB).
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
///
/// Laid out for a small footprint per series: the scrape times in one ring ([`Ring`]) and
/// the float values of every series in one block beside it (no timestamp per point, no
/// buffer per series); label sets as ids in one arena over one buffer of strings; the index
/// a sorted list of series numbers. Native histogram points are kept per series (rare).
#[derive(Debug)]
pub struct SeriesStore {
    interest: Interest,
    limits: StoreLimits,
    hasher: RandomState,
    series: Vec<Series>,
    /// Series numbers sorted by identity hash (then number), to find a sample's series.
    index: Vec<u32>,
    strings: Strings,
    /// The label sets of the series, in series order (see [`Series`]).
    labels: Vec<u32>,
    ring: Ring,
    /// Time of the first successful scrape: where this store's history begins, so where a
    /// range function's window can first be full (the warm-up).
    first_scrape: Option<i64>,
    /// Series given a histogram point in the scrape being ingested (reused between scrapes).
    touched: Vec<usize>,
}

impl SeriesStore {
    pub fn new(interest: Interest, limits: StoreLimits) -> SeriesStore {
        SeriesStore {
            interest,
            limits,
            hasher: RandomState::new(),
            series: Vec::new(),
            index: Vec::new(),
            strings: Strings::default(),
            labels: Vec::new(),
            ring: Ring::default(),
            first_scrape: None,
            touched: Vec::new(),
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
        self.ring.latest()
    }

    /// Time of the first successful scrape, kept however old it gets.
    pub fn first_scrape_ms(&self) -> Option<i64> {
        self.first_scrape
    }

    /// The latest scrape at or before `now_ms`.
    pub(crate) fn scrape_at_or_before(&self, now_ms: i64) -> Option<i64> {
        let seqs = self.ring.seqs();
        let after = self.ring.first_after(seqs.clone(), now_ms);
        (after > seqs.start).then(|| self.ring.time(after - 1))
    }

    /// What the store keeps per series, in order (for tests: readers use [`Self::matching`]).
    #[cfg(test)]
    pub(crate) fn series(&self) -> &[Series] {
        &self.series
    }

    /// The series a selector matches, as readers see them.
    pub(crate) fn matching<'s>(
        &'s self,
        selector: &'s Selector,
    ) -> impl Iterator<Item = SeriesRef<'s>> {
        self.iter().filter(move |s| s.matches(selector))
    }

    /// Every series as readers see them, in order.
    fn iter(&self) -> impl Iterator<Item = SeriesRef<'_>> {
        self.series
            .iter()
            .enumerate()
            .map(move |(row, series)| SeriesRef {
                store: self,
                series,
                row,
            })
    }

    fn get(&self, row: usize) -> Option<SeriesRef<'_>> {
        self.series.get(row).map(|series| SeriesRef {
            store: self,
            series,
            row,
        })
    }

    /// Replaces the interest (after a rule reload) and drops series no query reads any more.
    pub fn set_interest(&mut self, interest: Interest) {
        self.interest = interest;
        let keep: Vec<bool> = self.iter().map(|s| self.interest.wants(&s)).collect();
        if keep.contains(&false) {
            self.retain_series(&keep);
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
        let before = Before {
            series: self.series.len(),
            strings: self.strings.len(),
            labels: self.labels.len(),
        };
        self.touched.clear();
        let slot = self.next_slot(scrape_ms);
        let mut stats = IngestStats::default();
        for item in samples {
            let result = match item {
                Ok(sample) => {
                    stats.samples += 1;
                    if self.interest.wants(&sample) {
                        self.append(&sample, scrape_ms, slot)
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
                    self.rollback(before, scrape_ms, slot);
                    return Err(e);
                }
            }
        }
        self.ring.commit();
        self.first_scrape.get_or_insert(scrape_ms);
        self.commit();
        Ok(stats)
    }

    /// The slot of the scrape at `t`, emptied; the ring grows first when it is full.
    fn next_slot(&mut self, t: i64) -> usize {
        let (slot, grown) = self.ring.next_slot(t, self.series.len());
        if let Some(old) = grown {
            self.relayout_slots(old);
        }
        for series in &mut self.series {
            series.points.clear(slot);
        }
        slot
    }

    /// Lays the series' slots out as the ring's values were, from `old` slots to the ring's
    /// capacity now.
    fn relayout_slots(&mut self, old: usize) {
        let cap = self.ring.capacity();
        let seqs = self.ring.seqs();
        for series in &mut self.series {
            let mut slots = Slots::new(cap);
            for seq in seqs.clone() {
                if old > 0 && series.points.get((seq % old as u64) as usize) {
                    slots.set((seq % cap as u64) as usize);
                }
            }
            series.points = slots;
        }
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

    /// The series `sample` belongs to, if held.
    fn find<S: ScrapedSample + ?Sized>(&self, sample: &S, hash: u64) -> Option<usize> {
        let hash_of = |id: &u32| self.series.get(*id as usize).map_or(0, |s| s.hash);
        let start = self.index.partition_point(|id| hash_of(id) < hash);
        self.index
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|id| hash_of(id) == hash)
            .map(|&id| id as usize)
            .find(|&id| self.get(id).is_some_and(|s| s.is(sample)))
    }

    /// Appends the sample's value; `Ok(false)` when its series already has a point at this
    /// time (a duplicate within the scrape).
    fn append<S: ScrapedSample + ?Sized, E>(
        &mut self,
        sample: &S,
        scrape_ms: i64,
        slot: usize,
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
        let id = match self.find(sample, hash) {
            Some(id) => id,
            None => self.add_series(sample, hash)?,
        };
        let Some(series) = self.series.get_mut(id) else {
            return Ok(false);
        };
        if series.points.get(slot)
            || series
                .histograms
                .as_slice()
                .last()
                .is_some_and(|p| p.t == scrape_ms)
        {
            return Ok(false);
        }
        match histogram {
            Some(h) => {
                series.histograms.push(h);
                self.touched.push(id);
            }
            None => {
                series.points.set(slot);
                self.ring.set(id, slot, sample.value());
            }
        }
        Ok(true)
    }

    /// Adds the series of `sample`, without points; its number.
    fn add_series<S: ScrapedSample + ?Sized, E>(
        &mut self,
        sample: &S,
        hash: u64,
    ) -> Result<usize, IngestError<E>> {
        if let Some(e) = label_too_long(sample, self.limits.max_label_bytes) {
            return Err(e);
        }
        let too_many = || IngestError::TooManySeries {
            limit: self.limits.max_series,
        };
        if self.series.len() >= self.limits.max_series {
            return Err(too_many());
        }
        let id = self.series.len();
        let labels_at = self.labels.len();
        let strings = &mut self.strings;
        let arena = &mut self.labels;
        let mut full = strings
            .intern(sample.metric_name())
            .map(|id| arena.push(id))
            .is_none();
        sample.visit_labels(&mut |name, value| {
            if !value.is_empty() && name != "__name__" {
                match (strings.intern(name), strings.intern(value)) {
                    (Some(k), Some(v)) => arena.extend([k, v]),
                    _ => full = true,
                }
            }
        });
        let pairs = self.labels.get_mut(labels_at + 1..).unwrap_or_default();
        // Sorted by label name, then value, as strings.
        let strings = &self.strings;
        let mut sorted: Vec<(u32, u32)> = pairs
            .chunks_exact(2)
            .filter_map(|p| match p {
                [k, v] => Some((*k, *v)),
                _ => None,
            })
            .collect();
        sorted.sort_by(|a, b| {
            (strings.get(a.0), strings.get(a.1)).cmp(&(strings.get(b.0), strings.get(b.1)))
        });
        let twice = sorted
            .windows(2)
            .find(|w| matches!(w, [a, b] if a.0 == b.0))
            .and_then(|w| w.first())
            .map(|(k, _)| strings.get(*k).to_string());
        for (pair, (k, v)) in pairs.chunks_exact_mut(2).zip(&sorted) {
            pair.copy_from_slice(&[*k, *v]);
        }
        let (Ok(labels_at), Ok(labels_len), false) =
            (u32::try_from(labels_at), u32::try_from(sorted.len()), full)
        else {
            self.labels.truncate(labels_at);
            return Err(too_many());
        };
        if let Some(label) = twice {
            self.labels.truncate(labels_at as usize);
            return Err(IngestError::DuplicateLabel {
                series: sample.metric_name().to_string(),
                label,
            });
        }
        self.series.push(Series {
            labels_at,
            labels_len,
            hash,
            points: Slots::new(self.ring.capacity()),
            histograms: Histograms::default(),
            evicted_until_ms: None,
        });
        self.ring.push_row();
        let at = self.index.partition_point(|&other| {
            self.series
                .get(other as usize)
                .is_some_and(|s| (s.hash, other as usize) < (hash, id))
        });
        self.index.insert(at, id as u32);
        Ok(id)
    }

    fn rollback(&mut self, before: Before, scrape_ms: i64, slot: usize) {
        for series in &mut self.series {
            series.points.clear(slot);
        }
        for &id in &self.touched {
            if let Some(series) = self.series.get_mut(id) {
                series.histograms.pop_at(scrape_ms);
            }
        }
        self.touched.clear();
        if self.series.len() > before.series {
            self.series.truncate(before.series);
            self.ring.truncate_rows(before.series);
            self.labels.truncate(before.labels);
            self.index.retain(|&id| (id as usize) < before.series);
        }
        self.strings.truncate(before.strings);
    }

    fn commit(&mut self) {
        self.touched.clear();
        self.apply_retention();
        let cap = self.limits.max_points_per_series.max(1);
        let seqs = self.ring.seqs();
        for series in &mut self.series {
            // The oldest points beyond the cap, floats and histograms alike.
            let mut over = series.points.len().saturating_sub(cap);
            for seq in seqs.clone() {
                if over == 0 {
                    break;
                }
                let slot = self.ring.slot(seq);
                if series.points.get(slot) {
                    series.points.clear(slot);
                    series.evicted_until_ms =
                        series.evicted_until_ms.max(Some(self.ring.time(seq)));
                    over -= 1;
                }
            }
        }
        // A store grows its series once, on the first scrapes; give back the doubling's
        // slack then (held per pod, it adds up over a fleet).
        if self.series.capacity() > self.series.len() + self.series.len() / 4 + 4 {
            self.series.shrink_to_fit();
            self.index.shrink_to_fit();
            self.labels.shrink_to_fit();
        }
        self.ring.shrink();
        // A ring far larger than the history kept (a range shortened, scrapes slowed down).
        let needed = self.ring.len() + 1;
        if self.ring.capacity() > 2 * needed + 2 {
            let old = self.ring.capacity();
            self.ring.relayout(needed, self.series.len());
            self.relayout_slots(old);
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

    /// Drops points and scrape times older than any query can use, then histogram points
    /// beyond the cap, and series left empty.
    fn apply_retention(&mut self) {
        let Some(last) = self.last_scrape_ms() else {
            return;
        };
        let keep_after = self.keep_after(last);
        while self.ring.len() > 1 && self.ring.oldest().is_some_and(|t| t <= keep_after) {
            if let Some(slot) = self.ring.pop_oldest() {
                for series in &mut self.series {
                    series.points.clear(slot);
                }
            }
        }
        let cap = self.limits.max_points_per_series.max(1);
        let mut empty = false;
        for series in &mut self.series {
            if !series.histograms.is_empty()
                && let Some(t) = series.histograms.trim(keep_after, cap)
            {
                series.evicted_until_ms = series.evicted_until_ms.max(Some(t));
            }
            empty |= series.points.is_empty() && series.histograms.is_empty();
        }
        if empty {
            let keep: Vec<bool> = self
                .series
                .iter()
                .map(|s| !s.points.is_empty() || !s.histograms.is_empty())
                .collect();
            self.retain_series(&keep);
        }
    }

    /// Keeps the series `keep` marks (in order) with their values and label sets, and the
    /// strings they still use.
    fn retain_series(&mut self, keep: &[bool]) {
        self.ring.retain_rows(keep);
        let mut arena = Vec::with_capacity(self.labels.len());
        let mut kept = Vec::with_capacity(self.series.len());
        for (series, &kept_it) in self.series.drain(..).zip(keep) {
            if !kept_it {
                continue;
            }
            let at = series.labels_at as usize;
            let len = 1 + 2 * series.labels_len as usize;
            let new_at = arena.len() as u32;
            arena.extend_from_slice(self.labels.get(at..at + len).unwrap_or_default());
            kept.push(Series {
                labels_at: new_at,
                ..series
            });
        }
        self.series = kept;
        let mut used = vec![false; self.strings.len()];
        for &id in &arena {
            if let Some(u) = used.get_mut(id as usize) {
                *u = true;
            }
        }
        let remap = self.strings.compact(&used);
        for id in &mut arena {
            *id = remap.get(*id as usize).copied().unwrap_or(u32::MAX);
        }
        self.labels = arena;
        self.index = (0..self.series.len() as u32).collect();
        let series = &self.series;
        self.index
            .sort_by_key(|&id| (series.get(id as usize).map_or(0, |s| s.hash), id));
    }
}

/// Where a scrape being ingested started, to roll it back.
#[derive(Debug, Clone, Copy)]
struct Before {
    series: usize,
    strings: usize,
    labels: usize,
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
