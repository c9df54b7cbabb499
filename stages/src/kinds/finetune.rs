//! `finetune`: trains a pretrained encoder plus a classification head end to end (the chapter's
//! "fine-tuning transformers"; the NER chapter's token classification), as the Hugging Face
//! Trainer does: AdamW with weight decay except on biases and LayerNorm weights, a linear
//! learning-rate decay (optional warmup), gradient clipping at `max-grad-norm`, dropout on
//! while training, batches grouped by length with dynamic padding, an evaluation after each
//! epoch, and the best epoch's weights kept.
//!
//! Input: one `tokenize` (sequence task: a `label` column) or `align-labels` (token task: a
//! `labels` list column, -100 where unscored) stage. Label names come from the schema metadata.
//!
//! Outputs:
//! - files `model/`: `config.json` (with `id2label` / `label2id` and the HF architecture),
//!   `model.safetensors` (HF parameter names) and the tokenizer files — a directory Python
//!   `AutoModelFor{Sequence,Token}Classification.from_pretrained` loads;
//! - a table per predicted split, which `evaluate` consumes (and which `predict` writes alike
//!   for another dataset; see [`crate::nn::prediction_table`]): the input's non-token columns
//!   plus `pred`, `loss` and `logits` (sequence task), or `input_tokens`, `pred`, `token_loss`
//!   and `loss` (token task: a loss per sub-word, null where unscored, and their mean);
//! - table `history`: one row per epoch (training loss, validation loss and scores);
//! - metrics: the best epoch's validation scores and the step count.
//!
//! Outputs and metrics are results: the same inputs, seed and machine give the same bytes (see
//! [`crate::nn::training`] on determinism), so a forced rerun leaves downstream stages cached.
//! Timing goes to the run record ([`Output::run_facts`]), never into a table or a metric.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Arity, Context, External, Input, Output, PrepareEnv, Stage, StageError};
use crate::columns::labels::{ClassWeight, IGNORE_LABEL};
use crate::hub::model::{self, ResolvedModel};
use crate::metrics::scores::Report;
use crate::ml::rng::Rng;
use crate::nn::encoders::candle_device;
use crate::nn::encoders::classifier::Task;
use crate::nn::optim::{AdamW, linear_schedule};
use crate::nn::prediction_table::Labels::Required;
use crate::nn::prediction_table::{
    SplitData, Vocab, all_labels, check_label_range, default_label_column, prediction_table,
    read_split,
};
use crate::nn::training::{self, Examples, Loss, Targets, Trainable};
use crate::numeric::argmax;
use crate::{columns::labels, metrics::seqeval};

/// The files a model reference needs.
const REQUIRED: &[&str] = &["config.json", "model.safetensors", "tokenizer.json"];
/// Tokenizer files copied next to the trained weights when the model has them.
const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
];
/// Input columns not carried to the prediction tables.
/// Which validation score picks the epoch whose weights are kept.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum BestBy {
    /// Weighted F1 (sequence) or entity F1 (token).
    #[default]
    F1,
    /// Lowest validation loss.
    Loss,
    /// The last epoch.
    Last,
}

/// The best epoch so far: its number, its score and a copy of its weights.
type BestEpoch = (usize, f64, Vec<(String, candle_core::Tensor)>);

/// Params of `finetune`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FinetuneParams {
    /// The pretrained MODEL (local directory or Hub id) with `config.json`,
    /// `model.safetensors` and `tokenizer.json`. Required.
    pub model: String,
    /// `sequence-classification` (default) or `token-classification`.
    #[serde(default)]
    pub task: Task,
    /// The label column: default `label` (sequence) or `labels` (token, from `align-labels`).
    #[serde(default)]
    pub label: Option<String>,
    /// Default `train`.
    #[serde(default = "crate::columns::table::train")]
    pub train_split: String,
    /// Evaluated after each epoch. Default `validation`.
    #[serde(default = "validation")]
    pub eval_split: String,
    /// The splits to write predictions for. Default: every split but the training one.
    #[serde(default)]
    pub predict_splits: Option<Vec<String>>,
    /// Default 2.
    #[serde(default = "two")]
    pub epochs: usize,
    /// Training batch size. Default 32.
    #[serde(default = "thirty_two")]
    pub batch_size: usize,
    /// Evaluation batch size. Default: `batch-size`.
    #[serde(default)]
    pub eval_batch_size: Option<usize>,
    /// Peak learning rate. Default 5e-5.
    #[serde(default = "lr_default")]
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay (not on biases and LayerNorm weights). Default 0.
    #[serde(default)]
    pub weight_decay: f64,
    /// Linear warmup steps before the linear decay. Default 0.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Clip the global gradient norm to this. Default 1.0.
    #[serde(default = "one")]
    pub max_grad_norm: f64,
    /// Every this many optimizer steps, record the mean training loss since the last record,
    /// the learning rate and the gradient norm in a `steps` table, as the Trainer's
    /// `logging_steps` logs them (`cairn report` plots them). Default: none, only the per-epoch
    /// `history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging_steps: Option<usize>,
    /// Override every dropout probability (encoder and head). Default: the model config's.
    #[serde(default)]
    pub dropout: Option<f32>,
    /// Seeds head initialisation, shuffling and dropout. Default 42.
    #[serde(default = "forty_two")]
    pub seed: u64,
    /// Batch rows of similar length (less padding). Default true.
    #[serde(default = "yes")]
    pub group_by_length: bool,
    /// Which epoch's weights to keep: `f1` (default), `loss` or `last`.
    #[serde(default)]
    pub best_by: BestBy,
    /// Stop after this many optimizer steps (benchmarks); the schedule decays over them.
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Run a batch in micro-batches of at most this many padded tokens, gradients summed (the
    /// step is the same; memory stays bounded when one long row would pad the whole batch).
    /// Default 8192.
    #[serde(default = "max_tokens_default")]
    pub max_tokens_per_step: usize,
    /// Label smoothing of the training loss, as the Trainer's `label_smoothing_factor`:
    /// (1 − ε)·(−log p_label) + ε·mean over labels of (−log p). The validation loss is the plain
    /// cross-entropy. Default 0 (left out of the params, so fingerprints are as before).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// Class weights of the training loss, as torch's `CrossEntropyLoss(weight=...)`:
    /// `balanced` (n / (k · count) over the training split's scored targets) or a weight per
    /// label name (others 1). The validation loss is unweighted. Unset: every target counts 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weight: Option<ClassWeight>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn max_tokens_default() -> usize {
    8192
}

fn validation() -> String {
    "validation".into()
}
fn two() -> usize {
    2
}
fn thirty_two() -> usize {
    32
}
fn lr_default() -> f64 {
    5e-5
}
fn one() -> f64 {
    1.0
}
fn forty_two() -> u64 {
    42
}
fn yes() -> bool {
    true
}

