//! Version order for updates: Semantic Versioning 2.0.0's precedence
//! (semver.org, item 11) over the versions a profile may write (`[image]
//! version`: a-z, 0-9, `.`, `_`, `-`). The part before the first `-` is
//! the release, dot-separated; a missing part counts as 0 ("1.2" is
//! "1.2.0"). What follows the `-` is a pre-release, which comes before its
//! release ("1.0.0-rc.1" < "1.0.0"); its dot-separated identifiers compare
//! numerically when both are digits, as ASCII otherwise, and a numeric one
//! before a non-numeric one. `+build` metadata is not in the grammar.

use std::cmp::Ordering;

/// Compares two versions by semantic-version precedence.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a_rel, a_pre) = split(a);
    let (b_rel, b_pre) = split(b);
    let a_parts: Vec<&str> = a_rel.split('.').collect();
    let b_parts: Vec<&str> = b_rel.split('.').collect();
    for i in 0..a_parts.len().max(b_parts.len()) {
        let x = a_parts.get(i).copied().unwrap_or("0");
        let y = b_parts.get(i).copied().unwrap_or("0");
        match identifier(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    match (a_pre, b_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let xs: Vec<&str> = x.split('.').collect();
            let ys: Vec<&str> = y.split('.').collect();
            for (p, q) in xs.iter().zip(&ys) {
                match identifier(p, q) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            xs.len().cmp(&ys.len())
        }
    }
}

fn split(v: &str) -> (&str, Option<&str>) {
    match v.split_once('-') {
        Some((rel, pre)) => (rel, Some(pre)),
        None => (v, None),
    }
}

/// Numeric identifiers by value (leading zeros and all), others as ASCII,
/// numeric before non-numeric.
fn identifier(x: &str, y: &str) -> Ordering {
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (num(x), num(y)) {
        (true, true) => {
            let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => x.cmp(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_precedence() {
        // semver.org item 11's own examples, in order.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(compare(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
            assert_eq!(compare(w[1], w[0]), Ordering::Greater);
        }
        assert_eq!(compare("1.10.0", "1.9.0"), Ordering::Greater);
        assert_eq!(compare("1.2", "1.2.0"), Ordering::Equal);
        assert_eq!(compare("0.1.0", "0.1.0"), Ordering::Equal);
        assert_eq!(compare("2026.12.05", "2026.11.27"), Ordering::Greater);
        assert_eq!(compare("2026.11.27-rc_1", "2026.11.27"), Ordering::Less);
    }
}
