//! `shapiro_wilk.json` and `prada.json`: Shapiro–Wilk W, p-value and the flag at each delta; PRADA streams
//! query by query (dmin, whether the query joined its growing set, the class threshold, W) and at the end
//! (D, the kept count, final W and p-value, alarms and first alarms per delta, growing-set sizes).

use std::collections::BTreeMap;

use rampart_detect::prada::{Config, Prada};
use rampart_detect::shapiro::shapiro_wilk;
use serde::Deserialize;

use crate::common::{header, parse, Check, Tol, Versions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapiroFile {
    file: String,
    set: String,
    seed_family: String,
    definition: String,
    tolerance: ShapiroTolerance,
    generator: String,
    versions: Versions,
    cases: Vec<ShapiroCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapiroTolerance {
    #[serde(rename = "W")]
    w: Tol,
    pvalue: Tol,
    flag: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapiroCase {
    id: String,
    note: String,
    input: ShapiroInput,
    expected: ShapiroExpected,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapiroInput {
    distances: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapiroExpected {
    #[serde(rename = "W")]
    w: f64,
    pvalue: f64,
    flag: BTreeMap<String, bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PradaFile {
    file: String,
    set: String,
    seed_family: String,
    definition: String,
    tolerance: PradaTolerance,
    generator: String,
    versions: Versions,
    deltas: Vec<f64>,
    cases: Vec<PradaCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PradaTolerance {
    #[serde(rename = "W")]
    w: Tol,
    pvalue: Tol,
    #[serde(rename = "flag/alarm/first_alarm/added/n_kept")]
    exact: String,
    #[serde(rename = "dmin/threshold/D")]
    dist: Tol,
}

#[derive(Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
#[allow(clippy::large_enum_variant)] // parsed once per case in a test
enum PradaCase {
    #[serde(rename = "shapiro")]
    Shapiro {
        id: String,
        note: String,
        input: ShapiroInput,
        expected: ShapiroExpected,
    },
    #[serde(rename = "stream")]
    Stream {
        id: String,
        note: String,
        input: StreamInput,
        expected: StreamExpected,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamInput {
    queries: Vec<Vec<f64>>,
    classes: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamExpected {
    per_query: PerQuery,
    #[serde(rename = "D")]
    d: Vec<f64>,
    n_kept: usize,
    #[serde(rename = "W_final")]
    #[serde(deserialize_with = "crate::common::required")]
    w_final: Option<f64>,
    #[serde(deserialize_with = "crate::common::required")]
    pvalue_final: Option<f64>,
    alarm_final: BTreeMap<String, bool>,
    first_alarm: BTreeMap<String, Option<usize>>,
    growing_set_sizes: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PerQuery {
    dmin: Vec<Option<f64>>,
    added: Vec<bool>,
    threshold: Vec<f64>,
    #[serde(rename = "W")]
    w: Vec<Option<f64>>,
}

/// The deltas a flag map is keyed by, parsed back from the keys ("0.9" …).
fn deltas_of<V>(
    check: &mut Check,
    id: &str,
    map: &BTreeMap<String, V>,
    deltas: &[f64],
) -> Vec<(String, f64)> {
    let keys: Vec<(String, f64)> = map
        .keys()
        .map(|k| (k.clone(), k.parse::<f64>().unwrap_or(f64::NAN)))
        .collect();
    let mut got: Vec<f64> = keys.iter().map(|(_, d)| *d).collect();
    got.sort_by(f64::total_cmp);
    let mut want = deltas.to_vec();
    want.sort_by(f64::total_cmp);
    check.exact(id, "delta keys", got, want);
    keys
}

fn check_shapiro(
    check: &mut Check,
    id: &str,
    input: &ShapiroInput,
    e: &ShapiroExpected,
    w_tol: &Tol,
    p_tol: &Tol,
) {
    let r = match shapiro_wilk(&input.distances) {
        Ok(r) => r,
        Err(err) => {
            check.error(id, "shapiro_wilk", err);
            return;
        }
    };
    check.close(id, "W", r.w, e.w, w_tol);
    check.close(id, "pvalue", r.p_value, e.pvalue, p_tol);
    for (key, delta) in deltas_of(check, id, &e.flag, &[0.9, 0.95, 0.96]) {
        check.exact(id, format_args!("flag[{key}]"), r.w < delta, e.flag[&key]);
    }
}

pub fn run_shapiro_file(text: &str, check: &mut Check) {
    let Some(file) = parse::<ShapiroFile>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    check.exact(
        "(file)",
        "flag tolerance",
        file.tolerance.flag.as_str(),
        "exact",
    );
    for case in &file.cases {
        check.cases += 1;
        check_shapiro(
            check,
            &case.id,
            &case.input,
            &case.expected,
            &file.tolerance.w,
            &file.tolerance.pvalue,
        );
    }
}

pub fn run(text: &str, check: &mut Check) {
    let Some(file) = parse::<PradaFile>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    let t = &file.tolerance;
    check.exact("(file)", "exact tolerance", t.exact.as_str(), "exact");
    for case in &file.cases {
        check.cases += 1;
        match case {
            PradaCase::Shapiro {
                id,
                input,
                expected,
                ..
            } => {
                check_shapiro(check, id, input, expected, &t.w, &t.pvalue);
            }
            PradaCase::Stream {
                id,
                input,
                expected: e,
                ..
            } => {
                run_stream(check, id, input, e, t, &file.deltas);
            }
        }
    }
}

fn run_stream(
    check: &mut Check,
    id: &str,
    input: &StreamInput,
    e: &StreamExpected,
    t: &PradaTolerance,
    deltas: &[f64],
) {
    // Bounds above anything in the file, so the paper's unbounded algorithm is what runs.
    let config = Config {
        delta: 0.95,
        min_distances: 100,
        test_every: 1,
        max_stored_queries: 1_000_000,
        max_distances: 1_000_000,
    };
    let mut prada = Prada::new(config).unwrap();
    let keys = deltas_of(check, id, &e.first_alarm, deltas);
    let mut first: BTreeMap<String, Option<usize>> =
        keys.iter().map(|(k, _)| (k.clone(), None)).collect();
    let n = input.queries.len();
    check.exact(id, "classes length", input.classes.len(), n);
    for (name, len) in [
        ("per_query.dmin", e.per_query.dmin.len()),
        ("per_query.added", e.per_query.added.len()),
        ("per_query.threshold", e.per_query.threshold.len()),
        ("per_query.W", e.per_query.w.len()),
    ] {
        check.exact(id, name, len, n);
    }
    for (i, (q, &c)) in input.queries.iter().zip(&input.classes).enumerate() {
        let obs = match prada.observe(q, c) {
            Ok(o) => o,
            Err(err) => {
                check.error(id, format_args!("query {i}"), err);
                return;
            }
        };
        check.close_opt(
            id,
            format_args!("dmin[{i}]"),
            obs.dmin,
            e.per_query.dmin[i],
            &t.dist,
        );
        check.exact(
            id,
            format_args!("added[{i}]"),
            obs.added,
            e.per_query.added[i],
        );
        check.close(
            id,
            format_args!("threshold[{i}]"),
            obs.threshold,
            e.per_query.threshold[i],
            &t.dist,
        );
        check.close_opt(id, format_args!("W[{i}]"), obs.w, e.per_query.w[i], &t.w);
        if let Some(w) = obs.w {
            for (key, delta) in &keys {
                let slot = first.get_mut(key).unwrap();
                if slot.is_none() && w < *delta {
                    *slot = Some(i);
                }
            }
        }
    }
    let d: Vec<f64> = prada.distances().iter().copied().collect();
    check.close_all(id, "D", &d, &e.d, &t.dist);
    check.exact(id, "n_kept", prada.kept_distances().len(), e.n_kept);
    let fin = prada.test();
    check.close_opt(id, "W_final", fin.map(|f| f.w), e.w_final, &t.w);
    check.close_opt(
        id,
        "pvalue_final",
        fin.map(|f| f.p_value),
        e.pvalue_final,
        &t.pvalue,
    );
    for (key, delta) in deltas_of(check, id, &e.alarm_final, deltas) {
        let alarm = d.len() > 100 && fin.is_some_and(|f| f.w < delta);
        check.exact(
            id,
            format_args!("alarm_final[{key}]"),
            alarm,
            e.alarm_final[&key],
        );
    }
    check.exact(id, "first_alarm", &first, &e.first_alarm);
    let sizes: BTreeMap<String, usize> = prada
        .growing_set_sizes()
        .map(|(c, s)| (c.to_string(), s))
        .collect();
    check.exact(id, "growing_set_sizes", &sizes, &e.growing_set_sizes);
}
