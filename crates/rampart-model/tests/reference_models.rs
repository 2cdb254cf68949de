//! Every reference model in `tests/models/` against the outputs onnxruntime computed for it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_model::{Backend, LoadError, ModelKind, RunError, TractModel};
use serde_json::Value;

use std::path::{Path, PathBuf};

const TOLERANCE: f64 = 1e-5;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

struct Case {
    name: String,
    model: TractModel,
    expected: Value,
    rows: Vec<f32>,
    n_rows: usize,
}

fn cases() -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(models_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".onnx").map(str::to_string))
        .collect();
    names.sort();
    assert!(
        names.len() >= 11,
        "expected every reference model, found {names:?}"
    );
    names
        .into_iter()
        .map(|name| {
            let model = TractModel::load(&models_dir().join(format!("{name}.onnx")))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let text = std::fs::read_to_string(models_dir().join(format!("{name}.expected.json")))
                .unwrap();
            let expected: Value = serde_json::from_str(&text).unwrap();
            let input = &expected["sample_input"];
            let shape: Vec<usize> = input["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let rows: Vec<f32> = input["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(shape[1], model.info().width, "{name}: width");
            assert_eq!(
                input["name"].as_str().unwrap(),
                model.info().input_name,
                "{name}: input name"
            );
            Case {
                name,
                model,
                expected,
                n_rows: shape[0],
                rows,
            }
        })
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// ZipMap's expected output: a list of `{class: p}` maps, flattened in numeric class order.
fn zipmap_probabilities(v: &Value) -> Vec<f64> {
    let mut out = vec![];
    for row in v.as_array().unwrap() {
        let mut entries: Vec<(i64, f64)> = row
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, p)| (k.parse().unwrap(), p.as_f64().unwrap()))
            .collect();
        entries.sort_by_key(|e| e.0);
        out.extend(entries.into_iter().map(|e| e.1));
    }
    out
}

fn assert_close(case: &str, output: &str, got: &[f32], want: &[f64], relative: bool) {
    assert_eq!(got.len(), want.len(), "{case}/{output}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let scale = if relative { w.abs().max(1.0) } else { 1.0 };
        assert!(
            (f64::from(g) - w).abs() <= TOLERANCE * scale,
            "{case}/{output}[{i}]: got {g}, onnxruntime {w}"
        );
    }
}

