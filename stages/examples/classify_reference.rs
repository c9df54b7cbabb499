//! The Rust side of the classify benchmark: runs the `classify` stage (logistic regression and
//! most-frequent) and `evaluate` on the reference [CLS] features written by the Python
//! reference (`<prefix>-{train,validation,test}.parquet`: `text`, `label`, `hidden_state`),
//! and prints validation accuracy, weighted F1, n_iter and the fit time. Compare with
//! `bench/python/classify.py` on the same files, in the same run, with 2 threads:
//!
//!     RAYON_NUM_THREADS=2 cargo run --release -p cairn-stages --example classify_reference -- \
//!         data/reference/emotion-minilm-cls [out-dir]
//!
//! With an out-dir, the stages' files (model.json, report.txt, errors.txt, PNGs) are kept there.
//!
//! Measured once (2 threads, busy 2-core machine, same session, indicative only): validation
//! accuracy 0.6460 / weighted F1 0.6371 / n_iter 549 in 10.6 s, where scikit-learn 1.9.1 gives
//! 0.6455 / 0.6367 / n_iter 512 in 136 s (it stops earlier: on float32 features part of its
//! loss is computed in float32 and its ftol test fires sooner); most-frequent 0.352 for both.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use cairn_stages::kinds::classify::{Classify, ClassifyParams};
use cairn_stages::kinds::evaluate::{Evaluate, EvaluateParams};
use cairn_stages::{Context, Device, Input, NoProgress, Output, Stage, Tables, columns::labels};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const NAMES: [&str; 6] = ["sadness", "joy", "love", "anger", "fear", "surprise"];

fn read(path: &str) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    // The Python files carry no label names: add them as load does.
    let names: Vec<String> = NAMES.map(String::from).to_vec();
    let schema = Schema::new(batch.schema().fields().clone()).with_metadata(
        labels::metadata("label", &names)
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
    );
    RecordBatch::try_new(Arc::new(schema), batch.columns().to_vec()).unwrap()
}

fn run<S: Stage>(p: &S::Params, tables: Tables, out_dir: &std::path::Path) -> Output {
    let inputs = [Input {
        stage: "features".into(),
        tables,
        ..Default::default()
    }];
    let cancelled = AtomicBool::new(false);
    let ctx = Context {
        stage: S::KIND,
        root: out_dir,
        inputs: &inputs,
        externals: &[],
        out_dir,
        device: Device::Cpu,
        offline: true,
        progress: &NoProgress,
        cancelled: &cancelled,
    };
    S::run(p, &ctx).unwrap_or_else(|e| panic!("{}: {e}", S::KIND))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let prefix = args
        .get(1)
        .map_or("data/reference/emotion-minilm-cls", String::as_str);
    let keep = args.get(2).map(std::path::PathBuf::from);
    let tables: Tables = ["train", "validation", "test"]
        .iter()
        .map(|s| (s.to_string(), read(&format!("{prefix}-{s}.parquet"))))
        .collect();
    println!(
        "train {} rows, validation {} rows, rayon threads {}",
        tables["train"].num_rows(),
        tables["validation"].num_rows(),
        rayon::current_num_threads()
    );
    for method in ["logistic-regression", "most-frequent"] {
        let dir = match &keep {
            Some(k) => {
                let d = k.join(method);
                std::fs::create_dir_all(&d).unwrap();
                d
            }
            None => std::env::temp_dir().join(format!("cairn-classify-{method}")),
        };
        std::fs::create_dir_all(&dir).unwrap();
        let p: ClassifyParams =
            serde_json::from_value(serde_json::json!({ "method": method })).unwrap();
        let start = Instant::now();
        let out = run::<Classify>(&p, tables.clone(), &dir);
        let seconds = start.elapsed().as_secs_f64();
        let e: EvaluateParams = serde_json::from_value(serde_json::json!({})).unwrap();
        let ev = run::<Evaluate>(&e, out.tables, &dir);
        let v = &ev.metrics["validation"];
        println!(
            "{method}: validation accuracy {:.4}, weighted F1 {:.4}, macro F1 {:.4}, train accuracy {:.4}, n_iter {}, converged {}, classify (fit + predict 3 splits) {seconds:.2}s",
            v["accuracy"].as_f64().unwrap(),
            v["f1_weighted"].as_f64().unwrap(),
            v["f1_macro"].as_f64().unwrap(),
            out.metrics["train"]["accuracy"].as_f64().unwrap(),
            out.metrics
                .get("n_iter")
                .map_or("-".into(), |v| v.to_string()),
            out.metrics
                .get("converged")
                .map_or("-".into(), |v| v.to_string()),
        );
    }
}
