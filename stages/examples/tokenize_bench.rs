//! Times the pretrained `tokenize` path on the emotion corpus, without the engine: reading the
//! texts, loading the tokenizer, encoding (as the `tokenize` stage does: char offsets, padding
//! off, truncation at 512) and, for comparison, the crate's cheaper variants.
//!
//! `cargo run --release -p cairn-stages --example tokenize_bench [-- DATA_DIR [REPEAT]]`
//! (DATA_DIR holds emotion/, default `data`; needs scripts/setup.sh for the model).

use std::time::Instant;

use cairn_stages::hub::model;
use cairn_stages::hub::pretrained::{self, Pretrained};

fn main() {
    let mut args = std::env::args().skip(1);
    let data = args.next().unwrap_or_else(|| "data".into());
    let repeat: usize = args
        .next()
        .map_or(3, |r| r.parse().expect("REPEAT is a number"));
    let mut texts = Vec::new();
    for split in ["train", "validation", "test"] {
        let path = format!("{data}/emotion/{split}.txt");
        let raw = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}: run scripts/setup.sh"));
        texts.extend(
            raw.lines()
                .map(|l| l.rsplit_once(';').expect("text;label").0.to_string()),
        );
    }
    let t0 = Instant::now();
    let m = pretrained::resolve(
        "sentence-transformers/all-MiniLM-L6-v2",
        std::path::Path::new("."),
        true,
        "tokenizer",
    )
    .unwrap_or_else(|e| panic!("{e} ({})", model::SETUP_HINT));
    let mut t = Pretrained::load(&m).expect("tokenizer");
    t.set_truncation(Some(512)).unwrap();
    println!("load tokenizer: {:.3}s", t0.elapsed().as_secs_f64());
    let inputs = || {
        texts
            .iter()
            .map(|s| s.as_str().into())
            .collect::<Vec<tokenizers::EncodeInput>>()
    };
    type Variant<'a> = (&'a str, Box<dyn Fn() -> usize + 'a>);
    let variants: Vec<Variant> = vec![
        (
            "encode_batch_char_offsets (the stage)",
            Box::new(|| {
                t.tokenizer
                    .encode_batch_char_offsets(inputs(), true)
                    .unwrap()
                    .iter()
                    .map(|e| e.len())
                    .sum()
            }),
        ),
        (
            "encode_batch (byte offsets)",
            Box::new(|| {
                t.tokenizer
                    .encode_batch(inputs(), true)
                    .unwrap()
                    .iter()
                    .map(|e| e.len())
                    .sum()
            }),
        ),
        (
            "encode_batch_fast (no offsets)",
            Box::new(|| {
                t.tokenizer
                    .encode_batch_fast(inputs(), true)
                    .unwrap()
                    .iter()
                    .map(|e| e.len())
                    .sum()
            }),
        ),
    ];
    for (name, f) in &variants {
        let mut best = f64::INFINITY;
        let mut tokens = 0;
        for _ in 0..repeat {
            let start = Instant::now();
            tokens = f();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{name}: {} rows, {tokens} tokens, best of {repeat}: {best:.3}s ({:.0} rows/s)",
            texts.len(),
            texts.len() as f64 / best
        );
    }
}
