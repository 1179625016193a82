//! `le` and `quantile` label values in the OpenMetrics float form Prometheus 3 stores them in
//! (`normalizeFloatsInLabelValues` in its `model/textparse`): read with Go's
//! `strconv.ParseFloat`, written with `labels.FormatOpenMetricsFloat`. `le="1"` is stored as
//! `le="1.0"`, `le="1000000"` as `le="1e+06"`; a value that is not a number stays as written.

use std::fmt::{self, Write as _};

use super::float::{FloatError, parse_value};

/// Go's `strconv.ParseFloat(s, 64)`, all of it: what [`parse_value`] accepts, plus hex floats
/// (`0x1.8p1`) and `_` digit separators where Go allows them (`1_000`, `0x_1p0`). `None`
/// where Go returns an error, out-of-range numbers included. Prometheus 3 reads `le` and
/// `quantile` label values with it (to rewrite them in OpenMetrics form), not sample values.
fn parse_go_float(s: &str) -> Option<f64> {
    match parse_value(s) {
        Ok(v) => return Some(v),
        Err(FloatError::Range) => return None,
        // Only hex floats and separators remain to look at.
        Err(FloatError::Syntax) if !s.contains(['x', 'X']) => return None,
        Err(_) => {}
    }
    let number = GoNumber::read(s)?;
    if number.hex {
        hex_float(&number)
    } else {
        // Same digits without separators, with the exponent Go computed: Rust's parser then
        // rounds as Go's does (both correctly).
        let mut clean: String = s
            .bytes()
            .take(number.mantissa_end)
            .filter(|&c| c != b'_')
            .map(char::from)
            .collect();
        clean.push_str(&format!("e{}", number.exp10));
        match clean.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => None,
        }
    }
}

/// The pieces of a number as Go's `readFloat` (strconv/atof.go) scans them.
struct GoNumber {
    negative: bool,
    hex: bool,
    /// Hex: the first 16 significant digits; `truncated` when nonzero digits followed.
    mantissa: u64,
    truncated: bool,
    /// Hex: the binary exponent of `mantissa`'s last bit.
    exp2: i64,
    /// Decimal: where the mantissa ends and the exponent written after it (clamped as Go
    /// clamps it).
    mantissa_end: usize,
    exp10: i64,
}

impl GoNumber {
    fn read(s: &str) -> Option<GoNumber> {
        let b = s.as_bytes();
        let at = |i: usize| b.get(i).copied().map(|c| c.to_ascii_lowercase());
        let mut i = 0;
        let negative = at(0) == Some(b'-');
        if matches!(at(0), Some(b'+' | b'-')) {
            i = 1;
        }
        let hex = i + 2 < b.len() && at(i) == Some(b'0') && at(i + 1) == Some(b'x');
        if hex {
            i += 2;
        }
        let (base, max_digits): (u64, u32) = if hex { (16, 16) } else { (10, 19) };
        let (mut separators, mut saw_dot, mut saw_digits) = (false, false, false);
        let (mut nd, mut nd_mant, mut dp) = (0i64, 0i64, 0i64);
        let (mut mantissa, mut truncated) = (0u64, false);
        while let Some(c) = at(i) {
            let digit = match c {
                b'_' => {
                    separators = true;
                    i += 1;
                    continue;
                }
                b'.' if saw_dot => break,
                b'.' => {
                    saw_dot = true;
                    dp = nd;
                    i += 1;
                    continue;
                }
                b'0'..=b'9' => u64::from(c - b'0'),
                b'a'..=b'f' if hex => u64::from(c - b'a' + 10),
                _ => break,
            };
            saw_digits = true;
            i += 1;
            if digit == 0 && nd == 0 {
                // Leading zeros.
                dp -= 1;
                continue;
            }
            nd += 1;
            if nd_mant < i64::from(max_digits) {
                mantissa = mantissa * base + digit;
                nd_mant += 1;
            } else if digit != 0 {
                truncated = true;
            }
        }
        if !saw_digits {
            return None;
        }
        if !saw_dot {
            dp = nd;
        }
        if hex {
            dp *= 4;
            nd_mant *= 4;
        }
        let mantissa_end = i;
        let exp_char = if hex { b'p' } else { b'e' };
        let mut written_exp = 0i64;
        if at(i) == Some(exp_char) {
            i += 1;
            let sign = match at(i) {
                Some(b'+') => {
                    i += 1;
                    1
                }
                Some(b'-') => {
                    i += 1;
                    -1
                }
                _ => 1,
            };
            if !at(i).is_some_and(|c| c.is_ascii_digit()) {
                return None;
            }
            let mut e = 0i64;
            while let Some(c) = at(i) {
                match c {
                    b'_' => separators = true,
                    b'0'..=b'9' if e < 10_000 => e = e * 10 + i64::from(c - b'0'),
                    b'0'..=b'9' => {}
                    _ => break,
                }
                i += 1;
            }
            written_exp = sign * e;
        } else if hex {
            // A hex mantissa needs its 'p' exponent.
            return None;
        }
        if i != b.len() || (separators && !separators_ok(s)) {
            return None;
        }
        Some(GoNumber {
            negative,
            hex,
            mantissa,
            truncated,
            exp2: if mantissa == 0 {
                0
            } else {
                dp + written_exp - nd_mant
            },
            mantissa_end,
            exp10: written_exp,
        })
    }
}

