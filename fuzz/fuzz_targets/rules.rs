//! Fuzzes the rule loader with arbitrary bytes as one rule file, through the same path as
//! `podgate check` (size limit, UTF-8, YAML, validation, cross-rule checks).
//!
//! Besides "never panics": every diagnostic has a message and a position inside the text
//! (or none, for a finding about the whole file); a file `check` accepts also loads, with as
//! many rules as `check` counted, and each loaded rule's expression evaluates with every
//! variable bound, and with `self.same_definition(self)`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use podgate_core::rules;

/// The lines of `text` as YAML counts them: LF, CRLF and a lone CR each end a line.
fn yaml_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\n', '\r']) {
        lines.push(rest.get(..i).unwrap_or(""));
        let skip = if rest.get(i..i + 2) == Some("\r\n") { 2 } else { 1 };
        rest = rest.get(i + skip..).unwrap_or("");
    }
    lines.push(rest);
    lines
}

fuzz_target!(|data: &[u8]| {
    let file = Path::new("fuzz.yaml");
    let report = rules::check_bytes(file, data);
    assert_eq!(report.files, 1);
    let text = std::str::from_utf8(data).ok();
    let lines = text.map(yaml_lines).unwrap_or_default();
    for d in &report.diagnostics {
        assert!(!d.message.is_empty(), "{d}");
        assert_eq!(d.file, file);
        if d.line == 0 {
            assert_eq!(d.column, 0, "{d}");
            continue;
        }
        if text.is_some() {
            let line_count = lines.len();
            assert!(d.line <= line_count, "{d}: line outside the {line_count} lines");
            let width = lines.get(d.line - 1).map_or(0, |l| l.chars().count());
            assert!(
                (1..=width + 1).contains(&d.column),
                "{d}: column outside line {} ({width} characters)",
                d.line
            );
        }
    }
    if report.has_errors() {
        return;
    }
    let Some(text) = text else {
        panic!("invalid UTF-8 passed the check");
    };
    let set = match rules::load_str("fuzz.yaml", text) {
        Ok(set) => set,
        Err(e) => panic!("check found no error but loading failed: {e:?}"),
    };
    assert_eq!(set.len(), report.rules, "check and load count differently");
    for rule in &set.rules {
        assert!(rule.same_definition(rule));
        assert!(rule.timeout < rule.interval, "{}: timeout >= interval", rule.name);
        let values: Vec<(&str, f64)> = rule.vars.iter().map(|v| (v.name.as_str(), 1.0)).collect();
        if let Err(e) = rule.expr.eval(&values) {
            panic!("{}: loaded expression fails to evaluate: {e}", rule.name);
        }
    }
});
