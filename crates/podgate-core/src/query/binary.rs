//! Binary operators: arithmetic, comparisons (filtering or `bool`) and `and`/`or`/`unless`,
//! between numbers and vectors, and between vectors with PromQL's label matching.

use super::ast::{BinOp, Binary, Card};
use super::context::Cx;
use super::labels::{Element, Filter, Groups, Labels, Value, same};
use super::outcome::{EvalError, NoData};
use super::stream::{Produced, Sink};
use super::types::Type;
use crate::histogram::{CounterResetHint, FloatHistogram};

/// `l op r` on floats: the value and, for comparisons, whether it holds.
pub(crate) fn apply(op: BinOp, l: f64, r: f64) -> Option<(f64, bool)> {
    Some(match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        // Go's math.Mod: the sign of the dividend, as Rust's `%` on floats.
        BinOp::Mod => (l % r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => return None,
    })
}

/// `l op r` on two sample values, as Prometheus's `vectorElemBinop`: floats as [`apply`]; a
/// native histogram takes `*` by a number (on either side) and `/` by one, and `+`, `-`,
/// `==`, `!=` with another histogram. `None` for a pairing outside these (Prometheus drops
/// the element) and for `and`/`or`/`unless`. A comparison's value is the left operand.
pub(crate) fn combine<'a>(op: BinOp, l: &Value<'a>, r: &Value<'a>) -> Option<(Value<'a>, bool)> {
    let scaled = |h: &FloatHistogram, by: f64, divide: bool| {
        let mut h = h.clone();
        if divide {
            h.div(by);
        } else {
            h.mul(by);
        }
        h.compact();
        Some((Value::owned(h), true))
    };
    match (l, r) {
        (Value::Float(l), Value::Float(r)) => {
            apply(op, *l, *r).map(|(v, keep)| (Value::Float(v), keep))
        }
        (Value::Histogram(h), Value::Float(n)) => match op {
            BinOp::Mul => scaled(h, *n, false),
            BinOp::Div => scaled(h, *n, true),
            _ => None,
        },
        (Value::Float(n), Value::Histogram(h)) => match op {
            BinOp::Mul => scaled(h, *n, false),
            _ => None,
        },
        (Value::Histogram(a), Value::Histogram(b)) => match op {
            BinOp::Add | BinOp::Sub => {
                let mut h = a.clone().into_owned();
                if op == BinOp::Add {
                    h.add(b);
                } else {
                    h.sub(b);
                    h.hint = CounterResetHint::Gauge;
                }
                h.compact();
                Some((Value::owned(h), true))
            }
            BinOp::Eq => Some((l.share(), a.same_as(b))),
            BinOp::Ne => Some((l.share(), !a.same_as(b))),
            _ => None,
        },
    }
}

pub(crate) fn eval<'a>(
    cx: &Cx<'a>,
    b: &'a Binary,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    match (b.lhs.ty(), b.rhs.ty()) {
        (Type::Vector, Type::Vector) => vector_vector(cx, b, sink),
        (Type::Vector, _) => {
            let r = cx.scalar(&b.rhs)?;
            with_scalar(cx, b, r, false, sink)
        }
        _ => {
            let l = cx.scalar(&b.lhs)?;
            with_scalar(cx, b, l, true, sink)
        }
    }
}

/// A vector and a number (`swapped`: the number is on the left).
fn with_scalar<'a>(
    cx: &Cx<'a>,
    b: &'a Binary,
    number: f64,
    swapped: bool,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let side = if swapped { &b.rhs } else { &b.lhs };
    let drop_name = drops_name(b.op, b.return_bool);
    let (mut count, mut unfit) = (0usize, 0usize);
    let number = Value::Float(number);
    let inner = cx.vector(side, &mut |el| {
        let (l, r) = if swapped {
            (&number, &el.value)
        } else {
            (&el.value, &number)
        };
        let Some((value, keep)) = combine(b.op, l, r) else {
            unfit += usize::from(!b.op.is_set());
            return Ok(());
        };
        let value = if b.op.is_comparison() {
            if b.return_bool {
                Value::Float(f64::from(u8::from(keep)))
            } else if keep {
                // A filter keeps the vector's own value, whichever side it is on.
                el.value
            } else {
                return Ok(());
            }
        } else {
            value
        };
        count += 1;
        let labels = if drop_name {
            el.labels.without_name()
        } else {
            el.labels
        };
        sink(Element { labels, value })
    })?;
    Ok(if count > 0 {
        Produced::some(count)
    } else if inner.count == 0 {
        Produced::none(inner.reason())
    } else if unfit > 0 {
        Produced::none(NoData::HistogramOperand {
            expr: b.text.to_string(),
        })
    } else {
        Produced::none(NoData::Filtered {
            expr: b.text.to_string(),
        })
    })
}

