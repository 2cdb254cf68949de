//! `rampart profile`: the baseline profile of a model's training data.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use rampart_detect::BaselineBuilder;
use rampart_model::{Backend, TractModel};

/// Bad rows listed before the command gives up listing.
const MAX_REPORTED: usize = 20;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Training data: CSV with a header row, numeric feature columns.
    #[arg(long)]
    data: PathBuf,
    /// A column holding the label (not a feature); its class counts go into the profile.
    #[arg(long)]
    label_column: Option<String>,
    /// The model: its input width must match the feature columns.
    #[arg(long)]
    model: Option<PathBuf>,
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
    if let Some(model) = &args.model {
        let m = TractModel::load(model)?;
        if m.info().width != names.len() {
            bail!(
                "{} has {} feature columns but {} takes {} features",
                args.data.display(),
                names.len(),
                model.display(),
                m.info().width
            );
        }
    }

    let mut builder = BaselineBuilder::new(names.iter().map(String::as_str));
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
        if let Some(li) = label_index {
            let label = record.get(li).unwrap_or("");
            if let Err(e) = builder.push_label(label) {
                bad.push(format!("line {line}: {e}"));
            }
        }
    }
    if !bad.is_empty() {
        eprintln!("{}: {} bad row(s):", args.data.display(), bad.len());
        for b in bad.iter().take(MAX_REPORTED) {
            eprintln!("  {b}");
        }
        if bad.len() > MAX_REPORTED {
            eprintln!("  … and {} more", bad.len() - MAX_REPORTED);
        }
        return Ok(ExitCode::from(2));
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
    Ok(ExitCode::SUCCESS)
}
