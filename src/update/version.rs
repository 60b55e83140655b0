//! Bundle versions: dotted strings such as `0.1.10` or `1.2.0-rc1`, compared part by part.
//! Pure; no I/O.

use std::cmp::Ordering;

/// Orders two versions by their `.`-separated parts: parts that are both numbers compare as
/// numbers (`0.1.9 < 0.1.10`), anything else as text; a missing part counts as `0`
/// (`0.2 == 0.2.0`).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.trim().split('.'), b.trim().split('.'));
    loop {
        let (x, y) = match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => (x.unwrap_or("0"), y.unwrap_or("0")),
        };
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_parts_compare_as_numbers() {
        assert_eq!(compare("0.1.0", "0.1.10"), Ordering::Less);
        assert_eq!(compare("0.1.10", "0.2"), Ordering::Less);
        assert_eq!(compare("0.1.9", "0.1.10"), Ordering::Less);
        assert_eq!(compare("1.0", "0.99.99"), Ordering::Greater);
        assert_eq!(compare("10", "9"), Ordering::Greater);
    }

    #[test]
    fn missing_parts_count_as_zero() {
        assert_eq!(compare("0.2", "0.2.0"), Ordering::Equal);
        assert_eq!(compare("0.2", "0.2.1"), Ordering::Less);
        assert_eq!(compare(" 1.2 ", "1.2"), Ordering::Equal);
    }

    #[test]
    fn other_parts_compare_as_text() {
        assert_eq!(compare("1.0.0-rc1", "1.0.0-rc2"), Ordering::Less);
        assert_eq!(compare("1.0.beta", "1.0.alpha"), Ordering::Greater);
        assert_eq!(compare("1.0.0-rc1", "1.0.1"), Ordering::Less);
        assert_eq!(compare("1.x", "1.x"), Ordering::Equal);
    }
}
