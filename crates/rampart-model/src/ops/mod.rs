//! Op translators Rampart adds to tract's ONNX front end.
//!
//! tract's op register is public (`tract_onnx::onnx().op_register`), so Rampart can fill its gaps
//! without forking it; every addition lives under [`ml`] and is registered by
//! [`ml::register_all_ops`].

pub(crate) mod attrs;
pub mod ml;
