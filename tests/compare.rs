//! `compare` run by the real `cairn` binary over sweeps of the test kinds: the train × eval
//! table (values, matrix, Markdown, heatmap) from a 2 × 2 sweep, a learning curve with a
//! reference line, reruns driven by the upstream metrics (which enter compare's fingerprint),
//! and a missing metric failing with the stage named.

mod common;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Float64Type;
use cairn::store::cache::{Cache, table_output_name};
use cairn::store::manifest::Manifest;
use common::{Project, sorted};

/// `score-<train>-<eval>` sums its two inputs' values over both splits: 2 × (train offset +
/// eval offset), so every cell differs: de-de 86, de-fr 82, fr-de 66, fr-fr 62. `zero-shot`
/// (2 × 1 = 2) is the reference.
const TABLE: &str = r#"
name: cmp
stages:
  train-de: {kind: test-source, rows: 1, offset: 40}
  train-fr: {kind: test-source, rows: 1, offset: 30}
  eval-de: {kind: test-source, rows: 1, offset: 3}
  eval-fr: {kind: test-source, rows: 1, offset: 1}
  score:
    kind: test-map
    matrix: {train: [de, fr], eval: [de, fr]}
    inputs: ["train-${matrix.train}", "eval-${matrix.eval}"]
  zero-shot:
    kind: test-map
    inputs: [eval-fr]
  transfer:
    kind: compare
    inputs: {runs: score, reference: zero-shot}
    metric: sum
    rows: train
    columns: eval
    digits: 0
"#;

/// Three cells whose `score` is their size, and a reference scored 120.
const CURVE: &str = r#"
name: cmp
stages:
  curve:
    kind: test-source
    matrix: {n: [250, 500, 1000]}
    rows: 1
    score: ${matrix.n}
  zero-shot: {kind: test-source, rows: 1, score: 120}
  learning-curve:
    kind: compare
    inputs: {runs: curve, reference: zero-shot}
    metric: score
    x: n
    x-scale: log
    digits: 1
"#;

fn project(pipeline: &str) -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", pipeline);
    p
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = p.read("pipeline.yaml");
    assert!(text.contains(from), "pipeline has no `{from}`");
    p.write("pipeline.yaml", &text.replacen(from, to, 1));
}

/// The stages a `cairn run` printed as `ran`, sorted (`compare` is no test kind, so it does
/// not log its executions).
fn ran(stdout: &str) -> Vec<String> {
    let mut ids: Vec<String> = stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ran"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn manifest(p: &Project) -> (Cache, Manifest) {
    let cache = Cache::new(&p.path("cache"));
    let manifest = Manifest::load(&cache.manifest_path("cmp"))
        .unwrap()
        .unwrap();
    (cache, manifest)
}

fn table_of(p: &Project, stage: &str, name: &str) -> RecordBatch {
    let (cache, manifest) = manifest(p);
    let out = &manifest.stages[stage].outputs[&table_output_name(name)];
    cairn::store::tables::from_parquet(cache.read_verified(&out.digest).unwrap()).unwrap()
}

fn file_of(p: &Project, stage: &str, name: &str) -> Vec<u8> {
    let (cache, manifest) = manifest(p);
    let out = &manifest.stages[stage].outputs[&format!("files/{name}")];
    cache.read_verified(&out.digest).unwrap()
}

