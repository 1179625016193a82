//! How a native histogram is shown: the bucket list of the Prometheus HTTP API and a
//! one-line text form like Prometheus's `FloatHistogram.String()`.

use std::fmt;

use super::FloatHistogram;
use crate::exposition::PromValue;

/// One populated bucket as the Prometheus API lists it: `[boundaries, lower, upper, count]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiBucket {
    /// 0: `(lower, upper]`, 1: `[lower, upper)`, 2: `(lower, upper)`, 3: `[lower, upper]`.
    pub boundaries: u8,
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
}

impl FloatHistogram {
    /// The populated buckets from the lowest value up, with the bounds and boundary rule the
    /// Prometheus API prints (`"histogram": {"count", "sum", "buckets"}`).
    pub fn api_buckets(&self) -> Vec<ApiBucket> {
        self.buckets_ascending()
            .filter(|b| b.count != 0.0)
            .map(|b| {
                let (lower_inclusive, upper_inclusive) = (b.lower < 0.0, b.upper > 0.0);
                let boundaries = match (lower_inclusive, upper_inclusive) {
                    (false, true) => 0,
                    (true, false) => 1,
                    (false, false) => 2,
                    (true, true) => 3,
                };
                ApiBucket {
                    boundaries,
                    lower: b.lower,
                    upper: b.upper,
                    count: b.count,
                }
            })
            .collect()
    }

    /// The histogram as the Prometheus API's JSON `histogram` object (values as strings).
    pub fn api_json(&self) -> serde_json::Value {
        let s = |v: f64| serde_json::Value::String(PromValue(v).to_string());
        let buckets: Vec<serde_json::Value> = self
            .api_buckets()
            .iter()
            .map(|b| serde_json::json!([b.boundaries, s(b.lower), s(b.upper), s(b.count)]))
            .collect();
        serde_json::json!({"count": s(self.count), "sum": s(self.sum), "buckets": buckets})
    }
}

/// `{count:6, sum:7.5, [-2,-1):1, [-0.001,0.001]:1, (0.5,1]:2}`: the populated buckets in
/// value order, as Prometheus writes a histogram in messages.
impl fmt::Display for FloatHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{count:{}, sum:{}",
            PromValue(self.count),
            PromValue(self.sum)
        )?;
        for b in self.api_buckets() {
            let (open, close) = match b.boundaries {
                0 => ('(', ']'),
                1 => ('[', ')'),
                2 => ('(', ')'),
                _ => ('[', ']'),
            };
            write!(
                f,
                ", {open}{},{}{close}:{}",
                PromValue(b.lower),
                PromValue(b.upper),
                PromValue(b.count)
            )?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_with_bounds_and_boundary_rules_in_value_order() {
        let h = FloatHistogram {
            zero_threshold: 0.001,
            zero_count: 1.0,
            count: 6.0,
            sum: 7.5,
            positive: vec![(0, 2.0), (1, 0.0), (3, 1.0)],
            negative: vec![(1, 1.0)],
            ..FloatHistogram::default()
        };
        assert_eq!(
            h.to_string(),
            "{count:6, sum:7.5, [-2,-1):1, [-0.001,0.001]:1, (0.5,1]:2, (4,8]:1}"
        );
        assert_eq!(
            h.api_json(),
            serde_json::json!({"count": "6", "sum": "7.5", "buckets": [
                [1, "-2", "-1", "1"],
                [3, "-0.001", "0.001", "1"],
                [0, "0.5", "1", "2"],
                [0, "4", "8", "1"],
            ]})
        );
    }
}
