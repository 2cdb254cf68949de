//! The two ways a model can fail: at load, and at run.

/// A model could not be loaded. Every message starts with `model <file>:` so an operator reading a log
/// line knows which file to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("model {file}: cannot read: {source}")]
    Io {
        /// The file named by the caller.
        file: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not an ONNX protobuf.
    #[error("model {file}: not an ONNX model: {reason}")]
    Decode {
        /// The file (or embedded model name).
        file: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// The graph uses an op no translator is registered for.
    #[error("model {file}: node '{node}' ({op}): operator not supported")]
    UnsupportedOp {
        /// The file (or embedded model name).
        file: String,
        /// The node's name (or its first output when unnamed).
        node: String,
        /// `domain:op_type`.
        op: String,
    },
    /// A node could not be translated: a missing or malformed attribute, an unsupported mode.
    #[error("model {file}: node '{node}' ({op}): {reason}")]
    Node {
        /// The file (or embedded model name).
        file: String,
        /// The node's name (or its first output when unnamed).
        node: String,
        /// `domain:op_type`.
        op: String,
        /// Why, naming the attribute where one is at fault.
        reason: String,
    },
    /// The graph input is not something Rampart can feed: not exactly one input, not a rank-2 float
    /// tensor, or a feature count that is not fixed.
    #[error("model {file}: input: {reason}")]
    Input {
        /// The file (or embedded model name).
        file: String,
        /// What is wrong with the input declaration.
        reason: String,
    },
    /// The outputs do not look like a classifier's or a regressor's.
    #[error("model {file}: outputs: {reason}")]
    Outputs {
        /// The file (or embedded model name).
        file: String,
        /// What was found instead.
        reason: String,
    },
    /// tract could not type, optimize or plan the graph.
    #[error("model {file}: {stage}: {reason}")]
    Plan {
        /// The file (or embedded model name).
        file: String,
        /// Which step failed: `analysis`, `typing`, `optimization`, `planning`.
        stage: &'static str,
        /// tract's error chain.
        reason: String,
    },
}

/// A batch could not be scored. Input-shape errors are the caller's; [`RunError::Model`] is the
/// model's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// `n_rows` was zero.
    #[error("empty batch: n_rows is 0")]
    EmptyBatch,
    /// The buffer does not hold `n_rows × width` values.
    #[error("expected {n_rows} rows × {width} features = {expected} values, got {got}")]
    WrongLength {
        /// Rows the caller announced.
        n_rows: usize,
        /// Features per row the model takes.
        width: usize,
        /// `n_rows × width`.
        expected: usize,
        /// Values actually passed.
        got: usize,
    },
    /// `n_rows × width` overflows `usize`.
    #[error("batch of {n_rows} rows is too large")]
    TooLarge {
        /// Rows the caller announced.
        n_rows: usize,
    },
    /// The model failed while running, or returned something of an unexpected shape.
    #[error("model {model}: run failed: {reason}")]
    Model {
        /// The model's name.
        model: String,
        /// tract's error chain.
        reason: String,
    },
}
