//! The aggregates a `peers:` variable computes over its peers' values, as PromQL's
//! aggregation operators of the same names compute them.

use std::fmt;

/// How a `peers:` variable reduces its peers' values to one number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    /// `quantile(0.5)`.
    Median,
    Mean,
    Min,
    Max,
    /// Population standard deviation, as PromQL's `stddev`.
    Stddev,
    /// How many peers have a fresh value.
    Count,
    /// `quantile(q)`, `0 <= q <= 1`, interpolated as PromQL's `quantile`.
    Quantile(f64),
}

/// Why an aggregate does not parse: the message, and the character of the text it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateError {
    /// 0-based character index into the text.
    pub index: usize,
    pub message: String,
}

impl Aggregate {
    /// The names `aggregate:` accepts, for messages and suggestions.
    pub const NAMES: [&'static str; 7] = [
        "median", "mean", "min", "max", "stddev", "count", "quantile",
    ];

    /// `median`, `mean`, `min`, `max`, `stddev`, `count` or `quantile(q)` with `0 <= q <= 1`.
    pub fn parse(text: &str) -> Result<Aggregate, AggregateError> {
        let trimmed = text.trim();
        let lead = text.len() - text.trim_start().len();
        let simple = match trimmed {
            "median" => Some(Aggregate::Median),
            "mean" => Some(Aggregate::Mean),
            "min" => Some(Aggregate::Min),
            "max" => Some(Aggregate::Max),
            "stddev" => Some(Aggregate::Stddev),
            "count" => Some(Aggregate::Count),
            _ => None,
        };
        if let Some(a) = simple {
            return Ok(a);
        }
        let Some(rest) = trimmed.strip_prefix("quantile") else {
            let hint = crate::rules::names::did_you_mean(trimmed, &Self::NAMES);
            return Err(AggregateError {
                index: lead,
                message: format!(
                    "unknown aggregate {trimmed:?}{hint}; expected median, mean, min, max, \
                     stddev, count or quantile(q)"
                ),
            });
        };
        let open = lead + "quantile".len();
        let Some(inner) = rest
            .trim_start()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
        else {
            return Err(AggregateError {
                index: open,
                message: "quantile needs its q in parentheses, e.g. quantile(0.9)".to_string(),
            });
        };
        // Where q starts in `text`, in characters (the text before it is ASCII).
        let q_at =
            lead + trimmed.len() - 1 - inner.len() + (inner.len() - inner.trim_start().len());
        let q_text = inner.trim();
        match q_text.parse::<f64>() {
            Ok(q) if (0.0..=1.0).contains(&q) => Ok(Aggregate::Quantile(q)),
            Ok(q) => Err(AggregateError {
                index: char_index(text, q_at),
                message: format!(
                    "quantile {} is outside [0, 1]; e.g. quantile(0.9) is the 90th percentile",
                    crate::expr::format_value(q)
                ),
            }),
            Err(_) => Err(AggregateError {
                index: char_index(text, q_at),
                message: format!("{q_text:?} is not a number; write e.g. quantile(0.9)"),
            }),
        }
    }

    /// The aggregate of `values`, which holds no NaN. No values: NaN (no data), except `count`.
    pub fn apply(self, values: &[f64]) -> f64 {
        if self == Aggregate::Count {
            return values.len() as f64;
        }
        if values.is_empty() {
            return f64::NAN;
        }
        // Sorted first, so the result never depends on the order the values came in.
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        match self {
            Aggregate::Median => quantile(0.5, &sorted),
            Aggregate::Quantile(q) => quantile(q, &sorted),
            Aggregate::Mean => mean(&sorted),
            Aggregate::Min => sorted[0],
            Aggregate::Max => sorted[sorted.len() - 1],
            Aggregate::Stddev => {
                let m = mean(&sorted);
                let var =
                    sorted.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / sorted.len() as f64;
                var.sqrt()
            }
            Aggregate::Count => sorted.len() as f64,
        }
    }
}

fn char_index(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |s| s.chars().count())
}

fn mean(sorted: &[f64]) -> f64 {
    sorted.iter().sum::<f64>() / sorted.len() as f64
}

