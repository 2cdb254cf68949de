#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn config(mode: Mode) -> Config {
    Config {
        mu0: 0.0,
        k: 0.5,
        h: 4.0,
        mode,
    }
}

#[test]
fn invalid_parameters_are_refused() {
    let mut c = config(Mode::Both);
    c.h = -1.0;
    assert!(Cusum::new(c).is_err());
    c.h = 4.0;
    c.mu0 = f64::INFINITY;
    assert!(Cusum::new(c).is_err());
}

#[test]
fn nan_is_refused() {
    let mut c = Cusum::new(config(Mode::Both)).unwrap();
    assert!(c.update(f64::NAN).is_err());
}

#[test]
fn in_control_stream_stays_at_zero() {
    let mut c = Cusum::new(config(Mode::Both)).unwrap();
    for i in 0..100 {
        let s = c.update(if i % 2 == 0 { 0.4 } else { -0.4 }).unwrap();
        assert_eq!(s.alarm, None);
    }
}

#[test]
fn a_step_down_alarms_on_the_down_side_only() {
    let mut c = Cusum::new(config(Mode::Up)).unwrap();
    for _ in 0..50 {
        assert_eq!(c.update(-2.0).unwrap().alarm, None);
    }
    let mut c = Cusum::new(config(Mode::Both)).unwrap();
    let mut got = None;
    for t in 0..50 {
        if let Some(side) = c.update_and_reset(-2.0).unwrap().alarm {
            got = Some((t, side));
            break;
        }
    }
    // S- grows by 1.5 per step: 4.5 > 4 at the third observation.
    assert_eq!(got, Some((2, Side::Down)));
}