/// `finetune`: trains an encoder + head end to end.
pub struct Finetune;

fn resolve(spec: &str, root: &std::path::Path, offline: bool) -> Result<ResolvedModel, StageError> {
    model::resolve(
        spec,
        root,
        offline,
        "model",
        REQUIRED,
        &TOKENIZER_FILES[1..],
    )
}

fn failed(what: &'static str) -> impl Fn(candle_core::Error) -> StageError {
    move |e| StageError::failed(format!("{what}: {e}"))
}

/// One epoch's validation scores.
#[derive(Debug, Clone, Serialize)]
struct EvalScores {
    loss: f64,
    /// Sequence task: accuracy and weighted F1. Token task: token accuracy and entity F1.
    accuracy: f64,
    f1: f64,
    /// Token task: entity precision and recall.
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall: Option<f64>,
}

/// One epoch's row of the history table.
struct EpochRecord {
    epoch: usize,
    /// Optimizer steps so far.
    step: usize,
    train_loss: f64,
    eval: EvalScores,
}

/// What the run reads from its input, checked before the model is loaded.
struct Data {
    /// The label column.
    label_col: String,
    train: SplitData,
    eval: SplitData,
    /// The label names (from the training split's metadata, or `LABEL_i`).
    names: Vec<String>,
    /// The splits to write predictions for.
    predict: Vec<String>,
}

impl Stage for Finetune {
    type Params = FinetuneParams;
    const KIND: &'static str = "finetune";
    /// Bump when what is trained or written changes. 2: fused CPU training kernels (the same
    /// math, other float rounding). 3: no timing in `history` or the metrics (it made every
    /// rerun's output differ); a non-finite loss or gradient norm stops the stage. 4: the
    /// token task's prediction tables carry `input_tokens` and `token_loss` (the NER chapter's
    /// per-token error analysis); the sequence task's are unchanged. 5: the encoder layers
    /// train as one op with a written-out backward on CPU (the same math and dropout draws,
    /// other float rounding); length-grouped batches use HF's mega-batch size
    /// (`min(rows / (4 · batch), 50)` batches, was always 50) and put the longest row first.
    const VERSION: u32 = 5;
    const USES_DEVICE: bool = true;
    const INPUTS: Arity = Arity::One;
    const PREDICT: Option<crate::api::PredictFn> = Some(crate::nn::predict::predict_texts);
    const FIGURES: Option<crate::api::FiguresFn> = Some(training_curves);
    const SUMMARY: &'static str = "fine-tunes an encoder + classification head (sequence or token) end to end; writes an HF model directory and predictions";

    fn validate(p: &FinetuneParams, _env: &PrepareEnv) -> Result<(), StageError> {
        if p.logging_steps == Some(0) {
            return Err(StageError::param(
                "logging-steps",
                "must be at least 1",
                None,
            ));
        }
        for (field, v) in [("batch-size", p.batch_size), ("epochs", p.epochs)] {
            if v == 0 {
                return Err(StageError::param(field, "must be at least 1", None));
            }
        }
        if p.max_tokens_per_step == 0 {
            return Err(StageError::param(
                "max-tokens-per-step",
                "must be at least 1",
                None,
            ));
        }
        if p.eval_batch_size == Some(0) || p.max_steps == Some(0) {
            let field = if p.max_steps == Some(0) {
                "max-steps"
            } else {
                "eval-batch-size"
            };
            return Err(StageError::param(field, "must be at least 1", None));
        }
        // Written to refuse NaN as well.
        if p.learning_rate.is_nan() || p.learning_rate <= 0.0 {
            return Err(StageError::param("learning-rate", "must be positive", None));
        }
        if !(0.0..1.0).contains(&p.label_smoothing) {
            return Err(StageError::param(
                "label-smoothing",
                format!(
                    "label-smoothing must be in [0, 1), got {}",
                    p.label_smoothing
                ),
                Some("the Trainer's usual value is 0.1".into()),
            ));
        }
        if let Some(weights) = &p.class_weight {
            weights.check()?;
        }
        if let Some(d) = p.dropout
            && !(0.0..1.0).contains(&d)
        {
            return Err(StageError::param("dropout", "must be in [0, 1)", None));
        }
        Ok(())
    }

    fn externals(p: &FinetuneParams, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        Ok(vec![
            resolve(&p.model, env.root, env.offline)?.external("model"),
        ])
    }

    fn run(p: &FinetuneParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let pretrained = ResolvedModel::from_external(ctx.external("model")?);
        // Token ids and lengths the model cannot take fail here, not deep inside training.
        crate::nn::limits::check_token_columns(&pretrained.dir, &p.model, input, None)?;
        let data = Data::read(p, input)?;
        let model = Model::load(p, ctx, &pretrained, data.names.len())?;
        let trained = train(p, ctx, &model, &data)?;
        save_model(
            &model.trainable,
            &pretrained,
            p.task,
            &data.names,
            ctx.out_dir,
        )?;
        let mut output = Output::default();
        for name in &data.predict {
            let table = predict_split(p, ctx, &model, &data, &input.tables[name], name)?;
            output.tables.insert(name.clone(), table);
        }
        output
            .tables
            .insert("history".into(), history_table(&trained.history)?);
        if p.logging_steps.is_some() {
            output
                .tables
                .insert("steps".into(), steps_table(&trained.logged)?);
        }
        trained.record(p, &mut output);
        output
            .run_facts
            .insert("device".into(), ctx.device.to_string().into());
        tracing::info!(stage = ctx.stage, "\n{}", trained.table_text);
        Ok(output)
    }
}

impl Data {
    /// The training, evaluation and prediction splits, their examples and the label names.
    fn read(p: &FinetuneParams, input: &Input) -> Result<Data, StageError> {
        let label_col = p
            .label
            .clone()
            .unwrap_or_else(|| default_label_column(p.task).into());
        let train_batch = input.table_named_by("train-split", &p.train_split)?;
        let eval_batch = input.table_named_by("eval-split", &p.eval_split)?;
        let predict = predict_splits(p, input)?;
        let train = read_split(train_batch, &p.train_split, &label_col, p.task, Required)?;
        let names = label_names(train_batch, &train.examples)?;
        let eval = read_split(eval_batch, &p.eval_split, &label_col, p.task, Required)?;
        check_label_range(&eval.examples, names.len(), &p.eval_split)?;
        if train.examples.is_empty() {
            return Err(StageError::failed(format!(
                "split `{}` has no rows to train on",
                p.train_split
            )));
        }
        Ok(Data {
            label_col,
            train,
            eval,
            names,
            predict,
        })
    }
}

