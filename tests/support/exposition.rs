//! Reading ground truth about exposition bodies: values as the Prometheus HTTP API prints
//! them, compared bit for bit with NaN in one canonical form.

/// `v` as bits for comparing and sorting samples: every NaN is the same NaN here.
pub fn value_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// A value as the Prometheus API prints it: "NaN", "+Inf", "-Inf" or a decimal.
pub fn api_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|e| panic!("expected value {other:?}: {e}")),
    }
}
