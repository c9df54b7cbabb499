//! The pieces of a fine-tuning loop that do not depend on where the data comes from: a
//! pretrained checkpoint turned into trainable variables with HF task names, length-grouped
//! shuffled batches with dynamic padding, the cross-entropy that skips label -100, one
//! optimizer step, and evaluation-mode logits in the original row order.
//!
//! On CPU the encoder layers train as one op with a written-out backward
//! ([`crate::nn::encoders::train_layers`]); the embeddings, the head and the loss go through
//! candle's autograd, and [`crate::nn::encoders::train_layers::backward`] joins the two.
//!
//! Training is deterministic: the same seed, data and machine give bitwise the same weights and
//! losses, whatever the thread count. Dropout, shuffling and head initialisation draw from the
//! seed, and every float sum has a fixed order: candle's CPU reductions (the loss, bias
//! gradients) and the layers' bias and norm-weight gradients are sequential loops over rows;
//! matmuls (the `gemm` crate) split the work over output tiles and walk K in blocks sized from
//! the CPU's caches, never from the thread count; the fused kernels
//! ([`crate::nn::encoders::train_kernels`]) and the gradient norm ([`crate::nn::optim`]) add
//! fixed-size blocks in block order; micro-batch gradients are added in micro-batch order.
//! Another CPU may round differently (gemm picks its AVX-512 / AVX2 microkernel and block sizes
//! at run time).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Result, Shape, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::columns::labels::IGNORE_LABEL;
use crate::ml::rng::Rng;
use crate::nn::encoders::classifier::{Classifier, Task, head_dropout};
use crate::nn::encoders::{Config, LoadError};

/// A classifier whose parameters are `Var`s named as HF names them.
pub struct Trainable {
    pub model: Classifier,
    pub varmap: VarMap,
    pub config: Config,
    /// `config.json` as read, to write back with the labels added.
    pub raw_config: serde_json::Value,
    /// The parameters the checkpoint did not have (the new head), freshly initialised.
    pub fresh: Vec<String>,
}

impl Trainable {
    /// Every parameter by HF name, sorted.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("varmap");
        let mut vars: Vec<(String, Var)> =
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// A deep copy of every parameter (to keep the best epoch's weights).
    pub fn snapshot(&self) -> Result<Vec<(String, Tensor)>> {
        self.named_vars()
            .into_iter()
            .map(|(k, v)| Ok((k, v.as_tensor().copy()?)))
            .collect()
    }

    /// Puts a [`Trainable::snapshot`] back.
    pub fn restore(&self, snapshot: &[(String, Tensor)]) -> Result<()> {
        let data = self.varmap.data().lock().expect("varmap");
        for (k, t) in snapshot {
            data[k].set(t)?;
        }
        Ok(())
    }
}

fn read_json(path: &Path) -> std::result::Result<serde_json::Value, LoadError> {
    let err = |message: String| LoadError::Config {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))
}