/// `predict-splits`, each of which the input must have; default: every split but the
/// training one.
fn predict_splits(p: &FinetuneParams, input: &Input) -> Result<Vec<String>, StageError> {
    match &p.predict_splits {
        Some(list) => {
            for s in list {
                input.table_named_by("predict-splits", s)?;
            }
            Ok(list.clone())
        }
        None => Ok(input
            .tables
            .keys()
            .filter(|s| **s != p.train_split)
            .cloned()
            .collect()),
    }
}

/// The classifier being trained, where it runs, and how its batches are padded.
struct Model {
    trainable: Trainable,
    device: candle_core::Device,
    pad_id: u32,
    with_types: bool,
    /// The sub-word strings of the model's tokenizer (the token task's `input_tokens`).
    vocab: Vocab,
}

impl Model {
    /// The pretrained encoder with a fresh `k`-label head, dropout as the params say.
    fn load(
        p: &FinetuneParams,
        ctx: &Context,
        pretrained: &ResolvedModel,
        k: usize,
    ) -> Result<Model, StageError> {
        let device = candle_device(ctx.device)?;
        let mut trainable = training::load_trainable(&pretrained.dir, p.task, k, p.seed, &device)
            .map_err(|e| StageError::failed(format!("model `{}`: {e}", p.model)))?;
        if let Some(d) = p.dropout {
            trainable.model.encoder.set_dropout(d);
            trainable.model.dropout = d;
        }
        tracing::info!(stage = ctx.stage, fresh = ?trainable.fresh, "initialised the parameters the checkpoint lacks");
        Ok(Model {
            pad_id: trainable.config.pad_token_id(),
            with_types: trainable.config.uses_token_types(),
            trainable,
            device,
            vocab: Vocab::load(&pretrained.dir)?,
        })
    }

    /// Evaluation-mode logits of every example, in batches of `batch_size` rows grouped by
    /// length; `after_batch(rows)` runs after each batch.
    fn logits(
        &self,
        examples: &Examples,
        batch_size: usize,
        after_batch: impl FnMut(usize) -> Result<(), StageError>,
    ) -> Result<Vec<Vec<f32>>, StageError> {
        training::predict_grouped(
            &self.trainable.model,
            examples,
            batch_size,
            self.pad_id,
            self.with_types,
            &self.device,
            after_batch,
        )
    }
}

/// How training went.
struct Trained {
    /// One record per epoch run.
    history: Vec<EpochRecord>,
    /// With `logging-steps`: one record per logging window.
    logged: Vec<StepRecord>,
    /// The epoch whose weights the model now has.
    best_epoch: usize,
    /// Optimizer steps taken.
    steps: usize,
    /// Time spent in training steps (evaluation excluded), and the examples they saw.
    train_seconds: f64,
    /// Of which in the optimizer (gradient norm, clipping, AdamW): the dense update of a large
    /// embedding table is worth seeing.
    optimizer_seconds: f64,
    samples: usize,
    /// The Trainer-like table of the epochs, for the log.
    table_text: String,
}

impl Trained {
    /// The best epoch's validation scores and the step count as metrics; the speed as run facts.
    fn record(&self, p: &FinetuneParams, output: &mut Output) {
        let best_scores = &self
            .history
            .iter()
            .find(|h| h.epoch == self.best_epoch)
            .expect("best epoch in history")
            .eval;
        output
            .metrics
            .insert("best_epoch".into(), self.best_epoch.into());
        output.metrics.insert(
            p.eval_split.clone(),
            serde_json::to_value(best_scores).expect("scores"),
        );
        output.metrics.insert("steps".into(), self.steps.into());
        // How fast it went depends on the machine and its load: the run record, not a result.
        output
            .run_facts
            .insert("train_seconds".into(), json!(round(self.train_seconds, 2)));
        output.run_facts.insert(
            "train_samples_per_second".into(),
            json!(round(self.samples as f64 / self.train_seconds, 2)),
        );
        output.run_facts.insert(
            "optimizer_seconds".into(),
            json!(round(self.optimizer_seconds, 2)),
        );
        output
            .run_facts
            .insert("threads".into(), rayon::current_num_threads().into());
        output
            .run_facts
            .insert("kernels".into(), crate::nn::simd::describe().into());
    }
}

/// Trains for the epochs (or steps) the params allow, evaluating after each, and leaves the
/// best epoch's weights in `model`.
fn train(
    p: &FinetuneParams,
    ctx: &Context,
    model: &Model,
    data: &Data,
) -> Result<Trained, StageError> {
    let mut trainer = Trainer::new(p, ctx, model, &data.train.examples, &data.names)?;
    let eval_bs = p.eval_batch_size.unwrap_or(p.batch_size);
    let mut history: Vec<EpochRecord> = Vec::new();
    let mut best: Option<BestEpoch> = None;
    let mut table_text = String::new();
    for epoch in 1..=p.epochs {
        if trainer.step >= trainer.total_steps {
            break;
        }
        let train_loss = trainer.epoch(epoch, &data.train.examples)?;
        ctx.progress
            .message(&format!("epoch {epoch}: evaluating on `{}`", p.eval_split));
        let logits = model.logits(&data.eval.examples, eval_bs, |_| ctx.check_cancelled())?;
        let scores = score(&data.eval.examples, &logits, data.names.len(), &data.names);
        let step = trainer.step;
        let line = epoch_line(&mut table_text, p.task, epoch, step, train_loss, &scores);
        ctx.progress.println(&line);
        keep_if_best(&mut best, p, epoch, &scores, &model.trainable)?;
        history.push(EpochRecord {
            epoch,
            step,
            train_loss,
            eval: scores,
        });
    }
    let (best_epoch, _, snap) = best.expect("at least one epoch ran");
    if !snap.is_empty() && best_epoch != history.last().map_or(0, |h| h.epoch) {
        model
            .trainable
            .restore(&snap)
            .map_err(failed("restoring the best epoch"))?;
    }
    Ok(Trained {
        history,
        logged: std::mem::take(&mut trainer.logged),
        best_epoch,
        steps: trainer.step,
        train_seconds: trainer.train_seconds,
        optimizer_seconds: trainer.optimizer_seconds,
        samples: trainer.samples,
        table_text,
    })
}

