//! `tokenize`: text (or pre-split words) to token ids, with a pretrained `tokenizer.json` or
//! with the chapter's character / word tokenizers whose vocabulary is built from a split.
//!
//! Output columns, added to the input's (every input column is kept), stored unpadded
//! (padding happens per batch in the consumers):
//! - `input_ids: list<int32>`;
//! - `attention_mask: list<int8>` (all ones: nothing is padded);
//! - `token_type_ids: list<int8>`, when the model takes them (BERT does);
//! - `word_ids: list<int32>`: the index of the word (in `words`/`tokens`, or of the
//!   whitespace-separated word of the text) each token comes from, `-1` for special tokens
//!   (and for spaces with `char`);
//! - `offsets: list<struct<start: int32, end: int32>>` (unless `return-offsets: false`): each
//!   token's span in characters, end exclusive; in the text, or with `is-split-into-words`
//!   in its word (as `transformers` does); `(0, 0)` for special tokens;
//! - `tokens: list<utf8>` (the token strings) with `return-tokens: true`; named by
//!   `tokens-column`, since CoNLL data already has a `tokens` column (its words).
//!
//! Schema metadata: `cairn.pad-token-id` and `cairn.vocab-size` (decimal), for consumers that
//! pad and embed. `char` / `word` also write their vocabulary to the file output `vocab.txt`
//! (one token per line, id = line number, 0-based).

use std::collections::HashMap;
use std::io::Write;

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use tokenizers::{EncodeInput, Encoding};

use crate::api::{Arity, Context, External, Input, Output, PrepareEnv, Stage, StageError};
use crate::columns::table;
use crate::columns::tokens::{PAD_ID_KEY, VOCAB_SIZE_KEY};
use crate::hub::model::ResolvedModel;
use crate::hub::pretrained::{self, Pretrained};

/// Params of `tokenize`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenizeParams {
    /// A MODEL whose `tokenizer.json` to use (a local directory, relative to the root, or a Hub
    /// id such as `sentence-transformers/all-MiniLM-L6-v2`), or `char` (one token per
    /// character) or `word` (one token per whitespace-separated word) with a vocabulary built
    /// from `vocab-split`. (A local directory named `char` or `word` is written `./char`.)
    /// Required.
    pub tokenizer: String,
    /// The input column. Default: `text`; with `is-split-into-words`, `words` when the input
    /// has it (a `pretokenize` stage ran), else `tokens` (CoNLL data).
    #[serde(default)]
    pub column: Option<String>,
    /// The input is a `list<utf8>` of words rather than text. Default false.
    #[serde(default)]
    pub is_split_into_words: bool,
    /// Add the model's special tokens (`[CLS]` ... `[SEP]`). Default true. (`char`/`word` have
    /// only `[PAD]` and `[UNK]`, so this does nothing there.)
    #[serde(default = "yes")]
    pub add_special_tokens: bool,
    /// Cut sequences longer than `max-length`. Default true.
    #[serde(default = "yes")]
    pub truncation: bool,
    /// Longest sequence kept, special tokens included. Default: the model's
    /// `model_max_length` (512 for all-MiniLM-L6-v2); for `char` / `word`, no limit.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Also store the token strings (in `tokens-column`). Default false.
    #[serde(default)]
    pub return_tokens: bool,
    /// The column for the token strings with `return-tokens`. Default `tokens`. It must not
    /// exist in the input (CoNLL data has its words in `tokens`: choose e.g. `subwords`).
    #[serde(default = "tokens")]
    pub tokens_column: String,
    /// Store the `offsets` column. Default true.
    #[serde(default = "yes")]
    pub return_offsets: bool,
    /// `char` / `word`: keep at most this many vocabulary entries in all (`[PAD]` and `[UNK]`
    /// included), the most frequent ones. Default: every distinct token.
    #[serde(default)]
    pub max_vocab: Option<usize>,
    /// `char` / `word`: the split whose texts build the vocabulary. Default `train`.
    #[serde(default = "crate::columns::table::train")]
    pub vocab_split: String,
}

fn yes() -> bool {
    true
}
fn tokens() -> String {
    "tokens".into()
}

/// What `tokenizer:` names.
enum Which<'a> {
    Char,
    Word,
    Model(&'a str),
}

