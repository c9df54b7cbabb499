//! `align-labels`: word-level tags to one label per sub-word token, for token classification
//! (the NER chapter's `tokenize_and_align_labels`).
//!
//! The rule: special tokens (word id `-1`) get `ignore-index` (-100, which the loss skips); the
//! first sub-word of each word gets the word's tag; the following sub-words of the same word
//! get -100 too, or the word's tag with `label-all-tokens: true`.
//!
//! Output: `labels: list<int32>` (the `output` column), one per entry of `word_ids`.

use serde::{Deserialize, Serialize};

use crate::api::{Arity, Context, Output, Stage, StageError};
use crate::columns::labels::IGNORE_LABEL;
use crate::columns::table;

/// Params of `align-labels`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlignLabelsParams {
    /// The word-level tags (`list<int>`). Default `ner_tags`.
    #[serde(default = "ner_tags")]
    pub column: String,
    /// The token-to-word map written by `tokenize` (`list<int32>`, -1 for none). Default `word_ids`.
    #[serde(default = "word_ids")]
    pub word_ids: String,
    /// The column to write. Default `labels`.
    #[serde(default = "labels")]
    pub output: String,
    /// Label every sub-word of a word with its tag, not only the first. Default false.
    #[serde(default)]
    pub label_all_tokens: bool,
    /// The label of tokens the loss must skip. Default -100.
    #[serde(default = "minus_100")]
    pub ignore_index: i32,
}

fn ner_tags() -> String {
    "ner_tags".into()
}
fn word_ids() -> String {
    "word_ids".into()
}
fn labels() -> String {
    "labels".into()
}
fn minus_100() -> i32 {
    IGNORE_LABEL as i32
}

/// Aligns one row; `None` when a word id points past the tags (inconsistent input).
pub fn align(
    tags: &[i64],
    word_ids: &[i64],
    label_all_tokens: bool,
    ignore: i32,
) -> Option<Vec<i32>> {
    let mut previous = -1;
    word_ids
        .iter()
        .map(|&w| {
            let label = if w < 0 {
                ignore
            } else if w != previous || label_all_tokens {
                *tags.get(w as usize)? as i32
            } else {
                ignore
            };
            previous = w;
            Some(label)
        })
        .collect()
}

/// `align-labels`: word tags to sub-word labels.
pub struct AlignLabels;

impl Stage for AlignLabels {
    type Params = AlignLabelsParams;
    const KIND: &'static str = "align-labels";
    /// Bump when the alignment rule changes.
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "word-level tags to one label per sub-word token (-100 for specials and continuations)";

    fn run(p: &AlignLabelsParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let mut output = Output::default();
        for (split, batch) in &input.tables {
            ctx.check_cancelled()?;
            let tags = table::int_lists(batch, &p.column, split)?;
            let words = table::int_lists(batch, &p.word_ids, split)?;
            let labels = tags
                .iter()
                .zip(&words)
                .enumerate()
                .map(|(row, (t, w))| {
                    align(t, w, p.label_all_tokens, p.ignore_index).ok_or_else(|| {
                        StageError::failed(format!(
                            "split `{split}`, row {row}: `{}` names word {} but `{}` has {} tags",
                            p.word_ids,
                            w.iter().max().unwrap_or(&-1),
                            p.column,
                            t.len()
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let column = table::list_i32(&labels);
            output.tables.insert(
                split.clone(),
                table::with_columns(batch, vec![(p.output.as_str(), column)], &[])?,
            );
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sub_word_keeps_the_tag() {
        // [CLS] jeff dean is a computer scientist at google in california [SEP], with "dean"
        // split into two sub-words: word ids [-1, 0, 1, 1, 2, ...].
        let tags = [1, 2, 0, 0, 0, 0, 0, 3, 0, 5];
        let word_ids = [-1, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1];
        assert_eq!(
            align(&tags, &word_ids, false, -100).unwrap(),
            [-100, 1, 2, -100, 0, 0, 0, 0, 0, 3, 0, 5, -100]
        );
        assert_eq!(
            align(&tags, &word_ids, true, -100).unwrap(),
            [-100, 1, 2, 2, 0, 0, 0, 0, 0, 3, 0, 5, -100]
        );
        assert_eq!(align(&[0], &[-1, 0, 1, -1], false, -100), None);
    }
}