/// Loads `dir`'s `config.json` + `model.safetensors` as a trainable `task` model with
/// `num_labels` outputs. Checkpoint names may carry the task prefix (`bert.embeddings...`) or
/// not (`embeddings...`, a bare encoder such as all-MiniLM-L6-v2). Parameters the checkpoint
/// lacks, or has with another shape (a head for another label count), are initialised as HF
/// does: weights N(0, `initializer_range`), biases 0, LayerNorm weights 1 — from `seed`.
pub fn load_trainable(
    dir: &Path,
    task: Task,
    num_labels: usize,
    seed: u64,
    device: &Device,
) -> std::result::Result<Trainable, LoadError> {
    let config = Config::from_file(&dir.join("config.json"))?;
    let raw_config = read_json(&dir.join("config.json"))?;
    let dropout = head_dropout(&raw_config, config.family(), task);
    let build = |vb: VarBuilder| Classifier::load(vb, &config, task, num_labels, dropout);
    let wanted = wanted_parameters(build)?;
    let (varmap, fresh) = fill_parameters(dir, &wanted, &config, &raw_config, seed, device)?;
    let model = build(VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    Ok(Trainable {
        model,
        varmap,
        config,
        raw_config,
        fresh,
    })
}

/// The parameters (names, shapes, sorted by name) the model that `build` makes asks for.
fn wanted_parameters(
    build: impl Fn(VarBuilder) -> Result<Classifier>,
) -> Result<Vec<(String, Shape)>> {
    let probe = VarMap::new();
    build(VarBuilder::from_varmap(&probe, DType::F32, &Device::Cpu))?;
    let mut wanted: Vec<(String, Shape)> = probe
        .data()
        .lock()
        .expect("varmap")
        .iter()
        .map(|(k, v)| (k.clone(), v.shape().clone()))
        .collect();
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(wanted)
}

/// The `wanted` parameters as variables: from the checkpoint where it has them with the same
/// shape (with or without the task prefix), else freshly initialised in name order from
/// `seed`; and the names of the fresh ones.
fn fill_parameters(
    dir: &Path,
    wanted: &[(String, Shape)],
    config: &Config,
    raw_config: &serde_json::Value,
    seed: u64,
    device: &Device,
) -> std::result::Result<(VarMap, Vec<String>), LoadError> {
    let checkpoint: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("model.safetensors"), device)?;
    let prefix = format!("{}.", config.family().prefix());
    let std = raw_config
        .get("initializer_range")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.02);
    let mut rng = Rng::new(seed);
    let varmap = VarMap::new();
    let mut fresh = Vec::new();
    {
        let mut data = varmap.data().lock().expect("varmap");
        for (name, shape) in wanted {
            let found = checkpoint
                .get(name)
                .or_else(|| name.strip_prefix(&prefix).and_then(|n| checkpoint.get(n)))
                .filter(|t| t.shape() == shape);
            let value = match found {
                Some(t) => t.to_dtype(DType::F32)?,
                None => {
                    fresh.push(name.clone());
                    initial_value(name, shape, std, &mut rng, device)?
                }
            };
            data.insert(name.clone(), Var::from_tensor(&value)?);
        }
    }
    Ok((varmap, fresh))
}

fn initial_value(
    name: &str,
    shape: &Shape,
    std: f64,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let n = shape.elem_count();
    let norm = name.contains("LayerNorm") || name.contains("layer_norm");
    let values: Vec<f32> = if name.ends_with("bias") || (norm && !name.ends_with("weight")) {
        vec![0.0; n]
    } else if norm {
        vec![1.0; n]
    } else {
        (0..n).map(|_| (rng.normal() * std) as f32).collect()
    };
    Tensor::from_vec(values, shape.clone(), device)
}

/// What one example is trained on: token ids (+ optional types) and its target(s).
pub struct Examples {
    pub ids: Vec<Vec<i64>>,
    pub types: Option<Vec<Vec<i64>>>,
    pub targets: Targets,
}

/// One label per row (sequence task) or per token (token task, `IGNORE_LABEL` where unscored).
pub enum Targets {
    Sequence(Vec<i64>),
    Token(Vec<Vec<i64>>),
}

impl Examples {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Rows `idx` padded to their longest: ids `[b, t]` (u32), mask `[b, t]` (f32), types,
    /// and targets (`[b]` or `[b, t]`, i64, padding = `IGNORE_LABEL`).
    pub fn batch(
        &self,
        idx: &[usize],
        pad_id: u32,
        with_types: bool,
        device: &Device,
    ) -> Result<Batch> {
        let (ids, mask, types) = crate::columns::tokens::pad_rows(
            &self.ids,
            None,
            self.types.as_deref(),
            idx,
            pad_id,
            with_types,
            device,
        )?;
        let t = ids.dim(1)?;
        let b = idx.len();
        let targets = match &self.targets {
            Targets::Sequence(y) => {
                Tensor::from_vec(idx.iter().map(|&i| y[i]).collect::<Vec<_>>(), b, device)?
            }
            Targets::Token(y) => {
                let mut out = vec![IGNORE_LABEL; b * t];
                for (r, &i) in idx.iter().enumerate() {
                    out[r * t..r * t + y[i].len()].copy_from_slice(&y[i]);
                }
                Tensor::from_vec(out, (b, t), device)?
            }
        };
        Ok(Batch {
            ids,
            mask,
            types,
            targets,
        })
    }
}

