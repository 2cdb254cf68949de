//! `rampart monitor report`: an offline, self-contained HTML report of what the audit log says about a
//! model's traffic — decisions and reasons over time, the predicted-class mix against the baseline's, the
//! alerts the monitors raised (data drift, model extraction, …) and the identities they flagged.
//!
//! What the log can and cannot tell: decision records carry identity, model, outcome, reason and the
//! sanitized output, but not the input, unless the gateway ran with `[audit] store_input = true` (inputs are
//! then sealed). So per-feature drift over time is recomputed here — KS and PSI per time bucket against the
//! baseline's reference sample, with the same `rampart-detect` functions the live monitor uses — only when
//! `--key-file` opens stored inputs; otherwise the report says so and shows what the log does hold.
//!
//! Plots are hand-written SVG inside the one HTML file: no script, no stylesheet or font fetched, so the
//! report opens offline and can be attached to an incident as is. Every string from the log is escaped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use rampart_audit::{read_log, EntryBody};
use rampart_crypto::container::AeadKey;
use rampart_detect::{ks_2samp, Baseline, PsiReference};
use time::OffsetDateTime;

/// The family-wise level the report's KS line is drawn at (Bonferroni over the features), as the monitor's
/// default `alpha`.
const ALPHA: f64 = 0.01;
/// PSI above which a feature is usually called shifted (the monitor's default `psi_threshold`).
const PSI_LINE: f64 = 0.25;
/// Fewest rows in a bucket for its drift tests to be drawn.
const MIN_BUCKET_ROWS: usize = 5;
/// Identities listed by request count.
const TOP_IDENTITIES: usize = 10;

#[derive(Subcommand)]
pub(crate) enum MonitorCommand {
    /// Write an offline HTML report (inline SVG plots) from an audit log and a baseline.
    ///
    /// Example: rampart monitor report --audit rampart-data/audit --baseline m.baseline.json --out report.html
    Report(ReportArgs),
}

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// The audit directory.
    #[arg(long)]
    audit: PathBuf,
    /// The model's baseline profile (`rampart profile`): reference sample and class mix.
    #[arg(long)]
    baseline: PathBuf,
    /// Where to write the HTML file.
    #[arg(long)]
    out: PathBuf,
    /// Only this model's records (default: every model).
    #[arg(long)]
    model: Option<String>,
    /// The audit's aes256 key: opens sealed outputs and stored inputs, for per-feature drift over time.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Time buckets on the x axis.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=200))]
    buckets: u16,
}

pub(crate) fn run(cmd: MonitorCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MonitorCommand::Report(args) => report(&args),
    }
}

/// One decision, reduced to what the report plots.
struct Row {
    time: OffsetDateTime,
    identity: String,
    outcome: &'static str,
    reason: Option<String>,
    classes: Vec<String>,
    inputs: Vec<Vec<f64>>,
}

/// One alert line.
struct AlertRow {
    time: OffsetDateTime,
    kind: String,
    model: String,
    identity: String,
    detail: String,
}

fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read(&args.baseline)
        .with_context(|| format!("cannot read {}", args.baseline.display()))?;
    let baseline = Baseline::from_json(&text)
        .with_context(|| format!("{} is not a valid baseline", args.baseline.display()))?;
    let key = match &args.key_file {
        Some(k) => Some(AeadKey::load(k)?),
        None => None,
    };
    let mut rows = Vec::new();
    let mut alerts = Vec::new();
    let mut sealed_unopened = 0u64;
    let wanted = |m: &str| args.model.as_deref().is_none_or(|w| w == m);
    read_log(&args.audit, None, |entry, _| match &entry.body {
        EntryBody::Decision(d) if wanted(&d.model) => {
            let mut output = d.output.clone();
            let mut inputs = Vec::new();
            if d.sealed.is_some() {
                match key.as_ref().map(|k| d.open(k)) {
                    Some(Ok(opened)) => {
                        output = opened.output;
                        inputs = opened.input.as_ref().map(input_rows).unwrap_or_default();
                    }
                    _ => sealed_unopened += 1,
                }
            }
            rows.push(Row {
                time: entry.time,
                identity: d.identity.clone(),
                outcome: match d.decision.outcome {
                    rampart_audit::Outcome::Pass => "pass",
                    rampart_audit::Outcome::Uncertain => "uncertain",
                    rampart_audit::Outcome::Reject => "reject",
                },
                reason: d.decision.reason.clone(),
                classes: output_classes(&output),
                inputs,
            });
        }
        EntryBody::Alert(a) => {
            let s = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            if wanted(&s("model")) || s("model").is_empty() {
                alerts.push(AlertRow {
                    time: entry.time,
                    kind: s("kind"),
                    model: s("model"),
                    identity: s("identity"),
                    detail: s("detail"),
                });
            }
        }
        _ => {}
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    let html = render(args, &baseline, &rows, &alerts, sealed_unopened);
    // A report is regenerated at will, so an existing one is replaced.
    std::fs::write(&args.out, html.as_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} decisions, {} alerts)",
        args.out.display(),
        rows.len(),
        alerts.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The stored input's rows (`[[..], ..]`, or one row `[..]`).
fn input_rows(v: &serde_json::Value) -> Vec<Vec<f64>> {
    let Some(a) = v.as_array() else {
        return Vec::new();
    };
    let row = |r: &serde_json::Value| -> Option<Vec<f64>> {
        r.as_array()?
            .iter()
            .map(serde_json::Value::as_f64)
            .collect()
    };
    if a.iter().all(serde_json::Value::is_number) {
        return row(v).into_iter().collect();
    }
    a.iter().filter_map(row).collect()
}

/// The predicted labels of a sanitized output: v1 one row or `predictions`, v2 the `label` tensor; an
/// uncertain row counts as `uncertain`.
fn output_classes(v: &serde_json::Value) -> Vec<String> {
    fn one(r: &serde_json::Value) -> Option<String> {
        if r["result"] == "uncertain" {
            return Some("uncertain".into());
        }
        r["prediction"].as_str().map(str::to_owned)
    }
    if let Some(rows) = v["predictions"].as_array() {
        return rows.iter().filter_map(one).collect();
    }
    if let Some(outputs) = v["outputs"].as_array() {
        return outputs
            .iter()
            .filter(|o| o["name"] == "label")
            .filter_map(|o| o["data"].as_array())
            .flatten()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
    }
    one(v).into_iter().collect()
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn fmt_time(t: OffsetDateTime) -> String {
    rampart_audit::format::format_time(t).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Colours of series, in order (colour-blind-safe Okabe–Ito).
const COLOURS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

const W: f64 = 760.0;
const H: f64 = 260.0;
const L: f64 = 56.0;
const R: f64 = 150.0;
const T: f64 = 16.0;
const B: f64 = 40.0;

/// A line chart: one polyline per series over the buckets (gaps where a value is missing), an optional
/// dashed reference line, the legend on the right.
fn line_chart(
    x_labels: &[String],
    series: &[(String, Vec<Option<f64>>)],
    y_label: &str,
    reference: Option<(f64, &str)>,
) -> String {
    let values = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .chain(reference.map(|r| r.0));
    let y_max = values.fold(0.0_f64, f64::max).max(1e-9) * 1.1;
    let n = x_labels.len().max(1);
    let x = |i: usize| L + (W - L - R) * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| T + (H - T - B) * (1.0 - v / y_max);
    let mut s = svg_open(y_label, y_max, x_labels, &x);
    if let Some((v, name)) = reference {
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#555">{}</text>"##,
            W - R,
            y(v),
            y(v),
            W - R + 4.0,
            y(v) + 3.0,
            esc(name)
        );
    }
    for (k, (name, v)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let mut path = String::new();
        let mut pen_down = false;
        for (i, p) in v.iter().enumerate() {
            match p {
                Some(p) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(i),
                        y(*p)
                    );
                    let _ = write!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"><title>{}: {p:.4}</title></circle>"#,
                        x(i),
                        y(*p),
                        esc(name)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            s,
            r#"<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>"#
        );
        legend(&mut s, k, name, colour);
    }
    s.push_str("</svg>");
    s
}

/// Stacked bars: one bar per bucket, one segment per series.
fn stacked_bars(x_labels: &[String], series: &[(String, Vec<f64>)], y_label: &str) -> String {
    let n = x_labels.len().max(1);
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|(_, v)| v.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let y_max = totals.iter().copied().fold(0.0_f64, f64::max).max(1.0) * 1.1;
    let x = |i: usize| L + (W - L - R) * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| T + (H - T - B) * (1.0 - v / y_max);
    let bar = (W - L - R) / n as f64 * 0.7;
    let mut s = svg_open(y_label, y_max, x_labels, &x);
    let mut base = vec![0.0; n];
    for (k, (name, v)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        for (i, b) in base.iter_mut().enumerate() {
            let c = v.get(i).copied().unwrap_or(0.0);
            if c > 0.0 {
                let _ = write!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="{colour}"><title>{}: {c}</title></rect>"#,
                    x(i) - bar / 2.0,
                    y(*b + c),
                    y(*b) - y(*b + c),
                    esc(name)
                );
            }
            *b += c;
        }
        legend(&mut s, k, name, colour);
    }
    s.push_str("</svg>");
    s
}

/// Grouped bars: per category, one bar per series (shares in [0, 1]).
fn grouped_bars(categories: &[String], series: &[(String, Vec<f64>)], y_label: &str) -> String {
    let n = categories.len().max(1);
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    let x = |i: usize| L + (W - L - R) * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| T + (H - T - B) * (1.0 - v / y_max);
    let group = (W - L - R) / n as f64 * 0.8;
    let bar = group / series.len().max(1) as f64;
    let mut s = svg_open(y_label, y_max, categories, &x);
    for (k, (name, v)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        for (i, c) in v.iter().enumerate() {
            let left = x(i) - group / 2.0 + bar * k as f64;
            let _ = write!(
                s,
                r#"<rect x="{left:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {c:.3}</title></rect>"#,
                y(*c),
                bar * 0.95,
                (H - B) - y(*c),
                esc(name)
            );
        }
        legend(&mut s, k, name, colour);
    }
    s.push_str("</svg>");
    s
}

fn svg_open(y_label: &str, y_max: f64, x_labels: &[String], x: &dyn Fn(usize) -> f64) -> String {
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11"><rect width="{W}" height="{H}" fill="#fff"/>"##
    );
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let yy = T + (H - T - B) * (1.0 - f64::from(k) / 4.0);
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            W - R,
            L - 4.0,
            yy + 3.0,
            short(v)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{L}" x2="{L}" y1="{T}" y2="{:.1}" stroke="#333"/><line x1="{L}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/><text x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle" fill="#333">{}</text>"##,
        H - B,
        W - R,
        H - B,
        H - B,
        (H - B + T) / 2.0,
        (H - B + T) / 2.0,
        esc(y_label)
    );
    // At most ~8 x labels, so they never overlap.
    let step = x_labels.len().div_ceil(8).max(1);
    for (i, label) in x_labels.iter().enumerate().step_by(step) {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            x(i),
            H - B + 14.0,
            esc(label)
        );
    }
    s
}

