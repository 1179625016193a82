use super::*;

fn compile(src: &str) -> Expr {
    match Expr::compile(src) {
        Ok(e) => e,
        Err(e) => panic!("{src:?} should compile: {e}"),
    }
}

fn eval(src: &str, values: &[(&str, f64)]) -> bool {
    match compile(src).eval(values) {
        Ok(v) => v,
        Err(e) => panic!("{src:?} should evaluate: {e}"),
    }
}

fn compile_err(src: &str) -> ExprError {
    match Expr::compile(src) {
        Ok(_) => panic!("{src:?} should be rejected"),
        Err(e) => e,
    }
}

#[test]
fn integer_literals_compare_with_floats() {
    assert!(eval("errors == 0", &[("errors", 0.0)]));
    assert!(!eval("errors == 0", &[("errors", 0.5)]));
    assert!(eval("errors != 0", &[("errors", 0.5)]));
    assert!(eval("x == -1", &[("x", -1.0)]));
    assert!(eval("007 == 7", &[]));
}

#[test]
fn integer_division_is_mathematical() {
    assert!(eval("1/2 == 0.5", &[]));
    assert!(eval("7 % 2 == 1", &[]));
    assert!(eval("1/0 > 1e308", &[]));
    assert!(eval("x / 4 == 0.25", &[("x", 1.0)]));
}

#[test]
fn number_forms() {
    assert!(eval("2^3 == 8", &[]));
    assert!(eval("2^0.5 > 1.41", &[]));
    assert!(eval("1e3 == 1000", &[]));
    assert!(eval("1e-3 == 0.001", &[]));
    assert!(eval("1E+3 == 1000", &[]));
    assert!(eval("2.5e-1 == 0.25", &[]));
    assert!(eval("1. == 1", &[]));
    assert!(eval(".5 == 0.5", &[]));
    assert!(eval("-1 < 0", &[]));
    assert!(eval("- 1 < 0", &[]));
    assert!(eval("x-1 == 1", &[("x", 2.0)]));
    assert!(eval("x - 1 == 1", &[("x", 2.0)]));
    assert!(eval("x1 + 1 == 3", &[("x1", 2.0)]));
    assert!(eval("9223372036854775807 > 9e18", &[]));
    assert!(eval("99999999999999999999 > 9e19", &[]));
    assert!(eval("x < inf", &[("x", 1e300)]));
    assert!(eval("true", &[]));
    assert!(!eval("!true", &[]));
}

#[test]
fn hexadecimal_literals_are_rejected_with_column() {
    let e = compile_err("x > 0x10");
    assert_eq!(e.column, Some(5));
    assert!(e.message.contains("hexadecimal"), "{e}");
}

#[test]
fn isnan_and_nan_aware_variables() {
    assert!(eval("isnan(x)", &[("x", f64::NAN)]));
    assert!(!eval("isnan(x)", &[("x", 1.0)]));
    assert!(eval("math::is_nan(x)", &[("x", f64::NAN)]));
    let e = compile("isnan(p99) || p99 < 0.25 && isnan(a / b) && c > 1");
    assert_eq!(e.nan_aware_variables(), vec!["a", "b", "p99"]);
    assert_eq!(e.variables(), vec!["a", "b", "c", "p99"]);
    assert!(compile("x > 1").nan_aware_variables().is_empty());
}

#[test]
fn nan_compares_false() {
    assert!(!eval("x < 1", &[("x", f64::NAN)]));
    assert!(!eval("x >= 1", &[("x", f64::NAN)]));
    assert!(!eval("x == x", &[("x", f64::NAN)]));
}

#[test]
fn variables_are_sorted_unique_and_exclude_functions() {
    let e = compile("requests == 0 || errors / requests < 0.01 && math::abs(delta) < max(a, 1)");
    assert_eq!(e.variables(), vec!["a", "delta", "errors", "requests"]);
}

#[test]
fn min_max_stay_floats() {
    assert!(eval("min(1e19, 2e19) == 1e19", &[]));
    assert!(eval("max(a, b, 3) == 3", &[("a", 1.0), ("b", 2.0)]));
    assert!(eval("min(x) == 5", &[("x", 5.0)]));
}