fn matching_filter(b: &Binary) -> Filter<'_> {
    if b.matching.on {
        Filter::Only(&b.matching.labels)
    } else {
        Filter::AllBut(&b.matching.labels)
    }
}

/// Collects a side's elements.
fn collect<'a>(
    cx: &Cx<'a>,
    side: &'a super::ast::Expr,
) -> Result<(Vec<Element<'a>>, Produced), EvalError> {
    let mut out = Vec::new();
    let produced = cx.vector(side, &mut |el| {
        out.push(el);
        Ok(())
    })?;
    Ok((out, produced))
}

/// Why two matched elements gave nothing: a comparison that did not hold, or an operator
/// that does not apply to a native histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unmatched {
    /// No element matched one on the other side.
    NoMatch,
    Filtered,
    Unfit,
}

/// The reason for an empty result when both sides had series; or the empty side's reason.
/// "Not enough history" wins: the result may exist once the history does.
fn empty_reason(b: &Binary, lhs: Produced, rhs: Produced, why: Unmatched) -> Produced {
    let (l, r) = (lhs.count, rhs.count);
    let mut reasons = [lhs.why, rhs.why];
    if let Some(warming) = reasons
        .iter_mut()
        .find(|w| matches!(w, Some(NoData::NotEnoughHistory { .. })))
        && let Some(w) = warming.take()
    {
        return Produced::none(w);
    }
    let [lw, rw] = reasons;
    match (l, r, lw, rw) {
        (0, _, Some(w), _) | (_, 0, _, Some(w)) => Produced::none(w),
        _ => {
            let expr = b.text.to_string();
            Produced::none(match why {
                Unmatched::Filtered => NoData::Filtered { expr },
                Unmatched::Unfit => NoData::HistogramOperand { expr },
                Unmatched::NoMatch => NoData::NoMatch { expr },
            })
        }
    }
}

fn vector_vector<'a>(
    cx: &Cx<'a>,
    b: &'a Binary,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let filter = matching_filter(b);
    if b.op.is_set() {
        return set_op(cx, b, filter, sink);
    }
    // The "one" side is indexed; the other side is streamed against it.
    let one_is_left = b.matching.card == Card::OneToMany;
    let (one_expr, many_expr) = if one_is_left {
        (&b.lhs, &b.rhs)
    } else {
        (&b.rhs, &b.lhs)
    };
    // The first element is kept inline: the usual `sum(...) / sum(...)` matches one element
    // with one and evaluates without allocating.
    let mut first: Option<Element<'a>> = None;
    let mut rest: Vec<Element<'a>> = Vec::new();
    let one_produced = cx.vector(one_expr, &mut |el| {
        if first.is_none() {
            first = Some(el);
        } else {
            rest.push(el);
        }
        Ok(())
    })?;
    let get = |i: usize| -> Option<&Element<'a>> {
        match i {
            0 => first.as_ref(),
            i => rest.get(i - 1),
        }
    };
    let mut index = Groups::default();
    if !rest.is_empty() {
        for el in first.iter().chain(&rest) {
            let (_, created) = index.find_or_insert(&el.labels, filter);
            if !created {
                return Err(EvalError::new(format!(
                    "in {}, several series on the {} side have the same labels {} for \
                     matching (many-to-many matching is not allowed); match on labels that \
                     are unique on one side, with on (...) or ignoring (...)",
                    b.text,
                    if one_is_left { "left" } else { "right" },
                    el.labels.keep(filter).describe()
                )));
            }
        }
    }
    let find = |labels: &Labels<'_>| -> Option<usize> {
        if rest.is_empty() {
            first
                .as_ref()
                .filter(|f| same(&f.labels, labels, filter))
                .map(|_| 0)
        } else {
            index.find(labels, filter)
        }
    };
    let mut matched_first = false;
    let mut matched = vec![false; rest.len()];
    let drop_name = drops_name(b.op, b.return_bool);
    let mut count = 0usize;
    let mut unmatched = Unmatched::NoMatch;
    let many_produced = cx.vector(many_expr, &mut |el| {
        let Some(i) = find(&el.labels) else {
            return Ok(());
        };
        let Some(other) = get(i) else {
            return Ok(());
        };
        if unmatched == Unmatched::NoMatch {
            unmatched = Unmatched::Filtered;
        }
        if b.matching.card == Card::OneToOne {
            let seen = match i {
                0 => &mut matched_first,
                i => match matched.get_mut(i - 1) {
                    Some(m) => m,
                    None => return Ok(()),
                },
            };
            if *seen {
                return Err(EvalError::new(format!(
                    "in {}, several series on the left side match one on the right side on \
                     the labels {}; aggregate the left side first, or use group_left for \
                     many-to-one matching",
                    b.text,
                    el.labels.keep(filter).describe()
                )));
            }
            *seen = true;
        }
        let (l, r) = if one_is_left {
            (&other.value, &el.value)
        } else {
            (&el.value, &other.value)
        };
        let Some((value, keep)) = combine(b.op, l, r) else {
            unmatched = Unmatched::Unfit;
            return Ok(());
        };
        let value = match (b.op.is_comparison(), b.return_bool) {
            (false, _) => value,
            (true, true) => Value::Float(f64::from(u8::from(keep))),
            // The left operand's value (`combine` gives it for comparisons).
            (true, false) if keep => value,
            (true, false) => return Ok(()),
        };
        count += 1;
        sink(Element {
            labels: result_labels(b, el.labels, &other.labels, filter, drop_name),
            value,
        })
    })?;
    if count > 0 {
        return Ok(Produced::some(count));
    }
    let (lhs, rhs) = if one_is_left {
        (one_produced, many_produced)
    } else {
        (many_produced, one_produced)
    };
    Ok(empty_reason(b, lhs, rhs, unmatched))
}

