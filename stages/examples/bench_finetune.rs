//! Training throughput of the finetune stage's inner loop on emotion tweets: all-MiniLM-L6-v2 +
//! a 6-label head, batches of 64 grouped by length, the reference recipe (lr 1e-4, weight decay
//! 0.01, clipping at 1.0). Prints the time per phase (forward, backward, optimizer) and samples/s,
//! and a checksum of the trained weights: training is deterministic, so two runs (any thread
//! count, same machine) print the same `weights_fnv1a`.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p cairn-stages --example bench_finetune -- [steps=20] [batch=64]
//! ```
//!
//! `TASK=token` times the token-classification head instead.

use std::time::Instant;

use cairn_stages::hub::model::{HubRepo, RepoKind, hub_cache_dir};
use cairn_stages::hub::pretrained::Pretrained;
use cairn_stages::ml::rng::Rng;
use cairn_stages::nn::encoders::classifier::Task;
use cairn_stages::nn::optim::{AdamW, linear_schedule};
use cairn_stages::nn::training::{self, Examples, Targets};

const MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
const LABELS: [&str; 6] = ["sadness", "joy", "love", "anger", "fear", "surprise"];

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: steps batch"))
        .collect();
    let steps = args.first().copied().unwrap_or(20);
    let batch = args.get(1).copied().unwrap_or(64);

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("data/emotion/train.txt"))
        .expect("data/emotion/train.txt: run scripts/setup.sh");
    let (texts, labels): (Vec<&str>, Vec<i64>) = text
        .lines()
        .map(|l| {
            let (t, y) = l.rsplit_once(';').unwrap();
            (t, LABELS.iter().position(|n| *n == y).unwrap() as i64)
        })
        .unzip();
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
    let ids: Vec<Vec<i64>> = enc
        .iter()
        .map(|e| e.get_ids().iter().map(|&i| i as i64).collect())
        .collect();
    // TASK=token: a token-classification head, every token labelled with its tweet's label
    // (special tokens -100), to time the token path.
    let token = std::env::var("TASK").is_ok_and(|t| t == "token");
    let targets = if token {
        Targets::Token(
            ids.iter()
                .zip(&labels)
                .map(|(r, &y)| {
                    (0..r.len())
                        .map(|j| if j == 0 || j + 1 == r.len() { -100 } else { y })
                        .collect()
                })
                .collect(),
        )
    } else {
        Targets::Sequence(labels)
    };
    let examples = Examples {
        types: Some(
            enc.iter()
                .map(|e| e.get_type_ids().iter().map(|&i| i as i64).collect())
                .collect(),
        ),
        ids,
        targets,
    };
    let task = if token {
        Task::TokenClassification
    } else {
        Task::SequenceClassification
    };
    let dev = candle_core::Device::Cpu;
    let t = training::load_trainable(&dir, task, 6, 42, &dev).unwrap();
    let mut opt = AdamW::new(t.named_vars(), 0.01, true).unwrap();
    let lengths: Vec<usize> = examples.ids.iter().map(Vec::len).collect();
    let batches = training::epoch_batches(&lengths, batch, true, &mut Rng::new(42));
    cairn_stages::nn::encoders::seed_dropout(42);

    let (mut fwd, mut bwd, mut upd, mut tokens, mut samples) = (0.0, 0.0, 0.0, 0usize, 0usize);
    let started = Instant::now();
    for (step, idx) in batches.iter().take(steps).enumerate() {
        let b = examples.batch(idx, 0, true, &dev).unwrap();
        let t0 = Instant::now();
        let logits = t
            .model
            .forward(&b.ids, &b.mask, b.types.as_ref(), true)
            .unwrap();
        let loss = training::cross_entropy(&logits, &b.targets).unwrap();
        let l = loss.to_scalar::<f32>().unwrap();
        let t1 = Instant::now();
        let grads = cairn_stages::nn::encoders::train_layers::backward(&loss).unwrap();
        let t2 = Instant::now();
        opt.step(&grads, 1e-4 * linear_schedule(step, steps, 0), Some(1.0))
            .unwrap();
        let t3 = Instant::now();
        fwd += (t1 - t0).as_secs_f64();
        bwd += (t2 - t1).as_secs_f64();
        upd += (t3 - t2).as_secs_f64();
        samples += idx.len();
        tokens += idx.len() * b.ids.dim(1).unwrap();
        let rss_mib = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| (pages * 4096) >> 20);
        eprintln!(
            "step {step:>3}: {}×{} loss {l:.7} rss {rss_mib} MiB",
            idx.len(),
            b.ids.dim(1).unwrap()
        );
    }
    let total = started.elapsed().as_secs_f64();
    let n = steps.min(batches.len()) as f64;
    println!(
        "per step: forward {:.3} s, backward {:.3} s, optimizer {:.3} s; {:.0} padded tokens/step",
        fwd / n,
        bwd / n,
        upd / n,
        tokens as f64 / n
    );
    println!("samples_per_second={:.3}", samples as f64 / total);
    println!("seconds={total:.3}");
    println!("weights_fnv1a={:016x}", checksum(&t));
}

/// FNV-1a over every parameter's f32 bits, in name order.
fn checksum(t: &training::Trainable) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (_, v) in t.named_vars() {
        let values = v
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for x in values {
            for b in x.to_bits().to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    h
}
