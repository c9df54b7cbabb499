//! Token columns as `tokenize` writes them and the encoder stages (extract-hidden, finetune)
//! read them: the schema keys tokenize leaves for them, the unpadded columns, batching by
//! length and padding into tensors, and the output tables that leave the token columns behind.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use candle_core::Tensor;

use crate::api::StageError;
use crate::columns::table;

/// Metadata key: the id of the padding token.
pub const PAD_ID_KEY: &str = "cairn.pad-token-id";
/// Metadata key: the vocabulary size.
pub const VOCAB_SIZE_KEY: &str = "cairn.vocab-size";

/// Row indices in batches: sorted by length (stable), at most `batch_size` rows and, with
/// `max_tokens`, at most that many padded tokens (a longer single row still gets a batch).
pub fn plan_batches(
    lengths: &[usize],
    batch_size: usize,
    max_tokens: Option<usize>,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending: the padded length of `current + i` is `lengths[i]`.
        let too_many = current.len() >= batch_size.max(1);
        let too_long = max_tokens.is_some_and(|m| (current.len() + 1) * lengths[i] > m);
        if !current.is_empty() && (too_many || too_long) {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The token columns of one split, unpadded.
pub struct Tokens {
    pub ids: Vec<Vec<i64>>,
    pub mask: Option<Vec<Vec<i64>>>,
    pub types: Option<Vec<Vec<i64>>>,
}

impl Tokens {
    pub fn read(batch: &RecordBatch, split: &str) -> Result<Tokens, StageError> {
        let opt = |name: &str| -> Result<Option<Vec<Vec<i64>>>, StageError> {
            match batch.column_by_name(name) {
                Some(_) => Ok(Some(table::int_lists(batch, name, split)?)),
                None => Ok(None),
            }
        };
        Ok(Tokens {
            ids: table::int_lists(batch, "input_ids", split)?,
            mask: opt("attention_mask")?,
            types: opt("token_type_ids")?,
        })
    }
}

/// Pads rows `idx` to their longest: ids `[b, t]` (u32, `pad_id` after each row), the f32
/// attention mask (`mask` where given, else 1 on real tokens) and, with `with_types` and
/// `types`, the token types. Shared by inference and training batches.
pub fn pad_rows(
    ids: &[Vec<i64>],
    mask: Option<&[Vec<i64>]>,
    types: Option<&[Vec<i64>]>,
    idx: &[usize],
    pad_id: u32,
    with_types: bool,
    device: &candle_core::Device,
) -> candle_core::Result<(Tensor, Tensor, Option<Tensor>)> {
    let t = idx.iter().map(|&i| ids[i].len()).max().unwrap_or(0);
    let b = idx.len();
    let mut padded = vec![pad_id; b * t];
    let mut m = vec![0f32; b * t];
    let mut ty = vec![0u32; b * t];
    for (r, &i) in idx.iter().enumerate() {
        for (j, &id) in ids[i].iter().enumerate() {
            padded[r * t + j] = id as u32;
            m[r * t + j] = mask.map_or(1.0, |m| m[i][j] as f32);
            if let Some(types) = types {
                ty[r * t + j] = types[i][j] as u32;
            }
        }
    }
    let ids = Tensor::from_vec(padded, (b, t), device)?;
    let mask = Tensor::from_vec(m, (b, t), device)?;
    let types = if with_types && types.is_some() {
        Some(Tensor::from_vec(ty, (b, t), device)?)
    } else {
        None
    };
    Ok((ids, mask, types))
}

/// `batch` without the token columns `dropped` and without the tokenizer's metadata keys
/// ([`PAD_ID_KEY`], [`VOCAB_SIZE_KEY`]), plus `added` (non-nullable columns, in order): what an
/// encoder stage writes. The rest of the schema metadata (label names) is kept.
pub fn without_token_columns(
    batch: &RecordBatch,
    dropped: &[&str],
    added: Vec<(&str, ArrayRef)>,
) -> Result<RecordBatch, StageError> {
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (f, a) in schema.fields().iter().zip(batch.columns()) {
        if !dropped.contains(&f.name().as_str()) {
            fields.push(f.as_ref().clone());
            arrays.push(a.clone());
        }
    }
    for (name, a) in added {
        fields.push(Field::new(name, a.data_type().clone(), false));
        arrays.push(a);
    }
    let mut meta = schema.metadata().clone();
    meta.remove(PAD_ID_KEY);
    meta.remove(VOCAB_SIZE_KEY);
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, meta)),
        arrays,
    )?)
}
