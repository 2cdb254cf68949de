#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn benign(i: u32) -> Vec<f64> {
    let t = f64::from(i);
    vec![
        (t * 1.7).sin() * 3.0,
        (t * 0.9).cos() * 2.0,
        (t * 2.3).sin(),
    ]
}

#[test]
fn invalid_config_is_refused() {
    let c = Config {
        delta: 1.5,
        ..Config::default()
    };
    assert!(Prada::new(c).is_err());
    let t = TrackerConfig {
        max_identities: 0,
        ..TrackerConfig::default()
    };
    assert!(PradaTracker::<u32>::new(t).is_err());
}

#[test]
fn bad_queries_are_refused_without_changing_state() {
    let mut p = Prada::new(Config::default()).unwrap();
    p.observe(&[1.0, 2.0], 0).unwrap();
    assert!(matches!(
        p.observe(&[1.0, f64::NAN], 0),
        Err(StatError::NonFinite { .. })
    ));
    assert!(matches!(
        p.observe(&[1.0], 0),
        Err(StatError::WidthMismatch { .. })
    ));
    assert!(matches!(p.observe(&[], 0), Err(StatError::TooFew { .. })));
    assert_eq!(p.queries(), 1);
}

#[test]
fn first_query_of_a_class_records_no_distance() {
    let mut p = Prada::new(Config::default()).unwrap();
    let o = p.observe(&[0.0, 0.0], 3).unwrap();
    assert_eq!(o.dmin, None);
    assert!(o.added);
    let o = p.observe(&[3.0, 4.0], 3).unwrap();
    assert_eq!(o.dmin, Some(5.0));
    assert_eq!(p.distances().len(), 1);
}

#[test]
fn identical_queries_never_alarm() {
    let mut p = Prada::new(Config::default()).unwrap();
    for _ in 0..300 {
        let o = p.observe(&[1.0, 1.0], 0).unwrap();
        assert!(!o.alarm);
    }
}

#[test]
fn stored_queries_and_distances_are_bounded() {
    let config = Config {
        max_stored_queries: 10,
        max_distances: 50,
        ..Config::default()
    };
    let mut p = Prada::new(config).unwrap();
    for i in 0..500 {
        p.observe(&benign(i), i % 3).unwrap();
    }
    let stored: usize = p.growing_set_sizes().map(|(_, s)| s).sum();
    assert!(stored <= 10);
    assert!(p.distances().len() <= 50);
}

#[test]
fn tracker_evicts_the_least_recently_seen_identity() {
    let config = TrackerConfig {
        max_identities: 2,
        ..TrackerConfig::default()
    };
    let mut t = PradaTracker::new(config).unwrap();
    t.observe(&"a", &[1.0], 0).unwrap();
    t.observe(&"b", &[1.0], 0).unwrap();
    t.observe(&"a", &[2.0], 0).unwrap();
    t.observe(&"c", &[1.0], 0).unwrap();
    assert_eq!(t.len(), 2);
    assert!(t.get(&"b").is_none());
    assert_eq!(t.get(&"a").unwrap().queries(), 2);
    assert_eq!(t.evicted(), 1);
}

#[test]
fn tracker_reports_count_and_coverage() {
    let edges = vec![[-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]; 2];
    let config = TrackerConfig {
        coverage: Some(Coverage::from_edges(edges)),
        ..TrackerConfig::default()
    };
    let mut t = PradaTracker::new(config).unwrap();
    let r = t.observe(&7_u64, &[0.5, 0.5], 1).unwrap();
    assert_eq!(r.queries, 1);
    assert_eq!(r.coverage, Some(2.0 / 16.0));
    let r = t.observe(&7_u64, &[-10.0, 10.0], 1).unwrap();
    assert_eq!(r.queries, 2);
    assert_eq!(r.coverage, Some(4.0 / 16.0));
    assert_eq!(t.coverage(&7), Some(0.25));
}

#[test]
fn tracker_refuses_nan_without_admitting() {
    let mut t = PradaTracker::new(TrackerConfig::default()).unwrap();
    assert!(t.observe(&1_u8, &[f64::NAN], 0).is_err());
    assert!(t.is_empty());
}

#[test]
fn tracker_refuses_an_empty_query_without_admitting() {
    let mut t = PradaTracker::new(TrackerConfig::default()).unwrap();
    assert!(matches!(
        t.observe(&1_u8, &[], 0),
        Err(StatError::TooFew { .. })
    ));
    assert!(t.is_empty());
}

/// Distances from another replica join `D` of a tracked identity only, and drive the test as local ones do:
/// a stream split over two trackers alarms on the one that sees both halves.
#[test]
fn remote_distances_join_only_tracked_identities_and_are_tested() {
    let config = TrackerConfig {
        prada: Config {
            min_distances: 10,
            ..Config::default()
        },
        ..TrackerConfig::default()
    };
    let mut t = PradaTracker::new(config).unwrap();
    assert_eq!(t.push_distance(&1_u8, 0.5).unwrap(), None);
    assert!(t.is_empty());
    t.observe(&1_u8, &[0.0, 0.0], 0).unwrap();
    assert!(t.push_distance(&1_u8, f64::NAN).is_err());
    assert!(t.push_distance(&1_u8, -1.0).is_err());
    // A very skewed stream: many equal tiny distances and a few large ones is far from normal.
    let mut alarmed = false;
    for i in 0..40 {
        let d = if i % 10 == 0 {
            5.0
        } else {
            0.01 + f64::from(i) * 1e-4
        };
        let r = t.push_distance(&1_u8, d).unwrap().unwrap();
        alarmed |= r.observation.alarm;
    }
    assert!(alarmed);
    assert_eq!(t.get(&1_u8).unwrap().queries(), 41);
    assert_eq!(t.get(&1_u8).unwrap().distances().len(), 40);
}

/// What `kept_distances` must equal: the filter of PRADA's Algorithm 1 over `D` in arrival order, sorted.
fn kept_by_filter(d: &VecDeque<f64>) -> Vec<f64> {
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let sd = (d.iter().map(|z| (z - mean) * (z - mean)).sum::<f64>() / n).sqrt();
    let mut kept: Vec<f64> = d
        .iter()
        .copied()
        .filter(|z| (z - mean).abs() <= 3.0 * sd)
        .collect();
    kept.sort_by(f64::total_cmp);
    kept
}

#[test]
fn kept_distances_follow_the_filter_as_old_distances_are_dropped() {
    let config = Config {
        max_distances: 60,
        ..Config::default()
    };
    let mut p = Prada::new(config).unwrap();
    // Distances with repeats, outliers and zeros, well past the cap so the oldest keep leaving.
    for i in 0..400_u32 {
        let d = match i % 17 {
            0 => 50.0,
            1 | 2 => 0.0,
            k => f64::from(k % 5) * 0.25 + f64::from(i % 3),
        };
        p.push_distance(d).unwrap();
        assert_eq!(
            p.kept_distances(),
            kept_by_filter(p.distances()),
            "after {i}"
        );
        let mut all: Vec<f64> = p.distances().iter().copied().collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(p.distances.sorted, all);
    }
    assert_eq!(p.distances().len(), 60);
    let t = p.test().unwrap();
    let reference = crate::shapiro::shapiro_wilk(&kept_by_filter(p.distances())).unwrap();
    assert!((t.w - reference.w).abs() < 1e-12);
}