fn legend(s: &mut String, k: usize, name: &str, colour: &str) {
    let yy = T + 14.0 * k as f64;
    let _ = write!(
        s,
        r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
        W - R + 12.0,
        yy,
        W - R + 26.0,
        yy + 9.0,
        esc(name)
    );
}

fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Bucket index of each time, over `n` equal spans from the first to the last.
fn bucketer(rows: &[Row], n: usize) -> (impl Fn(OffsetDateTime) -> usize, Vec<String>) {
    let first = rows.iter().map(|r| r.time).min();
    let last = rows.iter().map(|r| r.time).max();
    let (start, span) = match (first, last) {
        (Some(a), Some(b)) => (a, (b - a).as_seconds_f64().max(1e-3)),
        _ => (OffsetDateTime::UNIX_EPOCH, 1.0),
    };
    let labels = (0..n)
        .map(|i| {
            let t = start + time::Duration::seconds_f64(span * i as f64 / n as f64);
            format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
        })
        .collect();
    let f = move |t: OffsetDateTime| {
        let x = (t - start).as_seconds_f64() / span * n as f64;
        (x.max(0.0) as usize).min(n - 1)
    };
    (f, labels)
}

fn render(
    args: &ReportArgs,
    baseline: &Baseline,
    rows: &[Row],
    alerts: &[AlertRow],
    sealed_unopened: u64,
) -> String {
    let n = usize::from(args.buckets);
    let (bucket, labels) = bucketer(rows, n);
    let mut h = String::new();
    let title = format!(
        "Rampart monitoring report{}",
        args.model
            .as_deref()
            .map_or(String::new(), |m| format!(" — {m}"))
    );
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;\
         text-align:left;font-size:13px}}.note{{background:#f6f6f6;padding:.5em 1em;border-left:3px solid #888}}\
         </style></head><body><h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    let span = match (rows.first(), rows.last()) {
        (Some(a), Some(b)) => format!("{} → {}", fmt_time(a.time), fmt_time(b.time)),
        _ => "no decisions".into(),
    };
    let _ = write!(
        h,
        "<p>Audit log <code>{}</code>, baseline <code>{}</code>. {} decisions, {} alerts; {}.</p>",
        esc(&args.audit.display().to_string()),
        esc(&args.baseline.display().to_string()),
        rows.len(),
        alerts.len(),
        esc(&span)
    );

    // Decisions over time.
    let outcomes = ["pass", "uncertain", "reject"];
    let series: Vec<(String, Vec<f64>)> = outcomes
        .iter()
        .map(|o| {
            let mut v = vec![0.0; n];
            for r in rows.iter().filter(|r| r.outcome == *o) {
                v[bucket(r.time)] += 1.0;
            }
            ((*o).to_owned(), v)
        })
        .collect();
    h.push_str("<h2>Decisions over time</h2>");
    h.push_str(&stacked_bars(&labels, &series, "decisions"));
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for r in rows {
        if let Some(reason) = &r.reason {
            *reasons.entry(reason).or_insert(0) += 1;
        }
    }
    if !reasons.is_empty() {
        h.push_str("<table><tr><th>reason</th><th>count</th></tr>");
        for (r, c) in &reasons {
            let _ = write!(h, "<tr><td>{}</td><td>{c}</td></tr>", esc(r));
        }
        h.push_str("</table>");
    }

    // The class mix against the baseline's.
    h.push_str("<h2>Predicted classes</h2>");
    let expected: Option<&BTreeMap<String, u64>> = baseline
        .predictions
        .as_ref()
        .map(|p| &p.class_counts)
        .or(baseline.label_counts.as_ref());
    let mut observed: BTreeMap<&str, u64> = BTreeMap::new();
    for r in rows {
        for c in &r.classes {
            *observed.entry(c).or_insert(0) += 1;
        }
    }
    let classes: BTreeSet<String> = observed
        .keys()
        .map(|k| (*k).to_owned())
        .chain(expected.into_iter().flat_map(|e| e.keys().cloned()))
        .collect();
    let classes: Vec<String> = classes.into_iter().collect();
    if observed.is_empty() {
        h.push_str(
            "<p class=\"note\">No predicted class in the log: outputs are sealed (give <code>--key-file</code>) \
             or nothing was answered.</p>",
        );
    } else {
        let share = |m: &dyn Fn(&str) -> u64| {
            let total: u64 = classes.iter().map(|c| m(c)).sum();
            classes
                .iter()
                .map(|c| m(c) as f64 / total.max(1) as f64)
                .collect::<Vec<_>>()
        };
        let mut series = vec![(
            "served".to_owned(),
            share(&|c| observed.get(c).copied().unwrap_or(0)),
        )];
        if let Some(e) = expected {
            let name = if baseline.predictions.is_some() {
                "baseline (model on training data)"
            } else {
                "baseline (training labels)"
            };
            series.push((name.to_owned(), share(&|c| e.get(c).copied().unwrap_or(0))));
        }
        h.push_str(&grouped_bars(&classes, &series, "share"));
        let over_time: Vec<(String, Vec<Option<f64>>)> = classes
            .iter()
            .map(|c| {
                let mut num = vec![0u64; n];
                let mut den = vec![0u64; n];
                for r in rows {
                    let b = bucket(r.time);
                    den[b] += r.classes.len() as u64;
                    num[b] += r.classes.iter().filter(|x| *x == c).count() as u64;
                }
                let v = num
                    .iter()
                    .zip(&den)
                    .map(|(a, d)| (*d > 0).then(|| *a as f64 / *d as f64))
                    .collect();
                (c.clone(), v)
            })
            .collect();
        h.push_str("<h3>Class share over time</h3>");
        h.push_str(&line_chart(&labels, &over_time, "share", None));
    }

    // Feature drift over time, from stored inputs only.
    h.push_str("<h2>Feature drift over time</h2>");
    let with_inputs = rows.iter().filter(|r| !r.inputs.is_empty()).count();
    if with_inputs == 0 {
        let why = if sealed_unopened > 0 {
            format!(
                "{sealed_unopened} sealed records could not be opened: give the audit's <code>--key-file</code>."
            )
        } else {
            "the log holds no inputs (the gateway stores them, sealed, only with <code>[audit] store_input = true</code> \
             and an encryption key). The live monitor's per-window results are in the \
             <code>rampart_drift_*</code> metrics and the <code>data_drift</code> alerts below."
                .to_owned()
        };
        let _ = write!(
            h,
            "<p class=\"note\">Per-feature drift cannot be recomputed: {why}</p>"
        );
    } else {
        h.push_str(&feature_drift(baseline, rows, &bucket, &labels, n));
    }

    // Alerts.
    h.push_str("<h2>Alerts</h2>");
    if alerts.is_empty() {
        h.push_str("<p>No alert in the log.</p>");
    } else {
        let kinds: BTreeSet<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
        let series: Vec<(String, Vec<f64>)> = kinds
            .iter()
            .map(|k| {
                let mut v = vec![0.0; n];
                for a in alerts.iter().filter(|a| a.kind == *k) {
                    v[bucket(a.time)] += 1.0;
                }
                ((*k).to_owned(), v)
            })
            .collect();
        h.push_str(&stacked_bars(&labels, &series, "alerts"));
        h.push_str("<table><tr><th>time</th><th>kind</th><th>model</th><th>identity</th><th>detail</th></tr>");
        for a in alerts
            .iter()
            .filter(|a| a.kind != "rate_limit_storm")
            .take(200)
        {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&fmt_time(a.time)),
                esc(&a.kind),
                esc(&a.model),
                esc(&a.identity),
                esc(&a.detail)
            );
        }
        h.push_str("</table>");
    }

    // Identities.
    h.push_str("<h2>Identities</h2>");
    let flagged: BTreeMap<&str, &AlertRow> = alerts
        .iter()
        .filter(|a| a.kind == "model_extraction")
        .map(|a| (a.identity.as_str(), a))
        .collect();
    if flagged.is_empty() {
        h.push_str("<p>No identity was flagged for model extraction.</p>");
    } else {
        h.push_str("<h3>Flagged for model extraction (PRADA)</h3><table><tr><th>identity</th><th>model</th><th>flagged at</th><th>detail</th></tr>");
        for (id, a) in &flagged {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(id),
                esc(&a.model),
                esc(&fmt_time(a.time)),
                esc(&a.detail)
            );
        }
        h.push_str("</table>");
    }
    let mut by_identity: HashMap<&str, (u64, u64)> = HashMap::new();
    for r in rows {
        let e = by_identity.entry(&r.identity).or_insert((0, 0));
        e.0 += 1;
        e.1 += u64::from(r.outcome == "reject");
    }
    let mut top: Vec<_> = by_identity.into_iter().collect();
    top.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    h.push_str("<h3>Most active identities</h3><table><tr><th>identity</th><th>requests</th><th>rejected</th><th>flagged</th></tr>");
    for (id, (count, rejected)) in top.iter().take(TOP_IDENTITIES) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{count}</td><td>{rejected}</td><td>{}</td></tr>",
            esc(id),
            if flagged.contains_key(id) { "yes" } else { "" }
        );
    }
    h.push_str("</table>");
    h.push_str("<p style=\"color:#777;font-size:12px\">Generated by <code>rampart monitor report</code>; identities are as the log stores them (pseudonyms when the gateway pseudonymizes).</p></body></html>\n");
    h
}

