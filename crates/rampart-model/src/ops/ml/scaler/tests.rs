#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::Scaler;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;

fn floats_attr(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats: v.to_vec(),
        ..Default::default()
    }
}

fn node(attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: "Scaler".into(),
        op_type: "Scaler".into(),
        attribute: attrs,
        ..Default::default()
    }
}

/// Runs `op` on a `[n, width]` input through a real tract plan with a symbolic batch.
fn run(op: Scaler, width: usize, rows: &[f32]) -> TractResult<Vec<f32>> {
    let mut model = InferenceModel::default();
    let n = model.sym("N");
    let src = model.add_source("x", f32::fact([n.to_dim(), width.to_dim()]).into())?;
    let y = model.wire_node("scaler", expand(op), &[src])?;
    model.select_output_outlets(&y)?;
    let plan = model.into_optimized()?.into_runnable()?;
    let input = Tensor::from_shape(&[rows.len() / width, width], rows)?;
    let out = plan.run(tvec!(input.into()))?;
    Ok(out[0].try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
}

#[test]
fn subtracts_offset_then_multiplies_by_scale_per_feature() {
    let op = Scaler::new(vec![1.0, 2.0, 3.0], vec![2.0, 0.5, -1.0]).unwrap();
    let rows = [1.0, 2.0, 3.0, 5.0, 6.0, 7.0];
    let got = run(op, 3, &rows).unwrap();
    assert_eq!(got, [0.0, 0.0, -0.0, 8.0, 2.0, -4.0]);
}

#[test]
fn single_values_broadcast_to_every_feature() {
    let op = Scaler::new(vec![1.0], vec![10.0]).unwrap();
    let got = run(op, 4, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(got, [0.0, 10.0, 20.0, 30.0]);
}

#[test]
fn single_offset_with_per_feature_scale() {
    let op = Scaler::new(vec![0.5], vec![1.0, 2.0]).unwrap();
    let got = run(op, 2, &[0.5, 1.5, 2.5, 3.5]).unwrap();
    assert_eq!(got, [0.0, 2.0, 2.0, 6.0]);
}

#[test]
fn matches_standard_scaler_reference() {
    // StandardScaler exports offset = mean, scale = 1 / std.
    let mean = [10.0f32, -3.0, 0.25];
    let std = [2.0f32, 0.5, 4.0];
    let scale: Vec<f32> = std.iter().map(|s| 1.0 / s).collect();
    let rows = [12.0, -2.0, 1.25, 8.0, -4.0, -3.75];
    let got = run(Scaler::new(mean.to_vec(), scale).unwrap(), 3, &rows).unwrap();
    let want: Vec<f32> = rows
        .iter()
        .enumerate()
        .map(|(i, x)| (x - mean[i % 3]) / std[i % 3])
        .collect();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn parses_attributes_from_the_node() {
    let op = Scaler::from_node(&node(vec![
        floats_attr("offset", &[1.0, 2.0]),
        floats_attr("scale", &[3.0, 4.0]),
    ]))
    .unwrap();
    assert_eq!(
        op,
        Scaler {
            offset: vec![1.0, 2.0],
            scale: vec![3.0, 4.0]
        }
    );
}

#[test]
fn missing_scale_names_the_attribute() {
    let err = Scaler::from_node(&node(vec![floats_attr("offset", &[1.0])])).unwrap_err();
    assert_eq!(err.to_string(), "attribute 'scale' missing");
}

#[test]
fn missing_offset_names_the_attribute() {
    let err = Scaler::from_node(&node(vec![floats_attr("scale", &[1.0])])).unwrap_err();
    assert_eq!(err.to_string(), "attribute 'offset' missing");
}

#[test]
fn wrongly_typed_attribute_is_named() {
    let ints = AttributeProto {
        name: "scale".into(),
        r#type: AttributeType::Ints as i32,
        ints: vec![1],
        ..Default::default()
    };
    let err = Scaler::from_node(&node(vec![floats_attr("offset", &[1.0]), ints])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "attribute 'scale': expected floats, got ints"
    );
}

#[test]
fn mismatched_lengths_are_rejected() {
    let err = Scaler::new(vec![1.0, 2.0], vec![1.0, 2.0, 3.0]).unwrap_err();
    assert!(
        err.to_string()
            .contains("'scale' has 3 values but 'offset' has 2"),
        "{err}"
    );
    assert!(Scaler::new(vec![], vec![1.0]).is_err());
}

#[test]
fn per_feature_values_must_match_the_input_width() {
    let err = run(
        Scaler::new(vec![1.0, 2.0, 3.0], vec![1.0]).unwrap(),
        4,
        &[0.0; 4],
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("attribute 'offset' has 3 values, input has 4 features"),
        "{err:#}"
    );
}
