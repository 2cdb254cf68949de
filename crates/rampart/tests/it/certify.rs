//! `rampart certify` (issue 9): the randomized-smoothing certification experiment, on a handful of digits.

use crate::run;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../rampart-model/tests/models/digits_mlp.onnx"
);
/// The first 8 rows of the shared digits test split (pixels in [0, 1], label last).
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/digits_head.csv");

/// Runs `certify` on the fixture with small n; `set` replaces a default flag's value or adds a flag.
fn certify(out: &str, set: &[(&str, &str)]) -> (i32, String, String) {
    let mut flags = vec![
        ("--model", MODEL),
        ("--data", DATA),
        ("--sigma", "0.25"),
        ("--n", "500"),
        ("--n0", "50"),
        ("--alpha", "0.001"),
        ("--seed", "7"),
        ("--out", out),
    ];
    for &(k, v) in set {
        match flags.iter_mut().find(|(f, _)| *f == k) {
            Some(slot) => slot.1 = v,
            None => flags.push((k, v)),
        }
    }
    let mut args = vec!["certify".to_owned()];
    for (k, v) in flags {
        // `--sigma=-1`, so a negative value is not taken for a flag.
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

#[test]
fn certify_writes_rows_summary_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cert.csv");
    let plot = dir.path().join("cert.svg");
    let (code, stdout, err) = certify(
        out.to_str().unwrap(),
        &[("--limit", "5"), ("--plot", plot.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{err}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "idx,label,predict,radius,correct,time");
    assert_eq!(lines.len(), 6, "--limit 5: {csv}");
    for (i, line) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 6, "{line}");
        assert_eq!(f[0], i.to_string());
        let radius: f64 = f[3].parse().unwrap();
        let correct = f[4] == "1";
        assert!(radius >= 0.0);
        // An abstention is predict = -1 with radius 0; a correct row is one that predicted its label.
        assert_eq!(correct, f[2] == f[1], "{line}");
        if f[2] == "-1" {
            assert_eq!(radius, 0.0);
        }
    }
    for want in [
        "clean accuracy",
        "radius  certified accuracy",
        "  0.00  ",
        "  1.00  ",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<path d=\"M"));

    // Same seed, same certificates (the time column aside).
    let again = dir.path().join("again.csv");
    let (code, ..) = certify(again.to_str().unwrap(), &[("--limit", "5")]);
    assert_eq!(code, 0);
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_owned())
            .collect()
    };
    assert_eq!(
        strip(&csv),
        strip(&std::fs::read_to_string(&again).unwrap())
    );
}

#[test]
fn certify_json_summary_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cert.csv");
    let (code, stdout, err) = certify(
        out.to_str().unwrap(),
        &[("--limit", "2"), ("--format", "json")],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["rows"], 2);
    assert_eq!(v["certified_accuracy"][0]["radius"], 0.0);

    // The output exists now: refused, not overwritten.
    let (code, _, err) = certify(out.to_str().unwrap(), &[("--limit", "1")]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");

    let fresh = dir.path().join("x.csv");
    let fresh = fresh.to_str().unwrap();
    for (bad, what) in [
        (("--alpha", "1.5"), "smoothing.alpha"),
        (("--sigma", "-1"), "smoothing.sigma"),
        (("--n", "0"), "smoothing.n:"),
    ] {
        let (code, _, err) = certify(fresh, &[bad]);
        assert_eq!(code, 2, "{bad:?}");
        assert!(err.contains(what), "{bad:?}: {err}");
    }

    // A label that is not a class index is named by line.
    let csv = dir.path().join("bad.csv");
    let mut text = std::fs::read_to_string(DATA).unwrap();
    text.push_str(&format!("{}12\n", "0,".repeat(64)));
    std::fs::write(&csv, text).unwrap();
    let (code, _, err) = certify(fresh, &[("--data", csv.to_str().unwrap())]);
    assert_eq!(code, 2);
    assert!(err.contains("line 10") && err.contains("label"), "{err}");
}
