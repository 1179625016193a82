//! Duration values in rule files: `10s`, `1m30s`, `500ms`, `1.5s`, `1h`, `0s`.
//!
//! The syntax is Go's `time.ParseDuration` (what Kubernetes users already write) without a
//! sign: one or more `<number><unit>` terms, where the number may have a fraction and the unit
//! is one of `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. A bare `0` is accepted; any other bare
//! number is rejected with a hint to add a unit. Values are capped at [`MAX_DURATION`] so that
//! the rest of podgate can add them to clocks without overflow.

use std::time::Duration;

/// The longest duration a rule may hold: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3600 * 1_000_000_000),
];

/// A duration that does not parse: the message is a complete sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DurationError {
    pub message: String,
}

impl DurationError {
    fn new(message: impl Into<String>) -> DurationError {
        DurationError {
            message: message.into(),
        }
    }
}

/// Parses a duration string.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::new(
            "empty duration; write e.g. 10s, 1m30s or 500ms",
        ));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(DurationError::new(format!(
            "duration {text:?} is negative; durations must be >= 0"
        )));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(DurationError::new(format!(
            "duration {text:?} has no unit; add one, e.g. {s}s (units: ns, us, ms, s, m, h)"
        )));
    }

    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        // Number: digits, optionally '.', optionally more digits; at least one digit.
        let num_len = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(DurationError::new(format!(
                "invalid duration {text:?}: expected a number before {after:?} \
                 (write e.g. 10s, 1m30s or 500ms)"
            )));
        }
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
            return Err(DurationError::new(format!(
                "invalid duration {text:?}: bad number {num:?}"
            )));
        }
        let unit_len = after
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit() || c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::new(format!(
                "duration {text:?} has no unit after {num:?}; add one, e.g. {num}s \
                 (units: ns, us, ms, s, m, h)"
            )));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            let hint = match unit {
                "d" => " (write days as hours: 1d = 24h)",
                "w" => " (write weeks as hours: 1w = 168h)",
                "y" => " (write years as hours: 1y = 8760h)",
                _ => "",
            };
            return Err(DurationError::new(format!(
                "invalid duration {text:?}: unknown unit {unit:?}{hint}; \
                 units are ns, us, ms, s, m, h"
            )));
        };
        total = total.saturating_add(term_nanos(int_part, frac_part, scale));
        rest = next;
    }

    let max = MAX_DURATION.as_nanos();
    if total > max {
        return Err(DurationError::new(format!(
            "duration {text:?} is too long; the maximum is 8760h (365 days)"
        )));
    }
    // `total <= max` fits in u64 nanoseconds.
    let nanos = u64::try_from(total).unwrap_or(u64::MAX);
    Ok(Duration::from_nanos(nanos))
}

/// Nanoseconds of one `<int>.<frac><unit>` term, saturating on absurd inputs (the caller
/// rejects anything above the cap). Fractions below a nanosecond are truncated, as Go does.
fn term_nanos(int_part: &str, frac_part: &str, scale: u128) -> u128 {
    let mut int_val: u128 = 0;
    for d in int_part.bytes() {
        int_val = int_val
            .saturating_mul(10)
            .saturating_add(u128::from(d - b'0'));
    }
    let mut nanos = int_val.saturating_mul(scale);
    // 18 fraction digits are more than nanosecond resolution needs for an hour, and keep
    // `frac_val * scale` far below u128::MAX.
    let mut frac_val: u128 = 0;
    let mut frac_div: u128 = 1;
    for d in frac_part.bytes().take(18) {
        frac_val = frac_val * 10 + u128::from(d - b'0');
        frac_div *= 10;
    }
    if frac_val > 0 {
        nanos = nanos.saturating_add(frac_val.saturating_mul(scale) / frac_div);
    }
    nanos
}

/// Formats a duration the way users write it (`1m30s`, `500ms`, `0s`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let total_ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) || total_ms == 0 {
        // Sub-millisecond precision: fall back to Rust's exact debug form.
        return format!("{d:?}");
    }
    if total_ms < 1000 {
        return format!("{total_ms}ms");
    }
    let mut out = String::new();
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let ms = d.subsec_millis();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || ms > 0 {
        if ms > 0 {
            let frac = format!("{ms:03}");
            out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match parse_duration(s) {
            Ok(d) => panic!("{s:?} should fail, got {d:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(
            ok("2h45m10.25s"),
            Duration::from_millis((2 * 3600 + 45 * 60 + 10) * 1000 + 250)
        );
        assert_eq!(ok("250us"), Duration::from_micros(250));
        assert_eq!(ok("250µs"), Duration::from_micros(250));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("8760h"), MAX_DURATION);
    }

    #[test]
    fn bare_number_asks_for_a_unit() {
        let e = err("10");
        assert!(e.contains("no unit") && e.contains("10s"), "{e}");
        assert!(err("1.5").contains("no unit"));
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(err("").contains("empty"));
        assert!(err("-5s").contains("negative"));
        assert!(err("1d").contains("24h"));
        assert!(err("10x").contains("unknown unit"));
        assert!(err("s").contains("expected a number"));
        assert!(err("1.2.3s").contains("bad number"));
        assert!(err("1 s").contains("unknown unit"));
        assert!(err("8760h1ns").contains("too long"));
        assert!(err("99999999999999999999999999999999999999999h").contains("too long"));
        assert!(err("10s5").contains("no unit"));
        assert!(err(".s").contains("bad number"));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["0s", "500ms", "10s", "1m30s", "1h", "1.5s", "2h0m1s"] {
            let d = ok(s);
            assert_eq!(ok(&format_duration(d)), d, "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }
}
