//! `classify` and `evaluate` run by the real `cairn` binary: features loaded from Parquet (the
//! shape extract-hidden writes), a logistic regression beside the most-frequent baseline, each
//! evaluated; metrics in the manifest and `cairn metrics`; cached on a second run; a change of
//! `C` reruns only that classifier and its evaluation.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use common::Project;
use serde_json::Value;

const PIPELINE: &str = r#"
name: clf
params:
  C: 1.0
stages:
  features:
    kind: load
    splits: {train: train.parquet, validation: validation.parquet}
    labels: [x, y, z]
  lr:
    kind: classify
    inputs: [features]
    method: logistic-regression
    C: ${params.C}
  baseline:
    kind: classify
    inputs: [features]
    method: most-frequent
  eval-lr:
    kind: evaluate
    inputs: [lr]
    top-k: 3
  eval-baseline:
    kind: evaluate
    inputs: [baseline]
"#;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/classify/logreg.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `text`, `label`, `hidden_state: fixed_size_list<float32>[d]` as a Parquet file.
fn write_features(p: &Project, name: &str, x: &[Vec<f64>], y: &[i64]) {
    let d = x[0].len();
    let values: Float32Array = x.iter().flatten().map(|&v| v as f32).collect();
    let hidden = FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        d as i32,
        Arc::new(values),
        None,
    );
    let text: StringArray = (0..y.len()).map(|i| Some(format!("example {i}"))).collect();
    let batch = RecordBatch::try_from_iter([
        ("text", Arc::new(text) as ArrayRef),
        ("label", Arc::new(Int64Array::from(y.to_vec())) as ArrayRef),
        ("hidden_state", Arc::new(hidden) as ArrayRef),
    ])
    .unwrap();
    let file = std::fs::File::create(p.path(name)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = p.read("p.yaml");
    assert!(text.contains(from), "pipeline has no `{from}`");
    p.write("p.yaml", &text.replacen(from, to, 1));
}

#[test]
fn logistic_regression_and_baseline_are_evaluated_cached_and_rerun_on_c_only() {
    let fx = fixture();
    let x: Vec<Vec<f64>> = serde_json::from_value(fx["multiclass"]["X"].clone()).unwrap();
    let y: Vec<i64> = serde_json::from_value(fx["multiclass"]["y"].clone()).unwrap();
    let p = Project::new();
    write_features(&p, "train.parquet", &x, &y);
    write_features(&p, "validation.parquet", &x[..30], &y[..30]);
    p.write("p.yaml", PIPELINE);

    let run = p.cairn(&["run", "p.yaml"]).ok();
    assert!(run.stdout.contains("5 ran, 0 cached"), "{}", run.stdout);
    let metrics = p.cairn(&["metrics", "p.yaml", "--json"]).ok();
    let m: Value = serde_json::from_str(&metrics.stdout).unwrap();
    // The fixture's default fit on these rows (scikit-learn): its train predictions.
    let want_pred: Vec<i64> =
        serde_json::from_value(fx["multiclass"]["default"]["pred"].clone()).unwrap();
    let correct =
        |rows: usize| (0..rows).filter(|&i| want_pred[i] == y[i]).count() as f64 / rows as f64;
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-12;
    assert!(close(&m["lr"]["train"]["accuracy"], correct(60)), "{m}");
    assert!(
        close(&m["eval-lr"]["validation"]["accuracy"], correct(30)),
        "{m}"
    );
    assert_eq!(
        m["lr"]["n_iter"], fx["multiclass"]["default"]["n_iter"],
        "{m}"
    );
    // Validation is rows 0..30: 20 of class 0 and 10 of class 1; train's mode is 0 (a tie of
    // 20/20/20, broken towards the smallest id).
    assert!(
        close(&m["eval-baseline"]["validation"]["accuracy"], 20.0 / 30.0),
        "{m}"
    );
    for key in ["f1_weighted", "f1_macro", "loss"] {
        assert!(m["eval-lr"]["validation"][key].is_f64(), "{key}: {m}");
    }
    let shown = p.cairn(&["metrics", "p.yaml"]).ok().stdout;
    assert!(
        shown.contains("eval-lr") && shown.contains("f1_weighted"),
        "{shown}"
    );

    let run = p.cairn(&["run", "p.yaml"]).ok();
    assert!(run.stdout.contains("0 ran, 5 cached"), "{}", run.stdout);

    edit(&p, "C: 1.0", "C: 0.1");
    let status = p.cairn(&["status", "p.yaml"]).ok().stdout;
    assert!(status.contains("params.C 1.0 → 0.1"), "{status}");
    let run = p.cairn(&["run", "p.yaml"]).ok();
    assert!(run.stdout.contains("2 ran, 3 cached"), "{}", run.stdout);
}
