//! `predict`: applies a fine-tuned model to another dataset's splits — the NER chapter's
//! zero-shot evaluation (`trainer.predict(panx_de_encoded["test"])` on a model trained on
//! another language) — writing the prediction tables `finetune` writes for its own splits, so
//! `evaluate` scores both alike.
//!
//! Inputs, by name:
//! - `model`: a `finetune` stage (its `model/` directory: weights, `id2label`, tokenizer);
//! - `data`: a stage whose splits hold the token columns made with that model's tokenizer
//!   (`tokenize`, or `align-labels` for token classification) and, optionally, the labels.
//!
//! ```yaml
//! zero-shot:
//!   kind: predict
//!   inputs: {model: ft-de, data: align-en}
//!   splits: [test]
//! ```
//!
//! The rules:
//! - **Labels**: when the data has its label column (`label`, or `labels` for the token task;
//!   `label:` names another), each prediction gets its loss and `evaluate` can score it. The
//!   data's label names (schema metadata) must be the model's `id2label`, in the same order: a
//!   mismatch is an error listing both (tag ids would silently mean other tags). Data without
//!   names gets the model's. Without the label column the tables carry predictions only.
//! - **Same numbers as `finetune`**: the model runs in evaluation mode over batches of
//!   `batch-size` rows grouped by length, as `finetune` predicts; with the same batch size
//!   (finetune's `eval-batch-size`, else its `batch-size`), predicting finetune's own data gives
//!   its prediction tables bit for bit.
//!
//! Outputs: a table per split (see [`crate::nn::prediction_table`] for the columns: `pred`,
//! `loss`, `logits` for sequences; `input_tokens`, `pred`, `token_loss`, `loss` for tokens).
//! Metrics: `rows.<split>`.

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Arity, Context, Input, InputSlot, Output, Stage, StageError};
use crate::columns::labels;
use crate::nn::encoders::candle_device;
use crate::nn::encoders::classifier::Task;
use crate::nn::predict::saved_head;
use crate::nn::prediction_table::{
    Labels, SplitData, Vocab, check_label_range, default_label_column, prediction_table, read_split,
};
use crate::nn::training::{self, Trainable};

/// Params of `predict`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PredictParams {
    /// The data splits to predict. Default: every split of `data`.
    #[serde(default)]
    pub splits: Option<Vec<String>>,
    /// The label column: default `label` (sequence task) or `labels` (token task).
    #[serde(default)]
    pub label: Option<String>,
    /// Rows per forward pass. Default 32 (finetune's default).
    #[serde(default = "thirty_two")]
    pub batch_size: usize,
}

fn thirty_two() -> usize {
    32
}

pub struct Predict;

/// The files of a `finetune` stage's model directory, under this prefix.
const MODEL_PREFIX: &str = "model/";

impl Stage for Predict {
    type Params = PredictParams;
    const KIND: &'static str = "predict";
    const VERSION: u32 = 1;
    const USES_DEVICE: bool = true;
    const INPUT_SLOTS: &'static [InputSlot] = &[
        InputSlot::new("model", Arity::One).from_kinds(&["finetune"]),
        InputSlot::new("data", Arity::One),
    ];
    const SUMMARY: &'static str = "applies a fine-tuned model to another dataset's splits (zero-shot evaluation); writes finetune's prediction tables";

    fn validate(p: &PredictParams, _env: &crate::api::PrepareEnv) -> Result<(), StageError> {
        if p.batch_size == 0 {
            return Err(StageError::param("batch-size", "must be at least 1", None));
        }
        Ok(())
    }

    fn run(p: &PredictParams, ctx: &Context) -> Result<Output, StageError> {
        let (model_input, data) = (ctx.input("model")?, ctx.input("data")?);
        let dir = ModelDir::lay_out(model_input)?;
        let (task, names) = saved_head(dir.path())?;
        let splits = chosen_splits(p, data)?;
        crate::nn::limits::check_token_columns(dir.path(), &model_input.stage, data, None)?;
        let label_col = p
            .label
            .clone()
            .unwrap_or_else(|| default_label_column(task).into());
        let mut read = Vec::new();
        for split in &splits {
            let batch = data.table(split)?;
            check_label_names(batch, &names, &data.stage, &model_input.stage, split)?;
            let split_data = read_split(batch, split, &label_col, task, Labels::IfPresent)?;
            check_label_range(&split_data.examples, names.len(), split)?;
            read.push((split, split_data));
        }
        let model = Loaded::load(dir.path(), task, &names, ctx)?;
        let mut output = Output::default();
        for (split, split_data) in read {
            let table = model.predict(ctx, split, &split_data, names.len(), p.batch_size)?;
            let table = with_label_names(table, &names, &label_col)?;
            output
                .metrics
                .insert(format!("rows.{split}"), json!(table.num_rows()));
            output.tables.insert(split.clone(), table);
        }
        Ok(output)
    }
}

