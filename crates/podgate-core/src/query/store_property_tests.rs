//! Property tests: the store against its plain model (`store_reference.rs`) on random scrape
//! sequences. Each case draws limits and then scrapes a small pod whose counters reset,
//! whose series come and go (and change labels, so new series keep appearing), whose values
//! are sometimes NaN, a stale marker or infinite, whose native histograms grow and sometimes
//! turn into floats, with failed scrapes, failing bodies, duplicates, scrapes out of order,
//! limits exceeded and rule reloads in between. After every step the store and the model
//! must agree on what was ingested and on every query's result at several times.
//!
//! Cases are drawn from a seeded generator (no dependency, the same cases on every run);
//! `PODGATE_STORE_CASES` runs more of them. A failure names the seed and the step.

use std::fmt::Write as _;

use super::catalog::Func;
use super::labels::Value;
use super::store_reference::{
    GenSample, GenValue, Outcome, RefError, RefQuery, RefStore, RefValue, Sel, Shape,
};
use super::{Interest, Query, QueryValue, SeriesStore, StoreLimits, parse};
use crate::histogram::FloatHistogram;

/// SplitMix64: small, seeded, good enough to draw test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Prometheus's stale marker: a NaN with its own bit pattern.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn sel(name: &'static str, matchers: &[(&'static str, &'static str)]) -> Sel {
    Sel {
        name: Some(name),
        matchers: matchers.to_vec(),
    }
}

