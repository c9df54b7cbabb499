//! Training fidelity step by step: fifty optimizer steps on the tiny random BERT, for the
//! sequence and the token task, against the Hugging Face Trainer's losses recorded by
//! scripts/reference/training_fixture.py with dropout off, the fresh head's weights and the
//! batch order drawn from the seed as cairn draws them. Only arithmetic differs, so every step's
//! loss must agree within 1e-3 relative: a change to a kernel, the loss, the clipping or AdamW
//! that moves a result shows here.

use std::path::PathBuf;

use candle_core::{Device, Var};
use serde::Deserialize;

use crate::ml::rng::Rng;
use crate::nn::encoders::classifier::Task;
use crate::nn::optim::{AdamW, linear_schedule};
use crate::nn::training::{
    Examples, Loss, Targets, batch_gradients, epoch_batches, load_trainable,
};

#[derive(Deserialize)]
struct Fixture {
    model: String,
    num_labels: usize,
    fresh: Vec<String>,
    seed: u64,
    batch_size: usize,
    learning_rate: f64,
    weight_decay: f64,
    max_steps: usize,
    max_grad_norm: f64,
    ids: Vec<Vec<i64>>,
    labels: serde_json::Value,
    losses: Vec<f64>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// cairn's loss at each of the fixture's steps, trained as `finetune` trains (without
/// length grouping, as the fixture's sampler orders batches).
fn cairn_losses(f: &Fixture, task: Task) -> Vec<f64> {
    let dev = Device::Cpu;
    let mut t = load_trainable(&root().join(&f.model), task, f.num_labels, f.seed, &dev).unwrap();
    assert_eq!(
        t.fresh, f.fresh,
        "the fresh parameters (drawn in this order)"
    );
    t.model.encoder.set_dropout(0.0);
    t.model.dropout = 0.0;
    let targets = match task {
        Task::SequenceClassification => {
            Targets::Sequence(serde_json::from_value(f.labels.clone()).unwrap())
        }
        Task::TokenClassification => {
            Targets::Token(serde_json::from_value(f.labels.clone()).unwrap())
        }
    };
    let examples = Examples {
        ids: f.ids.clone(),
        types: None,
        targets,
    };
    let vars: Vec<Var> = t.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = AdamW::new(t.named_vars(), f.weight_decay, true).unwrap();
    let lengths: Vec<usize> = f.ids.iter().map(Vec::len).collect();
    let mut rng = Rng::new(f.seed);
    let mut losses = Vec::new();
    while losses.len() < f.max_steps {
        for idx in epoch_batches(&lengths, f.batch_size, false, &mut rng) {
            if losses.len() == f.max_steps {
                break;
            }
            let (grads, loss) = batch_gradients(
                &t.model,
                &examples,
                &idx,
                &vars,
                t.config.pad_token_id(),
                t.config.uses_token_types(),
                &dev,
                usize::MAX,
                &Loss::default(),
            )
            .unwrap();
            let lr = f.learning_rate * linear_schedule(losses.len(), f.max_steps, 0);
            opt.step(&grads, lr, Some(f.max_grad_norm)).unwrap();
            losses.push(loss);
        }
    }
    losses
}

fn check(name: &str, task: Task) {
    let path = root().join(format!("tests/fixtures/training/{name}.json"));
    let f: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ours = cairn_losses(&f, task);
    let worst = ours
        .iter()
        .zip(&f.losses)
        .map(|(a, b)| ((a - b) / b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{name}: max relative Δ of the step loss over {} steps: {worst:.1e}",
        ours.len()
    );
    assert!(
        f.losses[f.max_steps - 1] < 0.8 * f.losses[0],
        "{name}: the fixture does not learn"
    );
    for (step, (a, b)) in ours.iter().zip(&f.losses).enumerate() {
        assert!(
            ((a - b) / b).abs() <= 1e-3,
            "{name}: step {}: cairn {a} vs transformers {b}",
            step + 1
        );
    }
}

#[test]
fn sequence_task_steps_match_the_trainer() {
    check("sequence", Task::SequenceClassification);
}

#[test]
fn token_task_steps_match_the_trainer() {
    check("token", Task::TokenClassification);
}