/// `splits`, each of which `data` must have; default every split.
fn chosen_splits(p: &PredictParams, data: &Input) -> Result<Vec<String>, StageError> {
    match &p.splits {
        Some(list) => {
            for s in list {
                data.table_named_by("splits", s)?;
            }
            Ok(list.clone())
        }
        None => Ok(data.tables.keys().cloned().collect()),
    }
}

/// The data's label names must be the model's, in order: a tag id means the same tag on both
/// sides, or every score would be wrong without a sign.
fn check_label_names(
    batch: &RecordBatch,
    model_names: &[String],
    data_stage: &str,
    model_stage: &str,
    split: &str,
) -> Result<(), StageError> {
    match labels::label_names(&batch.schema()) {
        Some(names) if names != model_names => Err(StageError::failed(format!(
            "split `{split}` of `{data_stage}` has the labels [{}], but the model of `{model_stage}` was trained on [{}]",
            names.join(", "),
            model_names.join(", ")
        ))
        .with_hint("load both datasets with the same `labels:` list, in the same order")),
        _ => Ok(()),
    }
}

/// The `finetune` stage's `model/` files, linked into a temporary directory under their names
/// (the cache stores objects by digest), so the model loads as any model directory does.
struct ModelDir {
    dir: tempfile::TempDir,
}

impl ModelDir {
    fn lay_out(input: &Input) -> Result<ModelDir, StageError> {
        let dir = tempfile::Builder::new().prefix("cairn-model-").tempdir()?;
        let files: Vec<(&str, &PathBuf)> = input
            .files
            .iter()
            .filter_map(|(name, path)| Some((name.strip_prefix(MODEL_PREFIX)?, path)))
            .collect();
        if files.is_empty() {
            return Err(StageError::failed(format!(
                "input `{}` has no `{MODEL_PREFIX}` files: `model` takes a finetune stage",
                input.stage
            )));
        }
        for (name, path) in files {
            let link = dir.path().join(name);
            if let Some(parent) = link.parent() {
                fs_err::create_dir_all(parent)?;
            }
            // Absolute: a relative cache path would resolve against the temporary directory.
            let target = std::path::absolute(path)?;
            std::os::unix::fs::symlink(&target, &link).map_err(|e| {
                StageError::failed(format!(
                    "linking {} to {}: {e}",
                    link.display(),
                    target.display()
                ))
            })?;
        }
        Ok(ModelDir { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The fine-tuned model, ready to predict as `finetune` does.
struct Loaded {
    trainable: Trainable,
    device: candle_core::Device,
    vocab: Vocab,
}

impl Loaded {
    /// Every parameter from the checkpoint: one the directory lacks means it is not a complete
    /// fine-tuned model (a fresh head would predict noise).
    fn load(dir: &Path, task: Task, names: &[String], ctx: &Context) -> Result<Loaded, StageError> {
        let device = candle_device(ctx.device)?;
        let trainable = training::load_trainable(dir, task, names.len(), 0, &device)
            .map_err(|e| StageError::failed(format!("the fine-tuned model: {e}")))?;
        if let Some(missing) = trainable.fresh.first() {
            return Err(StageError::failed(format!(
                "the fine-tuned model has no `{missing}` ({} parameter(s) missing)",
                trainable.fresh.len()
            )));
        }
        Ok(Loaded {
            trainable,
            device,
            vocab: Vocab::load(dir)?,
        })
    }

    /// One split's prediction table (`k` labels).
    fn predict(
        &self,
        ctx: &Context,
        split: &str,
        data: &SplitData,
        k: usize,
        batch_size: usize,
    ) -> Result<RecordBatch, StageError> {
        ctx.progress.set_total(data.examples.len() as u64, "rows");
        ctx.progress.message(&format!("predicting `{split}`"));
        let config = &self.trainable.config;
        let logits = training::predict_grouped(
            &self.trainable.model,
            &data.examples,
            batch_size,
            config.pad_token_id(),
            config.uses_token_types(),
            &self.device,
            |n| {
                ctx.progress.advance(n as u64);
                ctx.check_cancelled()
            },
        )?;
        prediction_table(data, &logits, k, &self.vocab)
    }
}

/// `table` with `names` as the label names of `column` when it has none yet (data loaded
/// without names), so `evaluate` can name the tags.
fn with_label_names(
    table: RecordBatch,
    names: &[String],
    column: &str,
) -> Result<RecordBatch, StageError> {
    let schema = table.schema();
    if labels::label_names(&schema).is_some() {
        return Ok(table);
    }
    let mut meta = schema.metadata().clone();
    meta.extend(labels::metadata(column, names));
    let schema = std::sync::Arc::new(schema.as_ref().clone().with_metadata(meta));
    Ok(RecordBatch::try_new(schema, table.columns().to_vec())?)
}