fn instant(sel: Sel, offset: Option<(i64, &'static str)>) -> RefQuery {
    RefQuery {
        sel,
        offset,
        shape: Shape::Instant,
    }
}

fn ranged(func: Func, sel: Sel, range: (i64, &'static str)) -> RefQuery {
    RefQuery {
        sel,
        offset: None,
        shape: Shape::Range(func, range.0, range.1),
    }
}

const S30: (i64, &str) = (30_000, "30s");
const M1: (i64, &str) = (60_000, "1m");

/// The queries every case evaluates.
fn queries() -> Vec<RefQuery> {
    let req = || sel("req_total", &[]);
    let temp = || sel("temp", &[]);
    let h = || sel("h", &[]);
    let mut out = vec![
        instant(req(), None),
        instant(sel("req_total", &[("code", "500")]), None),
        instant(temp(), None),
        instant(temp(), Some((20_000, "20s"))),
        instant(
            Sel {
                name: None,
                matchers: vec![("__name__", "temp"), ("zone", "a")],
            },
            None,
        ),
        instant(h(), None),
        instant(sel("lat_bucket", &[("handler", "x")]), None),
        RefQuery {
            sel: req(),
            offset: Some((20_000, "20s")),
            shape: Shape::Range(Func::Rate, S30.0, S30.1),
        },
        RefQuery {
            sel: lat(),
            offset: None,
            shape: Shape::Quantile(0.9, Some(S30)),
        },
        RefQuery {
            sel: sel("lat_bucket", &[("handler", "x")]),
            offset: None,
            shape: Shape::Quantile(0.5, Some(M1)),
        },
        RefQuery {
            sel: h(),
            offset: None,
            shape: Shape::Quantile(0.9, Some(S30)),
        },
        RefQuery {
            sel: h(),
            offset: None,
            shape: Shape::Quantile(0.99, None),
        },
    ];
    for func in [Func::Rate, Func::Increase, Func::Irate, Func::Delta] {
        out.push(ranged(func, req(), S30));
        out.push(ranged(func, req(), M1));
    }
    for func in [
        Func::Delta,
        Func::Idelta,
        Func::Deriv,
        Func::AvgOverTime,
        Func::SumOverTime,
        Func::MinOverTime,
        Func::MaxOverTime,
        Func::CountOverTime,
        Func::LastOverTime,
    ] {
        out.push(ranged(func, temp(), M1));
    }
    out.push(ranged(
        Func::CountOverTime,
        Sel {
            name: None,
            matchers: vec![("__name__", "temp"), ("zone", "b")],
        },
        S30,
    ));
    for func in [
        Func::Rate,
        Func::Increase,
        Func::Delta,
        Func::CountOverTime,
        Func::LastOverTime,
    ] {
        out.push(ranged(func, h(), S30));
    }
    out
}

fn lat() -> Sel {
    sel("lat_bucket", &[])
}

/// Interest sets a reload switches between: every query; the instant ones only; the 30 s
/// ones only.
fn interests(queries: &[(RefQuery, Query)]) -> Vec<Interest> {
    let all = Interest::new(queries.iter().map(|(_, q)| q));
    let instant_only = Interest::new(
        queries
            .iter()
            .filter(|(_, q)| q.range_ms() == 0)
            .map(|(_, q)| q),
    );
    let short = Interest::new(
        queries
            .iter()
            .filter(|(_, q)| q.range_ms() <= 30_000)
            .map(|(_, q)| q),
    );
    vec![all, instant_only, short]
}

/// The simulated pod.
struct Pod {
    counters: Vec<f64>,
    temp_version: u32,
    buckets: [[f64; 4]; 2],
    natives: [f64; 2],
    alive: Vec<bool>,
}

const CODES: [&str; 3] = ["200", "500", "503"];
const PATHS: [&str; 2] = ["/", "/a"];
const HANDLERS: [&str; 2] = ["x", "y"];
const LES: [&str; 4] = ["0.1", "0.5", "1.0", "+Inf"];
/// Series slots whose presence toggles: 6 counters, 2 gauges, 2 classic, 2 native.
const SLOTS: usize = 12;

impl Pod {
    fn new() -> Pod {
        Pod {
            counters: vec![0.0; 6],
            temp_version: 0,
            buckets: [[0.0; 4]; 2],
            natives: [0.0; 2],
            alive: vec![true; SLOTS],
        }
    }

    fn float(name: &str, labels: &[(&str, &str)], v: f64) -> GenSample {
        GenSample {
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: GenValue::Float(v),
        }
    }

    /// A value as the body writes it: now and then NaN, a stale marker or infinite.
    fn odd(rng: &mut Rng, v: f64) -> f64 {
        match rng.below(100) {
            0 | 1 => f64::NAN,
            2 => f64::from_bits(STALE_NAN),
            3 => f64::INFINITY,
            _ => v,
        }
    }

    /// The next body: every live series, its values advanced.
    fn body(&mut self, rng: &mut Rng, long_label: bool) -> Vec<GenSample> {
        for alive in &mut self.alive {
            if rng.chance(0.08) {
                *alive = !*alive;
            }
        }
        if rng.chance(0.05) {
            self.temp_version += 1;
        }
        let mut out = Vec::new();
        for (i, counter) in self.counters.iter_mut().enumerate() {
            *counter = if rng.chance(0.05) {
                rng.below(5) as f64
            } else {
                *counter + rng.below(40) as f64 + if rng.chance(0.2) { 0.25 } else { 0.0 }
            };
            if self.alive[i] {
                let (code, path) = (CODES[i % 3], PATHS[i / 3]);
                let v = Self::odd(rng, *counter);
                out.push(Self::float(
                    "req_total",
                    &[("code", code), ("path", path)],
                    v,
                ));
            }
        }
        let version = self.temp_version.to_string();
        for (i, zone) in ["a", "b"].into_iter().enumerate() {
            if self.alive[6 + i] {
                let v = rng.below(100) as f64 - 50.0;
                let v = Self::odd(rng, v);
                out.push(Self::float("temp", &[("zone", zone), ("v", &version)], v));
            }
        }
        for (i, handler) in HANDLERS.into_iter().enumerate() {
            let reset = rng.chance(0.05);
            let mut total = 0.0;
            for (b, le) in LES.into_iter().enumerate() {
                let bucket = &mut self.buckets[i][b];
                total += rng.below(10) as f64;
                *bucket = if reset { 0.0 } else { *bucket } + total;
                if self.alive[8 + i] {
                    out.push(Self::float(
                        "lat_bucket",
                        &[("handler", handler), ("le", le)],
                        *bucket,
                    ));
                }
            }
        }
        for (i, handler) in HANDLERS.into_iter().enumerate() {
            self.natives[i] = if rng.chance(0.05) {
                1.0
            } else {
                self.natives[i] + rng.below(8) as f64
            };
            if !self.alive[10 + i] {
                continue;
            }
            let value = if rng.chance(0.05) {
                // The series turns into a float for a scrape.
                GenValue::Float(self.natives[i])
            } else {
                GenValue::Histogram(native(rng, self.natives[i]))
            };
            out.push(GenSample {
                name: "h".to_string(),
                labels: vec![("handler".to_string(), handler.to_string())],
                value,
            });
        }
        // Bodies that are not quite tidy.
        for sample in &mut out {
            if rng.chance(0.05) {
                sample.labels.push(("empty".to_string(), String::new()));
            }
            if rng.chance(0.1) {
                sample.labels.reverse();
            }
        }
        if !out.is_empty() && rng.chance(0.05) {
            let i = rng.below(out.len() as u64) as usize;
            let mut again = out[i].clone();
            if let GenValue::Float(v) = &mut again.value {
                *v += 1.0;
            }
            out.push(again);
        }
        if rng.chance(0.02) {
            out.push(Self::float("temp", &[("zone", "a"), ("zone", "b")], 1.0));
        }
        if long_label {
            let path = "/a/very/long/path/that/goes/on/and/on";
            out.push(Self::float(
                "req_total",
                &[("code", "200"), ("path", path)],
                1.0,
            ));
        }
        out.push(Self::float("unread_total", &[("x", "y")], 3.0));
        out
    }
}

/// A native histogram of about `count` observations; now and then a wide one (more buckets
/// than the small bucket limit; sometimes too spread to fit at any resolution).
fn native(rng: &mut Rng, count: f64) -> FloatHistogram {
    let (n, spread) = match rng.below(30) {
        0 => (20, 1),
        1 => (12, 1000),
        _ => (3, 1),
    };
    let each = count / n as f64;
    FloatHistogram {
        schema: 0,
        count,
        sum: count * 1.5,
        positive: (0..n).map(|i| (i * spread, each)).collect(),
        ..FloatHistogram::default()
    }
}

fn real_outcome(query: &Query, store: &SeriesStore, now: i64) -> Result<Outcome, String> {
    let elements = query.eval_elements(store, now).map_err(|e| e.message)?;
    let elements: Vec<(String, RefValue)> = elements
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Float(v) => RefValue::Float(v),
                Value::Histogram(h) => RefValue::Histogram(h.into_owned()),
            };
            (k, v)
        })
        .collect();
    let why = if elements.is_empty() {
        match query.eval(store, now) {
            Ok(QueryValue::NoData(why)) => Some(why),
            other => return Err(format!("no elements, but eval gave {other:?}")),
        }
    } else {
        None
    };
    Ok(Outcome { elements, why })
}

