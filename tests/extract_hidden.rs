//! `extract-hidden` run by the real `cairn` binary: load -> tokenize -> extract-hidden on the first
//! 200 emotion train tweets with all-MiniLM-L6-v2, vectors checked against Python `transformers`
//! (tests/fixtures/encoders/minilm-emotion.safetensors: the first 32 tweets, padded in one batch
//! there, sorted into other batches here).
//!
//! Needs `scripts/setup.sh` (data in data/ or ../shared/data, the model in the HF hub cache).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type};
use arrow::record_batch::RecordBatch;
use cairn::store::cache::{Cache, table_output_name};
use cairn::store::manifest::Manifest;
use cairn_stages::columns::labels;
use common::Project;

const MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
const TOLERANCE: f32 = 1e-4;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn emotion_train() -> PathBuf {
    for d in [repo().join("data"), repo().join("../shared/data")] {
        let f = d.join("emotion/train.txt");
        if f.is_file() {
            return f.canonicalize().unwrap();
        }
    }
    panic!("the emotion data is missing: run scripts/setup.sh (it fills data/)");
}

/// The f32 tensors of a safetensors file, by name: (shape, values). The format is an 8-byte
/// little-endian header length, a JSON header, then the raw data.
fn read_f32_tensors(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out = HashMap::new();
    for (name, info) in header.as_object().unwrap() {
        if info["dtype"] != "F32" {
            continue;
        }
        let shape = info["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let [a, b] = [0, 1].map(|i| info["data_offsets"][i].as_u64().unwrap() as usize);
        let values = data[a..b]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        out.insert(name.clone(), (shape, values));
    }
    out
}

fn table(p: &Project, stage: &str, split: &str) -> RecordBatch {
    let cache = Cache::new(&p.path("cache"));
    let m = Manifest::load(&cache.manifest_path("hidden"))
        .unwrap()
        .expect("manifest");
    let out = &m.stages[stage].outputs[&table_output_name(split)];
    cairn::store::tables::from_parquet(cache.read_verified(&out.digest).unwrap()).unwrap()
}

fn vectors(batch: &RecordBatch) -> (usize, Vec<f32>) {
    let col = batch.column_by_name("hidden_state").expect("hidden_state");
    let DataType::FixedSizeList(inner, size) = col.data_type() else {
        panic!("hidden_state is {}", col.data_type());
    };
    assert_eq!(inner.data_type(), &DataType::Float32);
    let list = col.as_fixed_size_list();
    let values = list
        .values()
        .as_primitive::<Float32Type>()
        .values()
        .to_vec();
    (*size as usize, values)
}

fn max_diff(ours: &[f32], hidden: usize, want: &(Vec<usize>, Vec<f32>)) -> f32 {
    let rows = want.0[0];
    assert_eq!(want.0[1], hidden);
    ours[..rows * hidden]
        .iter()
        .zip(&want.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn minilm_cls_and_mean_vectors_match_transformers_through_the_binary() {
    let train = emotion_train();
    let p = Project::new();
    p.write(
        "p.yaml",
        &format!(
            r#"
name: hidden
stages:
  load:
    kind: load
    format: delimited
    delimiter: ";"
    columns: [text, label]
    labels: [sadness, joy, love, anger, fear, surprise]
    limit: 200
    splits: {{train: {train}}}
  tok: {{kind: tokenize, inputs: [load], tokenizer: {MODEL}}}
  cls: {{kind: extract-hidden, inputs: [tok], model: {MODEL}}}
  mean: {{kind: extract-hidden, inputs: [tok], model: {MODEL}, pooling: mean, batch-size: 7, max-tokens-per-batch: 100}}
"#,
            train = train.display()
        ),
    );
    let cache = p.path("cache");
    let cache = cache.to_str().unwrap();
    let run = p.cairn(&["--cache-dir", cache, "run", "p.yaml"]).ok();
    let want = read_f32_tensors(&repo().join("tests/fixtures/encoders/minilm-emotion.safetensors"));

    let cls = table(&p, "cls", "train");
    assert_eq!(cls.num_rows(), 200);
    let schema = cls.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["text", "label", "hidden_state"]);
    assert_eq!(
        labels::label_names(&cls.schema()).unwrap(),
        ["sadness", "joy", "love", "anger", "fear", "surprise"]
    );
    // Original row order: the fixture's rows are the first 32 tweets.
    let text = cls.column_by_name("text").unwrap().as_string::<i32>();
    assert_eq!(text.value(0), "i didnt feel humiliated");
    let (hidden, ours) = vectors(&cls);
    assert_eq!(hidden, 384);
    let d_cls = max_diff(&ours, hidden, &want["cls"]);

    let mean = table(&p, "mean", "train");
    let (_, ours_mean) = vectors(&mean);
    let d_mean = max_diff(&ours_mean, hidden, &want["mean"]);
    eprintln!("through cairn: max |Δ| [CLS] {d_cls:e}, mean {d_mean:e}");
    assert!(d_cls <= TOLERANCE, "[CLS] max |Δ| {d_cls}\n{}", run.stderr);
    assert!(d_mean <= TOLERANCE, "mean max |Δ| {d_mean}");
    assert!(ours.iter().all(|x| x.is_finite()));

    // A second run is all cache hits.
    let _ = p.executions();
    p.cairn(&["--cache-dir", cache, "run", "p.yaml"]).ok();
    assert!(p.executions().is_empty(), "second run re-executed stages");
}
