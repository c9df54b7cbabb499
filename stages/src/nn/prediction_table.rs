//! The prediction table a fine-tuned classifier writes for a split: what `finetune` writes for
//! its own splits and `predict` for another dataset's, so `evaluate` scores both alike.
//!
//! Columns: the input's non-token columns, then
//! - sequence task: `pred` (label id), `loss` (cross-entropy of the true label; NaN where the
//!   row has none) and `logits` (`fixed_size_list<float32>[k]`);
//! - token task: `input_tokens` (the sub-word strings, special tokens included), `pred` (a tag
//!   id per sub-word), `token_loss` (the cross-entropy of the true tag per sub-word, null where
//!   the label is -100) and `loss` (the mean of the row's token losses, 0 when none is scored)
//!   — the NER chapter's per-token error analysis reads the first three.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use tokenizers::Tokenizer;

use crate::api::StageError;
use crate::columns::labels::IGNORE_LABEL;
use crate::columns::matrix::fixed_size_list_f32;
use crate::columns::table;
use crate::columns::tokens::{Tokens, without_token_columns};
use crate::nn::encoders::classifier::Task;
use crate::nn::training::{self, Examples, Targets};
use crate::numeric::argmax;

/// Token columns a prediction table leaves out (the model's inputs, not results).
const DROPPED: &[&str] = &[
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "word_ids",
    "offsets",
    "special_tokens_mask",
];

/// A split read for training or prediction: its examples and the table they came from.
pub struct SplitData {
    pub examples: Examples,
    pub batch: RecordBatch,
}

/// Whether a split must carry the label column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    Required,
    /// Absent: every target is [`IGNORE_LABEL`] (predictions without a loss).
    IfPresent,
}

/// The default label column of a task: `label` (sequence) or `labels` (token, from
/// `align-labels`).
pub fn default_label_column(task: Task) -> &'static str {
    match task {
        Task::SequenceClassification => "label",
        Task::TokenClassification => "labels",
    }
}

/// Reads the token columns and the labels of one split.
pub fn read_split(
    batch: &RecordBatch,
    split: &str,
    label_col: &str,
    task: Task,
    labels: Labels,
) -> Result<SplitData, StageError> {
    let Tokens { ids, types, .. } = Tokens::read(batch, split)?;
    if let Some(i) = ids.iter().position(Vec::is_empty) {
        return Err(StageError::failed(format!(
            "split `{split}` row {i} has no tokens"
        )));
    }
    let targets = if labels == Labels::IfPresent && batch.column_by_name(label_col).is_none() {
        unlabelled(task, &ids)
    } else {
        read_targets(batch, split, label_col, task, &ids)?
    };
    Ok(SplitData {
        examples: Examples {
            ids,
            types,
            targets,
        },
        batch: batch.clone(),
    })
}

/// Targets that score nothing, shaped like the rows.
fn unlabelled(task: Task, ids: &[Vec<i64>]) -> Targets {
    match task {
        Task::SequenceClassification => Targets::Sequence(vec![IGNORE_LABEL; ids.len()]),
        Task::TokenClassification => Targets::Token(
            ids.iter()
                .map(|row| vec![IGNORE_LABEL; row.len()])
                .collect(),
        ),
    }
}

fn read_targets(
    batch: &RecordBatch,
    split: &str,
    label_col: &str,
    task: Task,
    ids: &[Vec<i64>],
) -> Result<Targets, StageError> {
    match task {
        Task::SequenceClassification => {
            let col = table::column(batch, label_col, split)?;
            if !col.data_type().is_integer() {
                return Err(StageError::failed(format!(
                    "split `{split}`: the label column `{label_col}` is {}, a sequence-classification label is an integer id (for token labels use task: token-classification)",
                    col.data_type()
                )));
            }
            let col = arrow::compute::cast(col, &DataType::Int64)?;
            let col = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&col);
            Ok(Targets::Sequence(
                col.iter().map(|v| v.unwrap_or(IGNORE_LABEL)).collect(),
            ))
        }
        Task::TokenClassification => {
            let rows = table::int_lists(batch, label_col, split)?;
            if let Some(i) = rows.iter().zip(ids).position(|(l, t)| l.len() != t.len()) {
                return Err(StageError::failed(format!(
                    "split `{split}` row {i}: {} labels in `{label_col}` for {} tokens (align the word tags with an align-labels stage)",
                    rows[i].len(),
                    ids[i].len()
                )));
            }
            Ok(Targets::Token(rows))
        }
    }
}