/// One padded batch.
pub struct Batch {
    pub ids: Tensor,
    pub mask: Tensor,
    pub types: Option<Tensor>,
    pub targets: Tensor,
}

/// Training batches for one epoch, as HF's `LengthGroupedSampler` forms them
/// (`get_length_grouped_indices`): shuffle, cut into mega-batches of
/// `min(rows / (4 · batch), 50)` batches (at least one), sort each by length (longest first,
/// ties in shuffled order), swap the longest row of all into the first place, then cut into
/// batches. Similar lengths share a batch (little padding) while the order of mega-batches
/// stays random. Without grouping: shuffled batches.
pub fn epoch_batches(
    lengths: &[usize],
    batch_size: usize,
    group_by_length: bool,
    rng: &mut Rng,
) -> Vec<Vec<usize>> {
    let n = lengths.len();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let batch_size = batch_size.max(1);
    if group_by_length && n > 0 {
        let mega = batch_size * (n / (4 * batch_size)).clamp(1, 50);
        for chunk in order.chunks_mut(mega) {
            chunk.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        }
        // The first mega-batch whose head is longest (torch.argmax takes the first maximum).
        let longest = (0..n).step_by(mega).fold(0, |best, at| {
            if lengths[order[at]] > lengths[order[best]] {
                at
            } else {
                best
            }
        });
        order.swap(0, longest);
    }
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// Mean cross-entropy over the targets that are not `IGNORE_LABEL`. `logits`: `[.., k]`; `targets`:
/// the leading dims, i64.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (sum, count) = cross_entropy_sum(logits, targets)?;
    sum.div(&count.clamp(1.0, f64::MAX)?)
}

/// The summed cross-entropy over the targets that are not `IGNORE_LABEL`, and their count (f32
/// scalar tensors).
pub fn cross_entropy_sum(logits: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    Loss::default().sum(logits, targets)
}

/// The training loss as torch's `CrossEntropyLoss(weight, label_smoothing)` (mean reduction)
/// and the Hugging Face Trainer's `label_smoothing_factor` compute it: per scored target
/// (1 − ε)·w_y·(−log p_y) + ε·mean_k(w_k·(−log p_k)), divided by Σ w_y over the batch.
/// Without weights and smoothing it is the plain mean cross-entropy, bit for bit.
#[derive(Debug, Clone, Default)]
pub struct Loss {
    /// ε, in [0, 1).
    pub label_smoothing: f64,
    /// One weight per label; `None`: all 1.
    pub class_weights: Option<Vec<f32>>,
}

impl Loss {
    /// The batch's summed loss over targets that are not `IGNORE_LABEL`, and its divisor
    /// (Σ w_y, the count without weights), as f32 scalar tensors.
    pub fn sum(&self, logits: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
        let k = logits.dim(D::Minus1)?;
        let logits = logits.reshape(((), k))?;
        let targets = targets.flatten_all()?;
        let scored = targets.ge(0i64)?.to_dtype(DType::F32)?;
        let safe = targets.clamp(0i64, (k - 1) as i64)?.to_dtype(DType::U32)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = logp.gather(&safe.unsqueeze(1)?, 1)?.squeeze(1)?;
        let weights = match &self.class_weights {
            Some(w) => Some(Tensor::new(w.as_slice(), logits.device())?),
            None => None,
        };
        // Each scored target counts its label's weight (1 without weights).
        let valid = match &weights {
            Some(w) => (&scored * w.index_select(&safe, 0)?)?,
            None => scored.clone(),
        };
        let count = valid.sum_all()?;
        let nll = (picked * &valid)?.sum_all()?.neg()?;
        let eps = self.label_smoothing;
        if eps == 0.0 {
            return Ok((nll, count));
        }
        let per_label = match &weights {
            Some(w) => logp.broadcast_mul(w)?,
            None => logp,
        };
        let uniform = (per_label.mean(D::Minus1)? * scored)?.sum_all()?.neg()?;
        Ok((((nll * (1.0 - eps))? + (uniform * eps)?)?, count))
    }

