#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// Deterministic, roughly uniform rows: a low-discrepancy sequence per feature.
fn rows(n: usize, d: usize, shift: f64, offset: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            (0..d)
                .map(|j| {
                    let k = (i + offset) as f64;
                    ((k * (0.618_033_988_7 + j as f64 * 0.1)).fract()) + shift
                })
                .collect()
        })
        .collect()
}

fn config(window: usize) -> DriftConfig {
    DriftConfig {
        window,
        mmd: Some(MmdConfig {
            permutations: 99,
            seed: 1,
            max_rows: 100,
        }),
        ..DriftConfig::default()
    }
}

#[test]
fn invalid_configs_are_refused() {
    let r = rows(10, 2, 0.0, 0);
    assert!(DriftMonitor::from_reference(&r, config(1)).is_err());
    let mut c = config(10);
    c.alpha = 1.0;
    assert!(DriftMonitor::from_reference(&r, c).is_err());
    let mut c = config(10);
    c.categorical = vec![5];
    assert!(DriftMonitor::from_reference(&r, c).is_err());
    assert!(DriftMonitor::from_reference(&r[..1], config(10)).is_err());
}

#[test]
fn bad_rows_are_refused_and_not_counted() {
    let mut m = DriftMonitor::from_reference(&rows(50, 2, 0.0, 0), config(10)).unwrap();
    assert!(m.push(&[1.0]).is_err());
    assert!(m.push(&[1.0, f64::NAN]).is_err());
    assert_eq!(m.pending(), 0);
}

#[test]
fn an_empty_window_reports_nothing() {
    let mut m = DriftMonitor::from_reference(&rows(50, 2, 0.0, 0), config(10)).unwrap();
    assert_eq!(m.flush(), None);
}

#[test]
fn same_distribution_does_not_drift_and_a_shift_does() {
    let reference = rows(400, 3, 0.0, 0);
    let mut m = DriftMonitor::from_reference(&reference, config(200)).unwrap();
    let mut report = None;
    for r in rows(200, 3, 0.0, 1000) {
        report = m.push(&r).unwrap();
    }
    let report = report.unwrap();
    assert_eq!(report.rows, 200);
    assert!(!report.drifted, "{report:?}");
    assert!((report.threshold - 0.01 / 4.0).abs() < 1e-15);
    assert_eq!(m.pending(), 0);

    let mut shifted = None;
    for r in rows(200, 3, 0.3, 5000) {
        shifted = m.push(&r).unwrap();
    }
    let shifted = shifted.unwrap();
    assert_eq!(shifted.window, 1);
    assert!(shifted.drifted);
    assert!(shifted.features.iter().all(|f| f.drifted));
    assert!(shifted.mmd.unwrap().p_value <= 0.01);
}

#[test]
fn categorical_features_use_chi_square() {
    let reference: Vec<Vec<f64>> = (0..300).map(|i| vec![f64::from(i % 3)]).collect();
    let mut c = config(90);
    c.categorical = vec![0];
    c.mmd = None;
    let mut m = DriftMonitor::from_reference(&reference, c.clone()).unwrap();
    let mut report = None;
    for i in 0..90 {
        report = m.push(&[f64::from(i % 3)]).unwrap();
    }
    let f = &report.unwrap().features[0];
    assert!(f.ks.is_none() && f.chi2.is_some() && !f.drifted);
    // A value the reference never had is drift.
    let mut m = DriftMonitor::from_reference(&reference, c).unwrap();
    let mut report = None;
    for i in 0..90 {
        report = m.push(&[if i % 2 == 0 { 7.0 } else { 1.0 }]).unwrap();
    }
    assert!(report.unwrap().drifted);
}

#[test]
fn identical_reference_rows_do_not_break_the_monitor() {
    let reference = vec![vec![1.0, 2.0]; 20];
    let mut m = DriftMonitor::from_reference(&reference, config(5)).unwrap();
    let mut report = None;
    for _ in 0..5 {
        report = m.push(&[1.0, 2.0]).unwrap();
    }
    let report = report.unwrap();
    assert!(report.mmd.is_none());
    assert!(!report.drifted);
}

#[test]
fn prediction_drift_flags_a_class_mix_change() {
    let c = PredictionDriftConfig {
        window: 200,
        ..PredictionDriftConfig::default()
    };
    let mut hist = [0_u64; CONFIDENCE_BINS];
    hist[9] = 800;
    hist[8] = 200;
    let mut p = PredictionDrift::new(vec![500.0, 500.0], Some(hist), c).unwrap();
    let mut report = None;
    for i in 0..200 {
        report = p.push(i % 2, if i % 5 == 0 { 0.85 } else { 0.95 }).unwrap();
    }
    let r = report.unwrap();
    assert!(!r.drifted, "{r:?}");
    let mut report = None;
    for i in 0..200 {
        report = p.push(usize::from(i % 10 == 0), 0.55).unwrap();
    }
    let r = report.unwrap();
    assert_eq!(r.window, 1);
    assert!(r.drifted);
    assert!(r.confidence_psi.unwrap() > 0.25);
}

#[test]
fn prediction_drift_refuses_bad_confidence() {
    let mut p = PredictionDrift::new(vec![1.0], None, PredictionDriftConfig::default()).unwrap();
    assert!(p.push(0, f64::NAN).is_err());
    assert!(p.push(0, 1.5).is_err());
    assert!(PredictionDrift::new(vec![], None, PredictionDriftConfig::default()).is_err());
}

#[test]
fn rolling_accuracy_alarms_only_on_a_full_window() {
    let mut a = RollingAccuracy::new(4, 0.75).unwrap();
    assert!(!a.push(false).below_floor);
    assert!(!a.push(true).below_floor);
    assert!(!a.push(true).below_floor);
    let s = a.push(true);
    assert_eq!((s.samples, s.accuracy, s.below_floor), (4, 0.75, false));
    // The oldest outcome (a miss) leaves as this miss arrives: still 3 of 4.
    let s = a.push(false);
    assert_eq!((s.accuracy, s.below_floor), (0.75, false));
    let s = a.push(false);
    assert_eq!((s.accuracy, s.below_floor), (0.5, true));
    assert!(RollingAccuracy::new(0, 0.5).is_err());
}
