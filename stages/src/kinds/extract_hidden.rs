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

use arrow::record_batch::RecordBatch;
use candle_core::{DType, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, External, Input, Output, PrepareEnv, Stage, StageError};
use crate::columns::tokens::{Tokens, pad_rows, plan_batches, without_token_columns};
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
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// The first token's state ([CLS] / `<s>`), as the chapter does.
    #[default]
    Cls,
    /// The mean over real tokens (the attention mask), padding excluded.
    Mean,
}

/// Params of `extract-hidden`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Bump when the vectors computed change. 2: non-finite numbers are refused, never turned
    /// into a result. 3: `cls` runs the last layer for the first token only (the same math;
    /// gemm may block a smaller product differently, so the last bits can differ).
    const VERSION: u32 = 3;
    const USES_DEVICE: bool = true;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "pooled last hidden state of a pretrained encoder (BERT/MiniLM, DistilBERT, XLM-R)";

    fn validate(p: &ExtractHiddenParams, _env: &PrepareEnv) -> Result<(), StageError> {
        if p.batch_size == 0 {
            return Err(StageError::param("batch-size", "must be at least 1", None));
        }
        Ok(())
    }

    fn externals(p: &ExtractHiddenParams, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        Ok(vec![
            resolve(&p.model, env.root, env.offline)?.external("model"),
        ])
    }

    fn run(p: &ExtractHiddenParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let splits = chosen_splits(p, input)?;
        let model = ResolvedModel::from_external(ctx.external("model")?);
        limits::check_token_columns(&model.dir, &p.model, input, Some(splits.as_slice()))?;
        let device = candle_device(ctx.device)?;
        let (encoder, cfg) = Encoder::from_dir(&model.dir, DType::F32, &device)
            .map_err(|e| StageError::failed(format!("model `{}`: {e}", p.model)))?;
        let total: usize = splits.iter().map(|s| input.tables[*s].num_rows()).sum();
        ctx.progress.set_total(total as u64, "rows");
        let frozen = Frozen {
            encoder: &encoder,
            cfg: &cfg,
            device: &device,
        };
        let mut output = Output::default();
        for split in splits {
            let table = encode_split(p, ctx, &frozen, &input.tables[split], split)?;
            output.tables.insert(split.clone(), table);
        }
        output
            .metrics
            .insert("hidden_size".into(), cfg.hidden_size().into());
        // Which instruction set the kernels ran on: a host fact, the bits are the same.
        output
            .run_facts
            .insert("kernels".into(), crate::nn::simd::describe().into());
        output
            .run_facts
            .insert("device".into(), ctx.device.to_string().into());
        Ok(output)
    }
}

/// The splits to encode: `splits`, each of which the input must have, or all of them.
fn chosen_splits<'a>(
    p: &ExtractHiddenParams,
    input: &'a Input,
) -> Result<Vec<&'a String>, StageError> {
    let Some(wanted) = &p.splits else {
        return Ok(input.tables.keys().collect());
    };
    wanted
        .iter()
        .map(|s| {
            input.table_named_by("splits", s)?;
            Ok(input.tables.get_key_value(s).expect("checked").0)
        })
        .collect()
}

/// The loaded encoder and where it runs.
struct Frozen<'a> {
    encoder: &'a Encoder,
    cfg: &'a Config,
    device: &'a candle_core::Device,
}