/// PromQL's `quantile`: the value at rank `q * (n - 1)` of the sorted values, linearly
/// interpolated between the two nearest ranks.
fn quantile(q: f64, sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = q * (n - 1) as f64;
    let lower = rank.floor().max(0.0);
    let weight = rank - rank.floor();
    let lo = (lower as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    sorted[lo] * (1.0 - weight) + sorted[hi] * weight
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregate::Median => f.write_str("median"),
            Aggregate::Mean => f.write_str("mean"),
            Aggregate::Min => f.write_str("min"),
            Aggregate::Max => f.write_str("max"),
            Aggregate::Stddev => f.write_str("stddev"),
            Aggregate::Count => f.write_str("count"),
            Aggregate::Quantile(q) => write!(f, "quantile({q})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Aggregate::Median.apply(&[3.0, 1.0, 2.0]), 2.0);
        // Even: the mean of the two middle values, as quantile(0.5) interpolates.
        assert_eq!(Aggregate::Median.apply(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(Aggregate::Median.apply(&[7.0]), 7.0);
    }

    #[test]
    fn quantile_interpolates_as_promql() {
        // PromQL: quantile(0.9, {1, 2, 3, 4, 5}) = rank 3.6 -> 4 + 0.6 * (5 - 4) = 4.6.
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert!(close(Aggregate::Quantile(0.9).apply(&v), 4.6));
        assert_eq!(Aggregate::Quantile(0.0).apply(&v), 1.0);
        assert_eq!(Aggregate::Quantile(1.0).apply(&v), 5.0);
        assert!(close(Aggregate::Quantile(0.25).apply(&[10.0, 20.0]), 12.5));
        assert_eq!(Aggregate::Quantile(0.3).apply(&[8.0]), 8.0);
    }

    #[test]
    fn stddev_is_the_population_one() {
        // {2, 4, 4, 4, 5, 5, 7, 9}: population stddev 2 (sample stddev would be 2.138...).
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(Aggregate::Stddev.apply(&v), 2.0));
        assert_eq!(Aggregate::Stddev.apply(&[3.0]), 0.0);
        assert!(close(Aggregate::Mean.apply(&v), 5.0));
    }

    #[test]
    fn min_max_count_and_empty() {
        let v = [0.5, -1.0, 2.0];
        assert_eq!(Aggregate::Min.apply(&v), -1.0);
        assert_eq!(Aggregate::Max.apply(&v), 2.0);
        assert_eq!(Aggregate::Count.apply(&v), 3.0);
        assert_eq!(Aggregate::Count.apply(&[]), 0.0);
        for a in [
            Aggregate::Median,
            Aggregate::Mean,
            Aggregate::Min,
            Aggregate::Max,
            Aggregate::Stddev,
            Aggregate::Quantile(0.9),
        ] {
            assert!(a.apply(&[]).is_nan(), "{a} of nothing is no data");
        }
    }

    #[test]
    fn the_order_of_the_values_does_not_matter() {
        let a = [0.1, 0.7, 0.2, 1e-9, 3.3, 0.3];
        let mut b = a;
        b.reverse();
        for agg in [
            Aggregate::Mean,
            Aggregate::Stddev,
            Aggregate::Quantile(0.37),
        ] {
            assert_eq!(agg.apply(&a).to_bits(), agg.apply(&b).to_bits(), "{agg}");
        }
    }

    #[test]
    fn parses_every_name_and_quantile() {
        for (text, want) in [
            ("median", Aggregate::Median),
            ("mean", Aggregate::Mean),
            (" min ", Aggregate::Min),
            ("max", Aggregate::Max),
            ("stddev", Aggregate::Stddev),
            ("count", Aggregate::Count),
            ("quantile(0.9)", Aggregate::Quantile(0.9)),
            ("quantile( 1 )", Aggregate::Quantile(1.0)),
            ("quantile (0)", Aggregate::Quantile(0.0)),
        ] {
            assert_eq!(Aggregate::parse(text), Ok(want), "{text}");
        }
        assert_eq!(Aggregate::Quantile(0.9).to_string(), "quantile(0.9)");
    }

    #[test]
    fn bad_aggregates_say_what_and_where() {
        let e = Aggregate::parse("meidan").expect_err("unknown");
        assert!(
            e.message.contains("did you mean \"median\""),
            "{}",
            e.message
        );
        assert_eq!(e.index, 0);
        let e = Aggregate::parse("quantile(1.5)").expect_err("out of range");
        assert!(e.message.contains("outside [0, 1]"), "{}", e.message);
        assert_eq!(e.index, 9, "points at the 1.5");
        let e = Aggregate::parse("quantile( -0.1)").expect_err("negative");
        assert_eq!(e.index, 10);
        let e = Aggregate::parse("quantile(x)").expect_err("not a number");
        assert!(e.message.contains("not a number"), "{}", e.message);
        let e = Aggregate::parse("quantile").expect_err("no q");
        assert!(e.message.contains("parentheses"), "{}", e.message);
        assert!(Aggregate::parse("quantile(NaN)").is_err());
    }
}
