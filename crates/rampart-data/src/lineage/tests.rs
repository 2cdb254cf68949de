#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
    store: Store,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manifest.json"), "{\"dataset\": 1}").unwrap();
        std::fs::write(dir.path().join("model.onnx"), "weights").unwrap();
        let store = Store::open(&dir.path().join("lineage.jsonl")).unwrap();
        Self {
            dir,
            key: SigningKey::generate(),
            store,
        }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn record(&mut self, step: &str, inputs: &[&str], outputs: &[&str]) {
        let step = Step {
            step: step.into(),
            inputs: inputs.iter().map(|n| self.p(n)).collect(),
            outputs: outputs.iter().map(|n| self.p(n)).collect(),
            params: vec![("epochs".into(), "3".into())],
            who: "tester".into(),
        };
        self.store.record(&step, &self.key).unwrap();
    }

    fn reopen(&self) -> Store {
        Store::open(&self.p("lineage.jsonl")).unwrap()
    }

    fn verify(&self) -> Report {
        self.reopen()
            .verify(&[self.key.verifying_key()], self.dir.path())
    }
}

#[test]
fn chain_from_model_to_dataset_verifies() {
    let mut f = Fixture::new();
    f.record("ingest", &[], &["manifest.json"]);
    f.record("train", &["manifest.json"], &["model.onnx"]);
    let r = f.verify();
    assert!(r.findings.is_empty(), "{r:?}");
    assert_eq!(r.statements, 2);
    let chain = f.reopen().chain(&f.p("model.onnx")).unwrap();
    assert_eq!(chain.produced_by.as_ref().unwrap().step, "train");
    assert_eq!(chain.inputs.len(), 1);
    assert_eq!(chain.inputs[0].produced_by.as_ref().unwrap().step, "ingest");
    let tree = chain.render_tree();
    assert!(tree.contains("└── "), "{tree}");
    assert!(tree.contains("epochs=3"), "{tree}");
}

#[test]
fn a_modified_dataset_breaks_the_link() {
    let mut f = Fixture::new();
    f.record("ingest", &[], &["manifest.json"]);
    std::fs::write(f.p("manifest.json"), "{\"dataset\": 2}").unwrap();
    f.record("train", &["manifest.json"], &["model.onnx"]);
    let r = f.verify();
    assert!(
        r.findings.iter().any(|x| x.message.contains("broken link")),
        "{r:?}"
    );
}

#[test]
fn an_unrecorded_artifact_has_no_lineage() {
    let mut f = Fixture::new();
    f.record("train", &["manifest.json"], &["model.onnx"]);
    std::fs::write(f.p("model.onnx"), "retrained").unwrap();
    let err = f.reopen().chain(&f.p("model.onnx")).unwrap_err();
    assert!(matches!(err, LineageError::NoLineage { .. }), "{err}");
    let r = f.verify();
    assert!(
        r.findings
            .iter()
            .any(|x| x.message.contains("modified since")),
        "{r:?}"
    );
}

#[test]
fn deleted_or_edited_lines_and_foreign_keys_are_found() {
    let mut f = Fixture::new();
    f.record("ingest", &[], &["manifest.json"]);
    f.record("train", &["manifest.json"], &["model.onnx"]);
    f.record("register", &["model.onnx"], &["model.onnx"]);
    let path = f.p("lineage.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    assert!(f
        .verify()
        .findings
        .iter()
        .any(|x| x.message.contains("chain broken")));
    std::fs::write(&path, text.replace("tester", "mallory")).unwrap();
    assert!(f
        .verify()
        .findings
        .iter()
        .any(|x| x.message.contains("bad signature")));
    std::fs::write(&path, &text).unwrap();
    let other = SigningKey::generate();
    let r = f.reopen().verify(&[other.verifying_key()], f.dir.path());
    assert!(r.findings.iter().any(|x| x.message.contains("not trusted")));
}

#[test]
fn a_truncated_line_is_refused_with_its_number() {
    let mut f = Fixture::new();
    f.record("ingest", &[], &["manifest.json"]);
    f.record("train", &["manifest.json"], &["model.onnx"]);
    let path = f.p("lineage.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() - 10]).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, LineageError::Format { line: 2, .. }), "{err}");
}
