//! `page_hinkley.json` and `cusum.json`: the first alarm of an uninterrupted run with the statistics there,
//! and every alarm when the detector resets after each.

use rampart_detect::cusum::{self, Cusum, Side};
use rampart_detect::page_hinkley::{self, Mode, PageHinkley};
use serde::Deserialize;

use crate::common::{header, parse, Check, Tol, Versions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhFile {
    file: String,
    set: String,
    seed_family: String,
    definition: String,
    tolerance: PhTolerance,
    generator: String,
    versions: Versions,
    cases: Vec<PhCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhTolerance {
    #[serde(rename = "first_alarm/alarms_with_reset")]
    exact: String,
    #[serde(rename = "ph_up_at_alarm/ph_down_at_alarm")]
    stat: Tol,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhCase {
    id: String,
    note: String,
    input: PhInput,
    expected: PhExpected,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhInput {
    series: Vec<f64>,
    delta: f64,
    lambda: f64,
    alpha: f64,
    min_instances: u64,
    mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhExpected {
    #[serde(deserialize_with = "crate::common::required")]
    first_alarm: Option<usize>,
    #[serde(deserialize_with = "crate::common::required")]
    ph_up_at_alarm: Option<f64>,
    #[serde(deserialize_with = "crate::common::required")]
    ph_down_at_alarm: Option<f64>,
    alarms_with_reset: Vec<usize>,
}

fn mode(check: &mut Check, id: &str, m: &str) -> Option<Mode> {
    match m {
        "up" => Some(Mode::Up),
        "down" => Some(Mode::Down),
        "both" => Some(Mode::Both),
        other => {
            check.fail(id, format_args!("unknown mode {other:?}"));
            None
        }
    }
}

pub fn run_page_hinkley(text: &str, check: &mut Check) {
    let Some(file) = parse::<PhFile>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    let t = &file.tolerance;
    check.exact("(file)", "exact tolerance", t.exact.as_str(), "exact");
    for case in &file.cases {
        check.cases += 1;
        let id = case.id.as_str();
        let i = &case.input;
        let Some(m) = mode(check, id, &i.mode) else {
            continue;
        };
        let config = page_hinkley::Config {
            delta: i.delta,
            lambda: i.lambda,
            alpha: i.alpha,
            min_instances: i.min_instances,
            mode: m,
        };
        let (mut once, mut resetting) = match (PageHinkley::new(config), PageHinkley::new(config)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(err), _) | (_, Err(err)) => {
                check.error(id, "PageHinkley::new", err);
                continue;
            }
        };
        let mut first = None;
        let mut alarms = Vec::new();
        for (k, &x) in i.series.iter().enumerate() {
            let s = once.observe(x).unwrap();
            if s.alarm && first.is_none() {
                first = Some((k, s.ph_up, s.ph_down));
            }
            if resetting.update(x).unwrap().alarm {
                alarms.push(k);
            }
        }
        let e = &case.expected;
        check.exact(id, "first_alarm", first.map(|f| f.0), e.first_alarm);
        check.close_opt(
            id,
            "ph_up_at_alarm",
            first.map(|f| f.1),
            e.ph_up_at_alarm,
            &t.stat,
        );
        check.close_opt(
            id,
            "ph_down_at_alarm",
            first.map(|f| f.2),
            e.ph_down_at_alarm,
            &t.stat,
        );
        check.exact(id, "alarms_with_reset", &alarms, &e.alarms_with_reset);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CusumFile {
    file: String,
    set: String,
    seed_family: String,
    definition: String,
    tolerance: CusumTolerance,
    generator: String,
    versions: Versions,
    cases: Vec<CusumCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CusumTolerance {
    #[serde(rename = "first_alarm/side/alarms_with_reset")]
    exact: String,
    #[serde(rename = "s_plus_at_alarm/s_minus_at_alarm")]
    stat: Tol,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CusumCase {
    id: String,
    note: String,
    input: CusumInput,
    expected: CusumExpected,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CusumInput {
    series: Vec<f64>,
    mu0: f64,
    k: f64,
    h: f64,
    mode: String,
    baseline: usize,
    sigma0: f64,
    k_sigma: f64,
    h_sigma: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CusumExpected {
    #[serde(deserialize_with = "crate::common::required")]
    first_alarm: Option<usize>,
    #[serde(deserialize_with = "crate::common::required")]
    side: Option<String>,
    #[serde(deserialize_with = "crate::common::required")]
    s_plus_at_alarm: Option<f64>,
    #[serde(deserialize_with = "crate::common::required")]
    s_minus_at_alarm: Option<f64>,
    alarms_with_reset: Vec<usize>,
}

fn side_name(s: Side) -> String {
    match s {
        Side::Up => "up",
        Side::Down => "down",
        Side::Both => "both",
    }
    .to_owned()
}

pub fn run_cusum(text: &str, check: &mut Check) {
    let Some(file) = parse::<CusumFile>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    let t = &file.tolerance;
    check.exact("(file)", "exact tolerance", t.exact.as_str(), "exact");
    for case in &file.cases {
        check.cases += 1;
        let id = case.id.as_str();
        let i = &case.input;
        let Some(m) = mode(check, id, &i.mode) else {
            continue;
        };
        let config = cusum::Config {
            mu0: i.mu0,
            k: i.k,
            h: i.h,
            mode: m,
        };
        let (mut once, mut resetting) = match (Cusum::new(config), Cusum::new(config)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(err), _) | (_, Err(err)) => {
                check.error(id, "Cusum::new", err);
                continue;
            }
        };
        let mut first = None;
        let mut alarms = Vec::new();
        for (k, &x) in i.series.iter().enumerate() {
            let s = once.update(x).unwrap();
            if let (Some(side), None) = (s.alarm, first) {
                first = Some((k, side, s.s_plus, s.s_minus));
            }
            if resetting.update_and_reset(x).unwrap().alarm.is_some() {
                alarms.push(k);
            }
        }
        let e = &case.expected;
        check.exact(id, "first_alarm", first.map(|f| f.0), e.first_alarm);
        check.exact(id, "side", first.map(|f| side_name(f.1)), e.side.clone());
        check.close_opt(
            id,
            "s_plus_at_alarm",
            first.map(|f| f.2),
            e.s_plus_at_alarm,
            &t.stat,
        );
        check.close_opt(
            id,
            "s_minus_at_alarm",
            first.map(|f| f.3),
            e.s_minus_at_alarm,
            &t.stat,
        );
        check.exact(id, "alarms_with_reset", &alarms, &e.alarms_with_reset);
    }
}
