use std::collections::HashSet;

use crate::{Features, FeaturesError, Reason};

#[test]
fn reason_codes_are_unique_snake_case() {
    let mut seen = HashSet::new();
    for r in Reason::ALL {
        let code = r.as_str();
        assert!(seen.insert(code), "duplicate code {code}");
        assert!(
            code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{code} is not snake_case"
        );
        assert!((400..600).contains(&r.status()));
        let json = serde_json::to_string(r).unwrap_or_default();
        assert_eq!(json, format!("\"{code}\""));
    }
}

#[test]
fn features_refuse_wrong_length() {
    assert!(matches!(
        Features::new(vec![1.0; 5], 2, 3),
        Err(FeaturesError::Shape { .. })
    ));
    assert!(matches!(
        Features::new(vec![], 0, 3),
        Err(FeaturesError::Shape { .. })
    ));
}

#[test]
fn features_refuse_non_finite() {
    assert_eq!(
        Features::new(vec![1.0, f32::NAN], 1, 2),
        Err(FeaturesError::NonFinite { index: 1 })
    );
    assert_eq!(
        Features::new(vec![1.0, 2.0, f32::INFINITY, 0.0], 2, 2),
        Err(FeaturesError::NonFinite { index: 2 })
    );
}

#[test]
fn features_rows_are_row_major() {
    let f = Features::new(vec![1.0, 2.0, 3.0, 4.0], 2, 2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.row(1), Some(&[3.0, 4.0][..]));
    assert_eq!(f.row(2), None);
    assert_eq!(f.iter_rows().count(), 2);
    assert_eq!(f.canonical_bytes().len(), 16);
}

/// The README's reason table is the enum, row for row.
#[test]
fn readme_reason_table_matches_the_enum() {
    let readme = include_str!("../../../README.md");
    let start = readme.find("<!-- reasons:start").unwrap_or(0);
    let end = readme.find("<!-- reasons:end").unwrap_or(0);
    assert!(start < end, "the README has no reasons table");
    let rows: Vec<&str> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains('`'))
        .collect();
    let expected: Vec<String> = Reason::ALL
        .iter()
        .map(|r| format!("| {} | `{}` | {} |", r.status(), r.as_str(), r.describe()))
        .collect();
    assert_eq!(rows, expected);
}