/// Keeps `epoch` as the best so far when its score (by `best-by`) beats the best's, with a
/// copy of its weights (none for the last epoch: the live weights are its copy).
fn keep_if_best(
    best: &mut Option<BestEpoch>,
    p: &FinetuneParams,
    epoch: usize,
    scores: &EvalScores,
    trainable: &Trainable,
) -> Result<(), StageError> {
    let key = match p.best_by {
        BestBy::F1 => scores.f1,
        BestBy::Loss => -scores.loss,
        BestBy::Last => epoch as f64,
    };
    if best.as_ref().is_none_or(|(_, b, _)| key > *b) {
        let snap = if epoch == p.epochs {
            Vec::new() // The last epoch: the live weights are the snapshot.
        } else {
            trainable.snapshot().map_err(failed("snapshot"))?
        };
        *best = Some((epoch, key, snap));
    }
    Ok(())
}

/// The training loss's settings from `label-smoothing` and `class-weight` (weights from the
/// training split's scored targets).
fn training_loss(
    p: &FinetuneParams,
    train: &Examples,
    names: &[String],
) -> Result<Loss, StageError> {
    let class_weights = match &p.class_weight {
        None => None,
        Some(rule) => {
            let mut counts = vec![0usize; names.len()];
            let mut count = |t: i64| {
                if t != IGNORE_LABEL {
                    counts[t as usize] += 1;
                }
            };
            match &train.targets {
                Targets::Sequence(y) => y.iter().copied().for_each(&mut count),
                Targets::Token(rows) => rows.iter().flatten().copied().for_each(&mut count),
            }
            let weights = rule
                .per_label(names, &counts)
                .map_err(|e| StageError::param("class-weight", e, None))?;
            Some(weights.into_iter().map(|w| w as f32).collect())
        }
    };
    Ok(Loss {
        label_smoothing: p.label_smoothing,
        class_weights,
    })
}

/// The optimizer and where training stands, across epochs.
struct Trainer<'a> {
    p: &'a FinetuneParams,
    ctx: &'a Context<'a>,
    model: &'a Model,
    vars: Vec<candle_core::Var>,
    opt: AdamW,
    /// Shuffles the batches.
    rng: Rng,
    train_lengths: Vec<usize>,
    /// Steps the schedule decays over (`max-steps` caps the epochs' steps).
    total_steps: usize,
    /// Optimizer steps taken so far.
    step: usize,
    samples: usize,
    train_seconds: f64,
    optimizer_seconds: f64,
    /// The training loss: label smoothing and class weights.
    loss: Loss,
    /// With `logging-steps`: the records so far, and the losses since the last one.
    logged: Vec<StepRecord>,
    window: Vec<f64>,
}

/// One row of the `steps` table.
struct StepRecord {
    step: usize,
    epoch: usize,
    loss: f64,
    learning_rate: f64,
    grad_norm: f64,
}

impl<'a> Trainer<'a> {
    fn new(
        p: &'a FinetuneParams,
        ctx: &'a Context<'a>,
        model: &'a Model,
        train: &Examples,
        names: &[String],
    ) -> Result<Trainer<'a>, StageError> {
        let t = &model.trainable;
        let vars = t.named_vars().into_iter().map(|(_, v)| v).collect();
        let opt = AdamW::new(t.named_vars(), p.weight_decay, model.device.is_cpu())
            .map_err(failed("optimizer"))?;
        let steps_per_epoch = train.len().div_ceil(p.batch_size);
        let planned = steps_per_epoch * p.epochs;
        let total_steps = p.max_steps.map_or(planned, |m| m.min(planned));
        let rng = Rng::new(p.seed);
        crate::nn::encoders::seed_dropout(p.seed);
        Ok(Trainer {
            p,
            ctx,
            model,
            vars,
            opt,
            rng,
            train_lengths: train.ids.iter().map(Vec::len).collect(),
            total_steps,
            step: 0,
            samples: 0,
            train_seconds: 0.0,
            optimizer_seconds: 0.0,
            loss: training_loss(p, train, names)?,
            logged: Vec::new(),
            window: Vec::new(),
        })
    }

    /// One epoch of optimizer steps (fewer when the steps run out); the mean training loss.
    fn epoch(&mut self, epoch: usize, train: &Examples) -> Result<f64, StageError> {
        let batches = epoch_plan(
            &self.train_lengths,
            self.p,
            &mut self.rng,
            self.total_steps - self.step,
        );
        self.ctx.progress.set_total(batches.len() as u64, "steps");
        let started = Instant::now();
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        for idx in &batches {
            self.ctx.check_cancelled()?;
            loss_sum += self.step(epoch, train, idx)?;
            loss_n += 1;
            self.ctx.progress.message(&format!(
                "epoch {epoch}/{} · loss {:.4} · lr {:.2e}",
                self.p.epochs,
                loss_sum / loss_n as f64,
                self.learning_rate(self.step - 1)
            ));
        }
        self.train_seconds += started.elapsed().as_secs_f64();
        Ok(loss_sum / loss_n.max(1) as f64)
    }

    /// The learning rate of optimizer step `step` (0-based).
    fn learning_rate(&self, step: usize) -> f64 {
        self.p.learning_rate * linear_schedule(step, self.total_steps, self.p.warmup_steps)
    }

    /// One optimizer step on the rows `idx`; its training loss. A non-finite loss or gradient
    /// norm stops training.
    fn step(&mut self, epoch: usize, train: &Examples, idx: &[usize]) -> Result<f64, StageError> {
        let model = self.model;
        let (grads, loss) = training::batch_gradients(
            &model.trainable.model,
            train,
            idx,
            &self.vars,
            model.pad_id,
            model.with_types,
            &model.device,
            self.p.max_tokens_per_step,
            &self.loss,
        )
        .map_err(failed("training step"))?;
        let lr = self.learning_rate(self.step);
        let at = Diverged {
            epoch,
            step: self.step + 1,
            lr,
        };
        at.check("the training loss", loss)?;
        let started = Instant::now();
        let info = self
            .opt
            .step(&grads, lr, Some(self.p.max_grad_norm))
            .map_err(failed("optimizer step"))?;
        self.optimizer_seconds += started.elapsed().as_secs_f64();
        at.check("the gradient norm", info.grad_norm)?;
        // `-vv` prints the trajectory that scripts/reference/ner_finetune_cell.py logs per step.
        tracing::debug!(
            step = self.step + 1,
            loss,
            grad_norm = info.grad_norm,
            lr,
            "optimizer step"
        );
        self.step += 1;
        self.samples += idx.len();
        self.ctx.progress.advance(1);
        if let Some(every) = self.p.logging_steps {
            self.window.push(loss);
            if self.step.is_multiple_of(every) {
                self.logged.push(StepRecord {
                    step: self.step,
                    epoch,
                    loss: self.window.iter().sum::<f64>() / self.window.len() as f64,
                    learning_rate: lr,
                    grad_norm: info.grad_norm,
                });
                self.window.clear();
            }
        }
        Ok(loss)
    }
}

