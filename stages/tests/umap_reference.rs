//! UMAP fidelity on the real features: trustworthiness (k = 15, cosine) of `project`'s layout of
//! the MinMax-scaled emotion train features within `tolerance` of umap-learn's, as committed in
//! tests/fixtures/umap/reference.json. Needs data/reference/emotion-minilm-cls-train.parquet
//! (scripts/reference/features.py) or `CAIRN_REFERENCE_DATA` pointing at its folder; ignored by
//! default. Run it in release mode (about a minute):
//!
//! cargo test --release -p cairn-stages --test umap_reference -- --ignored

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use arrow::record_batch::RecordBatch;
use cairn_stages::api::{Context, Device, Input, NoProgress, Stage};
use cairn_stages::columns::{matrix, table};
use cairn_stages::kinds::project::{Project, ProjectParams};
use cairn_stages::kinds::scale::{ScaleMethod, Scaler};

#[test]
#[ignore = "needs the reference features; slow in debug builds"]
fn umap_trustworthiness_matches_umap_learn() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("tests/fixtures/umap/reference.json")).unwrap(),
    )
    .unwrap();
    let want = fixture["umap_learn_trustworthiness_k15_cosine"]
        .as_f64()
        .unwrap();
    let tolerance = fixture["tolerance"].as_f64().unwrap();
    let data = std::env::var_os("CAIRN_REFERENCE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("data/reference"));
    let path = data.join("emotion-minilm-cls-train.parquet");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/reference/features.py)",
            path.display()
        )
    });
    let batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let mut x = matrix::read(&batch, "hidden_state", "train").unwrap();
    Scaler::fit(ScaleMethod::MinMax, &x).apply(&mut x);
    let scaled = table::with_columns(
        &batch,
        vec![("hidden_state", matrix::to_column(x, None))],
        &[],
    )
    .unwrap();
    let inputs = [Input {
        stage: "scale".into(),
        tables: BTreeMap::from([("train".to_string(), scaled)]),
        ..Default::default()
    }];
    let out = tempfile::tempdir().unwrap();
    let cancelled = AtomicBool::new(false);
    let ctx = Context {
        stage: "project",
        root: out.path(),
        inputs: &inputs,
        externals: &[],
        out_dir: out.path(),
        device: Device::Cpu,
        offline: true,
        progress: &NoProgress,
        cancelled: &cancelled,
    };
    let params: ProjectParams = serde_json::from_str("{}").unwrap();
    let output = Project::run(&params, &ctx).unwrap();
    let got = output.metrics["trustworthiness"].as_f64().unwrap();
    eprintln!("trustworthiness: cairn {got:.4}, umap-learn {want:.4}");
    assert!(
        (got - want).abs() <= tolerance,
        "trustworthiness {got} vs umap-learn {want} (tolerance {tolerance})"
    );
}