/// Equal, NaN equal to NaN (the histograms compared as written).
fn same(a: &Outcome, b: &Outcome) -> bool {
    a.why == b.why
        && a.elements.len() == b.elements.len()
        && a.elements
            .iter()
            .zip(&b.elements)
            .all(|((ka, va), (kb, vb))| {
                ka == kb
                    && match (va, vb) {
                        (RefValue::Float(x), RefValue::Float(y)) => {
                            x == y || (x.is_nan() && y.is_nan())
                        }
                        (RefValue::Histogram(x), RefValue::Histogram(y)) => {
                            format!("{x:?}") == format!("{y:?}")
                        }
                        _ => false,
                    }
            })
}

fn limits(rng: &mut Rng) -> StoreLimits {
    StoreLimits {
        max_series: rng.pick(&[6, 14, 10_000]),
        max_points_per_series: rng.pick(&[2, 3, 64]),
        retention_margin_ms: rng.pick(&[0, 5_000]),
        lookback_ms: rng.pick(&[30_000, 300_000]),
        max_label_bytes: rng.pick(&[32, 4096]),
        max_histogram_buckets: rng.pick(&[8, 160]),
    }
}

/// Runs one case; `Err` describes the first disagreement.
fn run_case(seed: u64, steps: usize, compiled: &[(RefQuery, Query)]) -> Result<(), String> {
    let mut rng = Rng(seed);
    let interests = interests(compiled);
    let limits = limits(&mut rng);
    let mut log = format!("seed {seed}, {limits:?}\n");
    let mut store = SeriesStore::new(interests[0].clone(), limits);
    let mut model = RefStore::new(interests[0].clone(), limits);
    let mut pod = Pod::new();
    let interval = rng.pick(&[5_000, 10_000, 15_000]);
    let mut t: i64 = 1_000_000;
    for step in 0..steps {
        if rng.chance(0.05) {
            let which = rng.below(interests.len() as u64) as usize;
            let _ = writeln!(log, "step {step}: interest set {which}");
            store.set_interest(interests[which].clone());
            model.set_interest(interests[which].clone());
        }
        // Mostly on a grid, so window edges and retention fall exactly on scrapes.
        t += interval + rng.pick(&[0, 0, 0, 5_000, -1_000, 1_000]);
        if rng.chance(0.03) {
            t += 240_000;
        }
        let at = if rng.chance(0.03) {
            t - interval - rng.below(interval as u64) as i64
        } else {
            t
        };
        let long_label = rng.chance(0.03);
        let body = pod.body(&mut rng, long_label);
        if rng.chance(0.1) {
            // The scrape failed before a body arrived.
            let _ = writeln!(log, "step {step}: no scrape at {at}");
        } else {
            let fail_at = rng
                .chance(0.05)
                .then(|| rng.below(body.len() as u64 + 1) as usize);
            let _ = writeln!(
                log,
                "step {step}: ingest at {at}, {} samples, fail at {fail_at:?}: {body:?}",
                body.len()
            );
            let samples = body.iter().enumerate().map(|(i, s)| match fail_at {
                Some(f) if i >= f => Err("the body broke off"),
                _ => Ok(s),
            });
            let samples: Vec<Result<&GenSample, &str>> = match fail_at {
                Some(f) if f == body.len() => samples.chain([Err("the body broke off")]).collect(),
                _ => samples.collect(),
            };
            let got = store.ingest(at, samples).map_err(|e| RefError::from(&e));
            let want = model.ingest(at, &body, fail_at);
            if got != want {
                return Err(format!("{log}ingest: store {got:?}, model {want:?}"));
            }
        }
        if store.len() != model.series.len()
            || store.last_scrape_ms() != model.last_scrape()
            || store.first_scrape_ms() != model.first_scrape
        {
            return Err(format!(
                "{log}state: store {} series, scrapes {:?}..{:?}; model {} series, {:?}..{:?}",
                store.len(),
                store.first_scrape_ms(),
                store.last_scrape_ms(),
                model.series.len(),
                model.first_scrape,
                model.last_scrape()
            ));
        }
        let last = model.last_scrape().unwrap_or(t);
        let times = [
            last,
            t,
            last + 5_000 * rng.below(8) as i64,
            last - rng.below(60_000) as i64,
        ];
        for now in times {
            for (reference, query) in compiled {
                let got = real_outcome(query, &store, now);
                let want = model.eval(reference, now);
                let agree = match (&got, &want) {
                    (Ok(g), Ok(w)) => same(g, w),
                    (Err(_), Err(())) => true,
                    _ => false,
                };
                if !agree {
                    return Err(format!(
                        "{log}{} at {now}:\n  store {got:?}\n  model {want:?}\n  model series {:?}\n  model scrapes {:?}",
                        query.source, model.series, model.scrapes
                    ));
                }
            }
        }
    }
    Ok(())
}