/// Every target of the examples, flattened (token rows in order).
pub fn all_labels(examples: &Examples) -> Vec<i64> {
    match &examples.targets {
        Targets::Sequence(y) => y.clone(),
        Targets::Token(rows) => rows.iter().flatten().copied().collect(),
    }
}

/// An error when a target is outside the `k` labels (ignored targets aside).
pub fn check_label_range(examples: &Examples, k: usize, split: &str) -> Result<(), StageError> {
    if let Some(bad) = all_labels(examples)
        .into_iter()
        .find(|&y| y != IGNORE_LABEL && (y < 0 || y >= k as i64))
    {
        return Err(StageError::failed(format!(
            "split `{split}` has label {bad}, outside the {k} known labels (0..{})",
            k - 1
        )));
    }
    Ok(())
}

/// The sub-word strings of token ids, from a model's `tokenizer.json`.
pub struct Vocab(Tokenizer);

impl Vocab {
    pub fn load(dir: &Path) -> Result<Vocab, StageError> {
        let path = dir.join("tokenizer.json");
        Tokenizer::from_file(&path)
            .map(Vocab)
            .map_err(|e| StageError::failed(format!("{}: does not parse: {e}", path.display())))
    }

    /// The token string of `id`; `[id]` for an id the vocabulary lacks (it cannot name it).
    fn token(&self, id: i64) -> String {
        u32::try_from(id)
            .ok()
            .and_then(|id| self.0.id_to_token(id))
            .unwrap_or_else(|| format!("[{id}]"))
    }
}

/// The split's table with its predictions: the input's non-token columns plus the task's
/// prediction columns (see the module doc). `logits` are the model's, row by row (`k` per row,
/// or per token).
pub fn prediction_table(
    data: &SplitData,
    logits: &[Vec<f32>],
    k: usize,
    vocab: &Vocab,
) -> Result<RecordBatch, StageError> {
    let added = match &data.examples.targets {
        Targets::Sequence(y) => sequence_predictions(y, logits, k),
        Targets::Token(rows) => {
            let mut cols = vec![("input_tokens", input_tokens(&data.examples.ids, vocab))];
            cols.extend(token_predictions(rows, logits, k));
            cols
        }
    };
    without_token_columns(&data.batch, DROPPED, added)
}

/// `pred` (label id), `loss` (NaN where the row has no label) and `logits` of each row.
fn sequence_predictions(y: &[i64], logits: &[Vec<f32>], k: usize) -> Vec<(&'static str, ArrayRef)> {
    let pred: Int64Array = logits.iter().map(|z| argmax(z) as i64).collect();
    let loss: Float64Array = logits
        .iter()
        .zip(y)
        .map(|(z, &t)| {
            if t == IGNORE_LABEL {
                f64::NAN
            } else {
                training::row_loss(z, t as usize)
            }
        })
        .collect();
    let flat = logits.iter().flatten().copied().collect::<Vec<_>>();
    vec![
        ("pred", Arc::new(pred)),
        ("loss", Arc::new(loss)),
        ("logits", fixed_size_list_f32(flat, k)),
    ]
}

fn input_tokens(ids: &[Vec<i64>], vocab: &Vocab) -> ArrayRef {
    let strings: Vec<Vec<String>> = ids
        .iter()
        .map(|row| row.iter().map(|&id| vocab.token(id)).collect())
        .collect();
    table::list_utf8(&strings)
}

/// `pred` (a tag id per token), `token_loss` (per scored token, null elsewhere) and `loss`
/// (their mean, 0 when none is scored) of each row.
fn token_predictions(
    rows: &[Vec<i64>],
    logits: &[Vec<f32>],
    k: usize,
) -> Vec<(&'static str, ArrayRef)> {
    let mut preds = Vec::with_capacity(rows.len());
    let mut token_losses = Vec::with_capacity(rows.len());
    let mut means = Vec::with_capacity(rows.len());
    for (z, y) in logits.iter().zip(rows) {
        preds.push(z.chunks_exact(k).map(|zj| argmax(zj) as i32).collect());
        let losses: Vec<Option<f64>> = y
            .iter()
            .enumerate()
            .map(|(j, &t)| {
                (t != IGNORE_LABEL).then(|| training::row_loss(&z[j * k..(j + 1) * k], t as usize))
            })
            .collect();
        let scored: Vec<f64> = losses.iter().flatten().copied().collect();
        means.push(if scored.is_empty() {
            0.0
        } else {
            scored.iter().sum::<f64>() / scored.len() as f64
        });
        token_losses.push(losses);
    }
    vec![
        ("pred", table::list_i32(&preds)),
        ("token_loss", table::list_f64_opt(&token_losses)),
        ("loss", Arc::new(Float64Array::from(means))),
    ]
}
