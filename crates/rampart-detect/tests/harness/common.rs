//! Shared pieces of the vector harness: tolerances, the failure collector, the file header.

use std::collections::BTreeSet;
use std::fmt::{Debug, Display};

use serde::Deserialize;

/// `|got - want| <= atol + rtol * |want|`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tol {
    pub rtol: f64,
    pub atol: f64,
    /// Some files explain a tolerance next to it.
    #[serde(default)]
    pub note: Option<String>,
}

/// The generator's library versions, recorded in every file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    pub python: String,
    pub numpy: String,
    pub scipy: String,
    pub statsmodels: String,
    #[serde(rename = "scikit-learn")]
    pub scikit_learn: String,
    pub river: String,
}

/// The shape most reference files share: the header members, the file's tolerances `T` and its cases `C`.
/// Closed like every schema here: a missing or extra member fails.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorFile<T, C> {
    pub file: String,
    pub set: String,
    pub seed_family: String,
    pub definition: String,
    pub tolerance: T,
    pub generator: String,
    pub versions: Versions,
    pub cases: Vec<C>,
}

/// For `Option` fields: `null` is `None`, but the key must be there. (Serde would otherwise read a missing
/// `Option` field as `None`, and a file that lost a field would still pass.)
pub fn required<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// Collects failures of one file instead of stopping at the first.
pub struct Check {
    pub file: String,
    pub failures: Vec<String>,
    pub cases: usize,
    pub values: usize,
    failed_cases: BTreeSet<String>,
}

impl Check {
    pub fn new(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            failures: Vec::new(),
            cases: 0,
            values: 0,
            failed_cases: BTreeSet::new(),
        }
    }

    pub fn cases_passed(&self) -> usize {
        self.cases - self.failed_cases.len()
    }

    pub fn fail(&mut self, id: &str, msg: impl Display) {
        self.failed_cases.insert(id.to_owned());
        self.failures.push(format!("{}: {id}: {msg}", self.file));
    }

    pub fn close(&mut self, id: &str, what: impl Display, got: f64, want: f64, tol: &Tol) {
        self.values += 1;
        let allowed = tol.atol + tol.rtol * want.abs();
        let ok = (got - want).abs() <= allowed || (got == want);
        if !ok {
            self.fail(
                id,
                format_args!(
                    "{what} = {got:e}, expected {want:e} (off by {:e}, allowed {allowed:e})",
                    (got - want).abs()
                ),
            );
        }
    }

    pub fn close_opt(
        &mut self,
        id: &str,
        what: impl Display,
        got: Option<f64>,
        want: Option<f64>,
        tol: &Tol,
    ) {
        match (got, want) {
            (Some(g), Some(w)) => self.close(id, what, g, w, tol),
            (None, None) => self.values += 1,
            (g, w) => self.fail(id, format_args!("{what} = {g:?}, expected {w:?}")),
        }
    }

    pub fn close_all(&mut self, id: &str, what: &str, got: &[f64], want: &[f64], tol: &Tol) {
        if got.len() != want.len() {
            self.fail(
                id,
                format_args!("{what}: {} values, expected {}", got.len(), want.len()),
            );
            return;
        }
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            self.close(id, format_args!("{what}[{i}]"), *g, *w, tol);
        }
    }

    pub fn exact<T: PartialEq + Debug>(&mut self, id: &str, what: impl Display, got: T, want: T) {
        self.values += 1;
        if got != want {
            self.fail(id, format_args!("{what} = {got:?}, expected {want:?}"));
        }
    }

    /// A result the crate refused to compute although the file has one.
    pub fn error(&mut self, id: &str, what: impl Display, err: impl Display) {
        self.fail(id, format_args!("{what}: {err}"));
    }
}

/// Parses a whole file; a schema mismatch is reported as a failure of the file.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str, check: &mut Check) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(e) => {
            check.fail("(file)", format_args!("does not match the schema: {e}"));
            None
        }
    }
}

/// The header fields every file has, checked for the right file name.
pub fn header(check: &mut Check, file: &str, set: &str) {
    let name = check.file.clone();
    check.exact("(file)", "file", file, name.as_str());
    check.exact("(file)", "set", set, "public");
}
