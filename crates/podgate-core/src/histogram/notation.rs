//! The native histogram notation of Prometheus's test language (promqltest and `promtool test
//! rules`): a literal `{{schema:0 count:4 sum:5 buckets:[1 2 1]}}` and the series forms
//! `{{...}}xN` (N+1 copies), `{{a}}+{{b}}xN` (a, then b added N times) and `{{a}}-{{b}}xN`.
//! `podgate test` reads input series written this way; the tests transcribe Prometheus's
//! cases with it.

use super::{CounterResetHint, FloatHistogram, MAX_SCHEMA, MIN_SCHEMA};

/// The most values one `xN` may expand to (as for float series in `podgate test`).
const MAX_REPETITIONS: usize = 100_000;

/// Text that is not in the notation: the message says what is wrong where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotationError {
    pub message: String,
}

impl NotationError {
    fn new(message: impl Into<String>) -> NotationError {
        NotationError {
            message: message.into(),
        }
    }
}

/// Parses one literal, `{{` to `}}`. Keys: `schema`, `count`, `sum`, `z_bucket` (zero
/// count), `z_bucket_w` (zero threshold), `buckets:[...]` and `offset` (index of the first
/// positive bucket, the one ending at 1 by default), `n_buckets:[...]` and `n_offset`,
/// `counter_reset_hint` (`unknown`, `reset`, `not_reset`, `gauge`).
pub fn parse_literal(text: &str) -> Result<FloatHistogram, NotationError> {
    let inner = text
        .trim()
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .ok_or_else(|| {
            NotationError::new(format!(
                "{text:?} is not a histogram like {{{{count:2 sum:3 buckets:[1 1]}}}}"
            ))
        })?;
    let mut out = FloatHistogram::default();
    let (mut positive, mut negative) = (Vec::new(), Vec::new());
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once(':').ok_or_else(|| {
            NotationError::new(format!(
                "expected `key:value` in the histogram, found {rest:?}"
            ))
        })?;
        let key = key.trim();
        let (value, next) = match after.strip_prefix('[') {
            Some(list) => list
                .split_once(']')
                .ok_or_else(|| NotationError::new(format!("{key}: the list has no closing ']'")))?,
            None => after.split_at(after.find(' ').unwrap_or(after.len())),
        };
        let bad = |what: &str| NotationError::new(format!("{key}: {value:?} is not {what}"));
        match key {
            "schema" => {
                out.schema = value.parse().map_err(|_| bad("a whole number"))?;
                if !(MIN_SCHEMA..=MAX_SCHEMA).contains(&out.schema) {
                    return Err(NotationError::new(format!(
                        "schema {} is outside {MIN_SCHEMA}..={MAX_SCHEMA}",
                        out.schema
                    )));
                }
            }
            "count" => out.count = number(value).ok_or_else(|| bad("a number"))?,
            "sum" => out.sum = number(value).ok_or_else(|| bad("a number"))?,
            "z_bucket" => out.zero_count = number(value).ok_or_else(|| bad("a number"))?,
            "z_bucket_w" => out.zero_threshold = number(value).ok_or_else(|| bad("a number"))?,
            "offset" => offset = value.parse().map_err(|_| bad("a whole number"))?,
            "n_offset" => n_offset = value.parse().map_err(|_| bad("a whole number"))?,
            "buckets" => positive = numbers(value).ok_or_else(|| bad("a list of numbers"))?,
            "n_buckets" => negative = numbers(value).ok_or_else(|| bad("a list of numbers"))?,
            "counter_reset_hint" => {
                out.hint = match value {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::Reset,
                    "not_reset" => CounterResetHint::NotReset,
                    "gauge" => CounterResetHint::Gauge,
                    _ => return Err(bad("unknown, reset, not_reset or gauge")),
                }
            }
            _ => {
                return Err(NotationError::new(format!(
                    "unknown histogram key {key:?} (schema, count, sum, z_bucket, z_bucket_w, \
                     buckets, offset, n_buckets, n_offset, counter_reset_hint)"
                )));
            }
        }
        rest = next.trim();
    }
    let indexes = |start: i32, n: usize| {
        i32::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .map(|end| start..end)
            .ok_or_else(|| NotationError::new("bucket indexes out of range"))
    };
    out.positive = indexes(offset, positive.len())?.zip(positive).collect();
    out.negative = indexes(n_offset, negative.len())?.zip(negative).collect();
    Ok(out)
}