impl TokenizeParams {
    fn which(&self) -> Which<'_> {
        match self.tokenizer.as_str() {
            "char" => Which::Char,
            "word" => Which::Word,
            other => Which::Model(other),
        }
    }

    /// Refuses to overwrite an input column with the token strings.
    fn check_tokens_column(&self, batch: &RecordBatch, split: &str) -> Result<(), StageError> {
        if self.return_tokens && batch.column_by_name(&self.tokens_column).is_some() {
            return Err(StageError::param(
                "tokens-column",
                format!(
                    "split `{split}` already has a column `{}`; the token strings would replace it",
                    self.tokens_column
                ),
                Some("set `tokens-column:` to a new name, e.g. `tokens-column: subwords`".into()),
            ));
        }
        Ok(())
    }

    fn column_for(&self, batch: &RecordBatch) -> String {
        match &self.column {
            Some(c) => c.clone(),
            None if !self.is_split_into_words => "text".into(),
            None if batch.column_by_name("words").is_some() => "words".into(),
            None => "tokens".into(),
        }
    }
}

/// One row's encoding, in the stored types.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<i32>,
    pub type_ids: Vec<i8>,
    pub word_ids: Vec<i32>,
    pub offsets: Vec<(usize, usize)>,
    pub tokens: Vec<String>,
    pub truncated: bool,
}

impl Encoded {
    fn from_encoding(e: &Encoding) -> Encoded {
        Encoded {
            ids: e.get_ids().iter().map(|&i| i as i32).collect(),
            type_ids: e.get_type_ids().iter().map(|&i| i as i8).collect(),
            word_ids: e
                .get_word_ids()
                .iter()
                .map(|w| w.map_or(-1, |w| w as i32))
                .collect(),
            offsets: e.get_offsets().to_vec(),
            tokens: e.get_tokens().to_vec(),
            truncated: !e.get_overflowing().is_empty(),
        }
    }
}

/// The input rows of one split: texts or pre-split words.
enum Rows<'a> {
    Text(Vec<&'a str>),
    Words(Vec<Vec<&'a str>>),
}

impl<'a> Rows<'a> {
    fn read(
        p: &TokenizeParams,
        batch: &'a RecordBatch,
        split: &str,
    ) -> Result<Rows<'a>, StageError> {
        p.check_tokens_column(batch, split)?;
        let column = p.column_for(batch);
        Ok(if p.is_split_into_words {
            Rows::Words(table::string_lists(batch, &column, split)?)
        } else {
            Rows::Text(table::strings(batch, &column, split)?)
        })
    }

    fn len(&self) -> usize {
        match self {
            Rows::Text(t) => t.len(),
            Rows::Words(w) => w.len(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// char / word tokenizers

/// A vocabulary built from data: `[PAD]` = 0, `[UNK]` = 1, then the distinct tokens in sorted
/// (code point) order, as the chapter's `sorted(set(...))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    pub tokens: Vec<String>,
    index: HashMap<String, i32>,
}

pub const PAD: &str = "[PAD]";
pub const UNK: &str = "[UNK]";

impl Vocab {
    /// From every unit (character or word) of the vocabulary split. With `max_size`, keeps the
    /// `max_size - 2` most frequent (ties: in sorted order).
    pub fn build<'a>(units: impl Iterator<Item = &'a str>, max_size: Option<usize>) -> Vocab {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for u in units {
            *counts.entry(u).or_default() += 1;
        }
        let mut distinct: Vec<(&str, usize)> = counts.into_iter().collect();
        distinct.sort();
        if let Some(max) = max_size {
            let keep = max.saturating_sub(2);
            if distinct.len() > keep {
                let mut by_freq = distinct.clone();
                by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                by_freq.truncate(keep);
                by_freq.sort();
                distinct = by_freq;
            }
        }
        let tokens: Vec<String> = [PAD, UNK]
            .into_iter()
            .chain(distinct.into_iter().map(|(t, _)| t))
            .map(String::from)
            .collect();
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as i32))
            .collect();
        Vocab { tokens, index }
    }

    /// The id of `token`, `[UNK]` (1) when it is not in the vocabulary.
    pub fn id(&self, token: &str) -> i32 {
        self.index.get(token).copied().unwrap_or(1)
    }

    /// The token of `id`.
    pub fn token(&self, id: i32) -> &str {
        &self.tokens[id as usize]
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// A unit of text with its character span and word index.
struct Unit<'a> {
    text: &'a str,
    span: (usize, usize),
    word: i32,
}

/// The units of one row for `char` (characters, spaces included, as `list(text)`) or `word`
/// (whitespace-separated words).
fn units<'a>(chars: bool, row: &RowRef<'a>) -> Vec<Unit<'a>> {
    let mut out = Vec::new();
    match row {
        RowRef::Text(text) => {
            let mut word = -1i32;
            let mut in_word = false;
            let mut start_char = 0;
            let mut start_byte = 0;
            let mut n = 0;
            for (ci, (bi, c)) in text.char_indices().enumerate() {
                n = ci + 1;
                let space = c.is_whitespace();
                if !space && !in_word {
                    word += 1;
                    start_char = ci;
                    start_byte = bi;
                }
                if !chars && space && in_word {
                    out.push(Unit {
                        text: &text[start_byte..bi],
                        span: (start_char, ci),
                        word,
                    });
                }
                in_word = !space;
                if chars {
                    let w = if space { -1 } else { word };
                    out.push(Unit {
                        text: &text[bi..bi + c.len_utf8()],
                        span: (ci, ci + 1),
                        word: w,
                    });
                }
            }
            if !chars && in_word {
                out.push(Unit {
                    text: &text[start_byte..],
                    span: (start_char, n),
                    word,
                });
            }
        }
        RowRef::Words(words) => {
            for (wi, w) in words.iter().enumerate() {
                if chars {
                    for (ci, (bi, c)) in w.char_indices().enumerate() {
                        out.push(Unit {
                            text: &w[bi..bi + c.len_utf8()],
                            span: (ci, ci + 1),
                            word: wi as i32,
                        });
                    }
                } else {
                    out.push(Unit {
                        text: w,
                        span: (0, w.chars().count()),
                        word: wi as i32,
                    });
                }
            }
        }
    }
    out
}

