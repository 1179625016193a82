//! The PromQL functions a scrape query may call, their argument types, and the ones it
//! refuses, each with the nearest supported form.

use super::types::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Rate,
    Increase,
    Irate,
    Delta,
    Idelta,
    Deriv,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    Clamp,
    ClampMin,
    ClampMax,
    Abs,
    Ceil,
    Floor,
    Round,
    Sqrt,
    Exp,
    Ln,
    Vector,
    Scalar,
    Time,
    HistogramQuantile,
    HistogramFraction,
    HistogramCount,
    HistogramSum,
    HistogramAvg,
    HistogramStddev,
    HistogramStdvar,
}

const FUNCS: &[(&str, Func)] = &[
    ("rate", Func::Rate),
    ("increase", Func::Increase),
    ("irate", Func::Irate),
    ("delta", Func::Delta),
    ("idelta", Func::Idelta),
    ("deriv", Func::Deriv),
    ("avg_over_time", Func::AvgOverTime),
    ("min_over_time", Func::MinOverTime),
    ("max_over_time", Func::MaxOverTime),
    ("sum_over_time", Func::SumOverTime),
    ("count_over_time", Func::CountOverTime),
    ("last_over_time", Func::LastOverTime),
    ("clamp", Func::Clamp),
    ("clamp_min", Func::ClampMin),
    ("clamp_max", Func::ClampMax),
    ("abs", Func::Abs),
    ("ceil", Func::Ceil),
    ("floor", Func::Floor),
    ("round", Func::Round),
    ("sqrt", Func::Sqrt),
    ("exp", Func::Exp),
    ("ln", Func::Ln),
    ("vector", Func::Vector),
    ("scalar", Func::Scalar),
    ("time", Func::Time),
    ("histogram_quantile", Func::HistogramQuantile),
    ("histogram_fraction", Func::HistogramFraction),
    ("histogram_count", Func::HistogramCount),
    ("histogram_sum", Func::HistogramSum),
    ("histogram_avg", Func::HistogramAvg),
    ("histogram_stddev", Func::HistogramStddev),
    ("histogram_stdvar", Func::HistogramStdvar),
];

impl Func {
    pub fn from_name(name: &str) -> Option<Func> {
        FUNCS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        FUNCS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// Argument types; the arguments after `required()` may be left out.
    pub fn params(self) -> &'static [Type] {
        use Type::*;
        match self {
            Func::Rate
            | Func::Increase
            | Func::Irate
            | Func::Delta
            | Func::Idelta
            | Func::Deriv
            | Func::AvgOverTime
            | Func::MinOverTime
            | Func::MaxOverTime
            | Func::SumOverTime
            | Func::CountOverTime
            | Func::LastOverTime => &[Matrix],
            Func::Clamp => &[Vector, Scalar, Scalar],
            Func::ClampMin | Func::ClampMax | Func::Round => &[Vector, Scalar],
            Func::Abs | Func::Ceil | Func::Floor | Func::Sqrt | Func::Exp | Func::Ln => &[Vector],
            Func::Vector => &[Scalar],
            Func::Scalar => &[Vector],
            Func::Time => &[],
            Func::HistogramQuantile => &[Scalar, Vector],
            Func::HistogramFraction => &[Scalar, Scalar, Vector],
            Func::HistogramCount
            | Func::HistogramSum
            | Func::HistogramAvg
            | Func::HistogramStddev
            | Func::HistogramStdvar => &[Vector],
        }
    }

    /// How many arguments must be given.
    pub fn required(self) -> usize {
        match self {
            Func::Round => 1,
            f => f.params().len(),
        }
    }

    pub fn returns(self) -> Type {
        match self {
            Func::Scalar | Func::Time => Type::Scalar,
            _ => Type::Vector,
        }
    }

    /// Points a range function needs in its window to yield a value.
    pub fn min_points(self) -> usize {
        match self {
            Func::Rate
            | Func::Increase
            | Func::Irate
            | Func::Delta
            | Func::Idelta
            | Func::Deriv => 2,
            _ => 1,
        }
    }

    /// Whether the result keeps the metric name (as Prometheus's `last_over_time` does).
    pub fn keeps_name(self) -> bool {
        matches!(self, Func::LastOverTime)
    }
}

/// The supported functions, for messages.
pub(crate) fn supported_list() -> String {
    let names: Vec<&str> = FUNCS.iter().map(|(n, _)| *n).collect();
    names.join(", ")
}

/// PromQL functions and aggregations outside the scrape language, with the nearest form it
/// has.
const REFUSED: &[(&[&str], &str)] = &[
    (
        &["histogram_quantiles"],
        "a scrape variable is one number: one histogram_quantile(0.9, x) per quantile",
    ),
    (
        &["label_replace", "label_join"],
        "labels cannot be rewritten in a scrape query; select series with matchers, e.g. \
         x{path=~\"/api/.*\"}, and aggregate with sum by (...)",
    ),
    (
        &[
            "predict_linear",
            "holt_winters",
            "double_exponential_smoothing",
        ],
        "use deriv(x[5m]) for the trend per second and compute the prediction in `expr`",
    ),
    (
        &["absent", "absent_over_time"],
        "a missing series already gives no data; test it in `expr` with isnan(var)",
    ),
    (
        &[
            "quantile_over_time",
            "stddev_over_time",
            "stdvar_over_time",
            "mad_over_time",
            "present_over_time",
            "first_over_time",
            "ts_of_max_over_time",
            "ts_of_min_over_time",
            "ts_of_first_over_time",
            "ts_of_last_over_time",
        ],
        "use avg_over_time, min_over_time, max_over_time, sum_over_time, count_over_time or \
         last_over_time",
    ),
    (
        &["changes", "resets"],
        "use increase(x[5m]) for a counter or delta(x[5m]) for a gauge",
    ),
    (
        &["timestamp", "start_timestamp"],
        "samples carry podgate's scrape time, not a timestamp of their own; use time()",
    ),
    (
        &["sort", "sort_desc", "sort_by_label", "sort_by_label_desc"],
        "order does not matter for one number: leave sort(...) out",
    ),
    (
        &[
            "log2", "log10", "sgn", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
            "tanh", "asinh", "acosh", "atanh", "deg", "rad", "pi",
        ],
        "compute it in `expr` (math::log2, math::log10, math::sin, ...) from a variable, or use \
         abs, ceil, floor, round, sqrt, exp, ln here",
    ),
    (
        &[
            "day_of_month",
            "day_of_week",
            "day_of_year",
            "days_in_month",
            "hour",
            "minute",
            "month",
            "year",
        ],
        "calendar functions do not describe a pod's health; use time() if you need the time",
    ),
    (
        &["count_values", "limitk", "limit_ratio"],
        "use count, topk or bottomk",
    ),
    (&["info"], "select the info series with matchers instead"),
    (&["integral"], "use sum_over_time or increase"),
];

/// The nearest supported form for a PromQL function or aggregation podgate does not run.
pub(crate) fn refused(name: &str) -> Option<&'static str> {
    REFUSED
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, hint)| *hint)
}
