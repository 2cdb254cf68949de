//! Fixtures shared by the model benches.

use std::path::{Path, PathBuf};

/// `tests/models/{name}.{ext}` of this crate.
pub(crate) fn path(name: &str, ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/models/{name}.{ext}"))
}

/// The first row of the model's reference input (`{name}.expected.json`, `width` features).
pub(crate) fn sample_row(name: &str, width: usize) -> Vec<f32> {
    let text = std::fs::read_to_string(path(name, "expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let data = v["sample_input"]["data"].as_array().unwrap();
    data.iter()
        .take(width)
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}
