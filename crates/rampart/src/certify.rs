//! `rampart certify`: the certification experiment of Cohen, Rosenfeld & Kolter (2019) over a labelled
//! dataset. Each row goes through CERTIFY (`rampart_model::harden::smoothing`); the per-row results go
//! to a CSV in the paper's layout, and certified accuracy at radii 0, 0.25, 0.5, … to stdout, beside the
//! clean (unsmoothed) accuracy of the same model on the same rows.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use rampart_model::harden::smoothing::{noise_rng_stream, Config, Decision, Mode, Smoother};
use rampart_model::{Backend, ModelKind, TractModel};

use crate::atomic;
use crate::keys::Format;

/// The radii the summary reports at (and beyond, in the same steps, up to the largest certified).
const RADIUS_STEP: f64 = 0.25;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The model (ONNX classifier).
    #[arg(long)]
    model: PathBuf,
    /// The dataset: CSV with a header row, numeric feature columns and an integer class label column.
    #[arg(long)]
    data: PathBuf,
    /// The label column's name.
    #[arg(long, default_value = "label")]
    label_column: String,
    /// Noise standard deviation σ, in the model's input units.
    #[arg(long)]
    sigma: f64,
    /// Samples that estimate the class probability (the bound, and so the radius, tightens with n).
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Samples that select the class.
    #[arg(long, default_value_t = 100)]
    n0: usize,
    /// Failure probability of each certificate.
    #[arg(long, default_value_t = 0.001)]
    alpha: f64,
    /// Noise seed; row i draws from stream i of it, so a row's result does not depend on --limit.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Certify only the first N rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Most noisy rows per model call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Per-row results (CSV: idx,label,predict,radius,correct,time); must not exist.
    #[arg(long)]
    out: PathBuf,
    /// Also draw the certified-accuracy curve here (SVG); must not exist.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// The summary on stdout: `text` or `json`.
    #[arg(long, default_value = "text")]
    format: Format,
}

/// One certified row.
struct RowResult {
    label: usize,
    /// `None`: abstained.
    predict: Option<usize>,
    radius: f64,
    seconds: f64,
}

