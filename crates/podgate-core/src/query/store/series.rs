//! A stored series: what the store keeps per series (where its label set is, which slots of
//! the shared ring hold its float points, its native histogram points), and the view readers
//! get of it ([`SeriesRef`]: labels, float points by time, histogram points).

use std::fmt;
use std::ops::Range;

use super::ring::Ring;
use super::{ScrapedSample, SeriesStore};
use crate::exposition;
use crate::histogram::{FloatHistogram, HistogramPoint};
use crate::query::selector::Selector;

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

/// Which slots of the store's ring hold a float point of a series: a bit per slot, inline
/// up to 64 slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slots {
    Inline(u64),
    Boxed(Box<[u64]>),
}

impl Slots {
    pub fn new(capacity: usize) -> Slots {
        if capacity <= 64 {
            Slots::Inline(0)
        } else {
            Slots::Boxed(vec![0; capacity.div_ceil(64)].into_boxed_slice())
        }
    }

    /// Float points held.
    pub fn len(&self) -> usize {
        match self {
            Slots::Inline(w) => w.count_ones() as usize,
            Slots::Boxed(ws) => ws.iter().map(|w| w.count_ones() as usize).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn word(&self, slot: usize) -> Option<&u64> {
        match self {
            Slots::Inline(w) => (slot < 64).then_some(w),
            Slots::Boxed(ws) => ws.get(slot / 64),
        }
    }

    fn word_mut(&mut self, slot: usize) -> Option<&mut u64> {
        match self {
            Slots::Inline(w) => (slot < 64).then_some(w),
            Slots::Boxed(ws) => ws.get_mut(slot / 64),
        }
    }

    pub fn get(&self, slot: usize) -> bool {
        self.word(slot).is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    pub fn set(&mut self, slot: usize) {
        if let Some(w) = self.word_mut(slot) {
            *w |= 1 << (slot % 64);
        }
    }

    pub fn clear(&mut self, slot: usize) {
        if let Some(w) = self.word_mut(slot) {
            *w &= !(1 << (slot % 64));
        }
    }
}

/// Native histogram points, oldest first, strictly increasing times.
#[derive(Debug, Clone, Default, PartialEq)]
// Boxed: most series have none, and an empty one then costs a pointer, not a `Vec`.
#[allow(clippy::box_collection)]
pub(crate) struct Histograms(Option<Box<Vec<HistPoint>>>);

impl Histograms {
    pub fn as_slice(&self) -> &[HistPoint] {
        self.0.as_deref().map_or(&[], |v| v.as_slice())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    #[cfg(test)]
    pub fn iter(&self) -> std::slice::Iter<'_, HistPoint> {
        self.as_slice().iter()
    }

    pub(super) fn push(&mut self, p: HistPoint) {
        self.0.get_or_insert_default().push(p);
    }

    /// Removes the point at `t` if it is the last one (a scrape rolled back).
    pub(super) fn pop_at(&mut self, t: i64) {
        if let Some(v) = self.0.as_mut()
            && v.last().is_some_and(|p| p.t == t)
        {
            v.pop();
        }
        if self.is_empty() {
            self.0 = None;
        }
    }

    /// Drops the points at or before `t`, then the oldest beyond `cap`; returns the time of
    /// the newest point dropped for `cap`.
    pub(super) fn trim(&mut self, t: i64, cap: usize) -> Option<i64> {
        let v = self.0.as_mut()?;
        let old = v.partition_point(|p| p.t <= t);
        v.drain(..old);
        let over = v.len().saturating_sub(cap);
        let evicted = over.checked_sub(1).and_then(|i| v.get(i)).map(|p| p.t);
        v.drain(..over);
        if v.is_empty() {
            self.0 = None;
        } else if v.capacity() > 2 * v.len() + 4 {
            v.shrink_to_fit();
        }
        evicted
    }
}

/// What the store keeps per series. Its labels and float values live in the store (a label
/// arena and the ring's block): read them through [`SeriesRef`].
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Where the label set starts in the store's label arena: the name's id, then a name
    /// and a value id per label, sorted by label name (empty values dropped, as Prometheus
    /// does).
    pub(super) labels_at: u32,
    /// Labels in the set (the name excluded).
    pub(super) labels_len: u32,
    pub(super) hash: u64,
    /// Which slots of the ring hold a float point of this series.
    pub points: Slots,
    pub histograms: Histograms,
    /// Time of the newest point dropped because of `max_points_per_series`.
    pub evicted_until_ms: Option<i64>,
}

impl Series {
    /// The native histogram points in `(start_ms, end_ms]`, oldest first: the input of
    /// [`crate::histogram::histogram_rate`] for `rate()`/`increase()` over a native histogram.
    pub fn histogram_points(
        &self,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Iterator<Item = HistogramPoint<'_>> {
        let points = self.histograms.as_slice();
        points
            .get(histogram_window(points, start_ms, end_ms))
            .unwrap_or_default()
            .iter()
            .map(|p| HistogramPoint { t: p.t, h: &p.h })
    }

    /// The native histogram scraped at exactly `t_ms`.
    pub fn histogram_at(&self, t_ms: i64) -> Option<&FloatHistogram> {
        let points = self.histograms.as_slice();
        let i = points.partition_point(|p| p.t < t_ms);
        points.get(i).filter(|p| p.t == t_ms).map(|p| &p.h)
    }
}

/// Indexes of the points in `(start, end]`.
pub(crate) fn histogram_window(points: &[HistPoint], start: i64, end: i64) -> Range<usize> {
    let lo = points.partition_point(|p| p.t <= start);
    lo..points.partition_point(|p| p.t <= end).max(lo)
}

/// A series as readers see it: its labels, its float points by time, its histogram points.
#[derive(Clone, Copy)]
pub(crate) struct SeriesRef<'a> {
    pub(super) store: &'a SeriesStore,
    pub(super) series: &'a Series,
    pub(super) row: usize,
}

impl fmt::Debug for SeriesRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl<'a> SeriesRef<'a> {
    /// The name's id, then a (name, value) id pair per label.
    fn ids(&self) -> &'a [u32] {
        let at = self.series.labels_at as usize;
        let len = 1 + 2 * self.series.labels_len as usize;
        self.store.labels.get(at..at + len).unwrap_or(&[])
    }

