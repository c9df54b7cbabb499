//! Results a person can trust, through the real `cairn` binary: non-finite numbers are refused
//! with their location, `evaluate` never quietly scores the training split, token ids and
//! lengths a model cannot take are caught before the encoder runs, a tokenizer without a
//! length takes its model's positions, and a model counts in fingerprints by the files a stage
//! reads (not its README).
//!
//! Models are the tiny random BERT of `tests/fixtures/encoders/bert` (vocabulary 100, 64
//! positions) plus a word-level tokenizer written here, copied into each test's temp dir.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use common::Project;
use serde_json::json;

/// Writes `batch` as a Parquet file.
fn write_parquet(p: &Project, name: &str, batch: &RecordBatch) {
    let file = std::fs::File::create(p.path(name)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn vectors(rows: &[Vec<f32>]) -> ArrayRef {
    let values: Float32Array = rows.iter().flatten().copied().collect();
    Arc::new(FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        rows[0].len() as i32,
        Arc::new(values),
        None,
    ))
}

/// `text`, `label` and 4-wide `hidden_state` features, `nan` at (row, column) if given.
fn features(n: usize, nan: Option<(usize, usize)>) -> RecordBatch {
    let rows: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            (0..4)
                .map(|j| {
                    if nan == Some((i, j)) {
                        f32::NAN
                    } else {
                        ((i * 7 + j * 3) % 11) as f32 / 11.0 + (i % 2) as f32
                    }
                })
                .collect()
        })
        .collect();
    let text: StringArray = (0..n).map(|i| Some(format!("example {i}"))).collect();
    let label: Int64Array = (0..n).map(|i| (i % 2) as i64).collect();
    RecordBatch::try_from_iter([
        ("text", Arc::new(text) as ArrayRef),
        ("label", Arc::new(label) as ArrayRef),
        ("hidden_state", vectors(&rows)),
    ])
    .unwrap()
}

/// The end-of-run table's row for `stage`.
fn summary_row<'a>(stdout: &'a str, stage: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no row for `{stage}` in:\n{stdout}"))
}

