#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use time::macros::datetime;

use super::*;

fn record() -> AuditRecord {
    AuditRecord {
        time: Some(datetime!(2024-05-01 12:00:00.123456789 UTC)),
        request_id: "req-1".into(),
        identity: "alice".into(),
        model: "iris".into(),
        model_version: "3".into(),
        input_sha256: AuditRecord::input_digest(b"[[1.0,2.0]]"),
        decision: Decision {
            outcome: Outcome::Pass,
            reason: None,
            guard: None,
            status: 200,
        },
        flags: vec![Flag {
            guard: "anomaly".into(),
            reason: "anomalous_input".into(),
        }],
        output: json!({"label": "setosa", "p": 0.25}),
        input: None,
        latency_us: 812,
    }
}

fn line_of(rec: &AuditRecord, seq: u64, prev: &ChainHash) -> Vec<u8> {
    let mut out = Vec::new();
    encode(rec, OffsetDateTime::UNIX_EPOCH, &RecordPolicy::default())
        .unwrap()
        .frame_into(seq, prev, &mut out);
    out
}

#[test]
fn framed_line_decodes_to_the_record() {
    let prev = ChainHash::of_line(b"previous");
    let rec = record();
    let line = line_of(&rec, 42, &prev);
    let entry = decode_line(&line).unwrap();
    assert_eq!((entry.v, entry.seq, entry.prev), (2, 42, prev));
    assert_eq!(entry.kind(), Kind::Decision);
    let d = entry.decision().unwrap();
    assert_eq!(d.request_id, rec.request_id);
    assert_eq!(d.identity, rec.identity);
    assert_eq!(d.input_sha256, rec.input_sha256);
    assert_eq!(d.decision, rec.decision);
    assert_eq!(d.flags, rec.flags);
    assert_eq!(d.output, rec.output);
    assert_eq!(d.sealed, None);
    assert_eq!(d.latency_us, 812);
    assert_eq!(
        format_time(entry.time).unwrap(),
        "2024-05-01T12:00:00.123456Z"
    );
}

#[test]
fn pseudonyms_replace_identities_and_sealing_hides_output_and_input() {
    let hmac = rampart_crypto::keyfile::generate(rampart_crypto::keyfile::KeyKind::Hmac).unwrap();
    let aes = rampart_crypto::keyfile::generate(rampart_crypto::keyfile::KeyKind::Aes256).unwrap();
    let key = std::sync::Arc::new(AeadKey::from_key_file(&aes));
    let policy = RecordPolicy {
        pseudonyms: Some(PseudonymKey::from_key_file(&hmac)),
        seal: Some(key.clone()),
        store_input: true,
    };
    let mut rec = record();
    rec.input = Some(json!([[1.0, 2.0]]));
    let line = line_of_with(&rec, &policy);
    let text = String::from_utf8(line.clone()).unwrap();
    assert!(
        !text.contains("alice") && !text.contains("setosa"),
        "{text}"
    );
    let entry = decode_line(&line).unwrap();
    let d = entry.decision().unwrap();
    assert_eq!(d.identity, policy.identity("alice"));
    assert_eq!(d.output, serde_json::Value::Null);
    let opened = d.open(&key).unwrap();
    assert_eq!(opened.output, rec.output);
    assert_eq!(opened.input, rec.input);

    // The sealed part is bound to its request id.
    let moved = text.replacen("\"request_id\":\"req-1\"", "\"request_id\":\"req-2\"", 1);
    let moved = decode_line(moved.as_bytes()).unwrap();
    assert!(moved.decision().unwrap().open(&key).is_err());

    // Without sealing, a stored input is never written in clear (and the writer refuses that config).
    let clear = RecordPolicy {
        store_input: true,
        ..RecordPolicy::default()
    };
    let line = line_of_with(&rec, &clear);
    assert!(!String::from_utf8(line).unwrap().contains("[[1.0,2.0]]"));
}

fn line_of_with(rec: &AuditRecord, policy: &RecordPolicy) -> Vec<u8> {
    let mut out = Vec::new();
    encode(rec, OffsetDateTime::UNIX_EPOCH, policy)
        .unwrap()
        .frame_into(0, &ChainHash::GENESIS, &mut out);
    out
}

