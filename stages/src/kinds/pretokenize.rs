//! `pretokenize`: the second step of a tokenizer pipeline as its own stage. Splits a text
//! column into words, remembering where each word is in the text.
//!
//! Output columns (added to the input's):
//! - `words: list<utf8>`;
//! - `word_offsets: list<struct<start: int32, end: int32>>`: each word's span in the input
//!   column, in characters (Unicode scalar values), end exclusive, so
//!   `text.chars().skip(start).take(end - start)` is the word (for `metaspace`, the word
//!   with `▁` for the space it stands for).

use serde::{Deserialize, Serialize};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::metaspace::Metaspace;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{
    OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, PreTokenizerWrapper,
};

use crate::api::{Arity, Context, External, Output, PrepareEnv, Stage, StageError};
use crate::columns::table;
use crate::hub::model::ResolvedModel;
use crate::hub::pretrained::{self, Pretrained};

/// How to split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Split on whitespace (Python's `str.split()`).
    Whitespace,
    /// Split on whitespace and isolate each punctuation character (BERT's basic tokenizer).
    Bert,
    /// Replace spaces with `▁`, prepend one, and split before each `▁` (SentencePiece style).
    Metaspace,
    /// The pre-tokenizer of the `tokenizer.json` named by `tokenizer`.
    FromTokenizer,
}

/// Params of `pretokenize`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PretokenizeParams {
    /// Splitting method. Default `whitespace`.
    #[serde(default = "whitespace")]
    pub method: Method,
    /// With `method: from-tokenizer`: the MODEL (local directory or Hub id) whose pre-tokenizer
    /// to use. Default: none.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// The text column to split. Default: `text_normalized` when the input has it (a
    /// `normalize` stage ran before), else `text`.
    #[serde(default)]
    pub column: Option<String>,
}

fn whitespace() -> Method {
    Method::Whitespace
}

/// The words of a text and their character spans.
type Words = (Vec<String>, Vec<(usize, usize)>);

enum Splitter {
    Builtin(PreTokenizerWrapper),
    Pretrained(Box<Pretrained>),
}

impl PretokenizeParams {
    /// `tokenizer:` goes with `method: from-tokenizer`, and only with it.
    fn check_tokenizer(&self) -> Result<(), StageError> {
        match (self.method, &self.tokenizer) {
            (Method::FromTokenizer, None) => Err(StageError::param(
                "tokenizer",
                "`method: from-tokenizer` needs `tokenizer:`",
                Some("e.g. `tokenizer: sentence-transformers/all-MiniLM-L6-v2`".into()),
            )),
            (Method::FromTokenizer, Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => Err(StageError::param(
                "tokenizer",
                "`tokenizer:` is only used with `method: from-tokenizer`",
                None,
            )),
        }
    }
}

impl Splitter {
    /// The splitter of validated params; `from-tokenizer` loads the tokenizer resolved before
    /// the run (`tokenizer`).
    fn new(p: &PretokenizeParams, tokenizer: Option<&External>) -> Result<Splitter, StageError> {
        Ok(match p.method {
            Method::Whitespace => Splitter::Builtin(WhitespaceSplit.into()),
            Method::Bert => Splitter::Builtin(BertPreTokenizer.into()),
            Method::Metaspace => Splitter::Builtin(Metaspace::default().into()),
            Method::FromTokenizer => {
                let external = tokenizer.ok_or_else(|| {
                    StageError::failed("`method: from-tokenizer` needs `tokenizer:`")
                })?;
                let model = ResolvedModel::from_external(external);
                Splitter::Pretrained(Box::new(Pretrained::load(&model)?))
            }
        })
    }

