#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{
    quantile_sorted, Baseline, BaselineBuilder, BaselineError, MAX_DISTINCT_LABELS,
    MAX_REFERENCE_ROWS,
};
use crate::mahalanobis::Mahalanobis;

/// Three features: a trend, a noisy function of it, and a constant.
fn sample(n: u32) -> Baseline {
    let mut b = BaselineBuilder::new(["x", "y", "k"]);
    for i in 0..n {
        let t = f64::from(i);
        b.push(&[t, 0.5 * t + (t * 1.7).sin(), 3.0]).unwrap();
    }
    b.finish().unwrap()
}

#[test]
fn computes_per_feature_statistics() {
    let mut b = BaselineBuilder::new(["a", "b"]);
    for r in [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]] {
        b.push(&r).unwrap();
    }
    let base = b.finish().unwrap();
    let a = &base.features[0];
    assert_eq!(
        (a.name.as_str(), a.count, a.mean, a.min, a.max),
        ("a", 4, 2.5, 1.0, 4.0)
    );
    assert!((a.std - (5.0_f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!(a.quantiles.p50, 2.5);
    assert!((base.covariance[0][1] - 50.0 / 3.0).abs() < 1e-12);
    assert_eq!(base.covariance[0][1], base.covariance[1][0]);
    assert_eq!(base.count(), 4);
    assert_eq!(base.feature_names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(base.label_counts, None);
}

#[test]
fn quantiles_match_numpy_linear() {
    let sorted = [-4.4, -1.25, 0.1, 0.3, 1.7, 2.2, 3.5, 5.0, 7.0, 8.8, 9.9];
    // numpy.quantile(x, p) with numpy 2.4 (method="linear").
    for (p, expected) in [
        (0.0, -4.4),
        (0.01, -4.085),
        (0.05, -2.825),
        (0.25, 0.2),
        (0.5, 2.2),
        (0.75, 6.0),
        (0.95, 9.350_000_000_000_001),
        (0.99, 9.790_000_000_000_001),
        (0.999, 9.889_000_000_000_001),
        (1.0, 9.9),
    ] {
        assert_eq!(quantile_sorted(&sorted, p), Some(expected), "p = {p}");
    }
    assert_eq!(quantile_sorted(&[], 0.5), None);
    assert_eq!(quantile_sorted(&sorted, 1.5), None);
    assert_eq!(quantile_sorted(&sorted, f64::NAN), None);
    assert_eq!(quantile_sorted(&[7.0], 0.3), Some(7.0));

    // Through the builder, from unsorted input: y_i = ((7919 i mod 1000) + 1)^2 / 7.
    let mut b = BaselineBuilder::new(["y", "z"]);
    for i in 0..1000_u32 {
        let y = f64::from((i * 7919) % 1000 + 1).powi(2) / 7.0;
        b.push(&[y, f64::from(i)]).unwrap();
    }
    let base = b.finish().unwrap();
    let q = base.features[0].quantiles.to_array();
    let numpy = [
        17.255_714_285_714_287,
        370.85,
        8982.25,
        35_785.785_714_285_72,
        80_410.75,
        128_942.15,
        140_017.115_714_285_7,
    ];
    for (got, want) in q.iter().zip(numpy) {
        assert!((got - want).abs() <= 1e-15 * want, "{got} vs {want}");
    }
    assert!((base.features[0].mean - 47_690.5).abs() < 1e-9);
    assert!((base.features[0].std - 42_653.007_235_017_74).abs() < 1e-9);
}

#[test]
fn json_round_trip_is_exact() {
    let mut b = BaselineBuilder::new(["x", "y"]);
    for i in 0..50_u32 {
        let t = f64::from(i) * 0.1;
        b.push(&[t.sin() * 1e-3, t.exp()]).unwrap();
        b.push_label(if i % 3 == 0 { "fraud" } else { "ok" })
            .unwrap();
    }
    let base = b.finish().unwrap();
    let json = base.to_json().unwrap();
    let back = Baseline::from_json(json.as_bytes()).unwrap();
    assert_eq!(back, base);
    assert_eq!(back.to_json().unwrap(), json);
    let labels = back.label_counts.unwrap();
    assert_eq!((labels["fraud"], labels["ok"]), (17, 33));
}

#[test]
fn same_data_gives_same_file() {
    assert_eq!(
        sample(3000).to_json().unwrap(),
        sample(3000).to_json().unwrap()
    );
}

#[test]
fn unknown_field_refused() {
    let mut v: serde_json::Value = serde_json::from_str(&sample(20).to_json().unwrap()).unwrap();
    v["extra"] = serde_json::json!(1);
    let err = Baseline::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(matches!(err, BaselineError::Json(_)), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&sample(20).to_json().unwrap()).unwrap();
    v["features"][0]["stdev"] = serde_json::json!(1.0);
    assert!(matches!(
        Baseline::from_json(v.to_string().as_bytes()),
        Err(BaselineError::Json(_))
    ));
    v = serde_json::from_str(&sample(20).to_json().unwrap()).unwrap();
    v["mahalanobis"]["p50"] = serde_json::json!(1.0);
    assert!(matches!(
        Baseline::from_json(v.to_string().as_bytes()),
        Err(BaselineError::Json(_))
    ));
}

#[test]
fn missing_field_refused() {
    let mut v: serde_json::Value = serde_json::from_str(&sample(20).to_json().unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("covariance");
    assert!(matches!(
        Baseline::from_json(v.to_string().as_bytes()),
        Err(BaselineError::Json(_))
    ));
}

#[test]
fn other_format_version_refused() {
    let mut base = sample(20);
    base.format_version = 2;
    let json = serde_json::to_string(&base).unwrap();
    assert!(matches!(
        Baseline::from_json(json.as_bytes()),
        Err(BaselineError::UnsupportedVersion(2))
    ));
}

#[test]
fn rejects_non_finite_row() {
    let mut b = BaselineBuilder::new(["a", "b"]);
    b.push(&[1.0, 2.0]).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            b.push(&[0.0, bad]),
            Err(BaselineError::NonFinite { feature: 1, .. })
        ));
    }
    assert_eq!(b.rows(), 1, "a refused row is not counted");
    b.push(&[3.0, 4.0]).unwrap();
    let base = b.finish().unwrap();
    assert_eq!(base.features[0].max, 3.0);
}

#[test]
fn rejects_row_of_wrong_width() {
    let mut b = BaselineBuilder::new(["a", "b"]);
    b.push(&[1.0, 2.0]).unwrap();
    assert!(matches!(
        b.push(&[1.0]),
        Err(BaselineError::WidthMismatch {
            row: 1,
            expected: 2,
            got: 1
        })
    ));
    assert!(matches!(
        b.push(&[1.0, 2.0, 3.0]),
        Err(BaselineError::WidthMismatch { row: 2, .. })
    ));
}

#[test]
fn needs_two_rows() {
    let mut b = BaselineBuilder::new(["a"]);
    b.push(&[1.0]).unwrap();
    assert!(matches!(
        b.finish(),
        Err(BaselineError::TooFewRows { rows: 1 })
    ));
}

#[test]
fn feature_names_must_be_present_and_unique() {
    let b = BaselineBuilder::new(Vec::<String>::new());
    assert!(matches!(b.finish(), Err(BaselineError::NoFeatures)));
    let mut b = BaselineBuilder::new(["a", "a"]);
    b.push(&[1.0, 1.0]).unwrap();
    b.push(&[2.0, 2.0]).unwrap();
    assert!(matches!(b.finish(), Err(BaselineError::DuplicateFeature(n)) if n == "a"));
    let mut b = BaselineBuilder::new([""]);
    b.push(&[1.0]).unwrap();
    b.push(&[2.0]).unwrap();
    assert!(matches!(b.finish(), Err(BaselineError::Invalid { .. })));
}

#[test]
fn labels_must_cover_every_row() {
    let mut b = BaselineBuilder::new(["a"]);
    b.push(&[1.0]).unwrap();
    b.push(&[2.0]).unwrap();
    b.push_label("x").unwrap();
    assert!(matches!(
        b.finish(),
        Err(BaselineError::LabelCountMismatch { labels: 1, rows: 2 })
    ));
}

#[test]
fn label_cardinality_is_bounded() {
    let mut b = BaselineBuilder::new(["a"]);
    for i in 0..MAX_DISTINCT_LABELS {
        b.push_label(&i.to_string()).unwrap();
    }
    b.push_label("0").unwrap();
    assert!(matches!(
        b.push_label("new"),
        Err(BaselineError::TooManyLabels { .. })
    ));
}

#[test]
fn reference_sample_is_evenly_spaced_and_capped() {
    let base = sample(2500);
    assert_eq!(base.reference_sample.len(), MAX_REFERENCE_ROWS);
    for (i, row) in base.reference_sample.iter().enumerate() {
        assert_eq!(row[0], (i * 2500 / 1000) as f64);
    }
    let small = sample(10);
    assert_eq!(small.reference_sample.len(), 10);
    assert_eq!(small.reference_sample[9][0], 9.0);
}

#[test]
fn mahalanobis_stats_describe_the_training_rows() {
    let base = sample(2000);
    let m = &base.mahalanobis;
    assert_eq!(m.ridge, super::DEFAULT_RIDGE);
    assert!(0.0 < m.p99 && m.p99 <= m.p999 && m.p999 <= m.max);
    let scorer = Mahalanobis::from_baseline(&base, m.ridge).unwrap();
    let max = (0..2000_u32)
        .map(|i| {
            let t = f64::from(i);
            scorer.distance_f64(&[t, 0.5 * t + (t * 1.7).sin(), 3.0])
        })
        .fold(0.0, f64::max);
    assert_eq!(max, m.max);
    // The constant feature is in the covariance with variance 0; the ridge keeps it factorable.
    assert_eq!(base.features[2].std, 0.0);
    assert_eq!(base.covariance[2][2], 0.0);
}

#[test]
fn validate_catches_inconsistencies() {
    let good = sample(30);
    good.validate().unwrap();
    type Corruption = Box<dyn Fn(&mut Baseline)>;
    let broken: Vec<(&str, Corruption)> = vec![
        ("negative std", Box::new(|b| b.features[0].std = -1.0)),
        ("nan mean", Box::new(|b| b.features[1].mean = f64::NAN)),
        ("count mismatch", Box::new(|b| b.features[1].count = 7)),
        ("asymmetric", Box::new(|b| b.covariance[0][1] += 1.0)),
        ("std vs cov", Box::new(|b| b.covariance[1][1] *= 2.0)),
        (
            "cov rows",
            Box::new(|b| {
                b.covariance.pop();
            }),
        ),
        (
            "cov cols",
            Box::new(|b| {
                b.covariance[0].pop();
            }),
        ),
        (
            "quantile order",
            Box::new(|b| b.features[0].quantiles.p25 = 1e9),
        ),
        (
            "quantile below min",
            Box::new(|b| b.features[0].quantiles.p01 = -1e9),
        ),
        ("min > max", Box::new(|b| b.features[0].min = 1e9)),
        (
            "maha order",
            Box::new(|b| b.mahalanobis.p999 = b.mahalanobis.max * 2.0),
        ),
        ("ridge", Box::new(|b| b.mahalanobis.ridge = -1.0)),
        ("ref width", Box::new(|b| b.reference_sample[0].push(1.0))),
        ("ref empty", Box::new(|b| b.reference_sample.clear())),
        (
            "ref too many",
            Box::new(|b| {
                let r = b.reference_sample[0].clone();
                b.reference_sample.resize(31, r);
            }),
        ),
        (
            "labels sum",
            Box::new(|b| {
                b.label_counts = Some([("a".to_owned(), 29)].into_iter().collect());
            }),
        ),
        (
            "labels zero",
            Box::new(|b| {
                b.label_counts = Some(
                    [("a".to_owned(), 30), ("b".to_owned(), 0)]
                        .into_iter()
                        .collect(),
                );
            }),
        ),
        ("names", Box::new(|b| b.features[1].name = "x".to_owned())),
        ("no features", Box::new(|b| b.features.clear())),
    ];
    for (what, corrupt) in broken {
        let mut b = good.clone();
        corrupt(&mut b);
        assert!(b.validate().is_err(), "{what} was accepted");
    }
}

#[test]
fn a_file_without_predictions_still_loads_and_writes_none() {
    let base = sample(20);
    assert_eq!(base.predictions, None);
    let json = base.to_json().unwrap();
    assert!(!json.contains("predictions"));
    assert_eq!(Baseline::from_json(json.as_bytes()).unwrap(), base);
}

#[test]
fn predictions_are_recorded_and_round_trip() {
    let mut b = BaselineBuilder::new(["x"]);
    for i in 0..10_u32 {
        b.push(&[f64::from(i)]).unwrap();
        b.push_prediction(if i < 7 { "a" } else { "b" }, f64::from(i) / 9.0)
            .unwrap();
    }
    assert!(b.push_prediction("a", f64::NAN).is_err());
    assert!(b.push_prediction("a", 1.5).is_err());
    let base = b.finish().unwrap();
    let p = base.predictions.as_ref().unwrap();
    assert_eq!(p.class_counts["a"], 7);
    assert_eq!(p.confidence_histogram.iter().sum::<u64>(), 10);
    // Only 9/9 = 1.0 reaches the last bin (8/9 is in bin 8): the last bin is closed at 1.
    assert_eq!(p.confidence_histogram[super::CONFIDENCE_BINS - 1], 1);
    let back = Baseline::from_json(base.to_json().unwrap().as_bytes()).unwrap();
    assert_eq!(back, base);
}

#[test]
fn inconsistent_predictions_are_refused() {
    let mut b = BaselineBuilder::new(["x"]);
    for i in 0..4_u32 {
        b.push(&[f64::from(i)]).unwrap();
        b.push_prediction("a", 0.9).unwrap();
    }
    let mut base = b.finish().unwrap();
    if let Some(p) = base.predictions.as_mut() {
        p.confidence_histogram[0] += 1;
    }
    assert!(base.validate().is_err());
}