#[test]
fn nan_in_one_feature_row_fails_every_numeric_stage_with_its_location() {
    let p = Project::new();
    write_parquet(&p, "train.parquet", &features(12, Some((7, 2))));
    write_parquet(&p, "validation.parquet", &features(6, None));
    // Scores with an infinity, for evaluate.
    let probs = vectors(&[vec![0.5, 0.5], vec![f32::INFINITY, 0.0], vec![0.1, 0.9]]);
    let scored = RecordBatch::try_from_iter([
        (
            "label",
            Arc::new(Int64Array::from(vec![0, 1, 1])) as ArrayRef,
        ),
        ("probs", probs),
    ])
    .unwrap();
    write_parquet(&p, "scored.parquet", &scored);
    p.write(
        "p.yaml",
        r#"
name: nan
stages:
  features:
    kind: load
    splits: {train: train.parquet, validation: validation.parquet}
    labels: [a, b]
  scale: {kind: scale, inputs: [features], method: standard}
  pca: {kind: project, inputs: [features], method: pca}
  lr: {kind: classify, inputs: [features], method: logistic-regression}
  scores:
    kind: load
    splits: {validation: scored.parquet}
    labels: [a, b]
  eval: {kind: evaluate, inputs: [scores]}
"#,
    );
    let run = p.cairn(&["run", "p.yaml"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let at = "split `train`, row 7, column `hidden_state[2]` is NaN";
    for stage in ["scale", "pca", "lr"] {
        let row = summary_row(&run.stdout, stage);
        assert!(row.contains("FAILED") && row.contains(at), "{row}");
    }
    let row = summary_row(&run.stdout, "eval");
    assert!(
        row.contains("FAILED")
            && row.contains("split `validation`, row 1, column `probs[0]` is +inf"),
        "{row}"
    );
    // Nothing was recorded for them: no trustworthiness of NaN coordinates, no zero weights.
    let metrics = p.cairn(&["metrics", "p.yaml"]);
    assert!(
        !metrics.stdout.contains("trustworthiness"),
        "{}",
        metrics.stdout
    );
}

#[test]
fn evaluate_says_which_splits_it_skipped_instead_of_silently_scoring_train() {
    let p = Project::new();
    write_parquet(&p, "train.parquet", &features(12, None));
    // Validation without its labels: the classifier still predicts it.
    let val = features(6, None);
    let val = RecordBatch::try_from_iter([
        ("text", val.column(0).clone()),
        ("hidden_state", val.column(2).clone()),
    ])
    .unwrap();
    write_parquet(&p, "validation.parquet", &val);
    p.write(
        "p.yaml",
        r#"
name: skip
stages:
  features:
    kind: load
    splits: {train: train.parquet, validation: validation.parquet}
  lr: {kind: classify, inputs: [features], method: logistic-regression}
  eval: {kind: evaluate, inputs: [lr]}
  eval-val: {kind: evaluate, inputs: [lr.validation]}
"#,
    );
    let run = p.cairn(&["run", "p.yaml"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // The skip is said, with why, and the training-only scores are flagged.
    assert!(
        run.stderr
            .contains("eval: skipped split `validation`: no `label` column"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr
            .contains("eval: only `train` has labels: these scores measure fit"),
        "{}",
        run.stderr
    );
    let metrics = p.cairn(&["metrics", "p.yaml", "--json"]).ok();
    let m: serde_json::Value = serde_json::from_str(&metrics.stdout).unwrap();
    assert_eq!(
        m["eval"]["skipped"],
        json!({"validation": "no `label` column"})
    );
    assert!(m["eval"]["train"]["accuracy"].is_number(), "{m}");
    // A split with no labels at all is an error naming the stage.
    let row = summary_row(&run.stdout, "eval-val");
    assert!(
        row.contains("FAILED") && row.contains("no split of input `lr` has a `label` column"),
        "{row}"
    );
}

/// The tiny BERT (vocabulary 100, 64 positions) with a word-level tokenizer: `[PAD]` `[UNK]`
/// `[CLS]` `[SEP]`, `w4` … `w99`, and `big` with id 150, beyond the model's vocabulary.
/// `tokenizer_config` is written as `tokenizer_config.json` when given.
fn tiny_model(p: &Project, dir: &str, tokenizer_config: Option<serde_json::Value>) {
    common::write_tiny_bert(p, dir, &[("big", 150)]);
    if let Some(c) = tokenizer_config {
        p.write(&format!("{dir}/tokenizer_config.json"), &c.to_string());
    }
}

/// `text;label` lines: short texts, plus `long` words in one more row when given.
fn texts(p: &Project, name: &str, extra: Option<String>) {
    let mut lines: Vec<String> = (0..6)
        .map(|i| format!("w{} w{} w{};{}", 10 + i, 20 + i, 70 + i, i % 2))
        .collect();
    lines.extend(extra);
    p.write(name, &(lines.join("\n") + "\n"));
}

fn words(n: usize) -> String {
    (0..n)
        .map(|i| format!("w{}", 4 + i % 90))
        .collect::<Vec<_>>()
        .join(" ")
}

const LOAD: &str = r#"
  load:
    kind: load
    format: delimited
    delimiter: ";"
    columns: [text, label]
    labels: [neg, pos]
    splits: {train: train.txt, validation: validation.txt}
"#;

#[test]
fn token_ids_and_lengths_the_model_cannot_take_fail_before_the_encoder_runs() {
    let p = Project::new();
    tiny_model(&p, "models/tiny", Some(json!({"model_max_length": 64})));
    texts(&p, "train.txt", Some(format!("{};1", words(70))));
    texts(&p, "validation.txt", Some("w5 big w6;0".into()));
    p.write(
        "p.yaml",
        &format!(
            r#"
name: limits
stages:{LOAD}
  tok-long: {{kind: tokenize, inputs: [load], tokenizer: models/tiny, truncation: false}}
  hidden-long: {{kind: extract-hidden, inputs: [tok-long], model: models/tiny, splits: [train]}}
  tune-long: {{kind: finetune, inputs: [tok-long], model: models/tiny, max-steps: 1, epochs: 1}}
  tok: {{kind: tokenize, inputs: [load], tokenizer: models/tiny}}
  hidden-foreign: {{kind: extract-hidden, inputs: [tok], model: models/tiny}}
"#
        ),
    );
    let run = p.cairn(&["run", "p.yaml"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for stage in ["hidden-long", "tune-long"] {
        let row = summary_row(&run.stdout, stage);
        assert!(
            row.contains("FAILED")
                && row.contains("split `train`, row 6 has 72 tokens, but model `models/tiny` takes at most 64 (max_position_embeddings 64)")
                && row.contains("set `max-length: 64` and `truncation: true` in stage `tok-long`"),
            "{row}"
        );
    }
    let row = summary_row(&run.stdout, "hidden-foreign");
    assert!(
        row.contains("FAILED")
            && row.contains("split `validation`, row 6, token 2 has id 150, outside the vocabulary of model `models/tiny` (vocab_size 100)"),
        "{row}"
    );
    assert!(!run.stdout.contains("index-select"), "{}", run.stdout);
}

#[test]
fn a_tokenizer_without_a_length_takes_its_models_positions_or_refuses() {
    let p = Project::new();
    // transformers' "no limit" sentinel, as int(1e30) writes it.
    let no_limit: serde_json::Value =
        serde_json::from_str(r#"{"model_max_length": 1000000000000000019884624838656}"#).unwrap();
    tiny_model(&p, "models/tiny", Some(no_limit.clone()));
    // The same tokenizer without its model beside it.
    tiny_model(&p, "models/tok-only", Some(no_limit));
    std::fs::remove_file(p.path("models/tok-only/config.json")).unwrap();
    std::fs::remove_file(p.path("models/tok-only/model.safetensors")).unwrap();
    texts(&p, "train.txt", Some(format!("{};1", words(70))));
    texts(&p, "validation.txt", None);
    p.write(
        "p.yaml",
        &format!(
            r#"
name: positions
stages:{LOAD}
  tok: {{kind: tokenize, inputs: [load], tokenizer: models/tiny}}
  hidden: {{kind: extract-hidden, inputs: [tok], model: models/tiny}}
  tok-alone: {{kind: tokenize, inputs: [load], tokenizer: models/tok-only}}
"#
        ),
    );
    let run = p.cairn(&["run", "p.yaml"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // Beside its model: truncated at the model's 64 positions, said so, and the encoder runs.
    assert!(
        run.stderr.contains(
            "tok: `models/tiny` declares no model_max_length; using 64 from its config.json"
        ),
        "{}",
        run.stderr
    );
    assert!(
        summary_row(&run.stdout, "tok").contains("ran"),
        "{}",
        run.stdout
    );
    assert!(
        summary_row(&run.stdout, "hidden").contains("ran"),
        "{}",
        run.stdout
    );
    // Alone: refused, asking for `max-length`.
    let row = summary_row(&run.stdout, "tok-alone");
    assert!(
        row.contains("FAILED")
            && row.contains("`models/tok-only` declares no model_max_length")
            && row.contains("set `max-length:`"),
        "{row}"
    );
}

#[test]
fn editing_a_models_readme_reruns_nothing_but_its_config_reruns_the_encoder() {
    let p = Project::new();
    tiny_model(&p, "models/tiny", Some(json!({"model_max_length": 64})));
    p.write("models/tiny/README.md", "# tiny\n");
    texts(&p, "train.txt", None);
    texts(&p, "validation.txt", None);
    p.write(
        "p.yaml",
        &format!(
            r#"
name: files
stages:{LOAD}
  tok: {{kind: tokenize, inputs: [load], tokenizer: models/tiny}}
  hidden: {{kind: extract-hidden, inputs: [tok], model: models/tiny}}
"#
        ),
    );
    p.cairn(&["run", "p.yaml"]).ok();
    let status = |p: &Project| {
        let out = p.cairn(&["status", "p.yaml"]).ok().stdout;
        let state = |stage: &str| {
            summary_row(&out, stage)
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string()
        };
        (state("tok"), state("hidden"), out.clone())
    };

    let mut readme = std::fs::OpenOptions::new()
        .append(true)
        .open(p.path("models/tiny/README.md"))
        .unwrap();
    std::io::Write::write_all(&mut readme, b"More words about the model.\n").unwrap();
    drop(readme);
    p.write("models/tiny/notes.txt", "not read by any stage");
    let (tok, hidden, out) = status(&p);
    assert_eq!((tok.as_str(), hidden.as_str()), ("fresh", "fresh"), "{out}");

    let config = p.read("models/tiny/config.json");
    p.write(
        "models/tiny/config.json",
        &config.replace("\"initializer_range\": 0.02", "\"initializer_range\": 0.03"),
    );
    let (tok, hidden, out) = status(&p);
    assert_eq!((tok.as_str(), hidden.as_str()), ("fresh", "stale"), "{out}");

    let run = p.cairn(&["run", "p.yaml"]).ok();
    assert!(run.stdout.contains("1 ran, 2 cached"), "{}", run.stdout);
    assert!(
        summary_row(&run.stdout, "hidden").contains("ran"),
        "{}",
        run.stdout
    );
}