#[test]
fn events_round_trip_with_pseudonymized_identity() {
    let hmac = rampart_crypto::keyfile::generate(rampart_crypto::keyfile::KeyKind::Hmac).unwrap();
    let policy = RecordPolicy {
        pseudonyms: Some(PseudonymKey::from_key_file(&hmac)),
        ..RecordPolicy::default()
    };
    let fields = json!({"kind": "anomalous_input", "identity": "alice", "severity": "warning"});
    let mut line = Vec::new();
    encode_event(
        EventKind::Alert,
        &fields,
        OffsetDateTime::UNIX_EPOCH,
        &policy,
    )
    .unwrap()
    .frame_into(9, &ChainHash::GENESIS, &mut line);
    let entry = decode_line(&line).unwrap();
    let EntryBody::Alert(map) = &entry.body else {
        panic!("not an alert: {entry:?}");
    };
    assert_eq!(map["identity"], json!(policy.identity("alice")));
    assert_eq!(map["kind"], json!("anomalous_input"));
    assert!(matches!(
        encode_event(
            EventKind::Action,
            &json!([1]),
            OffsetDateTime::UNIX_EPOCH,
            &policy
        ),
        Err(FormatError::Malformed(_))
    ));
}

#[test]
fn members_of_another_kind_are_refused() {
    let line = String::from_utf8(line_of(&record(), 0, &ChainHash::GENESIS)).unwrap();
    let with_key = line.replacen(
        "\"latency_us\"",
        "\"key\":\"0011223344556677\",\"latency_us\"",
        1,
    );
    let err = decode_line(with_key.as_bytes()).unwrap_err().to_string();
    assert!(
        err.contains("`key` does not belong in a decision line"),
        "{err}"
    );
    let no_flags = line.replacen(
        "\"flags\":[{\"guard\":\"anomaly\",\"reason\":\"anomalous_input\"}],",
        "",
        1,
    );
    let err = decode_line(no_flags.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("without `flags`"), "{err}");
}

#[test]
fn members_are_written_in_spec_order() {
    let line = String::from_utf8(line_of(&record(), 7, &ChainHash::GENESIS)).unwrap();
    let keys = [
        "\"v\":2",
        "\"seq\":7",
        "\"time\":",
        "\"kind\":\"decision\"",
        "\"request_id\":",
        "\"identity\":",
        "\"model\":",
        "\"model_version\":",
        "\"input_sha256\":",
        "\"decision\":{\"outcome\":\"pass\",\"reason\":null,\"guard\":null,\"status\":200}",
        "\"flags\":[{\"guard\":\"anomaly\",\"reason\":\"anomalous_input\"}]",
        "\"output\":",
        "\"sealed\":null",
        "\"latency_us\":812",
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
    ];
    let mut at = 0;
    for key in keys {
        let found = line[at..]
            .find(key)
            .unwrap_or_else(|| panic!("{key} missing or out of order in {line}"));
        at += found + key.len();
    }
    assert!(!line.contains('\n'));
}

#[test]
fn time_is_utc_with_exactly_six_fraction_digits() {
    let enc = encode(
        &record(),
        OffsetDateTime::UNIX_EPOCH,
        &RecordPolicy::default(),
    )
    .unwrap();
    assert_eq!(enc.time(), "2024-05-01T12:00:00.123456Z");
    let offset = datetime!(2024-05-01 14:00:00 +02:00);
    assert_eq!(format_time(offset).unwrap(), "2024-05-01T12:00:00.000000Z");
}

#[test]
fn missing_time_is_stamped_with_now() {
    let mut rec = record();
    rec.time = None;
    let enc = encode(
        &rec,
        datetime!(2030-01-02 03:04:05 UTC),
        &RecordPolicy::default(),
    )
    .unwrap();
    assert_eq!(enc.time(), "2030-01-02T03:04:05.000000Z");
}

