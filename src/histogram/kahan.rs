//! Prometheus's compensated (Kahan–Neumaier) summation (`util/kahansum`), shared by the
//! float functions of the scrape language and the histogram statistics.

/// `sum + inc` and the new compensation `c`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}