/// The prediction table of split `name`: its rows' predictions and losses by the trained model.
fn predict_split(
    p: &FinetuneParams,
    ctx: &Context,
    model: &Model,
    data: &Data,
    batch: &RecordBatch,
    name: &str,
) -> Result<RecordBatch, StageError> {
    let split = read_split(batch, name, &data.label_col, p.task, Required)?;
    let k = data.names.len();
    check_label_range(&split.examples, k, name)?;
    ctx.progress.set_total(split.examples.len() as u64, "rows");
    ctx.progress.message(&format!("predicting `{name}`"));
    let eval_bs = p.eval_batch_size.unwrap_or(p.batch_size);
    let logits = model.logits(&split.examples, eval_bs, |n| {
        ctx.progress.advance(n as u64);
        ctx.check_cancelled()
    })?;
    prediction_table(&split, &logits, k, &model.vocab)
}

/// Where training stands, to say where a loss or gradient norm stopped being finite.
struct Diverged {
    epoch: usize,
    /// The optimizer step being taken (1-based, counted over all epochs, as `history.step`).
    step: usize,
    lr: f64,
}

impl Diverged {
    /// An error when `value` is NaN or infinite: one such step can turn every weight NaN, and
    /// training on would save a model that predicts nothing.
    fn check(&self, what: &str, value: f64) -> Result<(), StageError> {
        if value.is_finite() {
            return Ok(());
        }
        Err(StageError::failed(format!(
            "{what} became {value} at epoch {} step {}; the learning rate was {:.2e} at that step",
            self.epoch, self.step, self.lr
        ))
        .with_hint("lower the learning-rate, keep max-grad-norm on, or check the inputs"))
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// This epoch's batches, cut short when fewer than a full epoch's steps are left.
fn epoch_plan(
    lengths: &[usize],
    p: &FinetuneParams,
    rng: &mut Rng,
    left: usize,
) -> Vec<Vec<usize>> {
    let mut batches = training::epoch_batches(lengths, p.batch_size, p.group_by_length, rng);
    batches.truncate(left);
    batches
}

/// The label names from the schema metadata, or `LABEL_i` up to the largest id seen.
fn label_names(batch: &RecordBatch, train: &Examples) -> Result<Vec<String>, StageError> {
    if let Some(names) = labels::label_names(&batch.schema()) {
        check_label_range(train, names.len(), "train")?;
        return Ok(names);
    }
    let max = all_labels(train)
        .into_iter()
        .filter(|&y| y != IGNORE_LABEL)
        .max();
    match max {
        Some(m) if m >= 0 => Ok((0..=m).map(|i| format!("LABEL_{i}")).collect()),
        _ => Err(StageError::failed(
            "the training split has no labels to learn",
        )),
    }
}

/// Loss and scores of evaluation logits.
fn score(examples: &Examples, logits: &[Vec<f32>], k: usize, names: &[String]) -> EvalScores {
    match &examples.targets {
        Targets::Sequence(y) => sequence_scores(y, logits),
        Targets::Token(rows) => token_scores(rows, logits, k, names),
    }
}

/// Mean loss, accuracy and weighted F1 of one label per row.
fn sequence_scores(y: &[i64], logits: &[Vec<f32>]) -> EvalScores {
    let mut loss = 0.0;
    let mut pred = Vec::with_capacity(y.len());
    for (z, &t) in logits.iter().zip(y) {
        loss += training::row_loss(z, t as usize);
        pred.push(argmax(z) as i64);
    }
    let r = Report::new(y, &pred, |i| i.to_string());
    EvalScores {
        loss: loss / y.len().max(1) as f64,
        accuracy: r.accuracy,
        f1: r.weighted_avg.f1,
        precision: None,
        recall: None,
    }
}

/// Mean loss and accuracy over the scored tokens, and seqeval's entity scores.
fn token_scores(rows: &[Vec<i64>], logits: &[Vec<f32>], k: usize, names: &[String]) -> EvalScores {
    let (mut loss, mut n, mut correct) = (0.0, 0usize, 0usize);
    let (mut truth, mut pred) = (Vec::new(), Vec::new());
    for (z, y) in logits.iter().zip(rows) {
        let (mut t_tags, mut p_tags) = (Vec::new(), Vec::new());
        for (j, &t) in y.iter().enumerate() {
            if t == IGNORE_LABEL {
                continue;
            }
            let zj = &z[j * k..(j + 1) * k];
            loss += training::row_loss(zj, t as usize);
            let p = argmax(zj);
            correct += usize::from(p as i64 == t);
            n += 1;
            t_tags.push(names[t as usize].as_str());
            p_tags.push(names[p].as_str());
        }
        truth.push(t_tags);
        pred.push(p_tags);
    }
    let r = seqeval::score(&truth, &pred);
    EvalScores {
        loss: loss / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        f1: r.overall.f1,
        precision: Some(r.overall.precision),
        recall: Some(r.overall.recall),
    }
}

/// Appends one row of the Trainer-like table (header first) and returns it.
fn epoch_line(
    text: &mut String,
    task: Task,
    epoch: usize,
    step: usize,
    train_loss: f64,
    s: &EvalScores,
) -> String {
    let mut line = String::new();
    if text.is_empty() {
        let header = match task {
            Task::SequenceClassification => {
                "| Epoch | Step | Training Loss | Validation Loss | Accuracy | F1     |"
            }
            Task::TokenClassification => {
                "| Epoch | Step | Training Loss | Validation Loss | Precision | Recall | F1     |"
            }
        };
        let _ = writeln!(line, "{header}");
    }
    let _ = match task {
        Task::SequenceClassification => write!(
            line,
            "| {epoch:>5} | {step:>4} | {train_loss:>13.4} | {:>15.4} | {:>8.4} | {:.4} |",
            s.loss, s.accuracy, s.f1
        ),
        Task::TokenClassification => write!(
            line,
            "| {epoch:>5} | {step:>4} | {train_loss:>13.4} | {:>15.4} | {:>9.4} | {:>6.4} | {:.4} |",
            s.loss,
            s.precision.unwrap_or(0.0),
            s.recall.unwrap_or(0.0),
            s.f1
        ),
    };
    text.push_str(&line);
    text.push('\n');
    line
}

/// The HF model directory under `out/model`.
fn save_model(
    t: &Trainable,
    source: &ResolvedModel,
    task: Task,
    names: &[String],
    out: &std::path::Path,
) -> Result<(), StageError> {
    let dir = out.join("model");
    fs_err::create_dir_all(&dir)?;
    let mut config = t.raw_config.clone();
    let obj = config
        .as_object_mut()
        .ok_or_else(|| StageError::failed("config.json is not an object"))?;
    obj.insert(
        "architectures".into(),
        json!([task.architecture(t.config.family())]),
    );
    let id2label: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (i.to_string(), json!(n)))
        .collect();
    let label2id: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), json!(i)))
        .collect();
    obj.insert("id2label".into(), id2label.into());
    obj.insert("label2id".into(), label2id.into());
    if task == Task::SequenceClassification {
        obj.insert("problem_type".into(), json!("single_label_classification"));
    }
    let text = serde_json::to_string_pretty(&config).expect("json") + "\n";
    fs_err::write(dir.join("config.json"), text)?;
    t.varmap
        .save(dir.join("model.safetensors"))
        .map_err(failed("writing model.safetensors"))?;
    for f in TOKENIZER_FILES {
        let from = source.file(f);
        if from.is_file() {
            fs_err::copy(&from, dir.join(f))?;
        }
    }
    Ok(())
}