/// Go's `underscoreOK`: a `_` only between digits, or between the base prefix and a digit.
fn separators_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    // The last character class: '^' start, '0' digit or prefix, '_', '!' anything else.
    let mut saw = b'^';
    let mut hex = false;
    if b.get(i) == Some(&b'0')
        && b.get(i + 1)
            .is_some_and(|c| matches!(c.to_ascii_lowercase(), b'b' | b'o' | b'x'))
    {
        hex = b.get(i + 1).is_some_and(|c| c.eq_ignore_ascii_case(&b'x'));
        i += 2;
        saw = b'0';
    }
    for &c in b.get(i..).unwrap_or_default() {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Go's `atofHex`: the f64 nearest to `mantissa * 2^exp2` (ties to even), or `None` when
/// it overflows.
fn hex_float(n: &GoNumber) -> Option<f64> {
    const MANT_BITS: i64 = 52;
    const BIAS: i64 = -1023;
    const MAX_EXP: i64 = 1023;
    const MIN_EXP: i64 = -1022;
    let mut mantissa = n.mantissa;
    let mut exp = n.exp2 + MANT_BITS;
    // A leading 1 followed by 52 bits, and two more bits for rounding (the last one sticky).
    while mantissa != 0 && mantissa >> (MANT_BITS + 2) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if n.truncated {
        mantissa |= 1;
    }
    while mantissa >> (1 + MANT_BITS + 2) != 0 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    // Denormalize a number too small for a normal exponent.
    while mantissa > 1 && exp < MIN_EXP - 2 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1;
    exp += 2;
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (1 + MANT_BITS) {
            mantissa >>= 1;
            exp += 1;
        }
    }
    if mantissa >> MANT_BITS == 0 {
        exp = BIAS;
    }
    if exp > MAX_EXP {
        return None;
    }
    let mut bits = mantissa & ((1 << MANT_BITS) - 1);
    bits |= (((exp - BIAS) & 0x7ff) as u64) << MANT_BITS;
    if n.negative {
        bits |= 1 << 63;
    }
    Some(f64::from_bits(bits))
}

/// Writes `v` as Prometheus 3 writes `le` and `quantile` label values (its
/// `labels.FormatOpenMetricsFloat`): Go's shortest `%g` form (`0.005`, `1e+06`, `1e-05`),
/// with `.0` added when that has neither a `.` nor an exponent (`1.0`, `100000.0`); `0.0`
/// for both zeros; `NaN`, `+Inf`, `-Inf`.
fn write_openmetrics_float(out: &mut impl fmt::Write, v: f64) -> fmt::Result {
    if v.is_nan() {
        return out.write_str("NaN");
    }
    if v.is_infinite() {
        return out.write_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    }
    if v == 0.0 {
        return out.write_str("0.0");
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Go's shortest formatting does:
    // `d[.ddd]e<exp>`.
    let mut sci = ArrayString::<32>::default();
    write!(sci, "{:e}", v.abs())?;
    let (mantissa, exp) = sci.as_str().split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = ArrayString::<32>::from_filtered(mantissa, |c| c != '.');
    let digits = digits.as_str();
    if v < 0.0 {
        out.write_str("-")?;
    }
    // Go's %g with the shortest precision uses the exponent form when the exponent is below
    // -4 or at least 6 (the "precision" it compares with is 6 for shortest output).
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        out.write_str(first)?;
        if !rest.is_empty() {
            write!(out, ".{rest}")?;
        }
        let sign = if exp < 0 { '-' } else { '+' };
        return write!(out, "e{sign}{:02}", exp.unsigned_abs());
    }
    if exp < 0 {
        out.write_str("0.")?;
        for _ in 0..(-exp - 1) {
            out.write_str("0")?;
        }
        return out.write_str(digits);
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        out.write_str(digits)?;
        for _ in digits.len()..int_len {
            out.write_str("0")?;
        }
        // No '.' and no exponent: OpenMetrics wants the '.0'.
        out.write_str(".0")
    } else {
        let (int, frac) = digits.split_at(int_len);
        write!(out, "{int}.{frac}")
    }
}

