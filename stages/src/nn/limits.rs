//! What a model's `config.json` allows its inputs: token ids below `vocab_size`, and sequences
//! no longer than its position table. An id or a length beyond them otherwise fails deep inside
//! the encoder (`index-select invalid index 512`) after seconds and gigabytes; the encoder
//! stages scan their token columns against these limits first ([`check_token_columns`]), and a
//! tokenizer without a usable `model_max_length` falls back to [`ModelLimits::max_length`].

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;

use crate::api::{Input, StageError};
use crate::columns::table;
use crate::nn::encoders::Family;

/// The limits a `config.json` declares (the file stays permissive: missing keys are no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLimits {
    pub vocab_size: Option<usize>,
    pub max_position_embeddings: Option<usize>,
    /// Positions used before the first token: RoBERTa-family models (RoBERTa, XLM-R, CamemBERT)
    /// number real tokens from `padding_idx + 1`, so `pad_token_id + 1` (2) rows of the table
    /// are never a token's.
    pub position_offset: usize,
}

impl ModelLimits {
    /// From a parsed `config.json`.
    pub fn from_config(config: &serde_json::Value) -> ModelLimits {
        let number = |k: &str| config.get(k).and_then(|v| v.as_u64()).map(|v| v as usize);
        let roberta = config
            .get("model_type")
            .and_then(|v| v.as_str())
            .and_then(Family::from_model_type)
            == Some(Family::XlmRoberta);
        ModelLimits {
            vocab_size: number("vocab_size"),
            max_position_embeddings: number("max_position_embeddings"),
            position_offset: if roberta {
                number("pad_token_id").unwrap_or(1) + 1
            } else {
                0
            },
        }
    }

    /// From `dir/config.json`; `None` when there is none. A file that does not parse is an
    /// error naming it.
    pub fn read(dir: &Path) -> Result<Option<ModelLimits>, StageError> {
        let path = dir.join("config.json");
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| StageError::failed(format!("{}: {e}", path.display())))?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| StageError::failed(format!("{}: not JSON: {e}", path.display())))?;
        Ok(Some(ModelLimits::from_config(&config)))
    }

    /// The longest sequence the model takes, special tokens included.
    pub fn max_length(&self) -> Option<usize> {
        self.max_position_embeddings
            .map(|n| n.saturating_sub(self.position_offset))
    }

    /// Where [`ModelLimits::max_length`] comes from, for messages.
    pub fn explain_max_length(&self) -> String {
        match (self.max_position_embeddings, self.position_offset) {
            (Some(n), 0) => format!("max_position_embeddings {n}"),
            (Some(n), k) => format!(
                "max_position_embeddings {n} − {k}: RoBERTa-family positions start after the padding index"
            ),
            (None, _) => "no max_position_embeddings".into(),
        }
    }
}

/// Scans the `input_ids` of `splits` (default: every table of `input` that has them) against
/// the limits of the model in `model_dir` (named `model` in messages), before any heavy work:
/// an id outside the vocabulary or a row longer than the positions is an error naming the
/// split, the row, the limit and the fix. A model without `config.json` is not checked.
pub fn check_token_columns(
    model_dir: &Path,
    model: &str,
    input: &Input,
    splits: Option<&[&String]>,
) -> Result<(), StageError> {
    let Some(limits) = ModelLimits::read(model_dir)? else {
        return Ok(());
    };
    for (split, batch) in &input.tables {
        let wanted = splits.is_none_or(|s| s.contains(&split));
        if wanted && batch.column_by_name("input_ids").is_some() {
            check_batch(&limits, model, &input.stage, split, batch)?;
        }
    }
    Ok(())
}