    /// The divisor of a batch's loss: Σ w_y over its scored targets (their count without
    /// weights), computed on the host before the micro-batches run.
    pub fn divisor(&self, targets: impl Iterator<Item = i64>) -> f64 {
        targets
            .filter(|&t| t != IGNORE_LABEL)
            .map(|t| {
                self.class_weights
                    .as_ref()
                    .map_or(1.0, |w| f64::from(w[t as usize]))
            })
            .sum()
    }
}

/// The gradients of one optimizer step over rows `idx` and the batch's mean loss. Rows run in
/// micro-batches of at most `max_tokens` padded tokens (sorted by length), their gradients
/// summed: the result is the whole batch's (the loss is normalised by the whole batch's count
/// of scored targets), while memory stays bounded when one long row would otherwise pad every
/// row of its batch (WikiANN has a 512-token sentence).
#[allow(clippy::too_many_arguments)]
pub fn batch_gradients(
    model: &Classifier,
    examples: &Examples,
    idx: &[usize],
    vars: &[Var],
    pad_id: u32,
    with_types: bool,
    device: &Device,
    max_tokens: usize,
    loss_fn: &Loss,
) -> Result<(candle_core::backprop::GradStore, f64)> {
    let total = match &examples.targets {
        Targets::Sequence(y) => loss_fn.divisor(idx.iter().map(|&i| y[i])),
        Targets::Token(y) => loss_fn.divisor(idx.iter().flat_map(|&i| y[i].iter().copied())),
    };
    let lengths: Vec<usize> = idx.iter().map(|&i| examples.ids[i].len()).collect();
    let parts = crate::columns::tokens::plan_batches(&lengths, idx.len(), Some(max_tokens));
    let mut summed: Option<candle_core::backprop::GradStore> = None;
    let mut loss = 0.0;
    for part in parts {
        let rows: Vec<usize> = part.iter().map(|&j| idx[j]).collect();
        let b = examples.batch(&rows, pad_id, with_types, device)?;
        let logits = model.forward(&b.ids, &b.mask, b.types.as_ref(), true)?;
        let (sum, _) = loss_fn.sum(&logits, &b.targets)?;
        let part_loss = (sum / if total > 0.0 { total } else { 1.0 })?;
        loss += part_loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let grads = crate::nn::encoders::train_layers::backward(&part_loss)?;
        summed = Some(match summed {
            None => grads,
            Some(mut acc) => {
                for v in vars {
                    if let Some(g) = grads.get(v.as_tensor()) {
                        let g = match acc.get(v.as_tensor()) {
                            Some(prev) => (prev + g)?,
                            None => g.clone(),
                        };
                        acc.insert(v.as_tensor(), g);
                    }
                }
                acc
            }
        });
    }
    let grads = summed.ok_or_else(|| candle_core::Error::Msg("an empty batch".into()))?;
    Ok((grads, loss))
}

/// Evaluation-mode logits of every row, in row order: `rows × k` (sequence) or, per row,
/// `len × k` flattened (token).
pub fn predict_logits(
    model: &Classifier,
    examples: &Examples,
    batches: &[Vec<usize>],
    pad_id: u32,
    with_types: bool,
    device: &Device,
    mut after_batch: impl FnMut(usize) -> std::result::Result<(), crate::api::StageError>,
) -> std::result::Result<Vec<Vec<f32>>, crate::api::StageError> {
    let fail = |e: candle_core::Error| crate::api::StageError::failed(format!("evaluating: {e}"));
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); examples.len()];
    for idx in batches {
        let b = examples
            .batch(idx, pad_id, with_types, device)
            .map_err(fail)?;
        let logits = model
            .forward(&b.ids, &b.mask, b.types.as_ref(), false)
            .and_then(|l| l.to_dtype(DType::F32))
            .map_err(fail)?;
        let k = model.num_labels;
        match model.task {
            Task::SequenceClassification => {
                for (row, &i) in logits.to_vec2::<f32>().map_err(fail)?.into_iter().zip(idx) {
                    out[i] = row;
                }
            }
            Task::TokenClassification => {
                let all = logits.to_vec3::<f32>().map_err(fail)?;
                for (row, &i) in all.into_iter().zip(idx) {
                    let len = examples.ids[i].len();
                    out[i] = row.into_iter().take(len).flatten().collect();
                    debug_assert_eq!(out[i].len(), len * k);
                }
            }
        }
        after_batch(idx.len())?;
    }
    Ok(out)
}

