//! Measures `scale` + `project` on the real emotion features against umap-learn (not a test:
//! needs the reference features written by scripts/reference/features.py).
//!
//! cargo run --release -p cairn-stages --example umap_emotion -- \
//!     data/reference/emotion-minilm-cls-train.parquet data/reference/emotion-umap-learn-train.npy \
//!     [out-dir] [sklearn-minmax-scaled.npy]
//!
//! Prints: the scaler's max |Δ| against scikit-learn's MinMaxScaler output (when given), our
//! trustworthiness of umap-learn's layout (to check the metric against scikit-learn's figure),
//! then the `project` stage's phases with timings and its metrics. Writes projection.png and
//! layout.json (metrics) into out-dir, and umap-learn.png: the same figure of umap-learn's layout.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use cairn_stages::api::{Context, Device, Input, Progress, Stage};
use cairn_stages::columns::matrix::{self, Matrix};
use cairn_stages::kinds::project::{self, Project, ProjectParams};
use cairn_stages::kinds::scale::{ScaleMethod, Scaler};
use cairn_stages::ml::manifold::knn::Metric;
use cairn_stages::ml::manifold::trust::trustworthiness;
use cairn_stages::{columns::labels, columns::table};

const LABELS: [&str; 6] = ["sadness", "joy", "love", "anger", "fear", "surprise"];

fn read_npy_f32(path: &Path) -> Matrix {
    let bytes = std::fs::read(path).expect("npy");
    assert_eq!(&bytes[1..6], b"NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'<f4'") && header.contains("False"),
        "{header}"
    );
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Matrix::new(shape[0], shape[1], data)
}

struct Timed(Instant);

impl Progress for Timed {
    fn set_total(&self, total: u64, unit: &str) {
        eprintln!("[{:7.2}s]   {total} {unit}", self.0.elapsed().as_secs_f64());
    }
    fn advance(&self, _: u64) {}
    fn message(&self, msg: &str) {
        eprintln!("[{:7.2}s] {msg}", self.0.elapsed().as_secs_f64());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let features = Path::new(&args[1]);
    let reference = Path::new(&args[2]);
    let out = Path::new(
        args.get(3)
            .map(String::as_str)
            .unwrap_or("target/umap-emotion"),
    );
    std::fs::create_dir_all(out).unwrap();

    let file = std::fs::File::open(features).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let names: Vec<String> = LABELS.map(String::from).to_vec();
    let meta: std::collections::HashMap<String, String> =
        labels::metadata("label", &names).into_iter().collect();
    let schema = Schema::new(batch.schema().fields().clone()).with_metadata(meta);
    let batch = batch.with_schema(Arc::new(schema)).unwrap();

    let t = Instant::now();
    let mut x = matrix::read(&batch, "hidden_state", "train").unwrap();
    let scaler = Scaler::fit(ScaleMethod::MinMax, &x);
    scaler.apply(&mut x);
    eprintln!("min-max scale: {:.3}s", t.elapsed().as_secs_f64());
    if let Some(sk) = args.get(4) {
        let sk = read_npy_f32(Path::new(sk));
        let max = x
            .data
            .iter()
            .zip(&sk.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let same = x.data.iter().zip(&sk.data).filter(|(a, b)| a == b).count();
        eprintln!(
            "scaler vs scikit-learn MinMaxScaler: max |Δ| = {max:e}, bit-identical {same}/{}",
            x.data.len()
        );
    }

    let ul = read_npy_f32(reference);
    let t = Instant::now();
    let tw = trustworthiness(&x, &ul, 15, Metric::Cosine, &|| false).unwrap();
    eprintln!(
        "our trustworthiness of umap-learn's layout: {tw:.6} ({:.2}s)",
        t.elapsed().as_secs_f64()
    );

    project::draw(&out.join("umap-learn.png"), &batch, &ul).unwrap();
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
    let params: ProjectParams = serde_json::from_str("{}").unwrap();
    let cancelled = AtomicBool::new(false);
    let start = Instant::now();
    let progress = Timed(start);
    let ctx = Context {
        stage: "project",
        root: out,
        inputs: &inputs,
        externals: &[],
        out_dir: out,
        device: Device::Cpu,
        offline: true,
        progress: &progress,
        cancelled: &cancelled,
    };
    let output = Project::run(&params, &ctx).unwrap();
    let total = start.elapsed().as_secs_f64();
    eprintln!("[{total:7.2}s] done");
    let metrics = serde_json::to_string_pretty(&output.metrics).unwrap();
    println!("{metrics}");
    std::fs::write(out.join("layout.json"), metrics).unwrap();
}
