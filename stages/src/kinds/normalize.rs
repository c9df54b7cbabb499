//! `normalize`: the first step of a tokenizer pipeline as its own stage. Applies a list of
//! operations (Unicode normal forms, lowercasing, accent stripping, trimming, regex
//! replacement) or a pretrained tokenizer's own normalizer to a text column, writing the result
//! to a new column and keeping the original.

use regex::Regex;
use serde::{Deserialize, Serialize};
use tokenizers::{NormalizedString, Normalizer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::api::{Arity, Context, External, Output, PrepareEnv, Stage, StageError};
use crate::columns::table;
use crate::hub::model::ResolvedModel;
use crate::hub::pretrained::{self, Pretrained};

/// One normalization step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Op {
    /// Unicode canonical composition.
    Nfc,
    /// Unicode canonical decomposition.
    Nfd,
    /// Unicode compatibility composition.
    Nfkc,
    /// Unicode compatibility decomposition.
    Nfkd,
    /// Unicode lowercase.
    Lowercase,
    /// Decomposes (NFD) and drops combining marks: `café` → `cafe` (the result stays in NFD).
    StripAccents,
    /// Removes leading and trailing whitespace.
    Strip,
    /// Replaces every match of the regex `pattern` with `with` (`$1` refers to a group).
    Replace { pattern: String, with: String },
}

/// Params of `normalize`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NormalizeParams {
    /// The text column to normalize. Default `text`.
    #[serde(default = "text")]
    pub column: String,
    /// The column to write (the original column is kept). Default `text_normalized`.
    #[serde(default = "text_normalized")]
    pub output: String,
    /// Operations, applied in order, e.g. `[nfkc, lowercase, {replace: {pattern: '\s+', with: ' '}}]`.
    /// Default: none. Exactly one of `ops` and `from-tokenizer` must be given.
    #[serde(default)]
    pub ops: Vec<Op>,
    /// A MODEL (local directory or Hub id) whose `tokenizer.json` normalizer to apply, e.g.
    /// `sentence-transformers/all-MiniLM-L6-v2` (BERT: clean text, space CJK characters,
    /// lowercase, strip accents). Default: none.
    #[serde(default)]
    pub from_tokenizer: Option<String>,
}

fn text() -> String {
    "text".into()
}
fn text_normalized() -> String {
    "text_normalized".into()
}

/// A normalizer ready to run.
enum Compiled {
    Ops(Vec<CompiledOp>),
    Tokenizer(Box<Pretrained>),
}

enum CompiledOp {
    Plain(Op),
    Replace(Regex, String),
}

impl NormalizeParams {
    /// Exactly one of `ops` and `from-tokenizer`.
    fn check_one_source(&self) -> Result<(), StageError> {
        if self.from_tokenizer.is_some() == self.ops.is_empty() {
            return Ok(());
        }
        Err(StageError::param(
            "ops",
            "give either `ops:` or `from-tokenizer:`",
            Some("e.g. `ops: [nfkc, lowercase]` or `from-tokenizer: sentence-transformers/all-MiniLM-L6-v2`".into()),
        ))
    }
}

/// The operations with their regexes compiled; a regex that does not compile is the error of
/// its `ops.<i>` param.
fn compile_ops(ops: &[Op]) -> Result<Vec<CompiledOp>, StageError> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| match op {
            Op::Replace { pattern, with } => Regex::new(pattern)
                .map(|re| CompiledOp::Replace(re, with.clone()))
                .map_err(|e| {
                    StageError::param(&format!("ops.{i}"), format!("invalid regex: {e}"), None)
                }),
            other => Ok(CompiledOp::Plain(other.clone())),
        })
        .collect()
}

impl Compiled {
    /// The normalizer of validated params: the ops, or the tokenizer resolved before the run.
    fn new(p: &NormalizeParams, ctx: &Context) -> Result<Compiled, StageError> {
        match &p.from_tokenizer {
            Some(_) => {
                let model = ResolvedModel::from_external(ctx.external("from-tokenizer")?);
                Ok(Compiled::Tokenizer(Box::new(Pretrained::load(&model)?)))
            }
            None => compile_ops(&p.ops).map(Compiled::Ops),
        }
    }

