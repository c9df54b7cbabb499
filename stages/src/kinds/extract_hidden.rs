//! `extract-hidden`: a frozen pretrained encoder's last hidden state, pooled to one vector per
//! row (the chapter's "transformers as feature extractors").
//!
//! Input: one `tokenize` stage's tables (`input_ids: list<int>`, `attention_mask`, optional
//! `token_type_ids`). Rows are sorted by length and batched with per-batch padding (the chapter
//! pads the whole dataset to its longest tweet, wasting most of the compute); the vectors come
//! back in the original row order.
//!
//! Output per split: `hidden_state: FixedSizeList<Float32>[hidden]` plus every column that is not
//! a token column (label, text, ...); the schema metadata (label names) is kept, the tokenizer's
//! `cairn.pad-token-id` / `cairn.vocab-size` are dropped with the token columns.

use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, External, Output, PrepareEnv, Stage, StageError};
use crate::columns::tokens::{PAD_ID_KEY, Tokens, VOCAB_SIZE_KEY, pad_rows, plan_batches};
use crate::hub::model::{self, ResolvedModel};
use crate::nn::encoders::candle_device;
use crate::nn::encoders::{Config, Encoder};
use crate::{columns::matrix, nn::limits};

/// The files a model reference needs.
const REQUIRED: &[&str] = &["config.json", "model.safetensors"];

/// Columns `tokenize` adds; they are not carried to the output.
const TOKEN_COLUMNS: &[&str] = &[
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "word_ids",
    "offsets",
    "tokens",
    "special_tokens_mask",
];

/// The output column.
pub const HIDDEN_STATE: &str = "hidden_state";

/// How a sequence of hidden states becomes one vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// The first token's state ([CLS] / `<s>`), as the chapter does.
    #[default]
    Cls,
    /// The mean over real tokens (the attention mask), padding excluded.
    Mean,
}

/// Params of `extract-hidden`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExtractHiddenParams {
    /// The MODEL (a local directory relative to the root, or a Hub id such as
    /// `sentence-transformers/all-MiniLM-L6-v2`) holding `config.json` and
    /// `model.safetensors`; `model_type` bert, distilbert or xlm-roberta. Required.
    pub model: String,
    /// `cls` (default) or `mean` (mask-aware).
    #[serde(default)]
    pub pooling: Pooling,
    /// Rows per batch. Default 64.
    #[serde(default = "batch_size_default")]
    pub batch_size: usize,
    /// Also cap rows × padded length per batch. Default: no cap.
    #[serde(default)]
    pub max_tokens_per_batch: Option<usize>,
    /// The splits to encode. Default: all of the input's.
    #[serde(default)]
    pub splits: Option<Vec<String>>,
}

fn batch_size_default() -> usize {
    64
}

/// `extract-hidden`: pooled last hidden states of a pretrained encoder.
pub struct ExtractHidden;

fn resolve(spec: &str, root: &std::path::Path, offline: bool) -> Result<ResolvedModel, StageError> {
    model::resolve(spec, root, offline, "model", REQUIRED, &[])
}

fn candle_err(what: &str) -> impl Fn(candle_core::Error) -> StageError + '_ {
    move |e| StageError::failed(format!("{what}: {e}"))
}

/// Pads the rows `idx` of `tokens` into `[b, t]` tensors (ids, mask, types).
fn pad_batch(
    tokens: &Tokens,
    idx: &[usize],
    pad_id: u32,
    with_types: bool,
    device: &candle_core::Device,
) -> candle_core::Result<(Tensor, Tensor, Option<Tensor>)> {
    pad_rows(
        &tokens.ids,
        tokens.mask.as_deref(),
        tokens.types.as_deref(),
        idx,
        pad_id,
        with_types,
        device,
    )
}

/// `[b, t, h]` hidden states to `[b, h]`.
pub fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> candle_core::Result<Tensor> {
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Mean => {
            let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
            let sum = hidden.broadcast_mul(&m)?.sum(1)?;
            let count = m.sum(1)?.clamp(1e-9, f64::MAX)?;
            sum.broadcast_div(&count)
        }
    }
}

impl Stage for ExtractHidden {
    type Params = ExtractHiddenParams;
    const KIND: &'static str = "extract-hidden";
    /// Bump when the vectors computed change.
    const VERSION: u32 = 2; // 2: non-finite numbers are refused, never turned into a result
    const USES_DEVICE: bool = true;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "pooled last hidden state of a pretrained encoder (BERT/MiniLM, DistilBERT, XLM-R)";

    fn externals(p: &ExtractHiddenParams, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        if p.batch_size == 0 {
            return Err(StageError::param("batch-size", "must be at least 1", None));
        }
        Ok(vec![
            resolve(&p.model, env.root, env.offline)?.external("model"),
        ])
    }

