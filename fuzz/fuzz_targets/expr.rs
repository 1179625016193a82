//! Fuzzes the gate-expression compiler: no input may panic, and a compiled expression with
//! every variable bound must evaluate to a boolean (the compile-time checks promise it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use podgate_core::expr::Expr;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let expr = match Expr::compile(src) {
        Ok(expr) => expr,
        Err(e) => {
            if let Some(column) = e.column {
                assert!(
                    (1..=src.chars().count() + 1).contains(&column),
                    "{src:?}: column {column} outside the text"
                );
            }
            return;
        }
    };
    let names = expr.variables();
    let _ = expr.nan_aware_variables();
    for v in [0.0, 1.5, -1.0, f64::NAN, f64::INFINITY] {
        let values: Vec<(&str, f64)> = names.iter().map(|n| (n.as_str(), v)).collect();
        if let Err(e) = expr.eval(&values) {
            panic!("{src:?} compiled but failed to evaluate with {v}: {e}");
        }
        let _ = expr.explain(&values);
    }
});