enum RowRef<'a> {
    Text(&'a str),
    Words(&'a [&'a str]),
}

fn row_refs<'a>(rows: &'a Rows<'a>) -> Vec<RowRef<'a>> {
    match rows {
        Rows::Text(t) => t.iter().map(|s| RowRef::Text(s)).collect(),
        Rows::Words(w) => w.iter().map(|w| RowRef::Words(w.as_slice())).collect(),
    }
}

fn encode_simple(chars: bool, vocab: &Vocab, row: &RowRef, max_length: Option<usize>) -> Encoded {
    let mut units = units(chars, row);
    let truncated = max_length.is_some_and(|m| units.len() > m);
    if let Some(m) = max_length {
        units.truncate(m);
    }
    Encoded {
        ids: units.iter().map(|u| vocab.id(u.text)).collect(),
        type_ids: Vec::new(),
        word_ids: units.iter().map(|u| u.word).collect(),
        offsets: units.iter().map(|u| u.span).collect(),
        tokens: units
            .iter()
            .map(|u| vocab.token(vocab.id(u.text)).to_string())
            .collect(),
        truncated,
    }
}

// ---------------------------------------------------------------------------------------------

/// `tokenize`: text or words to token ids.
pub struct Tokenize;

/// Rows encoded per step (between cancellation checks and progress updates).
const CHUNK: usize = 4096;

impl Stage for Tokenize {
    type Params = TokenizeParams;
    const KIND: &'static str = "tokenize";
    /// Bump when the stored columns change.
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "text or words to token ids (a pretrained tokenizer.json, or char/word vocabularies)";

    fn externals(p: &TokenizeParams, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        match p.which() {
            Which::Model(spec) => Ok(vec![
                pretrained::resolve_env(spec, env, "tokenizer")?.external("tokenizer"),
            ]),
            Which::Char | Which::Word => Ok(Vec::new()),
        }
    }