/// One row per epoch.
/// The training curves from `history`, as the Trainer's logs are plotted: `loss.png` (the
/// training loss and the validation loss at each epoch's last step) and `validation.png` (the
/// validation scores per epoch).
fn training_curves(
    table: &dyn Fn(&str) -> Option<RecordBatch>,
) -> Result<Vec<(String, Vec<u8>)>, StageError> {
    use crate::figures::lines::{LineChart, Series, line_chart};
    let Some(history) = table("history") else {
        return Ok(Vec::new());
    };
    let ints = |name: &str| -> Result<Vec<f64>, StageError> {
        let ids = crate::columns::table::ids(&history, name, "history")?;
        Ok(ids.into_iter().map(|v| v.unwrap_or(0) as f64).collect())
    };
    let floats = |name: &str| crate::columns::matrix::read_scalars(&history, name, "history");
    let (epochs, steps) = (ints("epoch")?, ints("step")?);
    let curve = |name: &str, xs: &[f64]| -> Result<Series, StageError> {
        let points = xs
            .iter()
            .zip(floats(name)?)
            .filter_map(|(&x, y)| y.filter(|y| y.is_finite()).map(|y| (x, y)));
        Ok(Series {
            name: name.replace('_', " "),
            points: points.collect(),
        })
    };
    let mut scores = vec![curve("accuracy", &epochs)?, curve("f1", &epochs)?];
    for extra in ["precision", "recall"] {
        if history.column_by_name(extra).is_some() {
            scores.push(curve(extra, &epochs)?);
        }
    }
    // The training loss per logging step when the stage logged them, else per epoch.
    let train_loss = match table("steps") {
        Some(logged) => {
            let at = crate::columns::table::ids(&logged, "step", "steps")?;
            let loss = crate::columns::matrix::read_scalars(&logged, "loss", "steps")?;
            let points = at
                .iter()
                .zip(loss)
                .filter_map(|(x, y)| Some(((*x)? as f64, y?)));
            Series {
                name: "train loss".into(),
                points: points.collect(),
            }
        }
        None => curve("train_loss", &steps)?,
    };
    let charts = [
        (
            "loss.png",
            LineChart {
                title: "Training and validation loss",
                x_label: "optimizer step",
                y_label: "loss",
                log_x: false,
                series: &[train_loss, curve("eval_loss", &steps)?],
                references: &[],
            },
        ),
        (
            "validation.png",
            LineChart {
                title: "Validation scores per epoch",
                x_label: "epoch",
                y_label: "score",
                log_x: false,
                series: &scores,
                references: &[],
            },
        ),
    ];
    let dir = tempfile::tempdir().map_err(|e| StageError::failed(format!("temp dir: {e}")))?;
    let mut figures = Vec::new();
    for (name, chart) in &charts {
        let path = dir.path().join(name);
        line_chart(&path, chart)?;
        let png = std::fs::read(&path).map_err(|e| StageError::failed(format!("{name}: {e}")))?;
        figures.push((name.to_string(), png));
    }
    Ok(figures)
}

fn steps_table(logged: &[StepRecord]) -> Result<RecordBatch, StageError> {
    let ints = |f: fn(&StepRecord) -> usize| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            logged.iter().map(|r| f(r) as i64),
        ))
    };
    let floats = |f: fn(&StepRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(logged.iter().map(f)))
    };
    Ok(RecordBatch::try_from_iter([
        ("step", ints(|r| r.step)),
        ("epoch", ints(|r| r.epoch)),
        ("loss", floats(|r| r.loss)),
        ("learning_rate", floats(|r| r.learning_rate)),
        ("grad_norm", floats(|r| r.grad_norm)),
    ])?)
}

