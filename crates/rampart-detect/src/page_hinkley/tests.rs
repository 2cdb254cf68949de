#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn config(mode: Mode) -> Config {
    Config {
        delta: 0.005,
        lambda: 5.0,
        alpha: 1.0,
        min_instances: 10,
        mode,
    }
}

#[test]
fn invalid_parameters_are_refused() {
    let mut c = config(Mode::Both);
    c.alpha = 0.0;
    assert!(PageHinkley::new(c).is_err());
    c.alpha = 1.0;
    c.lambda = f64::NAN;
    assert!(PageHinkley::new(c).is_err());
}

#[test]
fn nan_is_refused_and_leaves_state_alone() {
    let mut ph = PageHinkley::new(config(Mode::Both)).unwrap();
    ph.update(1.0).unwrap();
    assert!(ph.update(f64::NAN).is_err());
    assert_eq!(ph.count(), 1);
}

#[test]
fn constant_stream_never_alarms() {
    let mut ph = PageHinkley::new(config(Mode::Both)).unwrap();
    for _ in 0..1000 {
        assert!(!ph.update(3.0).unwrap().alarm);
    }
}

#[test]
fn a_step_up_alarms_and_resets() {
    let mut ph = PageHinkley::new(config(Mode::Up)).unwrap();
    let mut alarm_at = None;
    for t in 0..200 {
        let x = if t < 100 { 0.0 } else { 1.0 };
        if ph.update(x).unwrap().alarm {
            alarm_at = Some(t);
            break;
        }
    }
    let t = alarm_at.unwrap();
    assert!((100..120).contains(&t), "{t}");
    assert_eq!(ph.count(), 0);
}

#[test]
fn no_alarm_during_warm_up() {
    let mut ph = PageHinkley::new(config(Mode::Both)).unwrap();
    for t in 0..9 {
        let s = ph.observe(f64::from(t) * 100.0).unwrap();
        assert!(!s.alarm);
    }
}