    fn string(&self, id: u32) -> &'a str {
        self.store.strings.get(id)
    }

    pub fn name(&self) -> &'a str {
        self.ids().first().map_or("", |&id| self.string(id))
    }

    /// A label's value; the empty string when absent (`__name__` gives the metric name).
    pub fn label(&self, name: &str) -> &'a str {
        if name == "__name__" {
            return self.name();
        }
        let pairs = self.ids().get(1..).unwrap_or(&[]);
        let (mut lo, mut hi) = (0, pairs.len() / 2);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let key = pairs.get(2 * mid).map_or("", |&id| self.string(id));
            match key.cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return pairs.get(2 * mid + 1).map_or("", |&id| self.string(id));
                }
            }
        }
        ""
    }

    /// Calls `f` with every label (name, value), sorted by name, `__name__` excluded.
    pub fn each_label(&self, f: &mut dyn FnMut(&'a str, &'a str)) {
        for pair in self.ids().get(1..).unwrap_or(&[]).chunks_exact(2) {
            if let [k, v] = pair {
                f(self.string(*k), self.string(*v));
            }
        }
    }

    pub fn matches(&self, selector: &Selector) -> bool {
        if let Some(name) = &selector.name
            && **name != *self.name()
        {
            return false;
        }
        selector
            .matchers
            .iter()
            .all(|m| m.matches(self.label(&m.label)))
    }

    /// Whether `sample` is this series (same name and same non-empty labels).
    pub(super) fn is<S: ScrapedSample + ?Sized>(&self, sample: &S) -> bool {
        if self.name() != sample.metric_name() {
            return false;
        }
        let mut count = 0usize;
        let mut same = true;
        sample.visit_labels(&mut |name, value| {
            if !same || value.is_empty() {
                return;
            }
            count += 1;
            same = self.label(name) == value;
        });
        same && count == self.series.labels_len as usize
    }

    /// The float points.
    pub fn floats(&self) -> Floats<'a> {
        Floats {
            ring: &self.store.ring,
            row: self.store.ring.row(self.row),
            slots: &self.series.points,
        }
    }

    /// The native histogram points, oldest first.
    pub fn histograms(&self) -> &'a [HistPoint] {
        self.series.histograms.as_slice()
    }

    pub fn histogram_points(
        &self,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Iterator<Item = HistogramPoint<'a>> {
        self.series.histogram_points(start_ms, end_ms)
    }

    pub fn histogram_at(&self, t_ms: i64) -> Option<&'a FloatHistogram> {
        self.series.histogram_at(t_ms)
    }

    /// Time of the newest point dropped because of `max_points_per_series`.
    pub fn evicted_until_ms(&self) -> Option<i64> {
        self.series.evicted_until_ms
    }

    /// The series as `name{a="1", b="2"}`, for messages; a name outside the legacy character
    /// set is quoted inside the braces, as PromQL 3 writes it
    /// (`{"http.server.duration", "service.name"="x"}`).
    pub fn describe(&self) -> String {
        let name = self.name();
        let legacy_name = exposition::is_legacy_metric_name(name);
        let mut out = String::new();
        if legacy_name {
            out.push_str(name);
            out.push('{');
        } else {
            out.push_str(&format!("{{{name:?}"));
        }
        let mut first = true;
        self.each_label(&mut |k, v| {
            if !first || !legacy_name {
                out.push_str(", ");
            }
            first = false;
            if exposition::is_legacy_label_name(k) {
                out.push_str(&format!("{k}={v:?}"));
            } else {
                out.push_str(&format!("{k:?}={v:?}"));
            }
        });
        out.push('}');
        out
    }
}

