//! Vector elements during evaluation: a label set borrowed from the store or the query, and a
//! value; plus the label signatures that aggregations and vector matching group by.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::store::SeriesRef;
use crate::histogram::FloatHistogram;

/// A sample value: a float, or a native histogram (borrowed from the store, or computed by
/// a function, an operator or an aggregation). Functions that take floats skip histograms,
/// and those that take histograms skip floats, as Prometheus does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Float(f64),
    Histogram(Cow<'a, FloatHistogram>),
}

impl<'a> Value<'a> {
    pub fn float(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Histogram(_) => None,
        }
    }

    pub fn histogram(&self) -> Option<&FloatHistogram> {
        match self {
            Value::Float(_) => None,
            Value::Histogram(h) => Some(h),
        }
    }

    /// A computed histogram.
    pub fn owned(h: FloatHistogram) -> Value<'a> {
        Value::Histogram(Cow::Owned(h))
    }

    /// A copy that borrows what this one borrows (a computed histogram is cloned).
    pub fn share(&self) -> Value<'a> {
        match self {
            Value::Float(v) => Value::Float(*v),
            Value::Histogram(Cow::Borrowed(h)) => Value::Histogram(Cow::Borrowed(h)),
            Value::Histogram(Cow::Owned(h)) => Value::owned(h.clone()),
        }
    }
}

/// A label set, borrowed so that evaluating the common forms does not allocate.
#[derive(Debug, Clone)]
pub(crate) enum Labels<'a> {
    /// No labels: an aggregation into one group, `vector(1)`.
    Empty,
    /// A stored series' labels, with its metric name or without (after a function).
    Series { series: SeriesRef<'a>, name: bool },
    /// Labels picked by an aggregation or an operation: sorted by name, non-empty values.
    Owned(Vec<(&'a str, &'a str)>),
}

impl<'a> Labels<'a> {
    /// A label's value; the empty string when absent.
    pub fn get(&self, label: &str) -> &'a str {
        match self {
            Labels::Empty => "",
            Labels::Series { series, name } => {
                if label == "__name__" && !name {
                    ""
                } else {
                    series.label(label)
                }
            }
            Labels::Owned(pairs) => pairs
                .iter()
                .find(|(k, _)| *k == label)
                .map_or("", |(_, v)| v),
        }
    }

    /// Calls `f` with every (name, value), `__name__` first when present.
    pub fn each(&self, f: &mut dyn FnMut(&'a str, &'a str)) {
        match self {
            Labels::Empty => {}
            Labels::Series { series, name } => {
                if *name {
                    f("__name__", series.name());
                }
                series.each_label(f);
            }
            Labels::Owned(pairs) => pairs.iter().for_each(|(k, v)| f(k, v)),
        }
    }

    /// The same labels without the metric name.
    pub fn without_name(self) -> Labels<'a> {
        match self {
            Labels::Series { series, .. } => Labels::Series {
                series,
                name: false,
            },
            Labels::Owned(mut pairs) => {
                pairs.retain(|(k, _)| *k != "__name__");
                Labels::Owned(pairs)
            }
            Labels::Empty => Labels::Empty,
        }
    }

    /// The labels that `filter` keeps, as an owned set.
    pub fn keep(&self, filter: Filter<'_>) -> Labels<'a> {
        let mut pairs = Vec::new();
        self.each(&mut |k, v| {
            if filter.keeps(k) && !v.is_empty() {
                pairs.push((k, v));
            }
        });
        pairs.sort_unstable();
        Labels::Owned(pairs)
    }
}

impl Labels<'_> {
    /// The labels as PromQL writes them (`name{a="1", "b.c"="2"}`), for messages.
    pub fn describe(&self) -> String {
        if let Labels::Series { series, name: true } = self {
            return series.describe();
        }
        let mut out = String::from("{");
        let mut first = true;
        self.each(&mut |k, v| {
            if !first {
                out.push_str(", ");
            }
            first = false;
            if crate::exposition::is_legacy_label_name(k) {
                out.push_str(&format!("{k}={v:?}"));
            } else {
                out.push_str(&format!("{k:?}={v:?}"));
            }
        });
        out.push('}');
        out
    }
}

/// Which labels a signature or a grouping looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Filter<'q> {
    /// `by (...)` / `on (...)`: these labels only.
    Only(&'q [Box<str>]),
    /// `without (...)` / `ignoring (...)`: all but these and the metric name.
    AllBut(&'q [Box<str>]),
}

impl Filter<'_> {
    pub fn keeps(&self, label: &str) -> bool {
        match self {
            Filter::Only(labels) => labels.iter().any(|l| &**l == label),
            Filter::AllBut(labels) => label != "__name__" && !labels.iter().any(|l| &**l == label),
        }
    }
}

/// A hash of the labels `filter` keeps (empty values count as absent).
pub(crate) fn signature(labels: &Labels<'_>, filter: Filter<'_>) -> u64 {
    let mut h = DefaultHasher::new();
    match filter {
        // Listed labels in the order written, so no sorting is needed.
        Filter::Only(names) => {
            for name in names {
                let v = labels.get(name);
                if !v.is_empty() {
                    name.hash(&mut h);
                    v.hash(&mut h);
                }
            }
        }
        Filter::AllBut(_) => labels.each(&mut |k, v| {
            if filter.keeps(k) && !v.is_empty() {
                k.hash(&mut h);
                v.hash(&mut h);
            }
        }),
    }
    h.finish()
}

/// Whether two label sets agree on the labels `filter` keeps.
pub(crate) fn same(a: &Labels<'_>, b: &Labels<'_>, filter: Filter<'_>) -> bool {
    match filter {
        Filter::Only(names) => names.iter().all(|n| a.get(n) == b.get(n)),
        Filter::AllBut(_) => {
            let mut equal = true;
            let mut count_a = 0;
            a.each(&mut |k, v| {
                if filter.keeps(k) && !v.is_empty() {
                    count_a += 1;
                    equal &= b.get(k) == v;
                }
            });
            let mut count_b = 0;
            b.each(&mut |k, v| {
                if filter.keeps(k) && !v.is_empty() {
                    count_b += 1;
                }
            });
            equal && count_a == count_b
        }
    }
}

/// One element of an instant vector.
#[derive(Debug, Clone)]
pub(crate) struct Element<'a> {
    pub labels: Labels<'a>,
    pub value: Value<'a>,
}

/// Groups of label sets by signature, with an exact comparison behind the hash.
#[derive(Debug, Default)]
pub(crate) struct Groups<'a> {
    first: HashMap<u64, usize>,
    /// Next group with the same hash (a collision), by group index.
    next: Vec<Option<usize>>,
    /// A representative label set per group.
    pub keys: Vec<Labels<'a>>,
}

impl<'a> Groups<'a> {
    /// The group of `labels`, if one exists.
    pub fn find(&self, labels: &Labels<'_>, filter: Filter<'_>) -> Option<usize> {
        let mut at = self.first.get(&signature(labels, filter)).copied();
        while let Some(i) = at {
            if self.keys.get(i).is_some_and(|k| same(k, labels, filter)) {
                return Some(i);
            }
            at = self.next.get(i).copied().flatten();
        }
        None
    }

    /// The group of `labels`, created when new; `true` when it was created.
    pub fn find_or_insert(&mut self, labels: &Labels<'a>, filter: Filter<'_>) -> (usize, bool) {
        if let Some(i) = self.find(labels, filter) {
            return (i, false);
        }
        let i = self.keys.len();
        let sig = signature(labels, filter);
        let previous = self.first.insert(sig, i);
        self.next.push(previous);
        self.keys.push(labels.clone());
        (i, true)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}