#[test]
fn every_reference_model_matches_onnxruntime() {
    for case in cases() {
        let info = case.model.info();
        let out = case.model.predict(&case.rows, case.n_rows).unwrap();
        assert_eq!(out.n_rows, case.n_rows);
        let expected = case.expected["expected_outputs"].as_object().unwrap();
        let mut checked = 0;
        for (name, want) in expected {
            if Some(name) == info.labels_output.as_ref() {
                let want: Vec<i64> = want["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect();
                assert_eq!(
                    out.labels.as_ref(),
                    Some(&want),
                    "{}/{name}: labels",
                    case.name
                );
            } else if *name == info.values_output {
                let relative = matches!(info.kind, ModelKind::Regressor { .. });
                let want = if want["python_type"] == "list" {
                    zipmap_probabilities(&want["data"])
                } else {
                    floats(&want["data"])
                };
                assert_close(&case.name, name, &out.values, &want, relative);
            } else {
                panic!("{}: expected output {name} is neither the labels nor the values output ({info:?})", case.name);
            }
            checked += 1;
        }
        assert_eq!(
            checked,
            info.outputs.len(),
            "{}: every output compared",
            case.name
        );
        let is_classifier = case.expected["expected_outputs"].as_object().unwrap().len() == 2;
        assert_eq!(
            matches!(info.kind, ModelKind::Classifier { .. }),
            is_classifier,
            "{}: kind",
            case.name
        );
    }
}

#[test]
fn batch_equals_rows_one_by_one() {
    for case in cases() {
        let width = case.model.info().width;
        let batch = case.model.predict(&case.rows, case.n_rows).unwrap();
        let columns = batch.kind.columns();
        for (i, row) in case.rows.chunks(width).enumerate() {
            let one = case.model.predict(row, 1).unwrap();
            // Matrix kernels may pick another tiling for one row than for eight, so allow rounding.
            let one_by_one: Vec<f64> = one.values.iter().map(|&v| f64::from(v)).collect();
            assert_close(
                &format!("{} row {i}", case.name),
                "values",
                batch.row(i).unwrap(),
                &one_by_one,
                true,
            );
            if let (Some(one), Some(all)) = (&one.labels, &batch.labels) {
                assert_eq!(one[0], all[i], "{} row {i} label", case.name);
            }
            assert_eq!(one.values.len(), columns);
        }
    }
}

#[test]
fn batch_sizes_share_one_plan() {
    // Any batch size runs, including ones never seen before, larger than the sample.
    let model = TractModel::load(&models_dir().join("breast_cancer_folded.onnx")).unwrap();
    let width = model.info().width;
    for n in [1, 2, 7, 64, 257] {
        let rows: Vec<f32> = (0..n * width).map(|i| (i % 13) as f32).collect();
        let out = model.predict(&rows, n).unwrap();
        assert_eq!(out.values.len(), n * 2);
        assert_eq!(out.labels.unwrap().len(), n);
    }
}

#[test]
fn wrong_width_is_an_error_not_a_panic() {
    for case in cases() {
        let width = case.model.info().width;
        let short = vec![0.0; width - 1];
        assert!(
            matches!(
                case.model.predict(&short, 1),
                Err(RunError::WrongLength { .. })
            ),
            "{}",
            case.name
        );
        let long = vec![0.0; width * 2 + 1];
        assert!(
            matches!(
                case.model.predict(&long, 2),
                Err(RunError::WrongLength { .. })
            ),
            "{}",
            case.name
        );
        assert!(
            matches!(case.model.predict(&[], 0), Err(RunError::EmptyBatch)),
            "{}",
            case.name
        );
        assert!(
            matches!(
                case.model.predict(&short, usize::MAX),
                Err(RunError::TooLarge { .. })
            ),
            "{}",
            case.name
        );
    }
}

#[test]
fn model_kinds_are_detected() {
    let kind = |n: &str| {
        TractModel::load(&models_dir().join(format!("{n}.onnx")))
            .unwrap()
            .info()
            .kind
    };
    assert_eq!(kind("iris_logreg"), ModelKind::Classifier { classes: 3 });
    assert_eq!(kind("iris_forest"), ModelKind::Classifier { classes: 3 });
    assert_eq!(
        kind("cancer_logreg_zipmap"),
        ModelKind::Classifier { classes: 2 }
    );
    assert_eq!(kind("digits_mlp"), ModelKind::Classifier { classes: 10 });
    assert_eq!(kind("diabetes_ridge"), ModelKind::Regressor { outputs: 1 });
    assert_eq!(kind("diabetes_gbr"), ModelKind::Regressor { outputs: 1 });
}

#[test]
fn embedded_bytes_load_like_a_file() {
    let bytes = std::fs::read(models_dir().join("iris_logreg.onnx")).unwrap();
    let model = TractModel::load_bytes("embedded-iris", &bytes).unwrap();
    assert_eq!(model.info().name, "embedded-iris");
    assert_eq!(model.info().width, 4);
}

#[test]
fn missing_file_error_names_the_file() {
    let path = models_dir().join("no_such_model.onnx");
    let err = TractModel::load(&path).unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no_such_model.onnx"), "{err}");
}

#[test]
fn corrupt_file_error_names_the_file() {
    let dir = std::env::temp_dir().join(format!("rampart-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in [
        (
            "not_onnx.onnx",
            b"this is not a protobuf at all \xff\xfe\x00".to_vec(),
        ),
        ("empty.onnx", vec![]),
        (
            "truncated.onnx",
            std::fs::read(models_dir().join("iris_logreg.onnx")).unwrap()[..200].to_vec(),
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = TractModel::load(&path).unwrap_err();
        assert!(err.to_string().contains(name), "{name}: {err}");
        assert!(matches!(err, LoadError::Decode { .. }), "{name}: {err:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn model_info_lists_ops_and_opset() {
    let model = TractModel::load(&models_dir().join("cancer_logreg_zipmap.onnx")).unwrap();
    let info = model.info();
    assert!(
        info.ops.iter().any(|o| o == "ai.onnx.ml:Scaler"),
        "{:?}",
        info.ops
    );
    assert!(
        info.ops.iter().any(|o| o == "ai.onnx.ml:ZipMap"),
        "{:?}",
        info.ops
    );
    assert!(info.opset > 0);
    assert_eq!(info.outputs, ["output_label", "output_probability"]);
}

/// Decodes a fixture, lets `edit` break it, and loads the re-encoded bytes.
fn load_edited(fixture: &str, edit: impl FnOnce(&mut tract_onnx::pb::ModelProto)) -> LoadError {
    use prost::Message;
    let bytes = std::fs::read(models_dir().join(fixture)).unwrap();
    let mut proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
    edit(&mut proto);
    TractModel::load_bytes("edited.onnx", &proto.encode_to_vec()).unwrap_err()
}

#[test]
fn translation_error_names_file_node_op_and_attribute() {
    let err = load_edited("cancer_logreg.onnx", |p| {
        let graph = p.graph.as_mut().unwrap();
        let scaler = graph
            .node
            .iter_mut()
            .find(|n| n.op_type == "Scaler")
            .unwrap();
        scaler.name = "Scaler".into();
        scaler.attribute.retain(|a| a.name != "scale");
    });
    assert!(matches!(err, LoadError::Node { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "model edited.onnx: node 'Scaler' (ai.onnx.ml:Scaler): attribute 'scale' missing"
    );
}

#[test]
fn tree_error_names_the_attribute() {
    let err = load_edited("diabetes_gbr.onnx", |p| {
        let node = &mut p.graph.as_mut().unwrap().node[0];
        let modes = node
            .attribute
            .iter_mut()
            .find(|a| a.name == "nodes_modes")
            .unwrap();
        modes.strings[0] = b"BRANCH_SIDEWAYS".to_vec();
    });
    let msg = err.to_string();
    assert!(msg.starts_with("model edited.onnx: node '"), "{msg}");
    assert!(
        msg.contains("(ai.onnx.ml:TreeEnsembleRegressor): attribute 'nodes_modes'"),
        "{msg}"
    );
}

#[test]
fn unknown_op_is_named() {
    let err = load_edited("iris_logreg.onnx", |p| {
        let node = &mut p.graph.as_mut().unwrap().node[0];
        node.op_type = "FancyTransformer".into();
        node.name = "fancy".into();
    });
    assert!(matches!(err, LoadError::UnsupportedOp { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("node 'fancy' (ai.onnx.ml:FancyTransformer)"),
        "{err}"
    );
}
