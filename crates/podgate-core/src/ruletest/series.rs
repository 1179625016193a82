//! promtool's expanding notation for series values: `1 2 3`, `a+bxn`, `a-bxn`, `axn`,
//! `_` (no sample), `_xn`, `stale` (no sample: the series is absent from that scrape), and
//! native histograms as the test language writes them: `{{schema:0 count:4 sum:5
//! buckets:[1 2 1]}}`, `{{...}}xn`, `{{a}}+{{b}}xn`, `{{a}}-{{b}}xn`.

use crate::histogram::{FloatHistogram, notation};

/// One step's sample.
#[derive(Debug, Clone, PartialEq)]
pub enum StepValue {
    Float(f64),
    Histogram(FloatHistogram),
}

/// A values string that does not expand: the message names the value and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValuesError {
    pub message: String,
}

impl ValuesError {
    fn new(message: impl Into<String>) -> ValuesError {
        ValuesError {
            message: message.into(),
        }
    }
}

/// Expands a values string into one entry per step; `None` is a step without a sample.
pub fn expand(values: &str) -> Result<Vec<Option<StepValue>>, ValuesError> {
    let mut out = Vec::new();
    let mut rest = values.trim_start();
    let mut i = 0;
    while !rest.is_empty() {
        i += 1;
        if rest.starts_with("{{") {
            let (histograms, after) = notation::expand_item(rest)
                .map_err(|e| ValuesError::new(format!("value {i}: {e}")))?;
            out.extend(
                histograms
                    .into_iter()
                    .map(|h| Some(StepValue::Histogram(h))),
            );
            rest = after.trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        rest = after.trim_start();
        expand_float(i, token, &mut out)?;
    }
    Ok(out)
}

/// [`expand`] for values that must be numbers (`promql:` variables).
pub fn expand_floats(values: &str) -> Result<Vec<Option<f64>>, ValuesError> {
    expand(values)?
        .into_iter()
        .map(|v| match v {
            None => Ok(None),
            Some(StepValue::Float(f)) => Ok(Some(f)),
            Some(StepValue::Histogram(_)) => {
                Err(ValuesError::new("a histogram where a number is expected"))
            }
        })
        .collect()
}

/// Expands float token `i` into `out`.
fn expand_float(
    i: usize,
    token: &str,
    out: &mut Vec<Option<StepValue>>,
) -> Result<(), ValuesError> {
    let at = |msg: String| ValuesError::new(format!("value {i} ({token:?}): {msg}"));
    if token == "_" || token == "stale" {
        out.push(None);
        return Ok(());
    }
    let Some((head, count)) = token.rsplit_once('x') else {
        out.push(Some(StepValue::Float(number(token).map_err(at)?)));
        return Ok(());
    };
    let n: usize = count
        .parse()
        .map_err(|_| at(format!("{count:?} after 'x' is not a whole number")))?;
    if n > 100_000 {
        return Err(at("more than 100000 repetitions".into()));
    }
    if head == "_" {
        // promtool: `_xn` is n missing samples (not n+1).
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    // Split `a+b` / `a-b` at the sign that follows the first number (a may be negative,
    // and either may use an exponent like 1e-3).
    let (start, step) = split_start_step(head).map_err(at)?;
    for k in 0..=n {
        out.push(Some(StepValue::Float(start + step * k as f64)));
    }
    Ok(())
}

fn split_start_step(head: &str) -> Result<(f64, f64), String> {
    let bytes = head.as_bytes();
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        if (b == b'+' || b == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            let start = number(&head[..i])?;
            let step = number(&head[i + 1..])?;
            return Ok((start, if b == b'-' { -step } else { step }));
        }
    }
    Ok((number(head)?, 0.0))
}

fn number(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "Inf" | "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{s:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    fn expand(values: &str) -> Result<Vec<Option<f64>>, String> {
        expand_floats(values).map_err(|e| e.message)
    }

    #[test]
    fn promtool_examples() {
        assert_eq!(expand("-2+4x3").unwrap(), some(&[-2.0, 2.0, 6.0, 10.0]));
        assert_eq!(
            expand(" 1-2x4").unwrap(),
            some(&[1.0, -1.0, -3.0, -5.0, -7.0])
        );
        assert_eq!(expand("1 2 3").unwrap(), some(&[1.0, 2.0, 3.0]));
        assert_eq!(expand("5x2").unwrap(), some(&[5.0, 5.0, 5.0]));
        assert_eq!(
            expand("0+1x1 _ 7").unwrap(),
            vec![Some(0.0), Some(1.0), None, Some(7.0)]
        );
        assert_eq!(expand("_x3 1").unwrap(), vec![None, None, None, Some(1.0)]);
        assert_eq!(expand("1 stale").unwrap(), vec![Some(1.0), None]);
        assert_eq!(expand("1e-3+1e-3x1").unwrap(), some(&[0.001, 0.002]));
    }

    #[test]
    fn special_values() {
        let v = expand("NaN +Inf -Inf").unwrap();
        assert!(v[0].is_some_and(f64::is_nan));
        assert_eq!(v[1..], [Some(f64::INFINITY), Some(f64::NEG_INFINITY)]);
    }

    #[test]
    fn histograms_between_numbers() {
        let v = super::expand("1 {{count:2 buckets:[2]}}+{{count:1 buckets:[1]}}x1 _ 3").unwrap();
        let count = |i: usize| match &v[i] {
            Some(StepValue::Histogram(h)) => h.count,
            other => panic!("{other:?}"),
        };
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], Some(StepValue::Float(1.0)));
        assert_eq!((count(1), count(2)), (2.0, 3.0));
        assert_eq!(v[3..], [None, Some(StepValue::Float(3.0))]);
        let e = expand_floats("1 {{count:2}}").unwrap_err().message;
        assert!(e.contains("a histogram where a number"), "{e}");
        let e = super::expand("1 {{count:x}}").unwrap_err().message;
        assert!(e.starts_with("value 2: count"), "{e}");
    }

    #[test]
    fn errors_say_which_value() {
        let e = expand("1 2 abc").unwrap_err();
        assert!(e.starts_with("value 3 (\"abc\")"), "{e}");
        assert!(expand("1+1xq").unwrap_err().contains("not a whole number"));
        assert!(expand("1+1x999999999").unwrap_err().contains("repetitions"));
        assert!(expand("1+zx3").is_err());
    }
}