fn history_table(history: &[EpochRecord]) -> Result<RecordBatch, StageError> {
    let f64s = |f: &dyn Fn(&EpochRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from(
            history.iter().map(f).collect::<Vec<_>>(),
        ))
    };
    let i64s = |f: &dyn Fn(&EpochRecord) -> usize| -> ArrayRef {
        Arc::new(Int64Array::from(
            history.iter().map(|h| f(h) as i64).collect::<Vec<_>>(),
        ))
    };
    let mut cols: Vec<(&str, ArrayRef)> = vec![
        ("epoch", i64s(&|h| h.epoch)),
        ("step", i64s(&|h| h.step)),
        ("train_loss", f64s(&|h| h.train_loss)),
        ("eval_loss", f64s(&|h| h.eval.loss)),
        ("accuracy", f64s(&|h| h.eval.accuracy)),
        ("f1", f64s(&|h| h.eval.f1)),
    ];
    if history.first().is_some_and(|h| h.eval.precision.is_some()) {
        cols.push(("precision", f64s(&|h| h.eval.precision.unwrap_or(f64::NAN))));
        cols.push(("recall", f64s(&|h| h.eval.recall.unwrap_or(f64::NAN))));
    }
    Ok(RecordBatch::try_from_iter(cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::table;
    use crate::ml::rng::Rng;
    use arrow::array::{Array, AsArray};

    /// The tiny random BERT fixture plus a word-level tokenizer over its 100 ids
    /// (`[PAD]` `[UNK]` `[CLS]` `[SEP]`, then `w4` … `w99`).
    fn tiny_model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        crate::fixtures::write_tiny_bert(dir.path(), &[]);
        dir
    }

    /// A learnable toy task: label 1 when a sequence's words are ids ≥ 60, 0 when below.
    fn toy_split(n: usize, seed: u64) -> RecordBatch {
        let mut rng = Rng::new(seed);
        let mut ids = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let positive = rng.below(2) == 1;
            let len = 2 + rng.below(6);
            let (lo, span) = if positive { (60, 40) } else { (4, 56) };
            let row: Vec<i32> = (0..len).map(|_| lo + rng.below(span) as i32).collect();
            let mut full = vec![2];
            full.extend(row);
            full.push(3);
            ids.push(full);
            labels.push(i64::from(positive));
        }
        let types: Vec<Vec<i8>> = ids.iter().map(|r| vec![0; r.len()]).collect();
        let texts: Vec<String> = ids
            .iter()
            .map(|r| {
                r[1..r.len() - 1]
                    .iter()
                    .map(|i| format!("w{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let batch = RecordBatch::try_from_iter([
            (
                "text",
                Arc::new(arrow::array::StringArray::from(texts)) as ArrayRef,
            ),
            ("label", Arc::new(Int64Array::from(labels)) as ArrayRef),
            ("input_ids", table::list_i32(&ids)),
            ("token_type_ids", table::list_i8(&types)),
        ])
        .unwrap();
        let names = ["other".to_string(), "high".to_string()];
        let meta: std::collections::HashMap<String, String> =
            labels::metadata("label", &names).into_iter().collect();
        let schema = Arc::new(batch.schema().as_ref().clone().with_metadata(meta));
        RecordBatch::try_new(schema, batch.columns().to_vec()).unwrap()
    }

    fn params(model: &std::path::Path, extra: &str) -> FinetuneParams {
        crate::params_from_yaml(&format!("model: {}\n{extra}", model.display()))
    }

    #[test]
    fn learns_a_toy_task_and_the_saved_model_reproduces_its_logits() {
        let model = tiny_model();
        let p = params(
            model.path(),
            "epochs: 4\nbatch-size: 16\nlearning-rate: 0.005\nweight-decay: 0.01\nseed: 3",
        );
        let tables = [
            ("train".to_string(), toy_split(256, 1)),
            ("validation".to_string(), toy_split(64, 2)),
        ];
        let (out, dir) = crate::run_for_test::<Finetune>(&p, tables.clone()).unwrap();
        let history = &out.tables["history"];
        let col = |name: &str| -> Vec<f64> {
            history
                .column_by_name(name)
                .unwrap()
                .as_primitive::<arrow::datatypes::Float64Type>()
                .values()
                .to_vec()
        };
        let (train_loss, acc) = (col("train_loss"), col("accuracy"));
        assert_eq!(train_loss.len(), 4);
        assert!(
            train_loss[3] < 0.6 * train_loss[0],
            "training loss {train_loss:?}"
        );
        assert!(
            acc.iter().copied().fold(0.0, f64::max) > 0.85,
            "validation accuracy {acc:?}"
        );

        // Same seed, same bytes: shuffling, head init and dropout are seeded and every float
        // sum has a fixed order, so every table, metric and weight is identical.
        let (again, dir2) = crate::run_for_test::<Finetune>(&p, tables).unwrap();
        assert_eq!(again.tables, out.tables);
        assert_eq!(again.metrics, out.metrics);
        let weights = |d: &tempfile::TempDir| {
            std::fs::read(d.path().join("model/model.safetensors")).unwrap()
        };
        assert!(weights(&dir2) == weights(&dir), "the saved weights differ");

        // The saved directory reloads (as `cairn predict` and `transformers` load it) and
        // gives the logits the stage wrote.
        let saved =
            crate::nn::predict::load(&dir.path().join("model"), &candle_core::Device::Cpu).unwrap();
        assert_eq!(saved.labels, ["other", "high"]);
        let val = &out.tables["validation"];
        let written = crate::columns::matrix::read_f64(val, "logits", "validation")
            .unwrap()
            .0;
        assert!(
            val.column_by_name("input_ids").is_none(),
            "token columns are dropped"
        );
        assert!(val.column_by_name("text").is_some() && val.column_by_name("loss").is_some());
        let input = toy_split(64, 2);
        let data = read_split(
            &input,
            "validation",
            "label",
            Task::SequenceClassification,
            Required,
        )
        .unwrap();
        let batches = crate::columns::tokens::plan_batches(
            &data.examples.ids.iter().map(Vec::len).collect::<Vec<_>>(),
            7,
            None,
        );
        let logits = training::predict_logits(
            &saved.model,
            &data.examples,
            &batches,
            0,
            true,
            &candle_core::Device::Cpu,
            |_| Ok(()),
        )
        .unwrap();
        for (got, want) in logits.iter().flatten().zip(&written) {
            assert!((*got as f64 - want).abs() < 1e-5, "{got} vs {want}");
        }
        let text =
            crate::nn::predict::predict_texts(dir.path(), &["w70 w5".into(), "w5 w6".into()])
                .unwrap();
        assert!(
            text.contains("\"w70 w5\" → ") && text.contains("other") && text.contains("high"),
            "{text}"
        );
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("model/config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(config["architectures"][0], "BertForSequenceClassification");
        assert_eq!(config["id2label"]["1"], "high");
        assert_eq!(config["label2id"]["other"], 0);
    }

    #[test]
    fn token_classification_scores_entities_and_tags_words() {
        let model = tiny_model();
        // Tag words ≥ w60 as B-X, others O; the first token of each row is [CLS] (-100).
        let base = toy_split(128, 5);
        let ids = table::int_lists(&base, "input_ids", "t").unwrap();
        let tags: Vec<Vec<i32>> = ids
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(j, &id)| {
                        if j == 0 || j == r.len() - 1 {
                            -100
                        } else {
                            i32::from(id >= 60)
                        }
                    })
                    .collect()
            })
            .collect();
        let names = ["O".to_string(), "B-X".to_string()];
        let meta: std::collections::HashMap<String, String> =
            labels::metadata("labels", &names).into_iter().collect();
        let with =
            table::with_columns(&base, vec![("labels", table::list_i32(&tags))], &[]).unwrap();
        let schema = Arc::new(with.schema().as_ref().clone().with_metadata(meta));
        let with = RecordBatch::try_new(schema, with.columns().to_vec()).unwrap();
        let p = params(
            model.path(),
            "task: token-classification\nepochs: 4\nbatch-size: 16\nlearning-rate: 0.01",
        );
        let (out, dir) = crate::run_for_test::<Finetune>(
            &p,
            [
                ("train".to_string(), with.clone()),
                ("validation".to_string(), with.slice(0, 40)),
            ],
        )
        .unwrap();
        let val = &out.tables["validation"];
        let preds = table::int_lists(val, "pred", "validation").unwrap();
        assert!(preds.iter().zip(&ids).all(|(p, i)| p.len() == i.len()));
        assert_token_losses_match_the_row_loss(val, &tags[..40]);
        let tokens = table::string_lists(val, "input_tokens", "validation").unwrap();
        assert_eq!(tokens[0][0], "[CLS]");
        assert_eq!(tokens[0].len(), ids[0].len());
        assert!(out.tables["history"].column_by_name("precision").is_some());
        let f1 = out.metrics["validation"]["f1"].as_f64().unwrap();
        assert!(f1 > 0.5, "entity F1 {f1}");
        let text = crate::nn::predict::predict_texts(dir.path(), &["w70 w5 w80".into()]).unwrap();
        assert!(
            text.contains("w70/") && text.contains("w5/") && text.contains("w80/"),
            "{text}"
        );
        let figures = training_curves(&|name| out.tables.get(name).cloned()).unwrap();
        let names: Vec<&str> = figures.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["loss.png", "validation.png"]);
        assert!(figures.iter().all(|(_, png)| png.starts_with(b"\x89PNG")));
        assert!(training_curves(&|_| None).unwrap().is_empty());
    }

    /// Regression: `seconds` and `train_samples_per_second` in `history` and the metrics made
    /// every rerun's output differ, so nothing downstream could stay cached.
    /// A loss per scored token (null where the tag is -100), whose mean is the row's `loss`.
    fn assert_token_losses_match_the_row_loss(table: &RecordBatch, tags: &[Vec<i32>]) {
        let losses = table.column_by_name("token_loss").unwrap().as_list::<i32>();
        let row_loss = crate::columns::matrix::read_scalars(table, "loss", "t").unwrap();
        for (i, tags) in tags.iter().enumerate() {
            let row = losses.value(i);
            let row = row.as_primitive::<arrow::datatypes::Float64Type>();
            assert_eq!(row.len(), tags.len());
            let mut scored = Vec::new();
            for (j, &t) in tags.iter().enumerate() {
                assert_eq!(row.is_null(j), t == -100, "row {i} token {j}");
                if t != -100 {
                    assert!(row.value(j).is_finite() && row.value(j) >= 0.0);
                    scored.push(row.value(j));
                }
            }
            let mean = scored.iter().sum::<f64>() / scored.len() as f64;
            assert_eq!(row_loss[i], Some(mean), "row {i}");
        }
    }

    #[test]
    fn history_and_metrics_have_no_timing() {
        let model = tiny_model();
        let p = params(model.path(), "epochs: 2\nbatch-size: 16\nmax-steps: 3");
        let (out, _dir) = crate::run_for_test::<Finetune>(
            &p,
            [
                ("train".to_string(), toy_split(32, 1)),
                ("validation".to_string(), toy_split(8, 2)),
            ],
        )
        .unwrap();
        let history = out.tables["history"].schema();
        let columns: Vec<&str> = history.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            columns,
            ["epoch", "step", "train_loss", "eval_loss", "accuracy", "f1"]
        );
        let metrics: Vec<&str> = out.metrics.keys().map(String::as_str).collect();
        assert_eq!(metrics, ["best_epoch", "steps", "validation"]);
        let facts: Vec<&str> = out.run_facts.keys().map(String::as_str).collect();
        assert_eq!(
            facts,
            [
                "device",
                "kernels",
                "optimizer_seconds",
                "threads",
                "train_samples_per_second",
                "train_seconds"
            ]
        );
    }

    /// `logging-steps: 2` over 5 steps: records at steps 2 and 4, each the mean of its window,
    /// and the loss curve is drawn from them. Without it the output has no `steps` table and the
    /// canonical params (hence every existing fingerprint) are as before the param existed.
    #[test]
    fn logging_steps_record_the_mean_loss_of_each_window() {
        let model = tiny_model();
        let split = || {
            [
                ("train".to_string(), toy_split(40, 1)),
                ("validation".to_string(), toy_split(8, 2)),
            ]
        };
        let p = params(model.path(), "epochs: 1\nbatch-size: 8\nlogging-steps: 2");
        let (out, _dir) = crate::run_for_test::<Finetune>(&p, split()).unwrap();
        let steps = &out.tables["steps"];
        let at = table::ids(steps, "step", "steps").unwrap();
        assert_eq!(at, [Some(2), Some(4)]);
        let loss = crate::columns::matrix::read_scalars(steps, "loss", "steps").unwrap();
        assert!(
            loss.iter().all(|l| l.is_some_and(f64::is_finite)),
            "{loss:?}"
        );
        let figures = training_curves(&|name| out.tables.get(name).cloned()).unwrap();
        assert_eq!(figures.len(), 2);

        let plain = params(model.path(), "epochs: 1\nbatch-size: 8");
        let canonical = serde_json::to_value(&plain).unwrap();
        assert!(canonical.get("logging-steps").is_none(), "{canonical}");
        let (out, _dir) = crate::run_for_test::<Finetune>(&plain, split()).unwrap();
        assert!(!out.tables.contains_key("steps"));
        let zero = params(model.path(), "logging-steps: 0");
        let e = crate::run_for_test::<Finetune>(&zero, split())
            .err()
            .unwrap();
        assert!(
            matches!(&e, StageError::Param { field, .. } if field == "logging-steps"),
            "{e}"
        );
    }

    /// A NaN loss stops the stage at the step where it appears, naming epoch and step, instead
    /// of training on and saving a NaN model.
    #[test]
    fn a_nan_loss_stops_training_naming_epoch_and_step() {
        let model = tiny_model();
        // NaN in the classifier's input: the embeddings' LayerNorm weight.
        let file = model.path().join("model.safetensors");
        let mut tensors = candle_core::safetensors::load(&file, &candle_core::Device::Cpu).unwrap();
        let name = "embeddings.LayerNorm.weight";
        let w = &tensors[name];
        let nan = (w.ones_like().unwrap() * f64::NAN).unwrap();
        tensors.insert(name.to_string(), nan);
        candle_core::safetensors::save(&tensors, &file).unwrap();
        let p = params(model.path(), "batch-size: 16\nlearning-rate: 0.001");
        let err = crate::run_for_test::<Finetune>(
            &p,
            [
                ("train".to_string(), toy_split(32, 1)),
                ("validation".to_string(), toy_split(8, 2)),
            ],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the training loss became NaN at epoch 1 step 1;")
                && err
                    .hint()
                    .is_some_and(|h| h.contains("lower the learning-rate")),
            "{err} / {:?}",
            err.hint()
        );
    }

    #[test]
    fn rejects_labels_outside_the_names() {
        let model = tiny_model();
        let mut bad = toy_split(8, 1);
        bad = table::with_columns(
            &bad,
            vec![(
                "label",
                Arc::new(Int64Array::from(vec![5i64; 8])) as ArrayRef,
            )],
            &[],
        )
        .unwrap();
        let p = params(model.path(), "");
        let err = crate::run_for_test::<Finetune>(
            &p,
            [
                ("train".to_string(), bad),
                ("validation".to_string(), toy_split(8, 2)),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("label 5") && err.contains("2 known labels"),
            "{err}"
        );
    }
}