    fn run(p: &TokenizeParams, ctx: &Context) -> Result<Output, StageError> {
        let input = ctx.single_input()?;
        let total: usize = input.tables.values().map(RecordBatch::num_rows).sum();
        ctx.progress.set_total(total as u64, "rows");
        let mut output = Output::default();
        match p.which() {
            Which::Model(spec) => with_pretrained(p, ctx, input, spec, &mut output)?,
            Which::Char => with_vocabulary(p, ctx, input, true, &mut output)?,
            Which::Word => with_vocabulary(p, ctx, input, false, &mut output)?,
        }
        Ok(output)
    }
}

/// Tokenizes every split with the pretrained tokenizer resolved before the run (`spec`).
fn with_pretrained(
    p: &TokenizeParams,
    ctx: &Context,
    input: &Input,
    spec: &str,
    output: &mut Output,
) -> Result<(), StageError> {
    let model = ResolvedModel::from_external(ctx.external("tokenizer")?);
    let mut t = Pretrained::load(&model)?;
    let max_length = truncation_length(p, ctx, &t, spec)?;
    t.set_truncation(max_length)?;
    let pad_id = t.tokenizer.get_padding().map(|p| p.pad_id).or_else(|| {
        ["[PAD]", "<pad>", "<|endoftext|>"]
            .iter()
            .find_map(|s| t.tokenizer.token_to_id(s))
    });
    let vocab_size = t.tokenizer.get_vocab_size(true);
    for (split, batch) in &input.tables {
        let started = std::time::Instant::now();
        let rows = Rows::read(p, batch, split)?;
        let encoded = encode_pretrained(p, ctx, &t, &rows, split)?;
        let encoded_s = started.elapsed().as_secs_f64();
        let table = store(p, batch, &encoded, t.has_token_type_ids, pad_id, vocab_size)?;
        // A log line, not a metric: metrics must be deterministic (`cairn verify`).
        tracing::info!(
            stage = ctx.stage,
            split = split.as_str(),
            rows = rows.len(),
            encode_s = encoded_s,
            total_s = started.elapsed().as_secs_f64(),
            "tokenized"
        );
        record_metrics(output, split, &encoded);
        output.tables.insert(split.clone(), table);
    }
    Ok(())
}

/// Where to truncate with `truncation: true`: `max-length`, else the tokenizer's own
/// `model_max_length` (said so when it came from the model's positions); a tokenizer without
/// one needs `max-length`. `None`: no truncation.
fn truncation_length(
    p: &TokenizeParams,
    ctx: &Context,
    t: &Pretrained,
    spec: &str,
) -> Result<Option<usize>, StageError> {
    if !p.truncation {
        return Ok(None);
    }
    match (p.max_length, t.model_max_length) {
        (Some(m), _) => Ok(Some(m)),
        (None, Some(m)) => {
            if let Some(note) = &t.max_length_note {
                ctx.progress.println(&format!("{}: {note}", ctx.stage));
            }
            Ok(Some(m))
        }
        (None, None) => Err(StageError::param(
            "max-length",
            format!(
                "`{spec}` declares no model_max_length (unset, or transformers' 1e30 for \"no limit\") and has no config.json with max_position_embeddings beside it: set `max-length:` (or `truncation: false`)"
            ),
            Some("e.g. `max-length: 512`, the positions of most BERT-size models".into()),
        )),
    }
}

/// Encodes the rows of one split in chunks of [`CHUNK`] (progress and cancellation between).
fn encode_pretrained(
    p: &TokenizeParams,
    ctx: &Context,
    t: &Pretrained,
    rows: &Rows,
    split: &str,
) -> Result<Vec<Encoded>, StageError> {
    let mut encoded = Vec::with_capacity(rows.len());
    for start in (0..rows.len()).step_by(CHUNK) {
        ctx.check_cancelled()?;
        let end = (start + CHUNK).min(rows.len());
        let inputs: Vec<EncodeInput> = match rows {
            Rows::Text(texts) => texts[start..end].iter().map(|&s| s.into()).collect(),
            Rows::Words(words) => words[start..end].iter().map(|w| w.clone().into()).collect(),
        };
        let encodings = t
            .tokenizer
            .encode_batch_char_offsets(inputs, p.add_special_tokens)
            .map_err(|e| {
                StageError::failed(format!("split `{split}`: tokenization failed: {e}"))
            })?;
        encoded.extend(encodings.iter().map(Encoded::from_encoding));
        ctx.progress.advance((end - start) as u64);
    }
    Ok(encoded)
}