fn columns(batch: &RecordBatch) -> Vec<String> {
    let schema = batch.schema();
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

fn texts(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
        .collect()
}

fn floats(batch: &RecordBatch, column: &str) -> Vec<Option<f64>> {
    let array = batch.column_by_name(column).unwrap();
    array.as_primitive::<Float64Type>().iter().collect()
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

#[test]
fn a_sweeps_cells_become_a_train_by_eval_table_markdown_and_heatmap() {
    let p = project(TABLE);
    p.cairn(&["run", "pipeline.yaml"]).ok();

    let values = table_of(&p, "transfer", "values");
    assert_eq!(
        columns(&values),
        ["stage", "role", "eval", "train", "value"]
    );
    assert_eq!(
        texts(&values, "stage"),
        some(&[
            "score-de-de",
            "score-de-fr",
            "score-fr-de",
            "score-fr-fr",
            "zero-shot"
        ])
    );
    assert_eq!(
        texts(&values, "role"),
        some(&["run", "run", "run", "run", "reference"])
    );
    let mut train = some(&["de", "de", "fr", "fr"]);
    train.push(None);
    assert_eq!(texts(&values, "train"), train);
    assert_eq!(
        floats(&values, "value"),
        [Some(86.0), Some(82.0), Some(66.0), Some(62.0), Some(2.0)]
    );

    let matrix = table_of(&p, "transfer", "matrix");
    assert_eq!(columns(&matrix), ["train", "de", "fr"]);
    assert_eq!(texts(&matrix, "train"), some(&["de", "fr"]));
    assert_eq!(floats(&matrix, "de"), [Some(86.0), Some(66.0)]);
    assert_eq!(floats(&matrix, "fr"), [Some(82.0), Some(62.0)]);

    let markdown = String::from_utf8(file_of(&p, "transfer", "comparison.md")).unwrap();
    assert_eq!(
        markdown,
        "# sum: train × eval\n\n\
         | train \\ eval | de | fr |\n\
         | --- | ---: | ---: |\n\
         | de | 86 | 82 |\n\
         | fr | 66 | 62 |\n\
         \nReferences:\n\n\
         | reference | sum |\n\
         | --- | ---: |\n\
         | zero-shot | 2 |\n"
    );
    let png = file_of(&p, "transfer", "comparison.png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let metrics = p.cairn(&["metrics", "pipeline.yaml"]).ok().stdout;
    assert!(metrics.contains("transfer"), "{metrics}");

    // One input of two cells changes: those cells and the comparison run again, nothing else.
    edit(&p, "offset: 1}", "offset: 2}");
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(
        ran(&out.stdout),
        sorted(&[
            "eval-fr",
            "score-de-fr",
            "score-fr-fr",
            "zero-shot",
            "transfer"
        ])
    );
    let matrix = table_of(&p, "transfer", "matrix");
    assert_eq!(floats(&matrix, "fr"), [Some(84.0), Some(64.0)]);
}

#[test]
fn a_learning_curve_reruns_when_only_an_upstream_metric_changes() {
    let p = project(CURVE);
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(out.stdout.contains("5 ran, 0 cached"), "{}", out.stdout);
    let values = table_of(&p, "learning-curve", "values");
    assert_eq!(columns(&values), ["stage", "role", "n", "value"]);
    let mut n = some(&["250", "500", "1000"]);
    n.push(None);
    assert_eq!(texts(&values, "n"), n);
    assert_eq!(
        floats(&values, "value"),
        [Some(250.0), Some(500.0), Some(1000.0), Some(120.0)]
    );
    let (_, m) = manifest(&p);
    assert!(
        !m.stages["learning-curve"]
            .outputs
            .contains_key(&table_output_name("matrix")),
        "a line chart has no matrix table"
    );
    let markdown = String::from_utf8(file_of(&p, "learning-curve", "comparison.md")).unwrap();
    assert_eq!(
        markdown,
        "# score vs n\n\n\
         | n | score |\n\
         | --- | ---: |\n\
         | 250 | 250.0 |\n\
         | 500 | 500.0 |\n\
         | 1000 | 1000.0 |\n\
         \nReferences:\n\n\
         | reference | score |\n\
         | --- | ---: |\n\
         | zero-shot | 120.0 |\n"
    );
    let png = file_of(&p, "learning-curve", "comparison.png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Nothing changed: nothing runs.
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(ran(&out.stdout).is_empty(), "{}", out.stdout);
    assert!(out.stdout.contains("0 ran, 5 cached"), "{}", out.stdout);

    // The reference's score changes, its table does not: it reruns, and so does the
    // comparison, because the metrics it reads are part of its fingerprint.
    edit(&p, "score: 120", "score: 150");
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(ran(&out.stdout), sorted(&["zero-shot", "learning-curve"]));
    let values = table_of(&p, "learning-curve", "values");
    assert_eq!(floats(&values, "value")[3], Some(150.0));
}

#[test]
fn a_missing_metric_fails_naming_the_stage_and_what_the_run_has() {
    let p = project(&CURVE.replace("metric: score", "metric: test.f1"));
    let out = p.cairn(&["run", "pipeline.yaml"]);
    assert_ne!(out.code, 0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("learning-curve"), "{all}");
    assert!(
        all.contains("run `curve-250` has no metric `test.f1` (its metrics: rows, score)"),
        "{all}"
    );
}