#[test]
fn time_parsing_accepts_only_the_written_spelling() {
    assert!(parse_time("2024-05-01T12:00:00.123456Z").is_ok());
    for bad in [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.123Z",
        "2024-05-01T12:00:00.123456+00:00",
        "2024-05-01 12:00:00.123456Z",
        "2024-05-01t12:00:00.123456z",
    ] {
        assert!(parse_time(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn newlines_in_strings_are_escaped_so_a_record_stays_one_line() {
    let mut rec = record();
    rec.request_id = "a\nb\r\u{2028}".into();
    let line = line_of(&rec, 0, &ChainHash::GENESIS);
    assert!(!line.contains(&b'\n'));
    assert_eq!(
        decode_line(&line).unwrap().decision().unwrap().request_id,
        "a\nb\r\u{2028}"
    );
}

#[test]
fn bad_input_digest_is_refused_at_encode() {
    let mut rec = record();
    rec.input_sha256 = "ABC".into();
    assert!(matches!(
        encode(&rec, OffsetDateTime::UNIX_EPOCH, &RecordPolicy::default()),
        Err(FormatError::BadInputDigest)
    ));
    rec.input_sha256 = rec.input_sha256.to_uppercase();
    assert!(matches!(
        encode(&rec, OffsetDateTime::UNIX_EPOCH, &RecordPolicy::default()),
        Err(FormatError::BadInputDigest)
    ));
}

#[test]
fn oversized_record_is_refused_at_encode_and_max_sized_one_fits() {
    let mut rec = record();
    rec.output = json!("x".repeat(MAX_LINE_BYTES));
    assert!(matches!(
        encode(&rec, OffsetDateTime::UNIX_EPOCH, &RecordPolicy::default()),
        Err(FormatError::LineTooLong { .. })
    ));

    // Find the largest output that encodes, and check the finished line at the largest seq stays in bounds.
    rec.output = json!("");
    let base = encode(&rec, OffsetDateTime::UNIX_EPOCH, &RecordPolicy::default())
        .unwrap()
        .body
        .len();
    rec.output = json!("x".repeat(MAX_LINE_BYTES - MAX_FRAME_BYTES - base));
    let mut line = Vec::new();
    encode(&rec, OffsetDateTime::UNIX_EPOCH, &RecordPolicy::default())
        .unwrap()
        .frame_into(u64::MAX, &ChainHash::GENESIS, &mut line);
    assert!(line.len() <= MAX_LINE_BYTES);
    assert!(decode_line(&line).is_ok());
}

#[test]
fn decode_refuses_long_lines_before_parsing() {
    let line = vec![b' '; MAX_LINE_BYTES + 1];
    assert!(
        matches!(decode_line(&line), Err(FormatError::LineTooLong { len }) if len == MAX_LINE_BYTES + 1)
    );
}

#[test]
fn decode_refuses_unknown_version_before_shape() {
    assert!(matches!(
        decode_line(br#"{"v":3,"whatever":true}"#),
        Err(FormatError::UnsupportedVersion(3))
    ));
    assert!(matches!(
        decode_line(br#"{"v":1,"seq":0}"#),
        Err(FormatError::UnsupportedVersion(1))
    ));
    assert!(matches!(
        decode_line(br#"{"seq":0}"#),
        Err(FormatError::Malformed(_))
    ));
}

#[test]
fn decode_refuses_unknown_members_and_bad_outcomes() {
    let line = String::from_utf8(line_of(&record(), 0, &ChainHash::GENESIS)).unwrap();
    let extra = line.replacen("\"v\":2,", "\"v\":2,\"extra\":0,", 1);
    assert!(matches!(
        decode_line(extra.as_bytes()),
        Err(FormatError::Malformed(_))
    ));
    let outcome = line.replacen("\"pass\"", "\"allow\"", 1);
    assert!(matches!(
        decode_line(outcome.as_bytes()),
        Err(FormatError::Malformed(_))
    ));
    let prev = line.replacen("\"prev\":\"0", "\"prev\":\"A", 1);
    assert!(matches!(
        decode_line(prev.as_bytes()),
        Err(FormatError::Malformed(_))
    ));
}

#[test]
fn file_names_are_zero_padded_and_round_trip() {
    assert_eq!(file_name(0), "audit-00000000000000000000.jsonl");
    assert_eq!(file_name(u64::MAX), "audit-18446744073709551615.jsonl");
    assert_eq!(parse_file_name(&file_name(12345)), Some(12345));
    for bad in [
        "audit-1.jsonl",
        "audit-0000000000000000000x.jsonl",
        "audit-00000000000000000000.json",
        "x.jsonl",
    ] {
        assert_eq!(parse_file_name(bad), None, "{bad}");
    }
}