    fn apply(&self, text: &str) -> Result<String, StageError> {
        match self {
            Compiled::Tokenizer(t) => {
                let mut n = NormalizedString::from(text);
                if let Some(normalizer) = t.tokenizer.get_normalizer() {
                    normalizer.normalize(&mut n).map_err(|e| {
                        StageError::failed(format!("the tokenizer's normalizer failed: {e}"))
                    })?;
                }
                Ok(n.get().to_string())
            }
            Compiled::Ops(ops) => Ok(ops.iter().fold(text.to_string(), |s, op| apply_op(op, s))),
        }
    }
}

fn apply_op(op: &CompiledOp, s: String) -> String {
    match op {
        CompiledOp::Replace(re, with) => re.replace_all(&s, with.as_str()).into_owned(),
        CompiledOp::Plain(op) => match op {
            Op::Nfc => s.nfc().collect(),
            Op::Nfd => s.nfd().collect(),
            Op::Nfkc => s.nfkc().collect(),
            Op::Nfkd => s.nfkd().collect(),
            Op::Lowercase => s.to_lowercase(),
            Op::StripAccents => s.nfd().filter(|&c| !is_combining_mark(c)).collect(),
            Op::Strip => s.trim().to_string(),
            Op::Replace { .. } => unreachable!("compiled"),
        },
    }
}

/// `normalize`: normalizes a text column into a new column.
pub struct Normalize;

impl Stage for Normalize {
    type Params = NormalizeParams;
    const KIND: &'static str = "normalize";
    /// Bump when an operation's output changes.
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::One;
    const SUMMARY: &'static str =
        "Unicode/lowercase/accent/regex normalization, or a pretrained tokenizer's normalizer";

    fn validate(p: &NormalizeParams, _env: &PrepareEnv) -> Result<(), StageError> {
        p.check_one_source()?;
        compile_ops(&p.ops).map(drop)
    }

    fn externals(p: &NormalizeParams, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        Ok(match &p.from_tokenizer {
            Some(spec) => vec![
                pretrained::resolve_env(spec, env, "from-tokenizer")?.external("from-tokenizer"),
            ],
            None => Vec::new(),
        })
    }

    fn run(p: &NormalizeParams, ctx: &Context) -> Result<Output, StageError> {
        let compiled = Compiled::new(p, ctx)?;
        let input = ctx.single_input()?;
        let mut output = Output::default();
        ctx.progress.set_total(input.tables.len() as u64, "splits");
        for (split, batch) in &input.tables {
            ctx.check_cancelled()?;
            let texts = table::strings(batch, &p.column, split)?;
            let normalized = {
                use rayon::prelude::*;
                texts
                    .par_iter()
                    .map(|t| compiled.apply(t))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let array = std::sync::Arc::new(arrow::array::StringArray::from(normalized));
            output.tables.insert(
                split.clone(),
                table::with_columns(batch, vec![(p.output.as_str(), array)], &[])?,
            );
            ctx.progress.advance(1);
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(yaml: &str) -> Compiled {
        let p: NormalizeParams = crate::params_from_yaml(yaml);
        Compiled::Ops(compile_ops(&p.ops).unwrap())
    }

    #[test]
    fn operations_apply_in_order() {
        let c = ops(
            r"{ops: [nfkc, lowercase, strip-accents, strip, {replace: {pattern: '\s+', with: ' '}}]}",
        );
        assert_eq!(
            c.apply("  Ｃafé  Crème\t\tBRÛLÉE ").unwrap(),
            "cafe creme brulee"
        );
        assert_eq!(ops("{ops: [nfd]}").apply("é").unwrap().chars().count(), 2);
        assert_eq!(ops("{ops: [nfc]}").apply("e\u{301}").unwrap(), "é");
        assert_eq!(ops("{ops: [nfkd]}").apply("ﬁ").unwrap(), "fi");
    }

    fn validate(yaml: &str) -> Result<(), StageError> {
        let p: NormalizeParams = crate::params_from_yaml(yaml);
        let env = PrepareEnv {
            root: std::path::Path::new("."),
            offline: true,
        };
        Normalize::validate(&p, &env)
    }

    #[test]
    fn needs_exactly_one_of_ops_and_from_tokenizer() {
        assert!(validate("{}").is_err());
        // Both: refused before the tokenizer is looked for (it was found only at run time).
        let e = validate("{ops: [lowercase], from-tokenizer: no/such-model}").unwrap_err();
        assert!(
            matches!(e, StageError::Param { ref field, .. } if field == "ops"),
            "{e}"
        );
        let e = validate("{ops: [{replace: {pattern: '(', with: ''}}]}").unwrap_err();
        assert!(
            matches!(e, StageError::Param { ref field, .. } if field == "ops.0"),
            "{e}"
        );
    }
}