/// The result's labels, as Prometheus's `resultMetric`: the "many" side's labels, the name
/// dropped for arithmetic, for one-to-one matching only the `on` labels (or all but the
/// `ignoring` ones), plus the `group_x (...)` labels from the "one" side.
fn result_labels<'a>(
    b: &Binary,
    many: Labels<'a>,
    one: &Labels<'a>,
    filter: Filter<'_>,
    drop_name: bool,
) -> Labels<'a> {
    let many = if drop_name { many.without_name() } else { many };
    let base = if b.matching.card == Card::OneToOne {
        if b.matching.on {
            many.keep(filter)
        } else if b.matching.labels.is_empty() {
            many
        } else {
            let name_kept = !drop_name;
            let mut pairs = Vec::new();
            many.each(&mut |k, v| {
                let ignored = b.matching.labels.iter().any(|l| &**l == k);
                if !ignored && (k != "__name__" || name_kept) && !v.is_empty() {
                    pairs.push((k, v));
                }
            });
            pairs.sort_unstable();
            Labels::Owned(pairs)
        }
    } else {
        many
    };
    if b.matching.include.is_empty() {
        return base;
    }
    let mut pairs = Vec::new();
    base.each(&mut |k, v| {
        if !b.matching.include.iter().any(|l| &**l == k) {
            pairs.push((k, v));
        }
    });
    for label in &b.matching.include {
        let v = one.get(label);
        if !v.is_empty() {
            // The value borrows from the "one" side's labels, which outlive the result.
            if let Some(name) = find_name(one, label) {
                pairs.push((name, v));
            }
        }
    }
    pairs.sort_unstable();
    Labels::Owned(pairs)
}

/// The label name as the label set holds it (with its lifetime).
fn find_name<'a>(labels: &Labels<'a>, name: &str) -> Option<&'a str> {
    let mut found = None;
    labels.each(&mut |k, _| {
        if k == name {
            found = Some(k);
        }
    });
    found
}

/// `and`, `or`, `unless`: element sets by matching labels; elements keep their labels.
fn set_op<'a>(
    cx: &Cx<'a>,
    b: &'a Binary,
    filter: Filter<'_>,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let mut count = 0usize;
    match b.op {
        BinOp::Or => {
            let (lhs, lp) = collect(cx, &b.lhs)?;
            let mut index = Groups::default();
            for el in &lhs {
                index.find_or_insert(&el.labels, filter);
            }
            count += lhs.len();
            for el in lhs {
                sink(el)?;
            }
            let rp = cx.vector(&b.rhs, &mut |el| {
                if index.find(&el.labels, filter).is_none() {
                    count += 1;
                    sink(el)?;
                }
                Ok(())
            })?;
            if count > 0 {
                return Ok(Produced::some(count));
            }
            Ok(empty_reason(b, lp, rp, Unmatched::NoMatch))
        }
        _ => {
            let (rhs, rp) = collect(cx, &b.rhs)?;
            let mut index = Groups::default();
            for el in &rhs {
                index.find_or_insert(&el.labels, filter);
            }
            let keep_matched = b.op == BinOp::And;
            let lp = cx.vector(&b.lhs, &mut |el| {
                if index.find(&el.labels, filter).is_some() == keep_matched {
                    count += 1;
                    sink(el)?;
                }
                Ok(())
            })?;
            if count > 0 {
                return Ok(Produced::some(count));
            }
            if b.op == BinOp::Unless {
                return Ok(if lp.count == 0 {
                    Produced::none(lp.reason())
                } else {
                    Produced::none(NoData::Filtered {
                        expr: b.text.to_string(),
                    })
                });
            }
            Ok(empty_reason(b, lp, rp, Unmatched::NoMatch))
        }
    }
}

/// Whether an operation with `op` drops the metric name, as Prometheus does for arithmetic and
/// `bool` comparisons.
fn drops_name(op: BinOp, return_bool: bool) -> bool {
    !(op.is_set() || (op.is_comparison() && !return_bool))
}