/// [`predict_logits`] over batches of `batch_size` rows grouped by length: how `finetune` and
/// `predict` both predict, so the same model and rows give the same bits in either.
pub fn predict_grouped(
    model: &Classifier,
    examples: &Examples,
    batch_size: usize,
    pad_id: u32,
    with_types: bool,
    device: &Device,
    after_batch: impl FnMut(usize) -> std::result::Result<(), crate::api::StageError>,
) -> std::result::Result<Vec<Vec<f32>>, crate::api::StageError> {
    let lengths: Vec<usize> = examples.ids.iter().map(Vec::len).collect();
    let batches = crate::columns::tokens::plan_batches(&lengths, batch_size, None);
    predict_logits(
        model,
        examples,
        &batches,
        pad_id,
        with_types,
        device,
        after_batch,
    )
}

/// Softmax cross-entropy of one logit row against label `y` (f64, stable).
pub fn row_loss(z: &[f32], y: usize) -> f64 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = z.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln() - z[y] as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::encoders::classifier::Task;
    use std::path::PathBuf;

    fn fixture(family: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/encoders")
            .join(family)
    }

    /// Three rows of three logits; the second row's target is ignored.
    fn three_rows() -> ([[f32; 3]; 3], Tensor, Tensor) {
        let rows = [[1.0f32, 2.0, 0.5], [0.1, 0.2, 3.0], [2.0, -1.0, 0.0]];
        let logits = Tensor::new(&rows, &Device::Cpu).unwrap();
        let targets = Tensor::new(&[1i64, IGNORE_LABEL, 0], &Device::Cpu).unwrap();
        (rows, logits, targets)
    }

    #[test]
    fn label_smoothing_mixes_in_the_mean_over_labels_as_the_trainer_does() {
        let (rows, logits, targets) = three_rows();
        let eps = 0.1;
        let smoothing = Loss {
            label_smoothing: eps,
            class_weights: None,
        };
        let (sum, count) = smoothing.sum(&logits, &targets).unwrap();
        // Per scored row: (1 − ε)·(−log p_y) + ε·mean_k(−log p_k); the ignored row adds nothing.
        let smoothed = |z: &[f32], y: usize| {
            let mean_nll = (0..z.len()).map(|k| row_loss(z, k)).sum::<f64>() / z.len() as f64;
            (1.0 - eps) * row_loss(z, y) + eps * mean_nll
        };
        let want = smoothed(&rows[0], 1) + smoothed(&rows[2], 0);
        let got = sum.to_scalar::<f32>().unwrap() as f64;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert_eq!(count.to_scalar::<f32>().unwrap(), 2.0);
        // No smoothing is the plain sum, bit for bit.
        let plain = cross_entropy_sum(&logits, &targets).unwrap().0;
        let zero = Loss::default().sum(&logits, &targets).unwrap().0;
        assert_eq!(
            plain.to_scalar::<f32>().unwrap().to_bits(),
            zero.to_scalar::<f32>().unwrap().to_bits()
        );
        assert!((got - plain.to_scalar::<f32>().unwrap() as f64).abs() > 1e-3);
    }

    #[test]
    fn class_weights_weight_each_target_and_the_divisor_as_torch_does() {
        let (rows, logits, targets) = three_rows();
        let w = [0.5f32, 2.0, 1.0];
        for eps in [0.0, 0.1] {
            let loss = Loss {
                label_smoothing: eps,
                class_weights: Some(w.to_vec()),
            };
            let (sum, divisor) = loss.sum(&logits, &targets).unwrap();
            // torch: Σ_i [(1 − ε)·w_y·(−log p_y) + ε/k·Σ_c w_c·(−log p_c)] / Σ_i w_y.
            let term = |z: &[f32], y: usize| {
                let smooth = (0..3).map(|c| w[c] as f64 * row_loss(z, c)).sum::<f64>() / 3.0;
                (1.0 - eps) * w[y] as f64 * row_loss(z, y) + eps * smooth
            };
            let want = term(&rows[0], 1) + term(&rows[2], 0);
            let got = sum.to_scalar::<f32>().unwrap() as f64;
            assert!((got - want).abs() < 1e-5, "eps {eps}: {got} vs {want}");
            assert_eq!(divisor.to_scalar::<f32>().unwrap(), 2.5);
            assert_eq!(loss.divisor([1i64, IGNORE_LABEL, 0].into_iter()), 2.5);
        }
    }

    #[test]
    fn ignored_labels_do_not_contribute_to_the_loss() {
        let dev = Device::Cpu;
        let logits = Tensor::new(
            &[
                [[1.0f32, 2.0, 0.5], [0.1, 0.2, 3.0]],
                [[2.0, -1.0, 0.0], [0.3, 0.3, 0.3]],
            ],
            &dev,
        )
        .unwrap();
        let targets = Tensor::new(&[[1i64, IGNORE_LABEL], [0, 2]], &dev).unwrap();
        let loss = cross_entropy(&logits, &targets)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let rows = logits.to_vec3::<f32>().unwrap();
        let want =
            (row_loss(&rows[0][0], 1) + row_loss(&rows[1][0], 0) + row_loss(&rows[1][1], 2)) / 3.0;
        assert!((loss as f64 - want).abs() < 1e-5, "{loss} vs {want}");
        // Changing the logits of the ignored token changes nothing, and it gets no gradient.
        let var = Var::from_tensor(&logits).unwrap();
        let grads = cross_entropy(var.as_tensor(), &targets)
            .unwrap()
            .backward()
            .unwrap();
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        assert!(g[0][1].iter().all(|&v| v == 0.0), "{:?}", g[0][1]);
        assert!(g[0][0].iter().any(|&v| v != 0.0));
        let all_ignored = Tensor::new(&[[IGNORE_LABEL, IGNORE_LABEL]], &dev).unwrap();
        let zero = cross_entropy(&logits.narrow(0, 0, 1).unwrap(), &all_ignored).unwrap();
        assert_eq!(zero.to_scalar::<f32>().unwrap(), 0.0);
    }

    #[test]
    fn length_grouped_batches_cover_every_row_once_with_similar_lengths() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 7919) % 97 + 1).collect();
        let mut rng = Rng::new(1);
        let batches = epoch_batches(&lengths, 8, true, &mut rng);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let padded = |bs: &[Vec<usize>]| -> usize {
            bs.iter()
                .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap())
                .sum()
        };
        let shuffled = epoch_batches(&lengths, 8, false, &mut Rng::new(1));
        assert!(
            padded(&batches) * 3 < padded(&shuffled) * 2,
            "grouping saves padding"
        );
        // HF's mega-batches: min(1000 / (4·8), 50) = 31 batches of 8, each sorted longest
        // first, except that the longest row of all was swapped into the first place.
        let flat: Vec<usize> = batches.iter().flatten().map(|&i| lengths[i]).collect();
        assert_eq!(flat[0], *lengths.iter().max().unwrap());
        // (The swap leaves a mega-batch's first row out of order, nothing else.)
        for (c, chunk) in flat.chunks(31 * 8).enumerate() {
            assert!(
                chunk[1..].windows(2).all(|w| w[0] >= w[1]),
                "mega-batch {c} is not sorted"
            );
        }
        // Another epoch, another order.
        assert_ne!(batches, epoch_batches(&lengths, 8, true, &mut rng));
    }

    /// One optimizer step moves every parameter tensor of every family, in both tasks: no op
    /// on the training path lacks a backward pass.
    #[test]
    fn one_step_changes_every_parameter() {
        let dev = Device::Cpu;
        for family in ["bert", "distilbert", "xlm_roberta"] {
            for task in [Task::SequenceClassification, Task::TokenClassification] {
                let t = load_trainable(&fixture(family), task, 3, 7, &dev).unwrap();
                assert!(
                    t.fresh
                        .iter()
                        .all(|n| n.contains("classifier") || n.contains("pooler")),
                    "{family}: {:?}",
                    t.fresh
                );
                let before = t.snapshot().unwrap();
                let examples = Examples {
                    ids: vec![
                        vec![2, 10, 11, 12, 3],
                        vec![2, 40, 3],
                        vec![2, 5, 6, 7, 8, 9, 3],
                    ],
                    types: Some(vec![vec![0; 5], vec![0; 3], vec![0; 7]]),
                    targets: match task {
                        Task::SequenceClassification => Targets::Sequence(vec![0, 1, 2]),
                        Task::TokenClassification => Targets::Token(vec![
                            vec![IGNORE_LABEL, 0, 1, 2, IGNORE_LABEL],
                            vec![IGNORE_LABEL, 2, IGNORE_LABEL],
                            vec![IGNORE_LABEL, 1, 1, 0, 2, 0, IGNORE_LABEL],
                        ]),
                    },
                };
                let pad = t.config.pad_token_id();
                let b = examples
                    .batch(&[0, 1, 2], pad, t.config.uses_token_types(), &dev)
                    .unwrap();
                let mut opt = crate::nn::optim::AdamW::new(t.named_vars(), 0.0, true).unwrap();
                crate::nn::encoders::seed_dropout(3);
                let logits = t
                    .model
                    .forward(&b.ids, &b.mask, b.types.as_ref(), true)
                    .unwrap();
                let loss = cross_entropy(&logits, &b.targets).unwrap();
                let grads = crate::nn::encoders::train_layers::backward(&loss).unwrap();
                opt.step(&grads, 1e-3, Some(1.0)).unwrap();
                for (name, old) in &before {
                    let new = t.varmap.data().lock().unwrap()[name].as_tensor().clone();
                    let moved = (new - old)
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap();
                    assert!(moved > 0.0, "{family} {task:?}: `{name}` did not change");
                }
            }
        }
    }

    /// A fine-tune is a function of its seed: a few steps (shuffled, length-grouped batches cut
    /// into micro-batches, dropout on, clipping, weight decay) twice on a pool of 2 threads give
    /// bitwise the same losses, gradient norms and weights, and so do pools of 1 and 3 threads.
    #[test]
    fn training_is_bitwise_reproducible_across_runs_and_thread_counts() {
        type Bits = (Vec<u64>, Vec<(String, Vec<u32>)>);
        let run = |threads: usize| -> Bits {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let dev = Device::Cpu;
                let t = load_trainable(&fixture("bert"), Task::SequenceClassification, 3, 11, &dev)
                    .unwrap();
                let mut rng = Rng::new(4);
                let ids: Vec<Vec<i64>> = (0..48)
                    .map(|_| {
                        let len = 3 + rng.below(30);
                        (0..len).map(|_| 4 + rng.below(96) as i64).collect()
                    })
                    .collect();
                let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
                let ex = Examples {
                    ids,
                    types: None,
                    targets: Targets::Sequence((0..48).map(|i| (i % 3) as i64).collect()),
                };
                let vars: Vec<Var> = t.named_vars().into_iter().map(|(_, v)| v).collect();
                let mut opt = crate::nn::optim::AdamW::new(t.named_vars(), 0.01, true).unwrap();
                crate::nn::encoders::seed_dropout(9);
                let mut trace = Vec::new();
                for idx in epoch_batches(&lengths, 16, true, &mut rng) {
                    let (grads, loss) = batch_gradients(
                        &t.model,
                        &ex,
                        &idx,
                        &vars,
                        0,
                        false,
                        &dev,
                        200,
                        &Loss::default(),
                    )
                    .unwrap();
                    let info = opt.step(&grads, 1e-3, Some(0.5)).unwrap();
                    trace.extend([loss.to_bits(), info.grad_norm.to_bits()]);
                }
                let weights = t
                    .named_vars()
                    .into_iter()
                    .map(|(name, v)| {
                        let values = v.as_tensor().flatten_all().unwrap().to_vec1::<f32>();
                        (
                            name,
                            values.unwrap().into_iter().map(f32::to_bits).collect(),
                        )
                    })
                    .collect();
                (trace, weights)
            })
        };
        let first = run(2);
        assert_eq!(first.0.len(), 6, "three steps");
        for (label, other) in [
            ("again", run(2)),
            ("1 thread", run(1)),
            ("3 threads", run(3)),
        ] {
            let losses = |b: &Bits| b.0.iter().map(|&x| f64::from_bits(x)).collect::<Vec<_>>();
            assert_eq!(
                other.0,
                first.0,
                "{label}: losses and norms {:?} vs {:?}",
                losses(&other),
                losses(&first)
            );
            for ((name, a), (_, b)) in other.1.iter().zip(&first.1) {
                let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
                assert_eq!(differ, 0, "{label}: {differ} values of `{name}` differ");
            }
        }
    }

    /// Splitting a batch into micro-batches changes memory, not the gradients.
    #[test]
    fn micro_batches_give_the_whole_batch_gradients() {
        let dev = Device::Cpu;
        for task in [Task::SequenceClassification, Task::TokenClassification] {
            let mut t = load_trainable(&fixture("bert"), task, 3, 1, &dev).unwrap();
            t.model.encoder.set_dropout(0.0);
            t.model.dropout = 0.0;
            let ids: Vec<Vec<i64>> = (0..6)
                .map(|r| {
                    (0..3 + 2 * r)
                        .map(|j| 4 + ((r * 5 + j * 3) % 90) as i64)
                        .collect()
                })
                .collect();
            let targets = match task {
                Task::SequenceClassification => Targets::Sequence(vec![0, 1, 2, 0, 1, 2]),
                Task::TokenClassification => Targets::Token(
                    ids.iter()
                        .map(|r| {
                            (0..r.len())
                                .map(|j| if j == 0 { IGNORE_LABEL } else { (j % 3) as i64 })
                                .collect()
                        })
                        .collect(),
                ),
            };
            let ex = Examples {
                ids,
                types: None,
                targets,
            };
            let vars: Vec<Var> = t.named_vars().into_iter().map(|(_, v)| v).collect();
            let idx: Vec<usize> = (0..6).collect();
            let (whole, l1) = batch_gradients(
                &t.model,
                &ex,
                &idx,
                &vars,
                0,
                false,
                &dev,
                1 << 20,
                &Loss::default(),
            )
            .unwrap();
            let (parts, l2) = batch_gradients(
                &t.model,
                &ex,
                &idx,
                &vars,
                0,
                false,
                &dev,
                20,
                &Loss::default(),
            )
            .unwrap();
            assert!((l1 - l2).abs() < 1e-5, "{l1} vs {l2}");
            for v in &vars {
                let (a, b) = (
                    whole.get(v.as_tensor()).unwrap(),
                    parts.get(v.as_tensor()).unwrap(),
                );
                let d = (a - b)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(d < 1e-5, "{task:?}: {d}");
            }
        }
    }

    #[test]
    fn dropout_is_seeded_and_off_in_evaluation() {
        let dev = Device::Cpu;
        let t = load_trainable(&fixture("bert"), Task::SequenceClassification, 2, 1, &dev).unwrap();
        let ex = Examples {
            ids: vec![vec![2, 10, 11, 3]],
            types: None,
            targets: Targets::Sequence(vec![1]),
        };
        let b = ex.batch(&[0], 0, false, &dev).unwrap();
        let run = |train: bool, seed: u64| {
            crate::nn::encoders::seed_dropout(seed);
            t.model
                .forward(&b.ids, &b.mask, None, train)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        };
        assert_eq!(run(true, 5), run(true, 5));
        assert_ne!(run(true, 5), run(true, 6));
        assert_eq!(run(false, 5), run(false, 6));
    }
}