/// Expands the series item at the start of `text` (a literal, `{{..}}xN`, `{{a}}+{{b}}xN`,
/// `{{a}}-{{b}}xN`); returns its values and the text after it.
pub fn expand_item(text: &str) -> Result<(Vec<FloatHistogram>, &str), NotationError> {
    let (first, rest) = take_literal(text)?;
    let first = parse_literal(first)?;
    let signed = match (rest.strip_prefix('+'), rest.strip_prefix('-')) {
        (Some(after), _) => Some((1.0, after)),
        (None, Some(after)) => Some((-1.0, after)),
        (None, None) => None,
    };
    let (step, sign, rest) = match signed {
        Some((sign, after)) => {
            let (step, rest) = take_literal(after)?;
            (Some(parse_literal(step)?), sign, rest)
        }
        None => (None, 1.0, rest),
    };
    let (times, rest) = match rest.strip_prefix('x') {
        Some(after) => {
            let digits = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            let (n, rest) = after.split_at(digits);
            let n: usize = n.parse().map_err(|_| {
                NotationError::new(format!("{n:?} after 'x' is not a whole number"))
            })?;
            if n > MAX_REPETITIONS {
                return Err(NotationError::new(format!(
                    "more than {MAX_REPETITIONS} repetitions"
                )));
            }
            (n, rest)
        }
        None if step.is_some() => {
            return Err(NotationError::new("`{{a}}+{{b}}` needs a count: `xN`"));
        }
        None => (0, rest),
    };
    let mut out = Vec::with_capacity(times + 1);
    let mut current = first;
    out.push(current.clone());
    for _ in 0..times {
        if let Some(s) = &step {
            if sign < 0.0 {
                current.sub(s);
            } else {
                current.add(s);
            }
            current.compact();
        }
        out.push(current.clone());
    }
    Ok((out, rest))
}

/// A whole series of histograms: items separated by spaces, `_` for a step without one.
pub fn expand(spec: &str) -> Result<Vec<Option<FloatHistogram>>, NotationError> {
    let mut out = Vec::new();
    let mut rest = spec.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('_') {
            out.push(None);
            rest = r.trim_start();
            continue;
        }
        let (values, r) = expand_item(rest)?;
        out.extend(values.into_iter().map(Some));
        rest = r.trim_start();
    }
    Ok(out)
}

/// The literal at the start of `text` and what follows it.
fn take_literal(text: &str) -> Result<(&str, &str), NotationError> {
    if !text.starts_with("{{") {
        return Err(NotationError::new(format!(
            "expected a histogram `{{{{...}}}}`, found {text:?}"
        )));
    }
    let end = text
        .find("}}")
        .map(|i| i + 2)
        .ok_or_else(|| NotationError::new("the histogram has no closing `}}`"))?;
    Ok(text.split_at(end))
}

fn number(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn numbers(list: &str) -> Option<Vec<f64>> {
    list.split_whitespace().map(number).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_read_every_key() {
        let h = parse_literal(
            "{{schema:1 count:9 sum:-3.5 z_bucket:2 z_bucket_w:0.001 buckets:[1 2] offset:-1 \
             n_buckets:[3 1] n_offset:2 counter_reset_hint:gauge}}",
        )
        .unwrap();
        assert_eq!(h.schema, 1);
        assert_eq!(
            (h.count, h.sum, h.zero_count, h.zero_threshold),
            (9.0, -3.5, 2.0, 0.001)
        );
        assert_eq!(h.positive, vec![(-1, 1.0), (0, 2.0)]);
        assert_eq!(h.negative, vec![(2, 3.0), (3, 1.0)]);
        assert_eq!(h.hint, CounterResetHint::Gauge);
        assert_eq!(parse_literal("{{}}").unwrap(), FloatHistogram::default());
    }

    #[test]
    fn series_items_repeat_add_and_subtract() {
        let s =
            expand("{{count:1 buckets:[1]}}+{{count:2 buckets:[2]}}x2 _ {{count:5}}x1").unwrap();
        let counts: Vec<Option<f64>> = s.iter().map(|h| h.as_ref().map(|h| h.count)).collect();
        assert_eq!(
            counts,
            [Some(1.0), Some(3.0), Some(5.0), None, Some(5.0), Some(5.0)]
        );
        assert_eq!(s[2].as_ref().unwrap().positive, vec![(0, 5.0)]);
        let down = expand("{{count:9}}-{{count:2}}x2").unwrap();
        assert_eq!(down.last().unwrap().as_ref().unwrap().count, 5.0);
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(
            parse_literal("{{count:x}}")
                .unwrap_err()
                .message
                .contains("count")
        );
        assert!(
            parse_literal("{{schema:9}}")
                .unwrap_err()
                .message
                .contains("schema")
        );
        assert!(
            parse_literal("{{colour:1}}")
                .unwrap_err()
                .message
                .contains("unknown")
        );
        assert!(
            parse_literal("{{buckets:[1 2}}")
                .unwrap_err()
                .message
                .contains("']'")
        );
        assert!(
            expand("{{count:1}")
                .unwrap_err()
                .message
                .contains("closing")
        );
        assert!(
            expand("{{count:1}}+{{count:1}}")
                .unwrap_err()
                .message
                .contains("xN")
        );
        assert!(
            expand("{{count:1}}x999999999")
                .unwrap_err()
                .message
                .contains("repetitions")
        );
    }
}
