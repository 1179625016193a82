//! Aggregations (`sum`, `avg`, `topk`, ... with `by`/`without`), as Prometheus computes them.

use super::ast::{AggOp, Aggregate};
use super::context::Cx;
use super::labels::{Element, Filter, Groups, Labels, Value};
use super::outcome::{EvalError, NoData};
use super::stream::{Produced, Sink};
use crate::histogram::{HistogramSum, kahan_inc};

/// One group's running aggregate (Prometheus's `groupedAggregation`).
#[derive(Debug, Clone)]
struct Acc {
    op: AggOp,
    seen: bool,
    count: f64,
    value: f64,
    compensation: f64,
    mean: f64,
    incremental: bool,
    /// `sum`/`avg` of native histograms so far.
    histogram: Option<HistogramSum>,
    /// `sum`/`avg` saw floats (with histograms too, the group has no result).
    floats: bool,
    /// Native histograms this aggregation skips (every one but for `sum`, `avg`, `count`
    /// and `group`), for the reason when nothing is left.
    ignored: usize,
}

/// What a group gives.
enum Outcome<'a> {
    Value(Value<'a>),
    /// Nothing: floats and histograms mixed in `sum`/`avg`.
    Mixed,
    /// Nothing: every input was a histogram this aggregation skips.
    Ignored,
}

impl Acc {
    fn new(op: AggOp) -> Acc {
        Acc {
            op,
            seen: false,
            count: 0.0,
            value: 0.0,
            compensation: 0.0,
            mean: 0.0,
            incremental: false,
            histogram: None,
            floats: false,
            ignored: 0,
        }
    }

    /// Adds an element's value: floats as Prometheus does; native histograms summed for
    /// `sum` and `avg`, counted for `count` and `group`, skipped by the others.
    fn add_value(&mut self, v: Value<'_>) {
        match v {
            Value::Float(f) => {
                self.floats = true;
                self.add(f);
            }
            Value::Histogram(h) => match self.op {
                AggOp::Sum | AggOp::Avg => {
                    self.seen = true;
                    match &mut self.histogram {
                        Some(acc) if self.op == AggOp::Sum => acc.add(&h),
                        Some(acc) => acc.add_to_mean(&h),
                        None => self.histogram = Some(HistogramSum::new(h.into_owned())),
                    }
                }
                AggOp::Count | AggOp::Group => self.add(0.0),
                _ => self.ignored += 1,
            },
        }
    }

    /// The group's result once every element was added.
    fn outcome<'a>(&mut self) -> Outcome<'a> {
        if !self.seen {
            return Outcome::Ignored;
        }
        let Some(h) = self.histogram.take() else {
            return Outcome::Value(Value::Float(self.result()));
        };
        if self.floats {
            return Outcome::Mixed;
        }
        Outcome::Value(Value::owned(if self.op == AggOp::Avg {
            h.mean()
        } else {
            h.sum()
        }))
    }

    fn add(&mut self, f: f64) {
        if !self.seen {
            self.seen = true;
            self.count = 1.0;
            self.value = f;
            self.mean = f;
            match self.op {
                AggOp::Stddev | AggOp::Stdvar => {
                    self.value = if f.is_finite() { 0.0 } else { f64::NAN };
                }
                AggOp::Group => self.value = 1.0,
                _ => {}
            }
            return;
        }
        match self.op {
            AggOp::Sum => {
                (self.value, self.compensation) = kahan_inc(f, self.value, self.compensation)
            }
            AggOp::Avg => {
                self.count += 1.0;
                if !self.incremental {
                    let (sum, c) = kahan_inc(f, self.value, self.compensation);
                    if !sum.is_infinite() {
                        (self.value, self.compensation) = (sum, c);
                        return;
                    }
                    // The sum would overflow: continue with an incremental mean.
                    self.incremental = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.compensation /= self.count - 1.0;
                }
                let q = (self.count - 1.0) / self.count;
                (self.mean, self.compensation) =
                    kahan_inc(f / self.count, q * self.mean, q * self.compensation);
            }
            AggOp::Max => {
                if self.value < f || self.value.is_nan() {
                    self.value = f;
                }
            }
            AggOp::Min => {
                if self.value > f || self.value.is_nan() {
                    self.value = f;
                }
            }
            AggOp::Count => self.count += 1.0,
            AggOp::Stddev | AggOp::Stdvar => {
                // Welford's online variance.
                self.count += 1.0;
                let delta = f - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (f - self.mean);
            }
            AggOp::Group | AggOp::Quantile | AggOp::Topk | AggOp::Bottomk => {}
        }
    }

    fn result(&self) -> f64 {
        match self.op {
            AggOp::Sum => self.value + self.compensation,
            AggOp::Avg if self.incremental => self.mean + self.compensation,
            AggOp::Avg => self.value / self.count + self.compensation / self.count,
            AggOp::Count => self.count,
            AggOp::Stdvar => self.value / self.count,
            AggOp::Stddev => (self.value / self.count).sqrt(),
            _ => self.value,
        }
    }
}

/// PromQL's `quantile` over values: linear interpolation between the closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as in Prometheus's sort by value.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let at = |i: f64| values.get(i as usize).copied().unwrap_or(f64::NAN);
    if weight == 0.0 {
        return at(lower);
    }
    at(lower) * (1.0 - weight) + at(upper) * weight
}