    /// The words of `text` with their character spans in it.
    fn split(&self, text: &str) -> Result<Words, StageError> {
        let mut pre = PreTokenizedString::from(text);
        let res = match self {
            Splitter::Builtin(p) => p.pre_tokenize(&mut pre),
            Splitter::Pretrained(t) => match t.tokenizer.get_pre_tokenizer() {
                Some(p) => p.pre_tokenize(&mut pre),
                None => Ok(()),
            },
        };
        res.map_err(|e| StageError::failed(format!("pre-tokenization failed: {e}")))?;
        Ok(pre
            .get_splits(OffsetReferential::Original, OffsetType::Char)
            .into_iter()
            .filter(|(w, _, _)| !w.is_empty())
            .map(|(w, span, _)| (w.to_string(), span))
            .unzip())
    }
}

/// `pretokenize`: splits a text column into words with character offsets.
pub struct Pretokenize;

impl Stage for Pretokenize {
    type Params = PretokenizeParams;
    const KIND: &'static str = "pretokenize";
    /// Bump when the words or offsets produced change.
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "splits text into words (whitespace, bert, metaspace or a tokenizer's) with offsets";

    fn validate(p: &PretokenizeParams, _env: &PrepareEnv) -> Result<(), StageError> {
        p.check_tokenizer()
    }

    fn externals(p: &PretokenizeParams, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        Ok(match &p.tokenizer {
            Some(spec) => {
                vec![pretrained::resolve_env(spec, env, "tokenizer")?.external("tokenizer")]
            }
            None => Vec::new(),
        })
    }

    fn run(p: &PretokenizeParams, ctx: &Context) -> Result<Output, StageError> {
        use rayon::prelude::*;
        let tokenizer = p
            .tokenizer
            .as_ref()
            .map(|_| ctx.external("tokenizer"))
            .transpose()?;
        let splitter = Splitter::new(p, tokenizer)?;
        let input = ctx.single_input()?;
        let mut output = Output::default();
        ctx.progress.set_total(input.tables.len() as u64, "splits");
        for (split, batch) in &input.tables {
            ctx.check_cancelled()?;
            let column = match &p.column {
                Some(c) => c.as_str(),
                None if batch.column_by_name("text_normalized").is_some() => "text_normalized",
                None => "text",
            };
            let texts = table::strings(batch, column, split)?;
            let (words, spans): (Vec<_>, Vec<_>) = texts
                .par_iter()
                .map(|t| splitter.split(t))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip();
            let columns = vec![
                ("words", table::list_utf8(&words)),
                ("word_offsets", table::list_spans(&spans)),
            ];
            output
                .tables
                .insert(split.clone(), table::with_columns(batch, columns, &[])?);
            ctx.progress.advance(1);
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(method: &str, text: &str) -> (Vec<String>, Vec<(usize, usize)>) {
        let p: PretokenizeParams = crate::params_from_yaml(&format!("{{method: {method}}}"));
        Splitter::new(&p, None).unwrap().split(text).unwrap()
    }

    #[test]
    fn methods_split_as_documented_with_char_offsets() {
        let (w, o) = split("whitespace", " héllo,  wörld! ");
        assert_eq!(w, ["héllo,", "wörld!"]);
        assert_eq!(o, [(1, 7), (9, 15)]);
        let (w, o) = split("bert", "héllo, wörld!");
        assert_eq!(w, ["héllo", ",", "wörld", "!"]);
        assert_eq!(o, [(0, 5), (5, 6), (7, 12), (12, 13)]);
        let (w, _) = split("metaspace", "hi there");
        assert_eq!(w, ["▁hi", "▁there"]);
        let text = "ça va? oui";
        let (w, o) = split("bert", text);
        for (word, (s, e)) in w.iter().zip(o) {
            assert_eq!(&text.chars().skip(s).take(e - s).collect::<String>(), word);
        }
    }

    #[test]
    fn tokenizer_goes_with_from_tokenizer_only() {
        let env = PrepareEnv {
            root: std::path::Path::new("."),
            offline: true,
        };
        let validate = |yaml: &str| {
            let p: PretokenizeParams = crate::params_from_yaml(yaml);
            Pretokenize::validate(&p, &env)
        };
        assert!(validate("{method: from-tokenizer}").is_err());
        // Refused before the tokenizer is looked for (it was resolved first).
        let e = validate("{method: bert, tokenizer: x/y}").unwrap_err();
        assert!(
            matches!(e, StageError::Param { ref field, .. } if field == "tokenizer"),
            "{e}"
        );
    }
}