fn check_batch(
    limits: &ModelLimits,
    model: &str,
    tokenizer_stage: &str,
    split: &str,
    batch: &RecordBatch,
) -> Result<(), StageError> {
    let col = table::column(batch, "input_ids", split)?;
    let DataType::List(inner) = col.data_type() else {
        return Ok(()); // the stage's own reader names the wrong type
    };
    if !inner.data_type().is_integer() {
        return Ok(());
    }
    let list = col.as_list::<i32>();
    let offsets = list.value_offsets();
    if let Some(max) = limits.max_length() {
        let long: Vec<usize> = (0..list.len())
            .filter(|&i| (offsets[i + 1] - offsets[i]) as usize > max)
            .collect();
        if let Some(&row) = long.first() {
            let n = offsets[row + 1] - offsets[row];
            let more = match long.len() {
                1 => String::new(),
                k => format!(" (and {} more rows)", k - 1),
            };
            return Err(StageError::failed(format!(
                "split `{split}`, row {row} has {n} tokens{more}, but model `{model}` takes at most {max} ({}); set `max-length: {max}` and `truncation: true` in stage `{tokenizer_stage}`, or use a model with more positions",
                limits.explain_max_length()
            )));
        }
    }
    if let Some(vocab) = limits.vocab_size {
        let values = arrow::compute::cast(list.values(), &DataType::Int64)?;
        let values = values.as_primitive::<Int64Type>();
        let start = offsets[0] as usize;
        let end = offsets[list.len()] as usize;
        let bad = (start..end)
            .find(|&j| values.is_valid(j) && !(0..vocab as i64).contains(&values.value(j)));
        if let Some(j) = bad {
            // The row holding value j: the last offset at or below it.
            let row = offsets.partition_point(|&o| o as usize <= j) - 1;
            let position = j - offsets[row] as usize;
            return Err(StageError::failed(format!(
                "split `{split}`, row {row}, token {position} has id {}, outside the vocabulary of model `{model}` (vocab_size {vocab}); tokenize with this model's own tokenizer in stage `{tokenizer_stage}`",
                values.value(j)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(rows: &[Vec<i32>]) -> Input {
        let batch = RecordBatch::try_from_iter([("input_ids", table::list_i32(rows))]).unwrap();
        Input {
            stage: "tok".into(),
            tables: [("train".to_string(), batch)].into_iter().collect(),
            ..Default::default()
        }
    }

    fn model_dir(config: serde_json::Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        dir
    }

    #[test]
    fn roberta_family_loses_two_positions() {
        let bert = json!({"model_type": "bert", "max_position_embeddings": 512});
        assert_eq!(ModelLimits::from_config(&bert).max_length(), Some(512));
        let xlmr =
            json!({"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1});
        let l = ModelLimits::from_config(&xlmr);
        assert_eq!(l.max_length(), Some(512));
        assert!(l.explain_max_length().contains("514 − 2"));
        assert_eq!(ModelLimits::from_config(&json!({})).max_length(), None);
    }

    #[test]
    fn long_rows_and_foreign_ids_are_named_before_encoding() {
        let dir = model_dir(
            json!({"model_type": "bert", "max_position_embeddings": 4, "vocab_size": 10}),
        );
        let ok = input(&[vec![1, 2, 3, 4], vec![9]]);
        check_token_columns(dir.path(), "m", &ok, None).unwrap();

        let long = input(&[vec![1], vec![1, 2, 3, 4, 5], vec![1, 2, 3, 4, 5, 6]]);
        let err = check_token_columns(dir.path(), "m", &long, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "split `train`, row 1 has 5 tokens (and 1 more rows), but model `m` takes at most 4"
            ) && err.contains("`max-length: 4` and `truncation: true` in stage `tok`"),
            "{err}"
        );
        let train = "train".to_string();
        let other = "validation".to_string();
        assert!(check_token_columns(dir.path(), "m", &long, Some(&[&other])).is_ok());
        assert!(check_token_columns(dir.path(), "m", &long, Some(&[&train])).is_err());

        let foreign = input(&[vec![1, 2], vec![3, 10]]);
        let err = check_token_columns(dir.path(), "m", &foreign, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("split `train`, row 1, token 1 has id 10, outside the vocabulary of model `m` (vocab_size 10)"),
            "{err}"
        );
        // No config.json: nothing to check against.
        let bare = tempfile::tempdir().unwrap();
        assert!(check_token_columns(bare.path(), "m", &foreign, None).is_ok());
    }
}
