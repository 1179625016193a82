//! Sample values: parsing with the rules of Prometheus (Go's `strconv.ParseFloat` minus hex
//! floats and digit separators) and printing the way the Prometheus HTTP API does.

use std::fmt;

/// Why a value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatError {
    /// Not a number in any accepted spelling.
    Syntax,
    /// Contains `p`, `P` or `_`: hex floats and digit separators are refused by Prometheus.
    Unsupported,
    /// Well formed, but beyond the range of f64.
    Range,
}

impl FloatError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FloatError::Syntax => "is not a number",
            FloatError::Unsupported => {
                "is not a number (hex floats and '_' digit separators are not accepted)"
            }
            FloatError::Range => "is out of the range of a 64-bit float",
        }
    }
}

/// Parses a sample value, an OpenMetrics timestamp or an exemplar value.
///
/// Accepts exactly what Prometheus accepts: decimal numbers with optional sign, fraction and
/// exponent (`1`, `-1.5`, `.5`, `1.`, `1e-3`), `Inf`/`Infinity` in any case with optional
/// sign, and `NaN` in any case without sign. Out-of-range numbers such as `1e400` are errors,
/// as they are for Go's parser.
pub(crate) fn parse_value(s: &str) -> Result<f64, FloatError> {
    let b = s.as_bytes();
    // Fast path: most exposed values are small unsigned integers, exact in an f64.
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let v = b
            .iter()
            .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
        // At most 15 digits, so below 2^53 and exact.
        return Ok(v as f64);
    }
    if b.iter().any(|&c| matches!(c, b'p' | b'P' | b'_')) {
        return Err(FloatError::Unsupported);
    }
    let (negative, unsigned) = match b.first() {
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Go accepts NaN only unsigned.
    if unsigned.len() == s.len() && s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    // What remains must be a plain decimal. On this alphabet Rust's grammar is Go's grammar
    // (sign, digits, one dot, e/E exponent with sign), and both round correctly.
    if !b
        .iter()
        .all(|&c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(FloatError::Syntax);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err(FloatError::Range),
        Ok(v) => Ok(v),
        Err(_) => Err(FloatError::Syntax),
    }
}

/// A value printed as the Prometheus HTTP API prints it: `NaN`, `+Inf`, `-Inf`, otherwise
/// the shortest decimal that reads back to the same f64, never in exponent form
/// (Go's `strconv.FormatFloat(v, 'f', -1, 64)`). The text parser reads every such string
/// back to the same value.
#[derive(Debug, Clone, Copy)]
pub struct PromValue(pub f64);

impl fmt::Display for PromValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v == f64::INFINITY {
            f.write_str("+Inf")
        } else if v == f64::NEG_INFINITY {
            f.write_str("-Inf")
        } else {
            // Rust's Display for f64 is the shortest round-trip form without exponent.
            write!(f, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> f64 {
        match parse_value(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} should parse, got {e:?}"),
        }
    }

    #[test]
    fn plain_numbers() {
        assert_eq!(ok("0"), 0.0);
        assert_eq!(ok("1042"), 1042.0);
        assert_eq!(ok("1042.0"), 1042.0);
        assert_eq!(ok("-1.5"), -1.5);
        assert_eq!(ok("+1.5"), 1.5);
        assert_eq!(ok(".5"), 0.5);
        assert_eq!(ok("1."), 1.0);
        assert_eq!(ok("1.e2"), 100.0);
        assert_eq!(ok("1.44565e+06"), 1_445_650.0);
        assert_eq!(ok("7.424100000000001e-05"), 7.424100000000001e-05);
        assert_eq!(ok("1E3"), 1000.0);
        assert_eq!(ok("0001"), 1.0);
        assert_eq!(ok("123456789012345"), 123_456_789_012_345.0);
        // Past the integer fast path: correctly rounded by the general path.
        assert_eq!(ok("9007199254740993"), 9_007_199_254_740_992.0);
        assert_eq!(
            ok("1e-400"),
            0.0,
            "underflow is zero, not an error, as in Go"
        );
        assert!(ok("-0").is_sign_negative());
    }

    #[test]
    fn special_values_in_every_spelling_go_accepts() {
        for s in [
            "Inf",
            "+Inf",
            "inf",
            "INF",
            "+inf",
            "Infinity",
            "+infinity",
            "INFINITY",
        ] {
            assert_eq!(ok(s), f64::INFINITY, "{s}");
        }
        for s in ["-Inf", "-inf", "-Infinity", "-INFINITY"] {
            assert_eq!(ok(s), f64::NEG_INFINITY, "{s}");
        }
        for s in ["NaN", "nan", "NAN", "nAn"] {
            assert!(ok(s).is_nan(), "{s}");
        }
    }

    #[test]
    fn spellings_go_refuses() {
        for s in [
            "",
            "+",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "--1",
            "+-1",
            "1..2",
            "1.2.3",
            "+NaN",
            "-NaN",
            "infin",
            "infinityy",
            "in",
            "na",
            "nann",
            "true",
            "1,5",
            " 1",
            "1 ",
            "0x10",
            "1a",
            "1\r",
            "١",
        ] {
            assert_eq!(parse_value(s), Err(FloatError::Syntax), "{s:?}");
        }
        for s in ["0x1p-3", "0x1P-3", "1_000", "1_2"] {
            assert_eq!(parse_value(s), Err(FloatError::Unsupported), "{s:?}");
        }
        for s in ["1e400", "-1e400", "1e99999999999"] {
            assert_eq!(parse_value(s), Err(FloatError::Range), "{s:?}");
        }
    }

    #[test]
    fn printing_matches_the_prometheus_api() {
        let p = |v: f64| PromValue(v).to_string();
        assert_eq!(p(f64::NAN), "NaN");
        assert_eq!(p(f64::INFINITY), "+Inf");
        assert_eq!(p(f64::NEG_INFINITY), "-Inf");
        assert_eq!(p(1042.0), "1042");
        assert_eq!(p(1.445_65e6), "1445650");
        assert_eq!(p(1_795_256_890.825_342_2), "1795256890.8253422");
        assert_eq!(p(0.002462486), "0.002462486");
        assert_eq!(p(1e21), "1000000000000000000000");
        assert_eq!(p(1e-7), "0.0000001");
        assert_eq!(p(-0.0), "-0");
    }

    #[test]
    fn printed_values_parse_back_exactly() {
        for v in [
            0.1,
            1.0 / 3.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -2.5e-300,
            123_456_789.125,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let back = ok(&PromValue(v).to_string());
            assert_eq!(back.to_bits(), v.to_bits(), "{v:e}");
        }
        assert!(ok(&PromValue(f64::NAN).to_string()).is_nan());
    }
}