pub(crate) fn eval<'a>(
    cx: &Cx<'a>,
    a: &'a Aggregate,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let param = match &a.param {
        Some(p) => cx.scalar(p)?,
        None => f64::NAN,
    };
    match a.op {
        AggOp::Topk | AggOp::Bottomk => return top(cx, a, param, sink),
        AggOp::Quantile => return quantiles(cx, a, param, sink),
        _ => {}
    }
    if a.grouping.is_single() {
        // One group: streamed, nothing collected.
        let mut acc = Acc::new(a.op);
        let mut any = false;
        let inner = cx.vector(&a.expr, &mut |el| {
            any = true;
            acc.add_value(el.value);
            Ok(())
        })?;
        if !any {
            return Ok(Produced::none(inner.reason()));
        }
        let value = match acc.outcome() {
            Outcome::Value(v) => v,
            Outcome::Mixed => return Ok(Produced::none(mixed(a))),
            Outcome::Ignored => return Ok(Produced::none(ignored(a))),
        };
        sink(Element {
            labels: Labels::Empty,
            value,
        })?;
        return Ok(Produced::some(1));
    }
    let filter = filter(a);
    let mut groups = Groups::default();
    let mut accs: Vec<Acc> = Vec::new();
    let inner = cx.vector(&a.expr, &mut |el| {
        let (g, created) = groups.find_or_insert(&el.labels, filter);
        if created {
            accs.push(Acc::new(a.op));
        }
        if let Some(acc) = accs.get_mut(g) {
            acc.add_value(el.value);
        }
        Ok(())
    })?;
    if groups.len() == 0 {
        return Ok(Produced::none(inner.reason()));
    }
    let (mut count, mut any_mixed) = (0, false);
    for (key, acc) in groups.keys.iter().zip(&mut accs) {
        match acc.outcome() {
            Outcome::Value(value) => {
                count += 1;
                sink(Element {
                    labels: key.keep(filter),
                    value,
                })?;
            }
            Outcome::Mixed => any_mixed = true,
            Outcome::Ignored => {}
        }
    }
    Ok(Produced::counted(count, || {
        if any_mixed { mixed(a) } else { ignored(a) }
    }))
}

fn mixed(a: &Aggregate) -> NoData {
    NoData::MixedFloatsAndHistograms {
        expr: a.text.to_string(),
    }
}

fn ignored(a: &Aggregate) -> NoData {
    NoData::HistogramIgnored {
        expr: a.text.to_string(),
    }
}

fn filter(a: &Aggregate) -> Filter<'_> {
    if a.grouping.without {
        Filter::AllBut(&a.grouping.labels)
    } else {
        Filter::Only(&a.grouping.labels)
    }
}

/// The input collected into its groups.
fn collect<'a>(
    cx: &Cx<'a>,
    a: &'a Aggregate,
) -> Result<(Groups<'a>, Vec<Vec<Element<'a>>>, Produced), EvalError> {
    let filter = filter(a);
    let mut groups = Groups::default();
    let mut members: Vec<Vec<Element<'a>>> = Vec::new();
    let inner = cx.vector(&a.expr, &mut |el| {
        let (g, created) = groups.find_or_insert(&el.labels, filter);
        if created {
            members.push(Vec::new());
        }
        if let Some(m) = members.get_mut(g) {
            m.push(el);
        }
        Ok(())
    })?;
    Ok((groups, members, inner))
}

/// `topk`/`bottomk`: the k largest/smallest elements of each group, labels kept.
fn top<'a>(
    cx: &Cx<'a>,
    a: &'a Aggregate,
    k: f64,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    if !k.is_finite() {
        return Err(EvalError::new(format!(
            "the k of topk/bottomk must be a finite number, found {k}"
        )));
    }
    let (_, mut members, inner) = collect(cx, a)?;
    if members.is_empty() {
        return Ok(Produced::none(inner.reason()));
    }
    // Native histograms are skipped, as Prometheus does.
    let mut skipped = 0;
    for group in &mut members {
        let before = group.len();
        group.retain(|e| e.value.float().is_some());
        skipped += before - group.len();
    }
    let k = k as i64;
    let mut count = 0;
    for mut group in members {
        let value = |e: &Element<'_>| e.value.float().unwrap_or(f64::NAN);
        // NaN ranks last either way, as in Prometheus.
        group.sort_by(|x, y| {
            let (x, y) = (value(x), value(y));
            match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if a.op == AggOp::Topk => y.total_cmp(&x),
                _ => x.total_cmp(&y),
            }
        });
        for el in group.into_iter().take(usize::try_from(k).unwrap_or(0)) {
            count += 1;
            sink(el)?;
        }
    }
    Ok(Produced::counted(count, || {
        if skipped > 0 {
            ignored(a)
        } else {
            inner.reason()
        }
    }))
}

/// `quantile(q, v)` per group.
fn quantiles<'a>(
    cx: &Cx<'a>,
    a: &'a Aggregate,
    q: f64,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let (groups, members, inner) = collect(cx, a)?;
    if members.is_empty() {
        return Ok(Produced::none(inner.reason()));
    }
    let filter = filter(a);
    let mut values = Vec::new();
    let mut count = 0;
    for (key, group) in groups.keys.iter().zip(members) {
        values.clear();
        // Native histograms are skipped, as Prometheus does; a group of them has no result.
        values.extend(group.iter().filter_map(|e| e.value.float()));
        if values.is_empty() {
            continue;
        }
        count += 1;
        sink(Element {
            labels: key.keep(filter),
            value: Value::Float(quantile(q, &mut values)),
        })?;
    }
    Ok(Produced::counted(count, || ignored(a)))
}