/// A stored series, seen as a sample: lets [`super::Interest::wants`] re-check kept series.
impl ScrapedSample for SeriesRef<'_> {
    fn metric_name(&self) -> &str {
        self.name()
    }

    fn value(&self) -> f64 {
        self.floats().last().map_or(f64::NAN, |p| p.v)
    }

    fn visit_labels(&self, visit: &mut dyn FnMut(&str, &str)) {
        self.each_label(&mut |k, v| visit(k, v));
    }
}

/// A series' float points: the ring's times, the series' row of values, and which slots
/// hold a point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Floats<'a> {
    ring: &'a Ring,
    row: &'a [f64],
    slots: &'a Slots,
}

impl<'a> Floats<'a> {
    fn point(&self, seq: u64) -> Option<Point> {
        let slot = self.ring.slot(seq);
        if !self.slots.get(slot) {
            return None;
        }
        Some(Point {
            t: self.ring.time(seq),
            v: self.row.get(slot).copied().unwrap_or(f64::NAN),
        })
    }

    /// The points in `(start, end]`, oldest first.
    pub fn window(&self, start: i64, end: i64) -> FloatWindow<'a> {
        let seqs = self.ring.seqs();
        let lo = self.ring.first_after(seqs.clone(), start);
        let hi = self.ring.first_after(lo..seqs.end, end);
        FloatWindow {
            floats: *self,
            seqs: lo..hi,
        }
    }

    /// The point scraped at exactly `t`.
    pub fn at(&self, t: i64) -> Option<Point> {
        let seqs = self.ring.seqs();
        // The latest scrape is the one read almost always.
        let seq = match seqs.end.checked_sub(1) {
            Some(last) if last >= seqs.start && self.ring.time(last) == t => last,
            _ => {
                let seq = self.ring.first_after(seqs.clone(), t.saturating_sub(1));
                if seq >= seqs.end || self.ring.time(seq) != t {
                    return None;
                }
                seq
            }
        };
        self.point(seq)
    }

    /// The newest point.
    pub fn last(&self) -> Option<Point> {
        self.ring.seqs().rev().find_map(|seq| self.point(seq))
    }
}

/// The float points of a window, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct FloatWindow<'a> {
    floats: Floats<'a>,
    seqs: Range<u64>,
}

impl FloatWindow<'_> {
    /// Points in the window.
    pub fn len(&self) -> usize {
        self.clone().count()
    }
}

impl Iterator for FloatWindow<'_> {
    type Item = Point;

    fn next(&mut self) -> Option<Point> {
        for seq in self.seqs.by_ref() {
            if let Some(p) = self.floats.point(seq) {
                return Some(p);
            }
        }
        None
    }
}

impl DoubleEndedIterator for FloatWindow<'_> {
    fn next_back(&mut self) -> Option<Point> {
        while let Some(seq) = self.seqs.next_back() {
            if let Some(p) = self.floats.point(seq) {
                return Some(p);
            }
        }
        None
    }
}