    fn run(p: &ExtractHiddenParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let splits: Vec<&String> = match &p.splits {
            None => input.tables.keys().collect(),
            Some(wanted) => {
                for s in wanted {
                    if !input.tables.contains_key(s) {
                        let have: Vec<&str> = input.tables.keys().map(String::as_str).collect();
                        return Err(StageError::param(
                            "splits",
                            format!(
                                "the input `{}` has no split `{s}` (splits: {})",
                                input.stage,
                                have.join(", ")
                            ),
                            None,
                        ));
                    }
                }
                wanted.iter().collect()
            }
        };
        let resolved = resolve(&p.model, ctx.root, ctx.offline)?;
        limits::check_token_columns(&resolved.dir, &p.model, input, Some(splits.as_slice()))?;
        let device = candle_device(ctx.device)?;
        let (encoder, cfg) = Encoder::from_dir(&resolved.dir, DType::F32, &device)
            .map_err(|e| StageError::failed(format!("model `{}`: {e}", p.model)))?;
        let hidden = cfg.hidden_size();
        let total: usize = splits.iter().map(|s| input.tables[*s].num_rows()).sum();
        ctx.progress.set_total(total as u64, "rows");

        let mut output = Output::default();
        for split in splits {
            let batch = &input.tables[split];
            let started = std::time::Instant::now();
            let tokens = Tokens::read(batch, split)?;
            let lengths: Vec<usize> = tokens.ids.iter().map(Vec::len).collect();
            if let Some(i) = lengths.iter().position(|&n| n == 0) {
                return Err(StageError::failed(format!(
                    "split `{split}` row {i} has no tokens"
                )));
            }
            let out = encode_rows(
                &encoder,
                &cfg,
                &device,
                &tokens,
                p.batch_size,
                p.max_tokens_per_batch,
                p.pooling,
                |rows| {
                    ctx.progress.advance(rows as u64);
                    ctx.check_cancelled()
                },
            )?;
            matrix::check_finite(&out, Some(hidden), HIDDEN_STATE, split).map_err(|e| {
                StageError::failed(format!(
                    "model `{}` produced a non-finite value: {e}",
                    p.model
                ))
            })?;
            let values = Float32Array::from(out);
            let field = Arc::new(Field::new_list_field(DataType::Float32, false));
            let vectors: ArrayRef = Arc::new(FixedSizeListArray::new(
                field,
                hidden as i32,
                Arc::new(values),
                None,
            ));
            output
                .tables
                .insert(split.clone(), with_vectors(batch, vectors)?);
            tracing::info!(
                stage = ctx.stage,
                split = split.as_str(),
                rows = lengths.len(),
                tokens = lengths.iter().sum::<usize>(),
                seconds = started.elapsed().as_secs_f64(),
                "extracted hidden states"
            );
        }
        output.metrics.insert("hidden_size".into(), hidden.into());
        Ok(output)
    }
}

/// Encodes every row of `tokens` in batches (sorted by length, per-batch padding); returns
/// `rows × hidden` floats in the original row order. `after_batch(rows)` runs after each batch
/// (progress) and before the next (cancellation).
#[allow(clippy::too_many_arguments)]
pub fn encode_rows(
    encoder: &Encoder,
    cfg: &Config,
    device: &candle_core::Device,
    tokens: &Tokens,
    batch_size: usize,
    max_tokens: Option<usize>,
    pooling: Pooling,
    mut after_batch: impl FnMut(usize) -> Result<(), StageError>,
) -> Result<Vec<f32>, StageError> {
    let hidden = cfg.hidden_size();
    let lengths: Vec<usize> = tokens.ids.iter().map(Vec::len).collect();
    let mut out = vec![0f32; lengths.len() * hidden];
    for idx in plan_batches(&lengths, batch_size, max_tokens) {
        let err = candle_err("encoding a batch");
        let (ids, mask, types) = pad_batch(
            tokens,
            &idx,
            cfg.pad_token_id(),
            cfg.uses_token_types(),
            device,
        )
        .map_err(&err)?;
        let states = encoder
            .forward(&ids, &mask, types.as_ref(), false)
            .map_err(&err)?;
        let pooled = pool(&states, &mask, pooling)
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(&err)?;
        for (row, &i) in pooled.iter().zip(&idx) {
            out[i * hidden..(i + 1) * hidden].copy_from_slice(row);
        }
        after_batch(idx.len())?;
    }
    Ok(out)
}

/// The non-token columns of `batch` plus `hidden_state`, schema metadata kept (minus the
/// tokenizer's keys).
fn with_vectors(batch: &RecordBatch, vectors: ArrayRef) -> Result<RecordBatch, StageError> {
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (f, a) in schema.fields().iter().zip(batch.columns()) {
        if !TOKEN_COLUMNS.contains(&f.name().as_str()) {
            fields.push(f.as_ref().clone());
            arrays.push(a.clone());
        }
    }
    fields.push(Field::new(HIDDEN_STATE, vectors.data_type().clone(), false));
    arrays.push(vectors);
    let mut meta = schema.metadata().clone();
    meta.remove(PAD_ID_KEY);
    meta.remove(VOCAB_SIZE_KEY);
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, meta)),
        arrays,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_sorted_by_length_and_capped() {
        let lengths = [5, 1, 3, 9, 2, 3];
        assert_eq!(
            plan_batches(&lengths, 2, None),
            vec![vec![1, 4], vec![2, 5], vec![0, 3]]
        );
        // 3 rows of length <= 3 fit in 9 tokens; the 5 and the 9 go alone.
        assert_eq!(
            plan_batches(&lengths, 64, Some(9)),
            vec![vec![1, 4, 2], vec![5], vec![0], vec![3]]
        );
        let all: usize = plan_batches(&lengths, 64, Some(1))
            .iter()
            .map(Vec::len)
            .sum();
        assert_eq!(all, lengths.len());
    }

    #[test]
    fn mean_pooling_ignores_padding() {
        let dev = candle_core::Device::Cpu;
        let h = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &dev).unwrap();
        let m = Tensor::new(&[[1f32, 1., 0.]], &dev).unwrap();
        let mean = pool(&h, &m, Pooling::Mean)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(mean, vec![vec![2., 3.]]);
        let cls = pool(&h, &m, Pooling::Cls)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(cls, vec![vec![1., 2.]]);
    }

    #[test]
    fn params_default_and_reject_unknown_fields() {
        let p: ExtractHiddenParams = crate::params_from_yaml("model: m");
        assert_eq!((p.pooling, p.batch_size), (Pooling::Cls, 64));
        let e = serde_json::from_value::<ExtractHiddenParams>(
            serde_json::json!({"model": "m", "pooling": "max"}),
        );
        assert!(e.is_err());
    }
}