/// One split's output table: its pooled vectors (checked finite) with the non-token columns.
fn encode_split(
    p: &ExtractHiddenParams,
    ctx: &Context,
    model: &Frozen,
    batch: &RecordBatch,
    split: &str,
) -> Result<RecordBatch, StageError> {
    let started = std::time::Instant::now();
    let hidden = model.cfg.hidden_size();
    let tokens = Tokens::read(batch, split)?;
    let lengths: Vec<usize> = tokens.ids.iter().map(Vec::len).collect();
    if let Some(i) = lengths.iter().position(|&n| n == 0) {
        return Err(StageError::failed(format!(
            "split `{split}` row {i} has no tokens"
        )));
    }
    let out = encode_rows(
        model.encoder,
        model.cfg,
        model.device,
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
    let vectors = matrix::fixed_size_list_f32(out, hidden);
    let table = without_token_columns(batch, TOKEN_COLUMNS, vec![(HIDDEN_STATE, vectors)])?;
    tracing::info!(
        stage = ctx.stage,
        split,
        rows = lengths.len(),
        tokens = lengths.iter().sum::<usize>(),
        seconds = started.elapsed().as_secs_f64(),
        "extracted hidden states"
    );
    Ok(table)
}

/// Encodes every row of `tokens` in batches (sorted by length, per-batch padding); returns
/// `rows × hidden` floats in the original row order. `after_batch(rows)` runs after each batch
/// (progress) and before the next (cancellation).
///
/// On the CPU, as many batches as rayon has threads run side by side, one per core (neighbours
/// in length order, so they take about as long): a whole batch on one core costs less than
/// every op split over both (no hand-over between threads, and the gemm and the small ops keep
/// their data in that core's cache). Each row's numbers do not depend on this: the ops cut
/// their work the same way wherever it runs.
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
    let side_by_side = if device.is_cpu() {
        rayon::current_num_threads()
    } else {
        1
    };
    let batches = plan_batches(&lengths, batch_size, max_tokens);
    for wave in batches.chunks(side_by_side) {
        let pooled: Vec<Result<Vec<Vec<f32>>, StageError>> = wave
            .par_iter()
            .map(|idx| encode_batch(encoder, cfg, device, tokens, idx, pooling))
            .collect();
        for (idx, pooled) in wave.iter().zip(pooled) {
            for (row, &i) in pooled?.iter().zip(idx) {
                out[i * hidden..(i + 1) * hidden].copy_from_slice(row);
            }
            after_batch(idx.len())?;
        }
    }
    Ok(out)
}

/// The pooled vectors of the rows `idx`, padded into one batch.
fn encode_batch(
    encoder: &Encoder,
    cfg: &Config,
    device: &candle_core::Device,
    tokens: &Tokens,
    idx: &[usize],
    pooling: Pooling,
) -> Result<Vec<Vec<f32>>, StageError> {
    let err = candle_err("encoding a batch");
    let (ids, mask, types) = pad_batch(
        tokens,
        idx,
        cfg.pad_token_id(),
        cfg.uses_token_types(),
        device,
    )
    .map_err(&err)?;
    // [CLS] needs the last layer for the first token only.
    let pooled = match pooling {
        Pooling::Cls => encoder.first_token_state(&ids, &mask, types.as_ref()),
        Pooling::Mean => encoder
            .forward(&ids, &mask, types.as_ref(), false)
            .and_then(|states| pool(&states, &mask, pooling)),
    };
    pooled
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec2::<f32>())
        .map_err(&err)
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

    /// Batches side by side on a pool's threads give each row the bits one thread gives it.
    #[test]
    fn rows_get_the_same_bits_whatever_the_thread_count() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/encoders/bert");
        let dev = candle_core::Device::Cpu;
        let (encoder, cfg) = Encoder::from_dir(&dir, DType::F32, &dev).unwrap();
        let mut state = 5u64;
        let ids: Vec<Vec<i64>> = (0..37)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                let len = 1 + (state >> 59) as usize;
                (0..len)
                    .map(|k| 1 + ((state >> (k % 50)) % 99) as i64)
                    .collect()
            })
            .collect();
        let tokens = Tokens {
            ids,
            mask: None,
            types: None,
        };
        let encode = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                encode_rows(&encoder, &cfg, &dev, &tokens, 4, None, Pooling::Cls, |_| {
                    Ok(())
                })
                .unwrap()
            })
        };
        let one: Vec<u32> = encode(1).iter().map(|x| x.to_bits()).collect();
        let three: Vec<u32> = encode(3).iter().map(|x| x.to_bits()).collect();
        assert!(one.iter().any(|&b| b != 0));
        assert_eq!(one, three);
    }
}
