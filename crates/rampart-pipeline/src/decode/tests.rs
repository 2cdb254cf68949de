#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_core::Reason;

use super::{decode_v1, decode_v2, Limits};

const L: Limits = Limits {
    width: 3,
    max_rows: 4,
};

fn v1_reason(body: &str) -> Reason {
    decode_v1(body.as_bytes(), L)
        .expect_err("should refuse")
        .reason
}

fn v2_reason(body: &str) -> Reason {
    decode_v2(body.as_bytes(), L, "X")
        .expect_err("should refuse")
        .reason
}

#[test]
fn v1_single_row_decodes() {
    let d = decode_v1(br#"{"features": [1, 2.5, -3e2]}"#, L).unwrap();
    assert_eq!(d.rows, 1);
    assert_eq!(d.data, vec![1.0, 2.5, -300.0]);
}

#[test]
fn v1_batch_decodes() {
    let d = decode_v1(br#"{"instances": [[1,2,3],[4,5,6]]}"#, L).unwrap();
    assert_eq!(d.rows, 2);
    assert_eq!(d.data.len(), 6);
}

#[test]
fn v1_refusals_are_classified() {
    assert_eq!(v1_reason("not json"), Reason::InvalidJson);
    assert_eq!(v1_reason(r#"{"features": [1,2,3]"#), Reason::InvalidJson);
    assert_eq!(v1_reason("[1,2,3]"), Reason::InvalidJson);
    assert_eq!(v1_reason("{}"), Reason::MissingField);
    assert_eq!(v1_reason(r#"{"other": 1}"#), Reason::InvalidJson);
    assert_eq!(v1_reason(r#"{"features": [1,2]}"#), Reason::ShapeMismatch);
    assert_eq!(
        v1_reason(r#"{"features": [1,2,3,4]}"#),
        Reason::ShapeMismatch
    );
    assert_eq!(
        v1_reason(r#"{"features": [1,"2",3]}"#),
        Reason::DtypeMismatch
    );
    assert_eq!(
        v1_reason(r#"{"features": [1,null,3]}"#),
        Reason::DtypeMismatch
    );
    assert_eq!(
        v1_reason(r#"{"features": [1,true,3]}"#),
        Reason::DtypeMismatch
    );
    assert_eq!(
        v1_reason(r#"{"features": [1,[2],3]}"#),
        Reason::ShapeMismatch
    );
    assert_eq!(v1_reason(r#"{"features": [1,1e39,3]}"#), Reason::NonFinite);
    assert_eq!(v1_reason(r#"{"features": [1,1e400,3]}"#), Reason::NonFinite);
    assert_eq!(v1_reason(r#"{"features": [1,NaN,3]}"#), Reason::InvalidJson);
    assert_eq!(
        v1_reason(r#"{"features": [1,2,3], "instances": [[1,2,3]]}"#),
        Reason::InvalidJson
    );
    assert_eq!(v1_reason(r#"{"instances": []}"#), Reason::ShapeMismatch);
    assert_eq!(
        v1_reason(r#"{"instances": [[1,2,3],[1,2,3],[1,2,3],[1,2,3],[1,2,3]]}"#),
        Reason::ShapeMismatch
    );
    assert_eq!(
        v1_reason(r#"{"features": [1,2,3]} trailing"#),
        Reason::InvalidJson
    );
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let deep = format!(
        "{{\"features\": {}1{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(decode_v1(deep.as_bytes(), L).is_err());
    let deep_params = format!(
        r#"{{"parameters": {}1{}, "inputs": []}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    // Whatever the reason (serde_json skips ignored values without recursing), no stack overflow and a refusal.
    assert!(decode_v2(deep_params.as_bytes(), L, "X").is_err());
}

#[test]
fn v2_flat_and_nested_data_decode() {
    let flat = r#"{"id":"r1","inputs":[{"name":"X","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}"#;
    let d = decode_v2(flat.as_bytes(), L, "X").unwrap();
    assert_eq!((d.rows, d.echo_id.as_deref()), (2, Some("r1")));
    let nested =
        r#"{"inputs":[{"name":"X","shape":[2,3],"datatype":"FP64","data":[[1,2,3],[4,5,6]]}]}"#;
    let d = decode_v2(nested.as_bytes(), L, "X").unwrap();
    assert_eq!(d.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn v2_element_count_must_match_shape() {
    assert_eq!(
        v2_reason(r#"{"inputs":[{"name":"X","shape":[2,3],"datatype":"FP32","data":[1,2,3]}]}"#),
        Reason::ShapeMismatch
    );
    assert_eq!(
        v2_reason(r#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#),
        Reason::ShapeMismatch
    );
    assert_eq!(
        v2_reason(r#"{"inputs":[{"name":"X","shape":[9,3],"datatype":"FP32","data":[1,2,3]}]}"#),
        Reason::ShapeMismatch
    );
}

#[test]
fn v2_refusals_are_classified() {
    assert_eq!(v2_reason("{}"), Reason::MissingField);
    assert_eq!(v2_reason(r#"{"inputs":[]}"#), Reason::MissingField);
    assert_eq!(
        v2_reason(r#"{"inputs":[{"name":"X","shape":[1,3],"data":[1,2,3]}]}"#),
        Reason::MissingField
    );
    assert_eq!(
        v2_reason(r#"{"inputs":[{"name":"Y","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#),
        Reason::MissingField
    );
    assert_eq!(
        v2_reason(r#"{"inputs":[{"name":"X","shape":[1,3],"datatype":"BYTES","data":[1,2,3]}]}"#),
        Reason::DtypeMismatch
    );
    assert_eq!(
        v2_reason(
            r#"{"inputs":[{"name":"X","shape":[1,3],"datatype":"FP32","data":["a","b","c"]}]}"#
        ),
        Reason::DtypeMismatch
    );
    assert_eq!(
        v2_reason(
            r#"{"inputs":[{"name":"X","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"Z"}]}"#
        ),
        Reason::ShapeMismatch
    );
    let long_id = format!(
        r#"{{"id":"{}","inputs":[{{"name":"X","shape":[1,3],"datatype":"FP32","data":[1,2,3]}}]}}"#,
        "a".repeat(500)
    );
    assert_eq!(v2_reason(&long_id), Reason::InvalidJson);
}

#[test]
fn v2_oversized_data_is_refused_before_allocation() {
    let many = vec!["1"; 1000].join(",");
    let body =
        format!(r#"{{"inputs":[{{"name":"X","shape":[1,3],"datatype":"FP32","data":[{many}]}}]}}"#);
    assert_eq!(v2_reason(&body), Reason::ShapeMismatch);
}

#[test]
fn never_panics_on_truncations() {
    let body = r#"{"id":"a","inputs":[{"name":"X","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}]}"#;
    for cut in 0..body.len() {
        let _ = decode_v2(&body.as_bytes()[..cut], L, "X");
        let _ = decode_v1(&body.as_bytes()[..cut], L);
    }
}