impl RowResult {
    fn correct(&self) -> bool {
        self.predict == Some(self.label)
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // Stage two of argument parsing: flags into ready objects, every check before the long loop.
    let smoother = Smoother::new(Config {
        sigma: args.sigma,
        n0: args.n0,
        n: args.n,
        alpha: args.alpha,
        mode: Mode::Certify,
        max_batch: args.batch,
        // The certify loop seeds one stream per row itself (`noise_rng_stream(args.seed, i)`).
        seed: None,
    })
    .context("bad smoothing parameters")?;
    for p in [Some(&args.out), args.plot.as_ref()].into_iter().flatten() {
        if p.exists() {
            bail!("{} already exists: refusing to overwrite it", p.display());
        }
    }
    let model = TractModel::load(&args.model)?;
    let classes = match model.info().kind {
        ModelKind::Classifier { classes } => classes,
        ModelKind::Regressor { .. } => bail!(
            "{} is a regressor: certification needs a classifier",
            args.model.display()
        ),
    };
    let width = model.info().width;
    let (rows, labels) = match read_dataset(&args.data, &args.label_column, width, classes)? {
        Ok(d) => d,
        Err(bad) => return Ok(crate::profile::report_bad_rows(&args.data, &bad)),
    };
    let count = args.limit.map_or(labels.len(), |l| l.min(labels.len()));
    if count == 0 {
        bail!("{}: no rows to certify", args.data.display());
    }
    let clean_correct = clean_correct(&model, &rows[..count * width], &labels[..count])?;

    let bar = progress(count as u64);
    let mut results = Vec::with_capacity(count);
    for (i, (x, &label)) in rows.chunks(width).zip(&labels).take(count).enumerate() {
        let start = Instant::now();
        let mut rng = noise_rng_stream(args.seed, i as u64);
        let cert = smoother
            .certify(&model, x, &mut rng)
            .with_context(|| format!("row {i}"))?;
        results.push(RowResult {
            label,
            predict: match cert.decision {
                Decision::Class(c) => Some(c),
                Decision::Abstain => None,
            },
            radius: cert.radius.unwrap_or(0.0),
            seconds: start.elapsed().as_secs_f64(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();

    atomic::write_file(&args.out, |w| write_results(w, &results))?
        .with_context(|| format!("writing {}", args.out.display()))?;
    let summary = Summary::new(args, &results, clean_correct);
    if let Some(plot) = &args.plot {
        let svg = plot_svg(args, &results, &summary);
        atomic::write_file(plot, |w| w.write_all(svg.as_bytes()))?
            .with_context(|| format!("writing {}", plot.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Text => stdout.write_all(summary.text().as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &summary.json())?;
            writeln!(stdout)?;
        }
    }
    eprintln!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Reads `path`: features row-major and labels as class indices, or every bad row by line.
#[allow(clippy::type_complexity)]
fn read_dataset(
    path: &Path,
    label_column: &str,
    width: usize,
    classes: usize,
) -> anyhow::Result<Result<(Vec<f32>, Vec<usize>), Vec<String>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let Some(label_index) = headers.iter().position(|h| h == label_column) else {
        bail!(
            "{}: no column named '{label_column}' in the header",
            path.display()
        );
    };
    if headers.len() - 1 != width {
        bail!(
            "{} has {} feature columns but the model takes {width} features",
            path.display(),
            headers.len() - 1
        );
    }
    let (mut rows, mut labels, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for (i, record) in reader.records().enumerate() {
        // Line numbers as an editor shows them: the header is line 1.
        let line = i as u64 + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let mut row = Vec::with_capacity(width);
        let mut label = None;
        let mut problem = None;
        for (j, field) in record.iter().enumerate() {
            let column = headers.get(j).unwrap_or("?");
            let value = field.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            if j == label_index {
                // Labels are class indices; CSVs written by NumPy spell them `3.0e+00`.
                match value {
                    Some(v) if v >= 0.0 && v.fract() == 0.0 && v < classes as f64 => {
                        label = Some(v as usize)
                    }
                    _ => {
                        problem = Some(format!(
                            "line {line}: label '{field}' is not a class index below {classes}"
                        ));
                        break;
                    }
                }
            } else {
                match value {
                    Some(v) => row.push(v as f32),
                    None => {
                        problem = Some(format!(
                            "line {line}: column '{column}' is not a finite number"
                        ));
                        break;
                    }
                }
            }
        }
        match (problem, label) {
            (Some(p), _) => bad.push(p),
            (None, Some(l)) if row.len() == width => {
                rows.extend(row);
                labels.push(l);
            }
            (None, _) => bad.push(format!("line {line}: wrong number of columns")),
        }
    }
    Ok(if bad.is_empty() {
        Ok((rows, labels))
    } else {
        Err(bad)
    })
}

/// Rows the base model, without noise, gets right (one batched call).
fn clean_correct(model: &TractModel, rows: &[f32], labels: &[usize]) -> anyhow::Result<usize> {
    let out = model.predict(rows, labels.len())?;
    Ok((0..labels.len())
        .filter(|&i| {
            out.row(i).is_some_and(|p| {
                let best = p
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(c, _)| c);
                best == labels.get(i).copied()
            })
        })
        .count())
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
fn progress(len: u64) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(len)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Cohen et al.'s layout: an abstention is `predict = -1`, `radius = 0`, `correct = 0`.
fn write_results(w: &mut impl Write, results: &[RowResult]) -> std::io::Result<()> {
    writeln!(w, "idx,label,predict,radius,correct,time")?;
    for (i, r) in results.iter().enumerate() {
        let predict = r.predict.map_or(-1, |p| p as i64);
        writeln!(
            w,
            "{i},{},{predict},{:.6},{},{:.6}",
            r.label,
            r.radius,
            u8::from(r.correct()),
            r.seconds
        )?;
    }
    Ok(())
}

/// Certified accuracy at radius r: the fraction of rows predicted correctly with a radius of at least r.
fn certified_accuracy(results: &[RowResult], r: f64) -> f64 {
    let hits = results
        .iter()
        .filter(|x| x.correct() && x.radius >= r)
        .count();
    hits as f64 / results.len().max(1) as f64
}

struct Summary {
    rows: usize,
    clean_accuracy: f64,
    abstained: usize,
    /// (radius, certified accuracy).
    table: Vec<(f64, f64)>,
    max_radius: f64,
    mean_seconds: f64,
    sigma: f64,
    n: usize,
    n0: usize,
    alpha: f64,
}

impl Summary {
    fn new(args: &Args, results: &[RowResult], clean_correct: usize) -> Self {
        let rows = results.len();
        let max_radius = results
            .iter()
            .filter(|r| r.correct())
            .map(|r| r.radius)
            .fold(0.0, f64::max);
        // 0, 0.25, …, at least to 1.0 and on to the largest radius certified.
        let steps = ((max_radius.max(1.0) / RADIUS_STEP).ceil() as usize).min(400);
        let table = (0..=steps)
            .map(|k| {
                let r = k as f64 * RADIUS_STEP;
                (r, certified_accuracy(results, r))
            })
            .collect();
        Self {
            rows,
            clean_accuracy: clean_correct as f64 / rows.max(1) as f64,
            abstained: results.iter().filter(|r| r.predict.is_none()).count(),
            table,
            max_radius,
            mean_seconds: results.iter().map(|r| r.seconds).sum::<f64>() / rows.max(1) as f64,
            sigma: args.sigma,
            n: args.n,
            n0: args.n0,
            alpha: args.alpha,
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "sigma {} n {} n0 {} alpha {}: {} rows, {} abstained, {:.3} s/row",
            self.sigma, self.n, self.n0, self.alpha, self.rows, self.abstained, self.mean_seconds
        );
        let _ = writeln!(s, "clean accuracy (no noise)  {:.4}", self.clean_accuracy);
        let _ = writeln!(s, "radius  certified accuracy");
        for (r, acc) in &self.table {
            let _ = writeln!(s, "{r:>6.2}  {acc:.4}");
        }
        s
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "sigma": self.sigma,
            "n": self.n,
            "n0": self.n0,
            "alpha": self.alpha,
            "rows": self.rows,
            "abstained": self.abstained,
            "clean_accuracy": self.clean_accuracy,
            "mean_seconds_per_row": self.mean_seconds,
            "max_radius": self.max_radius,
            "certified_accuracy": self.table.iter()
                .map(|(r, a)| serde_json::json!({"radius": r, "accuracy": a}))
                .collect::<Vec<_>>(),
        })
    }
}

/// The certified-accuracy curve as a self-contained SVG: a step function of the radius, the clean
/// accuracy as a dashed line for reference.
fn plot_svg(args: &Args, results: &[RowResult], summary: &Summary) -> String {
    const W: f64 = 640.0;
    const H: f64 = 420.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;
    let x_max = ((summary.max_radius.max(1.0) / RADIUS_STEP).ceil() * RADIUS_STEP).max(RADIUS_STEP);
    let px = |r: f64| LEFT + (r / x_max) * (W - LEFT - RIGHT);
    let py = |a: f64| TOP + (1.0 - a) * (H - TOP - BOTTOM);

    // The curve only changes at radii a correct row certifies: walk them in order.
    let mut radii: Vec<f64> = results
        .iter()
        .filter(|r| r.correct())
        .map(|r| r.radius)
        .collect();
    radii.sort_by(f64::total_cmp);
    let total = results.len().max(1) as f64;
    let mut points = vec![(0.0, radii.len() as f64 / total)];
    let mut above = radii.len();
    let mut k = 0;
    while k < radii.len() {
        let r = radii[k];
        while k < radii.len() && radii[k] == r {
            k += 1;
        }
        let before = above as f64 / total;
        above = radii.len() - k;
        points.push((r, before));
        points.push((r, above as f64 / total));
    }
    points.push((x_max, above as f64 / total));
    let path: String = points
        .iter()
        .enumerate()
        .map(|(i, &(r, a))| {
            format!(
                "{}{:.2},{:.2}",
                if i == 0 { "M" } else { " L" },
                px(r),
                py(a)
            )
        })
        .collect();

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">certified accuracy, {} (σ = {}, n = {}, α = {})</text>"#,
        W / 2.0,
        xml_escape(
            &args
                .model
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
        ),
        args.sigma,
        args.n,
        args.alpha
    );
    // Grid and ticks.
    for k in 0..=10 {
        let a = k as f64 / 10.0;
        let y = py(a);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="#e0e0e0"/><text x="{:.2}" y="{:.2}" text-anchor="end">{a:.1}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let ticks = (x_max / RADIUS_STEP).round() as usize;
    for k in 0..=ticks {
        let r = k as f64 * RADIUS_STEP;
        let x = px(r);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.2}" y1="{TOP}" x2="{x:.2}" y2="{:.2}" stroke="#e0e0e0"/><text x="{x:.2}" y="{:.2}" text-anchor="middle">{r:.2}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 16.0
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.2}" height="{:.2}" fill="none" stroke="#333"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="{:.2}" text-anchor="middle">L2 radius</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.2}" text-anchor="middle" transform="rotate(-90 16 {:.2})">certified accuracy</text>"#,
        H / 2.0,
        H / 2.0
    );
    let yc = py(summary.clean_accuracy);
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{yc:.2}" x2="{:.2}" y2="{yc:.2}" stroke="#888" stroke-dasharray="6 4"/><text x="{:.2}" y="{:.2}" text-anchor="end" fill="#555">clean accuracy {:.3}</text>"##,
        W - RIGHT,
        W - RIGHT - 4.0,
        yc - 4.0,
        summary.clean_accuracy
    );
    let _ = writeln!(
        s,
        r##"<path d="{path}" fill="none" stroke="#1f5fbf" stroke-width="2"/>"##
    );
    s.push_str("</svg>\n");
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
