//! Bucket boundaries of exponential schemas.

/// The lowest exponential schema (buckets growing by a factor of 65,536).
pub const MIN_SCHEMA: i32 = -4;
/// The highest exponential schema (buckets growing by a factor of 2^(1/256)).
pub const MAX_SCHEMA: i32 = 8;

/// The upper bound of positive bucket `index` at `schema`: `2^(index / 2^schema)`. The last
/// finite bucket ends at `f64::MAX` rather than +Inf, so that the bucket after it holds the
/// observations of +Inf, as in Prometheus.
///
/// Prometheus takes the fractional part from a precomputed table; here it is computed with
/// `exp2`, which may differ from the table in the last bit (a relative 1e-16).
pub fn bucket_bound(index: i32, schema: i32) -> f64 {
    bound(i64::from(index), schema)
}

/// [`bucket_bound`] on a wider index, so `index - 1` of any `i32` index is fine.
pub(super) fn bound(index: i64, schema: i32) -> f64 {
    if schema < 0 {
        let shift = schema.unsigned_abs().min(32);
        let exp = index.saturating_mul(1 << shift);
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let schema = schema.min(MAX_SCHEMA) as u32;
    let per_octave = 1i64 << schema;
    let frac_index = index & (per_octave - 1);
    let frac = (frac_index as f64 / per_octave as f64).exp2() * 0.5;
    let exp = (index >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// `x · 2^exp`, saturating to 0 or infinity (the two halves keep each power finite).
fn ldexp(x: f64, exp: i64) -> f64 {
    let e = exp.clamp(-2200, 2200) as i32;
    let half = e / 2;
    x * 2f64.powi(half) * 2f64.powi(e - half)
}

/// The index at `target` schema (≤ `origin`) of the bucket holding bucket `index` at
/// `origin`: buckets merge in groups of `2^(origin - target)`.
pub(super) fn target_index(index: i32, origin: i32, target: i32) -> i32 {
    let shift = (origin - target).clamp(0, 63) as u32;
    (((i64::from(index) - 1) >> shift) + 1) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_at_schema_zero_and_negative_and_positive() {
        assert_eq!(bucket_bound(0, 0), 1.0);
        assert_eq!(bucket_bound(1, 0), 2.0);
        assert_eq!(bucket_bound(-1, 0), 0.5);
        assert_eq!(bucket_bound(1, -1), 4.0);
        assert_eq!(bucket_bound(2, -2), 256.0);
        assert_eq!(bucket_bound(1, 1), std::f64::consts::SQRT_2);
        assert_eq!(bucket_bound(2, 1), 2.0);
        assert!((bucket_bound(1, 3) - 2f64.powf(0.125)).abs() < 1e-15);
        assert_eq!(bucket_bound(-3, 1), 2f64.powf(-1.5));
    }

    #[test]
    fn the_last_finite_bucket_ends_at_max_and_the_next_at_infinity() {
        assert_eq!(bucket_bound(1024, 0), f64::MAX);
        assert_eq!(bucket_bound(1025, 0), f64::INFINITY);
        assert_eq!(bucket_bound(1024 * 256, 8), f64::MAX);
        assert_eq!(bucket_bound(256, -2), f64::MAX);
        assert_eq!(bucket_bound(-1100, 0), 0.0);
    }

    #[test]
    fn indexes_map_to_lower_schemas_in_groups() {
        // Schema 1 buckets 1 and 2 ((1,√2], (√2,2]) are bucket 1 (1,2] at schema 0.
        assert_eq!(target_index(1, 1, 0), 1);
        assert_eq!(target_index(2, 1, 0), 1);
        assert_eq!(target_index(3, 1, 0), 2);
        assert_eq!(target_index(0, 1, 0), 0);
        assert_eq!(target_index(-1, 1, 0), 0);
        assert_eq!(target_index(-2, 1, 0), -1);
        assert_eq!(target_index(5, 2, 0), 2);
        assert_eq!(target_index(7, 3, 3), 7);
    }
}
