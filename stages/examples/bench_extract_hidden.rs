//! Rows/s of extract-hidden's encoder on the first N emotion train tweets (the Rust side of
//! bench/python/extract_hidden.py): all-MiniLM-L6-v2, [CLS] pooling, sorted batches with
//! per-batch padding. Tokenization happens before the clock starts, as in the Python script.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p cairn-stages --example bench_extract_hidden -- \
//!     [rows=2000] [batch=64] [repeat=3]
//! ```

use std::time::Instant;

use cairn_stages::columns::tokens::Tokens;
use cairn_stages::hub::model::{HubRepo, RepoKind, hub_cache_dir};
use cairn_stages::hub::pretrained::Pretrained;
use cairn_stages::kinds::extract_hidden::{Pooling, encode_rows};
use cairn_stages::nn::encoders::Encoder;

const MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: rows batch repeat"))
        .collect();
    let rows = args.first().copied().unwrap_or(2000);
    let batch = args.get(1).copied().unwrap_or(64);
    let repeat = args.get(2).copied().unwrap_or(3);

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("data/emotion/train.txt"))
        .expect("data/emotion/train.txt: run scripts/setup.sh");
    let texts: Vec<&str> = text
        .lines()
        .take(rows)
        .map(|l| l.rsplit_once(';').map_or(l, |(t, _)| t))
        .collect();
    let dir = HubRepo::parse(RepoKind::Model, MODEL)
        .unwrap()
        .cached_snapshot(&hub_cache_dir())
        .expect("the model is not in the HF cache: run scripts/setup.sh");
    let model = cairn_stages::hub::model::ResolvedModel {
        shown: MODEL.into(),
        dir: dir.clone(),
        files: Vec::new(),
    };
    let mut tok = Pretrained::load(&model).unwrap();
    tok.set_truncation(Some(512)).unwrap();
    let enc = tok.tokenizer.encode_batch(texts.clone(), true).unwrap();
    let tokens = Tokens {
        ids: enc
            .iter()
            .map(|e| e.get_ids().iter().map(|&i| i as i64).collect())
            .collect(),
        mask: None,
        types: Some(
            enc.iter()
                .map(|e| e.get_type_ids().iter().map(|&i| i as i64).collect())
                .collect(),
        ),
    };
    let n_tokens: usize = tokens.ids.iter().map(Vec::len).sum();
    let device = candle_core::Device::Cpu;
    let (encoder, cfg) = Encoder::from_dir(&dir, candle_core::DType::F32, &device).unwrap();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "(all)".into());
    let mut best = 0f64;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let out = encode_rows(
            &encoder,
            &cfg,
            &device,
            &tokens,
            batch,
            None,
            Pooling::Cls,
            |_| Ok(()),
        )
        .unwrap();
        let dt = t0.elapsed().as_secs_f64();
        assert_eq!(out.len(), texts.len() * cfg.hidden_size());
        let rate = texts.len() as f64 / dt;
        best = best.max(rate);
        println!(
            "cairn: {} rows ({n_tokens} tokens) in {dt:.2} s = {rate:.0} rows/s",
            texts.len()
        );
    }
    println!("cairn best: {best:.0} rows/s (RAYON_NUM_THREADS={threads}, batch {batch})");
}
