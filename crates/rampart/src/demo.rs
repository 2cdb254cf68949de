//! The embedded demo: model, baseline and config compiled into the binary, so `rampart serve` works on a
//! fresh machine with no file at all.

use std::path::Path;

use anyhow::Context;

/// The demo's ONNX model (iris, StandardScaler + LogisticRegression; see examples/demo/train.py).
const MODEL: &[u8] = include_bytes!("../../../examples/demo/demo.onnx");
/// Its baseline profile, made by `rampart profile`.
const BASELINE: &[u8] = include_bytes!("../../../examples/demo/demo.baseline.json");
/// Its config.
pub(crate) const CONFIG: &str = include_str!("../../../examples/demo/rampart.toml");
/// A confident request.
pub(crate) const REQUEST: &str = include_str!("../../../examples/demo/request.json");

/// Writes the model and baseline under `<data-dir>/demo/` (where the config's relative paths point).
pub(crate) fn materialize(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, bytes) in [("demo.onnx", MODEL), ("demo.baseline.json", BASELINE)] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The demo's audit signing key, `<data-dir>/audit-signing.key` (and `.pub` beside it): created on first run,
/// reused after, so every checkpoint of the demo's log verifies with the same public key:
/// `rampart audit verify <data-dir>/audit --public-key <data-dir>/audit-signing.key.pub`.
pub(crate) fn audit_signing_key(data_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join("audit-signing.key");
    if !path.exists() {
        crate::keygen::write_ed25519_pair(&path)?;
        tracing::info!(key = %path.display(), "created the demo's audit signing key");
    }
    Ok(path)
}