/// Tokenizes every split with a `char` or `word` vocabulary built from `vocab-split` (written
/// to `vocab.txt`).
fn with_vocabulary(
    p: &TokenizeParams,
    ctx: &Context,
    input: &Input,
    chars: bool,
    output: &mut Output,
) -> Result<(), StageError> {
    use rayon::prelude::*;
    let vocab_batch = input.table_named_by("vocab-split", &p.vocab_split)?;
    let vocab_rows = Rows::read(p, vocab_batch, &p.vocab_split)?;
    let refs = row_refs(&vocab_rows);
    let all_units: Vec<Unit> = refs.iter().flat_map(|r| units(chars, r)).collect();
    let vocab = Vocab::build(all_units.iter().map(|u| u.text), p.max_vocab);
    write_vocab(&vocab, &ctx.out_dir.join("vocab.txt"))?;
    output
        .metrics
        .insert("vocab_size".into(), vocab.len().into());
    let max_length = if p.truncation { p.max_length } else { None };
    for (split, batch) in &input.tables {
        ctx.check_cancelled()?;
        let rows = Rows::read(p, batch, split)?;
        let refs = row_refs(&rows);
        let encoded: Vec<Encoded> = refs
            .par_iter()
            .map(|r| encode_simple(chars, &vocab, r, max_length))
            .collect();
        let unk = encoded
            .iter()
            .flat_map(|e| &e.ids)
            .filter(|&&i| i == 1)
            .count();
        output
            .metrics
            .insert(format!("unk_tokens.{split}"), unk.into());
        let table = store(p, batch, &encoded, false, Some(0), vocab.len())?;
        record_metrics(output, split, &encoded);
        output.tables.insert(split.clone(), table);
        ctx.progress.advance(rows.len() as u64);
    }
    Ok(())
}

/// One token per line (id = line number); a newline character cannot be written as itself.
fn write_vocab(vocab: &Vocab, path: &std::path::Path) -> Result<(), StageError> {
    let mut f = fs_err::File::create(path)?;
    for t in &vocab.tokens {
        writeln!(f, "{}", t.replace('\n', "\\n"))?;
    }
    Ok(())
}

fn record_metrics(output: &mut Output, split: &str, encoded: &[Encoded]) {
    let total: usize = encoded.iter().map(|e| e.ids.len()).sum();
    let max = encoded.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let truncated = encoded.iter().filter(|e| e.truncated).count();
    output
        .metrics
        .insert(format!("tokens.{split}"), total.into());
    output
        .metrics
        .insert(format!("max_tokens.{split}"), max.into());
    output
        .metrics
        .insert(format!("truncated.{split}"), truncated.into());
}