/// KS (as −log10 p) and PSI per feature per bucket against the baseline's reference sample.
fn feature_drift(
    baseline: &Baseline,
    rows: &[Row],
    bucket: &dyn Fn(OffsetDateTime) -> usize,
    labels: &[String],
    n: usize,
) -> String {
    let d = baseline.width();
    let mut per_bucket: Vec<Vec<&Vec<f64>>> = vec![Vec::new(); n];
    for r in rows {
        for x in r.inputs.iter().filter(|x| x.len() == d) {
            per_bucket[bucket(r.time)].push(x);
        }
    }
    let names: Vec<String> = baseline.feature_names().map(str::to_owned).collect();
    let mut ks = Vec::new();
    let mut psi = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let reference: Vec<f64> = baseline.reference_sample.iter().map(|r| r[j]).collect();
        let psi_ref = PsiReference::new(&reference).ok();
        let mut k = Vec::with_capacity(n);
        let mut p = Vec::with_capacity(n);
        for b in &per_bucket {
            if b.len() < MIN_BUCKET_ROWS {
                k.push(None);
                p.push(None);
                continue;
            }
            let column: Vec<f64> = b.iter().map(|x| x[j]).collect();
            k.push(
                ks_2samp(&reference, &column)
                    .ok()
                    .map(|t| -t.p_value.max(1e-300).log10()),
            );
            p.push(
                psi_ref
                    .as_ref()
                    .and_then(|r| r.compare(&column).ok())
                    .map(|v| v.value),
            );
        }
        ks.push((name.clone(), k));
        psi.push((name.clone(), p));
    }
    let line = -(ALPHA / d.max(1) as f64).log10();
    let mut s = format!(
        "<p>Recomputed from the stored inputs: per time bucket (at least {MIN_BUCKET_ROWS} rows), each feature \
         against the baseline's reference sample ({} rows). Above the dashed line a feature's KS test rejects at \
         family-wise level {ALPHA} (Bonferroni over {d} features).</p>",
        baseline.reference_sample.len()
    );
    s.push_str("<h3>KS −log10(p)</h3>");
    s.push_str(&line_chart(
        labels,
        &ks,
        "-log10 p",
        Some((line, "Bonferroni")),
    ));
    s.push_str("<h3>PSI (10 reference-quantile bins)</h3>");
    s.push_str(&line_chart(labels, &psi, "PSI", Some((PSI_LINE, "0.25"))));
    s
}