#[test]
fn math_builtins() {
    assert!(eval("math::sqrt(16) == 4", &[]));
    assert!(eval("math::pow(2, 10) == 1024", &[]));
    assert!(eval(
        "floor(2.7) == 2 && ceil(2.1) == 3 && round(2.5) == 3",
        &[]
    ));
    assert!(eval("math::abs(-3) == 3", &[]));
    assert!(eval("math::log(8, 2) == 3", &[]));
}

#[test]
fn size_and_depth_limits() {
    let long = format!("x > {}", "1".repeat(MAX_SOURCE_BYTES));
    assert!(compile_err(&long).message.contains("4096"));

    let nested_ok = format!(
        "{}x{} > 1",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    compile(&nested_ok);
    let nested = format!(
        "{}x{} > 1",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let e = compile_err(&nested);
    assert_eq!(e.column, Some(MAX_DEPTH + 1));
    assert!(e.message.contains("nested"), "{e}");

    let negs = format!("{}x > 1", "-".repeat(MAX_DEPTH + 1));
    assert!(compile_err(&negs).message.contains("prefix"));

    let chain = format!("x{} > 1", " + x".repeat(MAX_DEPTH + 1));
    assert!(compile_err(&chain).message.contains("deep"));
    let short_chain = format!("x{} > 1", " + x".repeat(10));
    compile(&short_chain);
}

#[test]
fn rejected_constructs() {
    assert!(compile_err("x = 1").message.contains("=="));
    assert!(compile_err("x += 1").message.contains("assign"));
    assert!(compile_err("x > 1; y > 1").message.contains(";"));
    assert!(compile_err("x > 1 & y > 1").message.contains("&&"));
    assert!(compile_err("x > 1 // hi").message.contains("comment"));
    assert!(compile_err("x == \"a\"").message.contains("string"));
    assert!(
        compile_err("random(1) > 1")
            .message
            .contains("unknown function")
    );
    assert!(compile_err("1x > 1").message.contains("`1x`"));
    assert_eq!(compile_err("a > 1 && 1x > 1").column, Some(10));
    assert!(compile_err("x > 1)").message.contains("unmatched"));
    assert!(compile_err("(x > 1").message.contains("parse"));
    assert!(compile_err("").message.contains("empty"));
    assert!(
        compile_err("math::pow(2) > 1")
            .message
            .contains("2 arguments")
    );
    assert!(compile_err("isnan() ").message.contains("1 argument"));
    let e = compile_err("isnan x");
    assert_eq!(e.column, Some(7));
    assert!(e.message.contains("missing operator"), "{e}");
    assert!(
        compile_err("(x) 1 > 0")
            .message
            .contains("missing operator")
    );
    assert!(compile_err("x \"a\"").message.contains("missing operator"));
}

/// Inputs found by fuzzing the compiler; each once compiled but failed to evaluate.
#[test]
fn fuzz_regressions() {
    for src in ["min(a, b, 3) >=requests == ", "x > 1 &&", "-"] {
        let e = compile_err(src);
        assert!(
            e.message.contains("missing an operand") || e.message.contains("parse"),
            "{src}: {e}"
        );
    }
}

#[test]
fn result_must_be_boolean() {
    let e = compile_err("errors / requests");
    assert!(e.message.contains("a number"), "{e}");
    let e = compile_err("x > 1 && y");
    assert!(e.message.contains("`&&` needs true or false"), "{e}");
    let e = compile_err("(x > 1) + 1 > 2");
    assert!(e.message.contains("needs a number"), "{e}");
}

#[test]
fn missing_variable_is_named() {
    let e = compile("errors / requests < 0.01");
    let err = e.eval(&[("errors", 1.0)]).unwrap_err();
    assert!(err.message.contains("`requests`"), "{err}");
}

#[test]
fn explain_failing_comparison() {
    let e = compile("errors / requests < 0.01");
    let values = [("errors", 3.1), ("requests", 100.0)];
    assert!(!e.eval(&values).unwrap());
    assert_eq!(e.explain(&values), "errors/requests=0.031 >= 0.01");
    let values = [("errors", 0.5), ("requests", 100.0)];
    assert_eq!(e.explain(&values), "errors/requests=0.005 < 0.01");
}

#[test]
fn explain_and_or() {
    let e = compile("requests == 0 || errors / requests < 0.01 && p99 < 0.25");
    // `||` fails: the `&&` operand names its first failing part; the guard that did not
    // apply (`requests == 0`) follows in parentheses.
    let v = [("requests", 10.0), ("errors", 1.0), ("p99", 0.1)];
    assert_eq!(
        e.explain(&v),
        "errors/requests=0.1 >= 0.01 (requests=10 != 0)"
    );
    let v = [("requests", 10.0), ("errors", 0.0), ("p99", 0.5)];
    assert_eq!(e.explain(&v), "p99=0.5 >= 0.25 (requests=10 != 0)");
    // `||` passes: the first passing operand.
    let v = [("requests", 0.0), ("errors", 0.0), ("p99", 0.5)];
    assert_eq!(e.explain(&v), "requests=0 == 0");
    // `&&` passes: every operand.
    let v = [("requests", 10.0), ("errors", 0.0), ("p99", 0.1)];
    assert_eq!(e.explain(&v), "errors/requests=0 < 0.01 and p99=0.1 < 0.25");
}

#[test]
fn explain_names_what_decided_first_and_guards_after() {
    // The README's rule on a failing version: the error ratio is the story.
    let e = compile(
        "requests == 0 || (isnan(errors) || errors / requests < 0.01) && (isnan(p99) || p99 < 0.25)",
    );
    let v = [("requests", 39.39), ("errors", 3.05), ("p99", 0.1)];
    assert_eq!(
        e.explain(&v),
        "errors/requests=0.0774308 >= 0.01 (requests=39.39 != 0, isnan(errors)=false)"
    );
    // Only guards, all false: nothing else to put first.
    let e = compile("isnan(x) || y == 1");
    assert_eq!(
        e.explain(&[("x", 1.0), ("y", 2.0)]),
        "isnan(x)=false and y=2 != 1"
    );
    // A comparison of two variables is no guard.
    let e = compile("a == b || c < 1");
    assert_eq!(
        e.explain(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]),
        "a=1 != b=2 and c=3 >= 1"
    );
}

#[test]
fn explain_rhs_values_and_functions() {
    let e = compile("latency < budget * 2");
    assert_eq!(
        e.explain(&[("latency", 5.0), ("budget", 2.0)]),
        "latency=5 >= budget*2=4"
    );
    let e = compile("isnan(p99) || p99 < 0.25");
    assert_eq!(e.explain(&[("p99", f64::NAN)]), "isnan(p99)=true");
    assert_eq!(
        e.explain(&[("p99", 0.3)]),
        "p99=0.3 >= 0.25 (isnan(p99)=false)"
    );
    let e = compile("x > -1");
    assert_eq!(e.explain(&[("x", -2.0)]), "x=-2 <= -1");
    let e = compile("!(x > 5)");
    assert_eq!(e.explain(&[("x", 7.0)]), "x=7 > 5");
    assert!(e.explain(&[]).contains("`x`"));
}

#[test]
fn format_value_is_compact() {
    assert_eq!(format_value(0.031), "0.031");
    assert_eq!(format_value(100.0), "100");
    assert_eq!(format_value(0.0), "0");
    assert_eq!(format_value(-2.5), "-2.5");
    assert_eq!(format_value(1234567.0), "1.23457e+06");
    assert_eq!(format_value(123456.0), "123456");
    assert_eq!(format_value(0.0001), "0.0001");
    assert_eq!(format_value(0.00001234), "1.234e-05");
    assert_eq!(format_value(1.0 / 3.0), "0.333333");
    assert_eq!(format_value(999999.5), "1e+06");
    assert_eq!(format_value(f64::NAN), "NaN");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
    assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
}
