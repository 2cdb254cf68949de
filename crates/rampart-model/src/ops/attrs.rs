//! Typed attribute access for translators.
//!
//! tract's own helpers prefix their messages with the node; the loader already names the node and
//! op, so these messages name only the attribute and what is wrong with it.

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;

fn find<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn type_name(t: i32) -> String {
    AttributeType::try_from(t)
        .map(|t| t.as_str_name().to_ascii_lowercase())
        .unwrap_or_else(|_| format!("type {t}"))
}

fn check_type(attr: &AttributeProto, want: AttributeType) -> TractResult<()> {
    if attr.r#type != want as i32 {
        bail!(
            "attribute '{}': expected {}, got {}",
            attr.name,
            want.as_str_name().to_ascii_lowercase(),
            type_name(attr.r#type)
        );
    }
    Ok(())
}

/// The error for an attribute the translator cannot do without.
pub(crate) fn missing(name: &str) -> TractError {
    format_err!("attribute '{name}' missing")
}

/// A list of floats; a single `float` is accepted as a list of one because some exporters write it
/// that way.
pub(crate) fn floats(node: &NodeProto, name: &str) -> TractResult<Option<Vec<f32>>> {
    let Some(attr) = find(node, name) else {
        return Ok(None);
    };
    if attr.r#type == AttributeType::Float as i32 {
        return Ok(Some(vec![attr.f]));
    }
    check_type(attr, AttributeType::Floats)?;
    Ok(Some(attr.floats.clone()))
}

/// A list of ints.
pub(crate) fn ints<'a>(node: &'a NodeProto, name: &str) -> TractResult<Option<&'a [i64]>> {
    let Some(attr) = find(node, name) else {
        return Ok(None);
    };
    check_type(attr, AttributeType::Ints)?;
    Ok(Some(&attr.ints))
}

/// A single int.
pub(crate) fn int(node: &NodeProto, name: &str) -> TractResult<Option<i64>> {
    let Some(attr) = find(node, name) else {
        return Ok(None);
    };
    check_type(attr, AttributeType::Int)?;
    Ok(Some(attr.i))
}

/// A single UTF-8 string.
pub(crate) fn string(node: &NodeProto, name: &str) -> TractResult<Option<String>> {
    let Some(attr) = find(node, name) else {
        return Ok(None);
    };
    check_type(attr, AttributeType::String)?;
    let s = std::str::from_utf8(&attr.s)
        .map_err(|_| format_err!("attribute '{name}': not valid UTF-8"))?;
    Ok(Some(s.to_string()))
}

/// A list of UTF-8 strings.
pub(crate) fn strings(node: &NodeProto, name: &str) -> TractResult<Option<Vec<String>>> {
    let Some(attr) = find(node, name) else {
        return Ok(None);
    };
    check_type(attr, AttributeType::Strings)?;
    attr.strings
        .iter()
        .map(|s| {
            std::str::from_utf8(s)
                .map(str::to_string)
                .map_err(|_| format_err!("attribute '{name}': not valid UTF-8"))
        })
        .collect::<TractResult<Vec<_>>>()
        .map(Some)
}

/// An attribute's length must match `n`, the length of the attribute it runs parallel to.
pub(crate) fn check_len(name: &str, got: usize, n: usize, of: &str) -> TractResult<()> {
    if got != n {
        bail!("attribute '{name}': {got} values, but '{of}' has {n}");
    }
    Ok(())
}