/// The input batch plus the token columns.
fn store(
    p: &TokenizeParams,
    batch: &RecordBatch,
    encoded: &[Encoded],
    type_ids: bool,
    pad_id: Option<u32>,
    vocab_size: usize,
) -> Result<RecordBatch, StageError> {
    let ids: Vec<Vec<i32>> = encoded.iter().map(|e| e.ids.clone()).collect();
    let mask: Vec<Vec<i8>> = encoded.iter().map(|e| vec![1i8; e.ids.len()]).collect();
    let word_ids: Vec<Vec<i32>> = encoded.iter().map(|e| e.word_ids.clone()).collect();
    let mut columns = vec![
        ("input_ids", table::list_i32(&ids)),
        ("attention_mask", table::list_i8(&mask)),
    ];
    if type_ids {
        let t: Vec<Vec<i8>> = encoded.iter().map(|e| e.type_ids.clone()).collect();
        columns.push(("token_type_ids", table::list_i8(&t)));
    }
    columns.push(("word_ids", table::list_i32(&word_ids)));
    if p.return_offsets {
        let o: Vec<Vec<(usize, usize)>> = encoded.iter().map(|e| e.offsets.clone()).collect();
        columns.push(("offsets", table::list_spans(&o)));
    }
    if p.return_tokens {
        let t: Vec<Vec<String>> = encoded.iter().map(|e| e.tokens.clone()).collect();
        columns.push((p.tokens_column.as_str(), table::list_utf8(&t)));
    }
    let mut meta = vec![(VOCAB_SIZE_KEY, vocab_size.to_string())];
    if let Some(pad) = pad_id {
        meta.push((PAD_ID_KEY, pad.to_string()));
    }
    table::with_columns(batch, columns, &meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_tokenizer_is_the_chapters_numericalization() {
        // The chapter: `token2idx = {ch: idx for idx, ch in enumerate(sorted(set(text)))}`.
        let text = "Tokenizing text is a core task of NLP.";
        let vocab = Vocab::build(
            units(true, &RowRef::Text(text)).iter().map(|u| u.text),
            None,
        );
        let mut distinct: Vec<char> = text.chars().collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(vocab.len(), distinct.len() + 2);
        assert_eq!(&vocab.tokens[..4], [PAD, UNK, " ", "."]);
        let e = encode_simple(true, &vocab, &RowRef::Text(text), None);
        assert_eq!(e.ids.len(), text.chars().count());
        // Round trip: ids back to tokens give the text again.
        let back: String = e.ids.iter().map(|&i| vocab.token(i)).collect();
        assert_eq!(back, text);
        // Spaces belong to no word; "Tokenizing" is word 0, "text" word 1.
        assert_eq!(&e.word_ids[..12], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 1]);
        // A character never seen is [UNK].
        let e = encode_simple(true, &vocab, &RowRef::Text("Tq!"), None);
        assert_eq!(e.tokens, ["T", UNK, UNK]);
        assert_eq!(e.ids[1], 1);
    }

    #[test]
    fn word_tokenizer_splits_on_whitespace_and_caps_the_vocabulary() {
        let texts = ["the cat sat", "the  dog sat", "a cat"];
        let all: Vec<Unit> = texts
            .iter()
            .flat_map(|t| units(false, &RowRef::Text(t)))
            .collect();
        let vocab = Vocab::build(all.iter().map(|u| u.text), None);
        assert_eq!(vocab.tokens, [PAD, UNK, "a", "cat", "dog", "sat", "the"]);
        let e = encode_simple(false, &vocab, &RowRef::Text(" the  bird sat"), None);
        assert_eq!(e.ids, [6, 1, 5]);
        assert_eq!(e.offsets, [(1, 4), (6, 10), (11, 14)]);
        assert_eq!(e.word_ids, [0, 1, 2]);
        // max-vocab 4: [PAD], [UNK] and the two most frequent words (cat, sat, the all twice:
        // ties in sorted order keep cat and sat).
        let small = Vocab::build(all.iter().map(|u| u.text), Some(4));
        assert_eq!(small.tokens, [PAD, UNK, "cat", "sat"]);
        assert_eq!(
            encode_simple(false, &small, &RowRef::Text("the cat"), None).ids,
            [1, 2]
        );
        // Truncation.
        let e = encode_simple(false, &vocab, &RowRef::Text("the cat sat"), Some(2));
        assert_eq!((e.ids.len(), e.truncated), (2, true));
    }

    #[test]
    fn token_strings_never_replace_an_input_column() {
        let batch =
            RecordBatch::try_from_iter([("tokens", table::list_utf8(&[vec!["John", "Smith"]]))])
                .unwrap();
        let p: TokenizeParams = crate::params_from_yaml(
            "{tokenizer: word, is-split-into-words: true, return-tokens: true}",
        );
        let e = Rows::read(&p, &batch, "train").err().unwrap();
        assert!(
            matches!(e, StageError::Param { ref field, .. } if field == "tokens-column"),
            "{e}"
        );
        let p: TokenizeParams = crate::params_from_yaml(
            "{tokenizer: word, is-split-into-words: true, return-tokens: true, tokens-column: subwords}",
        );
        assert!(Rows::read(&p, &batch, "train").is_ok());
    }

    #[test]
    fn split_words_keep_their_word_index() {
        let words = ["ab", "c"];
        let vocab = Vocab::build(["a", "b", "c"].into_iter(), None);
        let e = encode_simple(true, &vocab, &RowRef::Words(&words), None);
        assert_eq!(e.word_ids, [0, 0, 1]);
        assert_eq!(e.offsets, [(0, 1), (1, 2), (0, 1)]);
    }
}
