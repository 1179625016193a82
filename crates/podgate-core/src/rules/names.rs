//! Syntax checks for the names that appear in rule files, following Kubernetes'
//! `apimachinery/pkg/util/validation` rules, plus "did you mean" suggestions.
//!
//! Each check returns a [`NameError`] whose reason is a sentence the user can act on.

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const IANA_SVC_NAME_MAX: usize = 15;

/// Why a name is not valid: a sentence the user can act on (the caller says which name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct NameError {
    pub reason: String,
}

impl NameError {
    fn new(reason: impl Into<String>) -> NameError {
        NameError {
            reason: reason.into(),
        }
    }
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A DNS-1123 label (namespace names): `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 chars.
pub fn dns1123_label(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new("must not be empty"));
    }
    if s.len() > DNS1123_LABEL_MAX {
        return Err(NameError::new(format!(
            "must be at most {DNS1123_LABEL_MAX} characters (has {})",
            s.chars().count()
        )));
    }
    if !s.chars().all(|c| is_lower_alnum(c) || c == '-') {
        return Err(NameError::new(
            "must consist of lower case letters, digits and '-' (a DNS-1123 label)".to_string(),
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::new(
            "must start and end with a lower case letter or digit",
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 chars.
pub fn dns1123_subdomain(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new("must not be empty"));
    }
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        return Err(NameError::new(format!(
            "must be at most {DNS1123_SUBDOMAIN_MAX} characters"
        )));
    }
    for part in s.split('.') {
        if part.is_empty()
            || !part.chars().all(|c| is_lower_alnum(c) || c == '-')
            || part.starts_with('-')
            || part.ends_with('-')
        {
            return Err(NameError::new(format!(
                "{s:?} is not a DNS-1123 subdomain (lower case letters, digits, '-' and '.', \
                 each part starting and ending with a letter or digit)"
            )));
        }
    }
    Ok(())
}

/// The name part of a qualified name or a label value:
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn name_part_chars_ok(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    let inner = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    match (s.chars().next(), s.chars().last()) {
        (Some(first), Some(last)) => edge(first) && edge(last) && s.chars().all(inner),
        _ => false,
    }
}

/// A Kubernetes qualified name (label keys, condition types): an optional DNS-1123 subdomain
/// prefix and `/`, then a name of at most 63 characters.
pub fn qualified_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new("must not be empty"));
    }
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(NameError::new("the prefix before '/' must not be empty"));
        }
        dns1123_subdomain(prefix).map_err(|e| NameError::new(format!("prefix: {e}")))?;
    }
    if name.is_empty() {
        return Err(NameError::new(
            "the name after the prefix must not be empty",
        ));
    }
    if name.contains('/') {
        return Err(NameError::new("may contain at most one '/'"));
    }
    if name.len() > QUALIFIED_NAME_MAX {
        return Err(NameError::new(format!(
            "the name part must be at most {QUALIFIED_NAME_MAX} characters (has {})",
            name.chars().count()
        )));
    }
    if !name_part_chars_ok(name) {
        return Err(NameError::new(
            "the name part must consist of letters, digits, '-', '_' or '.', and must start \
             and end with a letter or digit"
                .to_string(),
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of `[-A-Za-z0-9_.]` starting and ending
/// with a letter or digit.
pub fn label_value(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Ok(());
    }
    if s.len() > LABEL_VALUE_MAX {
        return Err(NameError::new(format!(
            "must be at most {LABEL_VALUE_MAX} characters (has {})",
            s.chars().count()
        )));
    }
    if !name_part_chars_ok(s) {
        return Err(NameError::new(
            "must be empty or consist of letters, digits, '-', '_' or '.', and start and end \
             with a letter or digit"
                .to_string(),
        ));
    }
    Ok(())
}

/// A container port name (IANA_SVC_NAME): at most 15 characters of `[a-z0-9-]`, at least
/// one letter, no leading, trailing or doubled '-'.
pub fn iana_svc_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new("must not be empty"));
    }
    if s.len() > IANA_SVC_NAME_MAX {
        return Err(NameError::new(format!(
            "a port name must be at most {IANA_SVC_NAME_MAX} characters (has {})",
            s.chars().count()
        )));
    }
    if !s.chars().all(|c| is_lower_alnum(c) || c == '-') {
        return Err(NameError::new(
            "a port name must consist of lower case letters, digits and '-'",
        ));
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(NameError::new(
            "a port name must contain at least one letter",
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::new("a port name must not start or end with '-'"));
    }
    if s.contains("--") {
        return Err(NameError::new("a port name must not contain '--'"));
    }
    Ok(())
}

/// A rule name: `[a-z0-9-]`, 1–63 characters, not starting or ending with '-'.
pub fn rule_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new("must not be empty"));
    }
    if s.chars().count() > 63 {
        return Err(NameError::new(format!(
            "must be at most 63 characters (has {})",
            s.chars().count()
        )));
    }
    if !s.chars().all(|c| is_lower_alnum(c) || c == '-') {
        return Err(NameError::new(
            "must consist of lower case letters, digits and '-'",
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::new("must not start or end with '-'"));
    }
    Ok(())
}

/// An identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
pub fn prometheus_label_name(s: &str) -> Result<(), NameError> {
    if !is_identifier(s) {
        return Err(NameError::new(
            "a Prometheus label name must match [a-zA-Z_][a-zA-Z0-9_]*",
        ));
    }
    if s.starts_with("__") {
        return Err(NameError::new(
            "label names starting with '__' are reserved for Prometheus",
        ));
    }
    Ok(())
}

/// Levenshtein distance, for suggestions on short names only.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.chars().count() > 64 {
        return None;
    }
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean "x"?` or nothing.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates) {
        Some(c) => format!("; did you mean {c:?}?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(dns1123_label("shop").is_ok());
        assert!(dns1123_label("a-1").is_ok());
        assert!(dns1123_label("0").is_ok());
        assert!(dns1123_label("").is_err());
        assert!(dns1123_label("Shop").is_err());
        assert!(dns1123_label("-a").is_err());
        assert!(dns1123_label("a-").is_err());
        assert!(dns1123_label("a.b").is_err());
        assert!(dns1123_label(&"a".repeat(63)).is_ok());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
    }

    #[test]
    fn qualified_names() {
        assert!(qualified_name("app").is_ok());
        assert!(qualified_name("example.com/metrics-healthy").is_ok());
        assert!(qualified_name("app.kubernetes.io/name").is_ok());
        assert!(qualified_name("A_b.c-D").is_ok());
        assert!(qualified_name("").is_err());
        assert!(qualified_name("/x").is_err());
        assert!(qualified_name("example.com/").is_err());
        assert!(qualified_name("a/b/c").is_err());
        assert!(qualified_name("Example.com/x").is_err());
        assert!(qualified_name("-x").is_err());
        assert!(qualified_name("x_").is_err());
        assert!(qualified_name("has space").is_err());
        assert!(qualified_name(&"x".repeat(63)).is_ok());
        assert!(qualified_name(&"x".repeat(64)).is_err());
        let long_prefix = format!("{}/x", "a".repeat(254));
        assert!(qualified_name(&long_prefix).is_err());
    }

    #[test]
    fn label_values() {
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3-x").is_ok());
        assert!(label_value("-v").is_err());
        assert!(label_value("a/b").is_err());
        assert!(label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn port_names() {
        assert!(iana_svc_name("metrics").is_ok());
        assert!(iana_svc_name("http-2").is_ok());
        assert!(iana_svc_name("8080").is_err());
        assert!(iana_svc_name("a--b").is_err());
        assert!(iana_svc_name("-a").is_err());
        assert!(iana_svc_name("Metrics").is_err());
        assert!(iana_svc_name("abcdefghijklmnop").is_err());
    }

    #[test]
    fn rule_names() {
        assert!(rule_name("checkout-errors").is_ok());
        assert!(rule_name("a").is_ok());
        assert!(rule_name("").is_err());
        assert!(rule_name("Checkout").is_err());
        assert!(rule_name("a_b").is_err());
        assert!(rule_name("-a").is_err());
        assert!(rule_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("errors"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("math::ln"));
    }

    #[test]
    fn suggestions() {
        let known = ["failureThreshold", "successThreshold", "interval"];
        assert_eq!(closest("failureTreshold", &known), Some("failureThreshold"));
        assert_eq!(closest("intervall", &known), Some("interval"));
        assert_eq!(closest("zzz", &known), None);
        assert!(did_you_mean("Interval", &known).contains("interval"));
    }
}
