//! `rampart profile`: the baseline profile of a model's training data.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use rampart_detect::BaselineBuilder as Builder;
use rampart_model::harden::squeeze::{self, Squeezer};
use rampart_model::{Backend, ModelKind, TractModel};

/// Bad rows listed before the command gives up listing.
const MAX_REPORTED: usize = 20;

/// Lists a data file's bad rows on stderr (the first [`MAX_REPORTED`], then a count) and returns the usage
/// error exit code: a dataset with bad rows is refused whole, never profiled or certified in part.
pub(crate) fn report_bad_rows(data: &std::path::Path, bad: &[String]) -> ExitCode {
    eprintln!("{}: {} bad row(s):", data.display(), bad.len());
    for b in bad.iter().take(MAX_REPORTED) {
        eprintln!("  {b}");
    }
    if bad.len() > MAX_REPORTED {
        eprintln!("  … and {} more", bad.len() - MAX_REPORTED);
    }
    ExitCode::from(2)
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Training data: CSV with a header row, numeric feature columns.
    #[arg(long)]
    data: PathBuf,
    /// A column holding the label (not a feature); its class counts go into the profile.
    #[arg(long)]
    label_column: Option<String>,
    /// The model: its input width must match the feature columns. A classifier is run on every row, and its
    /// predicted-class counts and confidence histogram go into the profile (`predictions`), the reference of
    /// the gateway's prediction-drift monitor.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The classifier's labels in model order, comma-separated, as the config's `labels` gives them (the
    /// predicted classes are recorded under these names). Default: the class indices.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Feature-squeezing detector threshold: the squeezers (as the config's `adversarial.squeezers`:
    /// `bit_depth:B`, `round:D`, `median:S`, `median:S:HxW`), comma-separated. Needs `--model`, a
    /// classifier. Every row is scored and the threshold for `--fpr` is printed on stdout as the config line
    /// `adversarial = { … }` to paste into the model's entry.
    #[arg(long, value_delimiter = ',', requires = "model")]
    squeezers: Vec<String>,
    /// Target false-positive rate of the squeezing threshold on this (benign) data: the threshold is the
    /// (1 − fpr) quantile of the rows' scores.
    #[arg(long, default_value_t = 0.05)]
    fpr: f64,
    /// Where to write the profile (JSON).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(&args.data)
        .with_context(|| format!("cannot read {}", args.data.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header row", args.data.display()))?
        .clone();
    let label_index = match &args.label_column {
        Some(name) => match headers.iter().position(|h| h == name) {
            Some(i) => Some(i),
            None => bail!(
                "{}: no column named '{name}' in the header",
                args.data.display()
            ),
        },
        None => None,
    };
    let names: Vec<String> = headers
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != label_index)
        .map(|(_, h)| h.to_owned())
        .collect();
    if names.is_empty() {
        bail!("{}: no feature columns", args.data.display());
    }
    if !(0.0..=1.0).contains(&args.fpr) {
        bail!("--fpr must be between 0 and 1");
    }
    let model = match &args.model {
        Some(path) => {
            let m = TractModel::load(path)?;
            if m.info().width != names.len() {
                bail!(
                    "{} has {} feature columns but {} takes {} features",
                    args.data.display(),
                    names.len(),
                    path.display(),
                    m.info().width
                );
            }
            match m.info().kind {
                ModelKind::Classifier { classes } => {
                    if !args.labels.is_empty() && args.labels.len() != classes {
                        bail!(
                            "--labels names {} classes but {} has {classes}",
                            args.labels.len(),
                            path.display()
                        );
                    }
                    Some(m)
                }
                // A regressor has no classes: its profile is the data's alone.
                ModelKind::Regressor { .. } => None,
            }
        }
        None => None,
    };

    let squeezers = match &model {
        Some(m) => args
            .squeezers
            .iter()
            .map(|spec| {
                Squeezer::parse(spec, m.info().width).with_context(|| format!("--squeezers {spec}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        None if !args.squeezers.is_empty() => {
            bail!("--squeezers needs a classifier (--model): a regressor has no probabilities to compare")
        }
        None => Vec::new(),
    };
    let mut scores = Vec::new();

    let mut builder = Builder::new(names.iter().map(String::as_str));
    let mut bad = Vec::new();
    let mut row = Vec::with_capacity(names.len());
    for (i, record) in reader.records().enumerate() {
        // Line numbers as an editor shows them: the header is line 1.
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i as u64 + 2, |p| p.line());
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push(format!("line {line}: {e}"));
                continue;
            }
        };
        row.clear();
        let mut problem = None;
        for (j, field) in record.iter().enumerate() {
            if Some(j) == label_index {
                continue;
            }
            match field.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => row.push(v),
                _ => {
                    let column = headers.get(j).unwrap_or("?");
                    problem = Some(format!(
                        "line {line}: column '{column}' is not a finite number"
                    ));
                    break;
                }
            }
        }
        if let Some(p) = problem {
            bad.push(p);
            continue;
        }
        if let Err(e) = builder.push(&row) {
            bad.push(format!("line {line}: {e}"));
            continue;
        }
        if let Some(m) = &model {
            if let Err(e) = push_prediction(&mut builder, m, &row, &args.labels) {
                bad.push(format!("line {line}: {e}"));
            }
            if !squeezers.is_empty() {
                let x: Vec<f32> = row.iter().map(|v| *v as f32).collect();
                match squeeze::score(m, &x, &squeezers) {
                    Ok(s) => scores.push(s),
                    Err(e) => bad.push(format!("line {line}: feature squeezing: {e}")),
                }
            }
        }
        if let Some(li) = label_index {
            let label = record.get(li).unwrap_or("");
            if let Err(e) = builder.push_label(label) {
                bad.push(format!("line {line}: {e}"));
            }
        }
    }
    if !bad.is_empty() {
        return Ok(report_bad_rows(&args.data, &bad));
    }
    let baseline = builder.finish()?;
    let json = baseline.to_json()?;
    std::fs::write(&args.out, json)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} rows, {} features)",
        args.out.display(),
        baseline.count(),
        baseline.width()
    );
    if !squeezers.is_empty() {
        let threshold = squeeze::threshold(&scores, args.fpr)?;
        let above = scores.iter().filter(|s| **s > threshold).count();
        eprintln!(
            "feature squeezing: threshold {threshold:.6} at fpr {} ({above} of {} rows above it)",
            args.fpr,
            scores.len()
        );
        let list = args
            .squeezers
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        // The config line itself, on stdout: machine output, ready to paste into the model's entry.
        println!(
            "adversarial = {{ mode = \"enforce\", method = \"feature_squeezing\", squeezers = [{list}], threshold = {threshold:.6} }}"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the classifier on one row and records its winning class and confidence.
fn push_prediction(
    builder: &mut Builder,
    model: &TractModel,
    row: &[f64],
    labels: &[String],
) -> anyhow::Result<()> {
    // The model's dtype: the gateway feeds it f32 too, so the profile sees what serving will.
    let x: Vec<f32> = row.iter().map(|v| *v as f32).collect();
    let out = model.predict(&x, 1)?;
    let probs = out
        .row(0)
        .ok_or_else(|| anyhow::anyhow!("the model returned no row"))?;
    let (best, confidence) =
        probs
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |acc, (i, p)| {
                if *p > acc.1 {
                    (i, *p)
                } else {
                    acc
                }
            });
    let label = labels
        .get(best)
        .cloned()
        .unwrap_or_else(|| best.to_string());
    builder.push_prediction(&label, f64::from(confidence).clamp(0.0, 1.0))?;
    Ok(())
}