/// A string on the stack for formatting a number without allocating.
struct ArrayString<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for ArrayString<N> {
    fn default() -> Self {
        ArrayString {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> ArrayString<N> {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so this is UTF-8.
        self.buf
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    fn from_filtered(s: &str, keep: impl Fn(char) -> bool) -> Self {
        let mut out = Self::default();
        for c in s.chars().filter(|&c| keep(c)) {
            let _ = fmt::Write::write_char(&mut out, c);
        }
        out
    }
}

impl<const N: usize> fmt::Write for ArrayString<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `raw` as Prometheus 3 stores an `le` or `quantile` label value: `None` when it already is
/// that (or is not a number, which Prometheus keeps as written), else the rewritten value.
pub(crate) fn openmetrics_float_form(raw: &str) -> Option<String> {
    match quick_form(raw) {
        QuickForm::Canonical => None,
        QuickForm::Integer => {
            let mut out = String::with_capacity(raw.len() + 2);
            out.push_str(raw);
            out.push_str(".0");
            Some(out)
        }
        QuickForm::Unknown => {
            let v = parse_go_float(raw)?;
            let mut out = ArrayString::<40>::default();
            write_openmetrics_float(&mut out, v).ok()?;
            (out.as_str() != raw).then(|| out.as_str().to_string())
        }
    }
}

/// What a look at the spelling alone tells about a value, without parsing it.
#[derive(Debug, PartialEq, Eq)]
enum QuickForm {
    /// Already in OpenMetrics form.
    Canonical,
    /// An integer Go writes without exponent (up to six digits, no leading zero, not `-0`):
    /// its form is the same digits and `.0`.
    Integer,
    /// Anything else: parse and format.
    Unknown,
}

/// The spellings clients write are told apart quickly, in one pass over the bytes: `+Inf`;
/// plain decimals with a fraction (`0.005`, `2.5`, `1.0`, `100000.0`) or in exponent form
/// (`6.5536e+06`, `1e-05`) whose digits are the shortest (at most 15 significant digits of a
/// normal f64, so they read back exactly; no trailing zero other than a lone `.0`) and whose
/// size Go writes in that form; and integers.
fn quick_form(raw: &str) -> QuickForm {
    let b = raw.as_bytes();
    if b == b"+Inf" {
        return QuickForm::Canonical;
    }
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let start = usize::from(b.first() == Some(&b'-'));
    let int_end = digits_from(start);
    let int_len = int_end - start;
    let leading_zero = b.get(start) == Some(&b'0');
    if int_len == 0 {
        return QuickForm::Unknown;
    }
    let (frac_start, frac_end) = match b.get(int_end) {
        None if int_len <= 6 && (!leading_zero || raw == "0") => return QuickForm::Integer,
        None => return QuickForm::Unknown,
        Some(b'.') => (int_end + 1, digits_from(int_end + 1)),
        Some(b'e') => (int_end, int_end),
        Some(_) => return QuickForm::Unknown,
    };
    let frac = b.get(frac_start..frac_end).unwrap_or_default();
    let canonical = match b.get(frac_end) {
        Some(b'e') => {
            let mantissa_ok = int_len == 1
                && !leading_zero
                // `1e+06`, or `1.5e+06`; never `1.e+06`.
                && (frac_start == int_end || (!frac.is_empty() && frac.len() <= 14))
                && frac.last() != Some(&b'0');
            mantissa_ok && is_exponent(b.get(frac_end + 1..).unwrap_or_default())
        }
        Some(_) => false,
        None if frac.is_empty() => false,
        // 0.000ddd: at most three zeros after the point (exponent -4), then the digits.
        None if int_len == 1 && leading_zero => {
            let zeros = frac.iter().take_while(|&&c| c == b'0').count();
            let digits = frac.len() - zeros;
            zeros <= 3 && digits > 0 && digits <= 15 && frac.last() != Some(&b'0')
        }
        None if leading_zero || int_len > 6 => false,
        // An integer: up to six digits (exponent 5).
        None if frac == b"0" => true,
        None => int_len + frac.len() <= 15 && frac.last() != Some(&b'0'),
    };
    if canonical {
        QuickForm::Canonical
    } else {
        QuickForm::Unknown
    }
}

/// Whether `exp` (after the `e`) is an exponent as Go's `%e` writes it, signed and of at
/// least two digits, for a number it writes in that form (below -4 or above 5) and that is
/// a normal f64.
fn is_exponent(exp: &[u8]) -> bool {
    let (negative, digits) = match exp.split_first() {
        Some((b'+', digits)) => (false, digits),
        Some((b'-', digits)) => (true, digits),
        _ => return false,
    };
    let well_formed = digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 2 || (digits.len() == 3 && digits.first() != Some(&b'0')));
    if !well_formed {
        return false;
    }
    let value = digits
        .iter()
        .fold(0i32, |acc, &c| acc * 10 + i32::from(c - b'0'));
    if negative {
        (5..=307).contains(&value)
    } else {
        (6..=308).contains(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[input, output]` pairs from Go: `strconv.ParseFloat(input, 64)` and, when it
    /// succeeds, Prometheus 3.16's `labels.FormatOpenMetricsFloat` of the result, else the
    /// input unchanged: what Prometheus 3 stores for an `le` or `quantile` label value.
    /// Hand-picked spellings (hex floats, `_` separators, the limits of f64, the switch to
    /// the exponent form) and random ones (seeded `math/rand`: any f64 bits, and decimals of
    /// every size).
    const GO_OPENMETRICS_FLOAT: &str = include_str!("testdata/go_openmetrics_float.jsonl");

    #[test]
    fn label_values_are_rewritten_as_prometheus_3_does() {
        let mut checked = 0;
        for line in GO_OPENMETRICS_FLOAT.lines() {
            let pair: [String; 2] = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("testdata line {line:?}: {e}"));
            let [input, want] = pair;
            let got = openmetrics_float_form(&input).unwrap_or_else(|| input.clone());
            assert_eq!(got, want, "{input:?}");
            checked += 1;
        }
        assert!(checked > 150, "only {checked} cases");
    }

    #[test]
    fn the_quick_look_agrees_with_the_long_way() {
        let long_way = |input: &str| {
            let mut out = ArrayString::<40>::default();
            let v = parse_go_float(input).unwrap_or(f64::NAN);
            write_openmetrics_float(&mut out, v).unwrap_or_default();
            out.as_str().to_string()
        };
        for line in GO_OPENMETRICS_FLOAT.lines() {
            let [input, _]: [String; 2] = serde_json::from_str(line).unwrap_or_default();
            match quick_form(&input) {
                QuickForm::Canonical => assert_eq!(long_way(&input), input, "{input:?}"),
                QuickForm::Integer => {
                    assert_eq!(long_way(&input), format!("{input}.0"), "{input:?}")
                }
                QuickForm::Unknown => {}
            }
        }
        for form in [
            "0.005",
            "2.5",
            "1.0",
            "100000.0",
            "0.0001",
            "-1.0",
            "+Inf",
            "1e+06",
            "1e-05",
            "6.5536e+06",
            "-2.5e-100",
            "1e+308",
        ] {
            assert_eq!(quick_form(form), QuickForm::Canonical, "{form}");
        }
        for integer in ["0", "1", "-1", "64", "999999"] {
            assert_eq!(quick_form(integer), QuickForm::Integer, "{integer}");
        }
        for other in [
            "0.0",
            "-0.0",
            "-0",
            "2.50",
            "01.0",
            "01",
            "1000000",
            "1000000.0",
            "0.00001",
            "1e6",
            "1e+6",
            "1.0e+06",
            "1.e+06",
            "1e+006",
            "1e+05",
            "1e-04",
            "1e-320",
            "0e+10",
            "1_0",
            "12e+06",
            "1.5e+06x",
            "0.5e-05",
            "0x1p0",
            "",
        ] {
            assert_eq!(quick_form(other), QuickForm::Unknown, "{other}");
        }
    }

    #[test]
    fn go_float_syntax_beyond_sample_values() {
        assert_eq!(parse_go_float("1_000"), Some(1000.0));
        assert_eq!(parse_go_float("0x1.8p1"), Some(3.0));
        assert_eq!(parse_go_float("0x1p-1074"), Some(5e-324));
        for refused in [
            "0x10", "0xp0", "1__0", "_1", "1_", "0x1p1024", "1e400", "+nan", "",
        ] {
            assert_eq!(parse_go_float(refused), None, "{refused:?}");
        }
    }
}