fn compiled() -> Vec<(RefQuery, Query)> {
    queries()
        .into_iter()
        .map(|r| {
            let text = r.text();
            let q = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            (r, q)
        })
        .collect()
}

#[test]
fn the_store_answers_as_its_model_on_random_scrape_sequences() {
    let cases: u64 = std::env::var("PODGATE_STORE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let compiled = compiled();
    for seed in 0..cases {
        if let Err(e) = run_case(seed, 40, &compiled) {
            panic!("case {seed} failed:\n{e}");
        }
    }
}

/// The cases must reach what they are meant to exercise, or agreeing proves little.
#[test]
fn the_cases_reach_resets_evictions_errors_and_no_data() {
    let compiled = compiled();
    let (mut errors, mut evictions, mut stale, mut numbers) = (0usize, 0usize, 0usize, 0usize);
    for seed in 0..40u64 {
        let mut rng = Rng(seed);
        let limits = limits(&mut rng);
        let mut model = RefStore::new(Interest::new(compiled.iter().map(|(_, q)| q)), limits);
        let mut pod = Pod::new();
        let mut t = 1_000_000;
        for _ in 0..40 {
            t += 10_000;
            let long_label = rng.chance(0.03);
            let body = pod.body(&mut rng, long_label);
            if model.ingest(t, &body, None).is_err() {
                errors += 1;
            }
            evictions += model
                .series
                .values()
                .filter(|s| s.evicted_until.is_some())
                .count();
            for (reference, _) in &compiled {
                match model.eval(reference, t) {
                    Ok(o)
                        if o.elements
                            .iter()
                            .any(|(_, v)| matches!(v, RefValue::Float(x) if x.is_finite())) =>
                    {
                        numbers += 1
                    }
                    Ok(Outcome {
                        why: Some(super::NoData::NoSeries { stale: 1.., .. }),
                        ..
                    }) => stale += 1,
                    _ => {}
                }
            }
        }
    }
    assert!(errors > 0, "no ingest error");
    assert!(evictions > 0, "no point evicted by the cap");
    assert!(stale > 0, "no stale series");
    assert!(numbers > 0, "no query yielded a number");
}
